"""The Textual console: ``run_console(desk)`` opens it; ``make_app(desk, ...)`` builds it for
tests, benchmarks and text captures.

Screens: the queue (screens/queue.py), a ticket (screens/ticket.py), the composer
(screens/composer.py), help, pickers, and the SLA dashboard when screens/dashboard.py exists.
A thread worker polls a cheap fingerprint of the database every second, so new tickets and
messages appear within two seconds of being stored, from this desk's runner or anyone else's.
The in-console runner starts once the first screen has settled (``when_settled``).

Long because: the app holds the command palette's provider, the live-update poller and the
start-up sequence (the first screen's parts, then the in-console runner) beside the screens'
navigation.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.worker import get_current_worker

from supportdesk.core.i18n import _, set_language
from supportdesk.core.locations import is_shared_home
from supportdesk.core.terms import utcnow
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk
from supportdesk.runner.status import desk_status
from supportdesk.tickets import views
from supportdesk.ui.screens.dialogs import PickerScreen
from supportdesk.ui.screens.help import HelpScreen
from supportdesk.ui.screens.queue import QueueScreen
from supportdesk.ui.screens.ticket import TicketScreen
from supportdesk.ui.widgets.ticket_list import TicketList
from supportdesk.ui.widgets.translate import translate_bindings

STATUS_EVERY = 5.0  # seconds between channel-health refreshes
SETTLE_PARTS = frozenset({"counts", "status", "preview"})  # what the first screen loads
SETTLE_LIMIT = 5.0  # seconds: ``when_settled`` runs by then even if a part never loaded


def _dashboard_screen() -> type[Any] | None:
    try:
        from supportdesk.ui.screens.dashboard import DashboardScreen
    except ImportError:
        return None
    return DashboardScreen  # type: ignore[no-any-return]


class DeskCommands(Provider):
    """The command palette (ctrl+p): namespaced commands for views, tickets and the console."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        assert isinstance(app, SupportDeskApp)
        screen = self.screen  # the screen the palette was opened from
        out: list[tuple[str, Callable[[], Any], str]] = []
        queue = next((s for s in app.screen_stack if isinstance(s, QueueScreen)), None)
        if queue is not None:
            vl_views = list(queue.query_one("#views").views)  # type: ignore[attr-defined]
            from supportdesk.ui.widgets.sidebar import view_title

            for v in vl_views:
                out.append((
                    f"{_('view')}: {view_title(v).strip()}",
                    partial(app.show_view, v),
                    inert(v.query, one_line=True),
                ))  # fmt: skip
        if _dashboard_screen() is not None:
            out.append((f"{_('view')}: {_('dashboard')}", app.action_dashboard, _("SLA dashboard")))
        if isinstance(screen, (QueueScreen, TicketScreen)):
            for action, label in (
                ("assign", _("assign…")), ("assign_me", _("assign to me")), ("status", _("set status…")),
                ("priority", _("set priority…")), ("tags", _("tags…")), ("snooze", _("snooze…")),
                ("merge", _("merge into…")), ("reply", _("reply")), ("note", _("internal note")),
            ):  # fmt: skip
                out.append((f"{_('ticket')}: {label}", getattr(screen, f"action_{action}"), ""))
        if isinstance(screen, QueueScreen):
            out.append((f"{_('queue')}: {_('search')}", screen.action_search, "/"))
            out.append((f"{_('queue')}: {_('save search as view')}", screen.action_save_view, "S"))
            out.append(
                (f"{_('queue')}: {_('show or hide views')}", screen.action_toggle_views, "v")
            )
        if isinstance(screen, TicketScreen):
            out.append((f"{_('ticket')}: {_('fold or show quotes')}", screen.action_fold, "f"))
            out.append(
                (f"{_('ticket')}: {_('save attachment')}", screen.action_save_attachment, "w")
            )
            out.append(
                (f"{_('ticket')}: {_('open attachment')}", screen.action_open_attachment, "o")
            )
            out.append((f"{_('ticket')}: {_('customer history')}", screen.action_history, "h"))
        # every key of the screen the palette was opened from, by its (translated) name
        seen = {name for name, _run, _help in out}
        for node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not enabled or not binding.description or binding.action.startswith("command_"):
                continue
            name = f"{binding.description} ({app.get_key_display(binding)})"
            if name in seen:
                continue
            seen.add(name)
            out.append((name, partial(app.run_action, binding.action, node), tooltip or ""))
        out.append((f"{_('edit')}: {_('undo last action')}", app.action_undo, "u"))
        out.append((f"{_('help')}: {_('keys')}", app.action_help, "?"))
        out.append((f"{_('app')}: {_('quit')}", app.exit, "q"))
        return out

    async def discover(self) -> Hits:
        for name, run, help_text in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)


