"""The status bar: the agent, each channel's health, the queue's counts, who else is here."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from supportdesk.core.i18n import _
from supportdesk.core.text import inert


def status_text(agent: str, status: dict[str, Any] | None, extra: str = "") -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f" {inert(agent, one_line=True)} ", style="bold reverse")
    if status is not None and status.get("roles_advisory"):
        text.append(" " + _("roles advisory"), style="yellow")
    if status is not None:
        runner = status.get("runner")
        for ch in status.get("channels", []):
            state = ch.get("state")
            mark, style = {"ok": ("●", "green"), "error": ("✗", "bold red")}.get(
                state, ("○", "dim")
            )
            text.append("  ")
            text.append(mark, style=style)
            text.append(" " + inert(ch.get("name", ""), one_line=True))
            if state == "error" and ch.get("last_error"):
                text.append(": " + inert(ch["last_error"], one_line=True)[:40], style="red")
        text.append("  │ ")
        text.append(_("open {n}").format(n=status.get("tickets", {}).get("open", 0)))
        outbox = status.get("outbox", {})
        if outbox.get("queued"):
            text.append(" · " + _("outbox {n}").format(n=outbox["queued"]))
        if outbox.get("failed"):
            text.append(" · " + _("failed {n}").format(n=outbox["failed"]), style="bold red")
        if outbox.get("in_doubt"):
            text.append(
                " · " + _("in doubt {n}").format(n=outbox["in_doubt"]), style="bold magenta"
            )
        if status.get("quarantine"):
            text.append(" · " + _("quarantine {n}").format(n=status["quarantine"]), style="yellow")
        text.append(" · ")
        text.append(
            _("runner on") if runner else _("no runner"), style="dim" if runner else "yellow"
        )
    if extra:
        text.append("  │ " + extra, style="bold magenta")
    return text


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    def show(self, agent: str, status: dict[str, Any] | None, extra: str = "") -> None:
        self.update(status_text(agent, status, extra))
