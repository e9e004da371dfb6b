"""The composer's dialogs: the preview of exactly what goes out (with "send", "send and set
pending" and "send and solve"), and the file picker that completes paths as you type."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.tickets.replying import Preview
from supportdesk.ui.widgets.thread import size_text
from supportdesk.ui.widgets.translate import translate_bindings


class PreviewScreen(ModalScreen[str | None]):
    """What the reply will be: sender, recipients, subject, the text with the template filled
    in and the signature, the files. Dismisses with "send", "pending", "solved" or None."""

    BINDINGS = [
        Binding("enter,ctrl+s", "choose('send')", "Send", id="preview.send"),
        Binding(
            "p",
            "choose('pending')",
            "Send+pending",
            id="preview.pending",
            tooltip="Send, then set the ticket pending.",
        ),  # fmt: skip
        Binding(
            "s",
            "choose('solved')",
            "Send+solve",
            id="preview.solve",
            tooltip="Send, then set the ticket solved.",
        ),  # fmt: skip
        Binding("escape", "choose('')", "Edit", id="preview.back", tooltip="Back to the draft."),
    ]

    def __init__(self, preview: Preview) -> None:
        super().__init__()
        translate_bindings(self)
        self.preview = preview

    def compose(self) -> ComposeResult:
        p = self.preview
        with Vertical(classes="dialog wide", id="preview-dialog"):
            title = _("Preview: internal note") if p.note else _("Preview: what goes out")
            yield Label(title, classes="dialog-title")
            head = Text()
            rows: list[tuple[str, str]] = []
            if not p.note:
                if p.sender:
                    rows.append((_("From"), p.sender))
                rows.append((_("To"), p.to))
                if p.cc:
                    rows.append((_("Cc"), ", ".join(p.cc)))
                if p.bcc:
                    rows.append((_("Bcc"), ", ".join(p.bcc)))
                if p.subject:
                    rows.append((_("Subject"), p.subject))
                rows.append((_("Channel"), p.channel))
            for name, value in rows:
                head.append(f"{name + ':':<9}", style="bold")
                head.append(inert(value, one_line=True) + "\n")
            if p.attachments:
                head.append(f"{_('Files') + ':':<9}", style="bold")
                head.append(", ".join(f"{inert(n, one_line=True)} ({size_text(s)})"
                                      for n, s in p.attachments))  # fmt: skip
                head.append("  " + _("limit {limit}").format(limit=size_text(p.limit)) + "\n",
                            style="dim")  # fmt: skip
            if p.html:
                head.append(_("Sent as plain text and as HTML made from its Markdown.") + "\n",
                            style="dim")  # fmt: skip
            yield Static(head, id="preview-head")
            with VerticalScroll(id="preview-body"):
                yield Static(Text(inert(p.text)))
            keys = (
                _("Enter send · s send and solve · p send and set pending · Esc edit")
                if not p.note
                else _("Enter save the note · Esc edit")
            )
            yield Static(Text(keys, style="dim"), id="preview-keys")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        blocked = ("pending", "solved")
        if self.preview.note and action == "choose" and parameters and parameters[0] in blocked:
            return False
        return True

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)


class PathSuggester(Suggester):
    """Completes a file path: the first entry of the folder typed so far that fits."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value)


def complete_path(value: str) -> str | None:
    """``value`` completed to the first fitting entry of its folder (a folder gets a slash)."""
    if not value:
        return None
    expanded = os.path.expanduser(value)
    folder, _sep, stem = expanded.rpartition(os.sep)
    base = Path(folder or ("/" if expanded.startswith(os.sep) else "."))
    try:
        names = sorted(
            e.name
            for e in os.scandir(base)
            if e.name.startswith(stem) and (stem.startswith(".") or not e.name.startswith("."))
        )
    except OSError:
        return None
    if not names:
        return None
    name = names[0]
    suffix = name[len(stem) :]
    if (base / name).is_dir():
        suffix += os.sep
    return value + suffix if suffix else None


class AttachScreen(ModalScreen[str | None]):
    """Ask for a file to attach; → or Tab takes the completion, the channel's limit is said."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="attach.cancel"),
        Binding("tab", "complete", "Complete", show=False, id="attach.complete"),
    ]

    def __init__(self, kind: str) -> None:
        super().__init__()
        translate_bindings(self)
        self.kind = kind

    def compose(self) -> ComposeResult:
        from supportdesk.outbound.outbox import attachment_limit

        limit = attachment_limit(self.kind)
        with Vertical(classes="dialog"):
            yield Label(_("Attach a file"), classes="dialog-title")
            yield Input(
                value=str(Path.cwd()) + os.sep,
                placeholder=_("path of the file"),
                suggester=PathSuggester(),
                id="attach-input",
            )
            hint = (
                _("→ or Tab completes. A {kind} message carries up to {limit}.").format(
                    kind=self.kind, limit=size_text(limit)
                )
                if limit
                else _("This channel cannot carry files.")
            )
            yield Static(Text(hint, style="dim"), classes="dialog-hint")

    def action_complete(self) -> None:
        field = self.query_one("#attach-input", Input)
        field.action_cursor_right()

    @on(Input.Submitted, "#attach-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