class SupportDeskApp(App[None]):
    """The console of one desk."""

    CSS_PATH = "app.tcss"
    TITLE = "supportdesk"
    COMMANDS = App.COMMANDS | {DeskCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the console."),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key."),
        Binding(
            "D",
            "dashboard",
            "Dashboard",
            show=False,
            id="app.dashboard",
            tooltip="The SLA dashboard.",
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            show=False,
            id="app.palette",
            tooltip="The command palette.",
        ),
    ]

    def __init__(
        self,
        desk: Desk,
        *,
        now: Callable[[], datetime] | None = None,
        live: bool = True,
        poll_interval: float = 1.0,
        language: str | None = None,
        when_settled: Callable[[], None] | None = None,
    ) -> None:
        self.language = set_language(language or desk.config.desk.language)
        super().__init__()
        translate_bindings(self)
        self.desk = desk
        try:
            self.tz: Any = ZoneInfo(desk.config.desk.timezone)
        except Exception:
            self.tz = None
        self._now = now
        self.live = live
        self.poll_interval = poll_interval
        self.desk_status: dict[str, Any] | None = None
        self.drafts: dict[int, str] = {}
        self.last_pulse: views.Pulse | None = None
        self.notified_new: list[tuple[int, str]] = []
        self._ticket_screen: TicketScreen | None = None
        self._when_settled = when_settled
        self._settled_parts: set[str] = set()

    def now(self) -> datetime:
        """The time the screens show against (frozen in snapshot tests)."""
        t = self._now() if self._now is not None else utcnow()
        return t.astimezone(self.tz) if self.tz is not None else t

    def on_mount(self) -> None:
        keymap = self.desk.config.desk.keymap
        if keymap:
            self.set_keymap(keymap)
        self.push_screen(QueueScreen(self.desk))
        self.call_after_refresh(self._refresh_status)
        if self.live:
            self._watch_desk()
        if self._when_settled is not None:
            self.set_timer(SETTLE_LIMIT, self._settle_anyway)

    # -- start-up ---------------------------------------------------------------------------

    def part_loaded(self, part: str) -> None:
        """A part of the first screen has loaded (``SETTLE_PARTS``: the view counts, the
        desk's health, the preview). Once all have, the console has settled and
        ``when_settled`` runs, once, in a thread worker: the in-console runner starts there,
        so its imports and its first passes do not compete with the first screen."""
        self._settled_parts.add(part)
        if self._settled_parts >= SETTLE_PARTS:
            self._settle_anyway()

    def _settle_anyway(self) -> None:
        hook, self._when_settled = self._when_settled, None
        if hook is not None:
            self._run_when_settled(hook)

    @work(thread=True, group="settled", exit_on_error=False)
    def _run_when_settled(self, hook: Callable[[], None]) -> None:
        hook()
        self.call_from_thread(self._refresh_status)

    # -- navigation -------------------------------------------------------------------------

    def open_ticket(self, ticket_id: int, *, compose: str | None = None) -> None:
        """Show a ticket. One ticket screen is built once and reused (opening is then only
        reading the ticket); a ticket opened from a ticket gets a screen of its own."""
        screen = self._ticket_screen
        if screen is None or screen in self.screen_stack:
            fresh = TicketScreen(self.desk, ticket_id, compose=compose)
            if screen is None:
                self._ticket_screen = fresh
                self.install_screen(fresh, name="ticket")
            self.push_screen(fresh)
            return
        screen.show(ticket_id, compose=compose)
        self.push_screen(screen)

    def show_view(self, view: views.View) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, QueueScreen):
            self.pop_screen()
        if isinstance(self.screen, QueueScreen):
            self.screen.show_view(view)

    def help_sections(self) -> list[tuple[str, type[DOMNode]]]:
        from supportdesk.ui.screens.composer import PreviewScreen
        from supportdesk.ui.widgets.composer import Composer

        sections: list[tuple[str, type[DOMNode]]] = [
            (_("Everywhere"), SupportDeskApp),
            (_("Queue"), QueueScreen),
            (_("Ticket list"), TicketList),
            (_("Ticket"), TicketScreen),
            (_("Composer"), Composer),
            (_("Preview"), PreviewScreen),
            (_("Pickers"), PickerScreen),
        ]
        dash = _dashboard_screen()
        if dash is not None:
            sections.append((_("Dashboard"), dash))
        return sections

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def action_dashboard(self) -> None:
        dash = _dashboard_screen()
        if dash is None:
            self.notify(_("The SLA dashboard is not installed."), severity="warning", markup=False)
            return
        if not isinstance(self.screen, dash):
            self.push_screen(dash(self.desk))

    def action_undo(self) -> None:
        screen = self.screen
        if isinstance(screen, (QueueScreen, TicketScreen)):
            screen.action_undo()

    # -- live updates -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="live", exit_on_error=False)
    def _watch_desk(self) -> None:
        worker = get_current_worker()
        last = views.pulse(self.desk)
        self.last_pulse = last
        since_status = 0.0
        while not worker.is_cancelled:
            if worker.cancelled_event.wait(self.poll_interval):
                break
            try:
                # imported here, a second after the start: the agents' settings it reads are
                # not needed for the first screen
                from supportdesk.automation import notify

                current = views.pulse(self.desk)
                new = (
                    views.new_tickets_since(self.desk, last.last_ticket)
                    if current.last_ticket > last.last_ticket
                    else []
                )
                alerts = notify.in_my_views(self.desk, new)
            except Exception:  # a locked or vanished database: try again next second
                continue
            if current != last:
                last = current
                self.call_from_thread(self._desk_changed, current, new)
                if alerts:
                    self.call_from_thread(self._ring, alerts)
            since_status += self.poll_interval
            if since_status >= STATUS_EVERY:
                since_status = 0.0
                self._refresh_status()

    def _desk_changed(self, pulse: views.Pulse, new: list[tuple[int, str]]) -> None:
        self.last_pulse = pulse
        for tid, subject in new:
            self.notified_new.append((tid, subject))
            self.notify(
                _("New ticket #{id}: {subject}").format(
                    id=tid, subject=inert(subject, one_line=True)
                ),
                markup=False,
                timeout=5,
            )
        for screen in self.screen_stack:
            changed = getattr(screen, "desk_changed", None)
            if changed is not None:
                changed()
        self._refresh_status()

    def _ring(self, alerts: list[tuple[int, str]]) -> None:
        """New tickets in my views: the terminal bell and a desktop notification (OSC 9/777)."""
        self.bell()
        tid, subject = alerts[0]
        more = _(" and {n} more").format(n=len(alerts) - 1) if len(alerts) > 1 else ""
        body = _("New ticket #{id}: {subject}").format(id=tid, subject=subject) + more
        driver = self._driver  # Textual has no public call for a raw escape sequence
        if driver is not None and not self.is_headless:
            from supportdesk.automation import notify

            driver.write(notify.desktop_notification(self.desk.config.desk.name, body))
            driver.flush()

    @work(thread=True, exclusive=True, group="status", exit_on_error=False)
    def _refresh_status(self) -> None:
        try:
            status = desk_status(self.desk)
        except Exception:
            return
        # a SQLite home a group shares: anyone in the group can act as anyone (trust model)
        status["roles_advisory"] = self.desk.db.is_sqlite and is_shared_home(self.desk.home)
        self.call_from_thread(self._show_status, status)

    def _show_status(self, status: dict[str, Any]) -> None:
        self.desk_status = status
        self.part_loaded("status")
        for screen in self.screen_stack:
            update = getattr(screen, "update_status", None)
            if update is not None and screen.is_mounted:
                update()
            refresh_presence = getattr(screen, "refresh_presence", None)
            if refresh_presence is not None and screen.is_current:
                refresh_presence()


def make_app(
    desk: Desk,
    *,
    now: Callable[[], datetime] | None = None,
    live: bool = True,
    poll_interval: float = 1.0,
    language: str | None = None,
    when_settled: Callable[[], None] | None = None,
) -> SupportDeskApp:
    """Build the console for ``desk`` (tests freeze ``now`` and may turn ``live`` polling off;
    ``when_settled`` runs in a thread once the first screen has loaded)."""
    return SupportDeskApp(
        desk, now=now, live=live, poll_interval=poll_interval, language=language,
        when_settled=when_settled,
    )  # fmt: skip


def screen_text(app: App[Any]) -> str:
    """The current screen as plain text, as the terminal shows it (for tests and README)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True,
        color_system="truecolor", record=True, legacy_windows=False, safe_box=False,
    )  # fmt: skip
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text(styles=False)


def _start_runner(desk: Desk) -> tuple[Any, threading.Thread] | None:
    """Run the connectors inside the console when no runner holds the desk's lease."""
    if os.environ.get("SUPPORTDESK_CONSOLE_RUNNER", "1") in ("0", "no", "false"):
        return None
    if not desk.config.channel:
        return None
    if desk.login is not None and not desk.login.runner:
        return None  # a team desk: only the runner's login fetches and sends
    status = desk_status(desk)
    if status.get("runner"):
        return None
    from supportdesk.core.config import ConfigError
    from supportdesk.runner.loop import Runner

    try:
        runner = Runner(desk)
    except ConfigError:
        # strict modes: a config this user does not own (a shared home's runner's) is not
        # theirs to run; the console works without a runner of its own
        return None
    thread = threading.Thread(target=runner.run_forever, name="console-runner", daemon=True)
    thread.start()
    return runner, thread


def run_console(desk: Desk) -> None:
    """Open the console on a desk (blocks until the agent quits).

    The in-console runner starts once the first screen has settled (``when_settled``), not
    before: importing it and its first passes (on a desk whose SLA breaches were never marked,
    minutes of work) held the GIL while the console was starting."""
    import logging

    logging.getLogger("supportdesk").propagate = False  # keep the runner's logs off the screen
    started: list[tuple[Any, threading.Thread]] = []
    lock = threading.Lock()
    closed = False

    def start_runner() -> None:
        with lock:  # the console may be closing meanwhile: then start nothing
            got = None if closed else _start_runner(desk)
            if got is not None:
                started.append(got)

    try:
        make_app(desk, when_settled=start_runner).run()
    finally:
        with lock:
            closed = True
        for runner, thread in started:
            runner.stop()
            thread.join(timeout=5)


__all__ = ["DeskCommands", "SupportDeskApp", "make_app", "run_console", "screen_text"]
