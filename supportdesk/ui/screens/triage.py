"""Keyboard triage shared by the queue and the ticket screen: assign, status, priority, tags,
snooze, merge and undo. Every action goes through services.triage (one journal batch each), so
``u`` undoes exactly the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.binding import Binding
from textual.screen import Screen

from supportdesk.core.i18n import _
from supportdesk.core.terms import PRIORITIES, STATUSES
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.ui.screens.dialogs import ConfirmScreen, PickerScreen, PickItem, PromptScreen
from supportdesk.ui.widgets.format import priority_label, status_label

TRIAGE_BINDINGS = [
    Binding("a", "assign", "Assign", id="triage.assign", tooltip="Assign to me or to someone."),
    Binding("s", "status", "Status", id="triage.status", tooltip="Set the status."),
    Binding(
        "p", "priority", "Priority", show=False, id="triage.priority", tooltip="Set the priority."
    ),
    Binding("t", "tags", "Tags", show=False, id="triage.tags", tooltip="Add or remove tags."),
    Binding(
        "z", "snooze", "Snooze", show=False, id="snooze.snooze", tooltip="Snooze until a time."
    ),
    Binding(
        "M", "merge", "Merge", show=False, id="repair.merge", tooltip="Merge into another ticket."
    ),
    Binding("u,ctrl+z", "undo", "Undo", id="triage.undo", tooltip="Undo your last action."),
    Binding(
        "x", "macro", "Macro", show=False, id="triage.macro", tooltip="Run a macro (preview first)."
    ),
    Binding(
        "exclamation_mark",
        "spam",
        "Spam",
        show=False,
        id="triage.spam",
        tooltip="Mark as spam (closed, out of queue and metrics; u undoes).",
    ),
]


class TriageMixin:
    """Needs ``desk``, ``triage_targets()`` and ``after_change()`` on the screen."""

    desk: Desk

    def triage_targets(self) -> list[int]:
        raise NotImplementedError

    def after_change(self) -> None:
        raise NotImplementedError

    def _screen(self) -> Screen[Any]:
        assert isinstance(self, Screen)
        return self

    def run_service(self, what: Callable[[], Any], done: str | None = None) -> Any:
        """Run a service call; a refusal becomes an error notification, never a traceback."""
        screen = self._screen()
        try:
            result = what()
        except ServiceError as exc:
            screen.notify(str(exc), severity="error", markup=False, timeout=6)
            return None
        if done:
            screen.notify(done, markup=False, timeout=3)
        self.after_change()
        return result

    def _targets_or_warn(self) -> list[int]:
        ids = self.triage_targets()
        if not ids:
            self._screen().notify(
                _("No ticket under the cursor."), severity="warning", markup=False
            )
        return ids

    def action_assign(self) -> None:
        from supportdesk.people.agents import list_agents
        from supportdesk.tickets import triage

        ids = self._targets_or_warn()
        if not ids:
            return
        agents = [(a.name, a.display_name) for a in list_agents(self.desk)]
        items: list[PickItem[str]] = [
            PickItem(_("me"), "me", self.desk.agent),
            PickItem(_("nobody"), "none", _("unassign")),
        ]
        items += [
            PickItem(name, name, display) for name, display in agents if name != self.desk.agent
        ]

        def chosen(who: str | None) -> None:
            if who is not None:
                self.run_service(
                    lambda: triage.assign(self.desk, ids, who),
                    _("Assigned {n} ticket(s).").format(n=len(ids)),
                )

        self._screen().app.push_screen(PickerScreen(_("Assign to"), items), chosen)

    def action_macro(self) -> None:
        from supportdesk.automation.macros import list_macros, run_macro

        ids = self._targets_or_warn()
        if not ids:
            return
        try:
            macros = list_macros(self.desk)
        except ServiceError as exc:
            self._screen().notify(str(exc), severity="error", markup=False, timeout=8)
            return
        if not macros:
            self._screen().notify(
                _("No macros yet: add [[macro]] tables to rules/*.toml in the desk home."),
                severity="warning",
                markup=False,
            )
            return
        items = [
            PickItem(m.name, m.name, "; ".join(a.describe() for a in m.actions)) for m in macros
        ]
        tid = ids[0]

        def confirmed(ok: bool | None, name: str) -> None:
            if ok:
                self.run_service(
                    lambda: run_macro(self.desk, tid, name),
                    _("Macro {name} done on #{id}.").format(name=name, id=tid),
                )

        def chosen(name: str | None) -> None:
            if name is None:
                return
            try:
                preview = run_macro(self.desk, tid, name, dry_run=True)
            except ServiceError as exc:
                self._screen().notify(str(exc), severity="error", markup=False, timeout=8)
                return
            lines = "\n".join(preview.lines) or _("nothing to change")
            if preview.reply_text:
                lines += "\n\n" + preview.reply_text
            self._screen().app.push_screen(
                ConfirmScreen(
                    _("Run macro {name} on #{id}?").format(name=name, id=tid)
                    + "\n\n"
                    + inert(lines)
                ),
                lambda ok: confirmed(ok, name),
            )

        self._screen().app.push_screen(PickerScreen(_("Macro"), items), chosen)

    def action_spam(self) -> None:
        from supportdesk.automation import spam

        ids = self._targets_or_warn()
        if ids:
            self.run_service(
                lambda: spam.mark(self.desk, ids),
                _("Marked {n} ticket(s) as spam.").format(n=len(ids)),
            )

    def action_assign_me(self) -> None:
        from supportdesk.tickets import triage

        ids = self._targets_or_warn()
        if ids:
            self.run_service(
                lambda: triage.assign(self.desk, ids, "me"),
                _("Assigned {n} ticket(s) to you.").format(n=len(ids)),
            )

    def action_status(self) -> None:
        ids = self._targets_or_warn()
        if not ids:
            return
        items = [PickItem(status_label(s), s, s) for s in STATUSES]

        def chosen(status: str | None) -> None:
            if status is not None:
                self.set_status(ids, status)

        self._screen().app.push_screen(PickerScreen(_("Status"), items), chosen)

    def set_status(self, ids: list[int], status: str) -> None:
        """Set the status; several tickets, or closing tickets nobody answered, ask first."""
        from supportdesk.tickets import replying, triage

        label = status_label(status)

        def apply() -> None:
            self.run_service(
                lambda: triage.set_fields(self.desk, ids, status=status),
                _("Status set to {s} on {n} ticket(s).").format(s=label, n=len(ids)),
            )

        silent = replying.never_answered(self.desk, ids) if status in ("solved", "closed") else []
        if len(ids) == 1 and not silent:
            apply()
            return
        question = _("Set {n} ticket(s) to {s}?").format(n=len(ids), s=label)
        if silent:
            question += " " + _("{k} of them never got a reply: {ids}.").format(
                k=len(silent), ids=", ".join(f"#{i}" for i in silent[:8])
                + ("…" if len(silent) > 8 else "")
            )  # fmt: skip

        def confirmed(yes: bool | None) -> None:
            if yes:
                apply()

        self._screen().app.push_screen(ConfirmScreen(question), confirmed)

    def action_priority(self) -> None:
        from supportdesk.tickets import triage

        ids = self._targets_or_warn()
        if not ids:
            return
        items = [PickItem(priority_label(p), p, p) for p in reversed(PRIORITIES)]

        def chosen(priority: str | None) -> None:
            if priority is not None:
                self.run_service(
                    lambda: triage.set_fields(self.desk, ids, priority=priority),
                    _("Priority set to {p} on {n} ticket(s).").format(
                        p=priority_label(priority), n=len(ids)
                    ),
                )

        self._screen().app.push_screen(PickerScreen(_("Priority"), items), chosen)

    def action_tags(self) -> None:
        from supportdesk.tickets import triage

        ids = self._targets_or_warn()
        if not ids:
            return

        def entered(text: str | None) -> None:
            if not text or not text.strip():
                return
            words = text.replace(",", " ").split()
            add = [w.lstrip("+") for w in words if not w.startswith("-")]
            remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
            self.run_service(
                lambda: triage.tag(self.desk, ids, add=add, remove=remove),
                _("Tags changed on {n} ticket(s).").format(n=len(ids)),
            )

        self._screen().app.push_screen(
            PromptScreen(
                _("Tags"),
                placeholder="billing vip -spam",
                hint=_("Words add tags; a leading minus removes one."),
            ),
            entered,
        )

    def action_snooze(self) -> None:
        from supportdesk.tickets import snooze

        ids = self._targets_or_warn()
        if not ids:
            return

        def entered(text: str | None) -> None:
            if text is None:
                return
            if not text.strip():
                self.run_service(
                    lambda: snooze.snooze(self.desk, ids, None),
                    _("Woke {n} ticket(s) up.").format(n=len(ids)),
                )
                return
            try:
                until = snooze.parse_until(text, self.desk)
            except ServiceError as exc:
                self._screen().notify(str(exc), severity="error", markup=False)
                return
            self.run_service(
                lambda: snooze.snooze(self.desk, ids, until),
                _("Snoozed {n} ticket(s).").format(n=len(ids)),
            )

        self._screen().app.push_screen(
            PromptScreen(
                _("Snooze until"),
                placeholder="2h, 3d, tomorrow, monday, 2026-12-01",
                hint=_("Empty wakes the ticket now."),
            ),
            entered,
        )

    def action_merge(self) -> None:
        from supportdesk.tickets import repair

        ids = self._targets_or_warn()
        if not ids:
            return

        def entered(text: str | None) -> None:
            if text is None or not text.strip():
                return
            raw = text.strip().lstrip("#")
            if not raw.isdigit():
                self._screen().notify(
                    _("Give the number of the ticket to merge into."),
                    severity="error",
                    markup=False,
                )
                return
            into = int(raw)
            sources = [i for i in ids if i != into]
            try:
                whose = repair.merge_customers(self.desk, sources, into)
            except ServiceError as exc:
                self._screen().notify(str(exc), severity="error", markup=False)
                return
            different = any(whose[i][0] != whose[into][0] for i in sources)

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self.run_service(
                        lambda: repair.merge(
                            self.desk, sources, into, different_customers=different
                        ),
                        _("Merged into #{n}.").format(n=into),
                    )

            src = ", ".join(f"#{i} ({inert(whose[i][1], one_line=True)})" for i in sources)
            dst = f"#{into} ({inert(whose[into][1], one_line=True)})"
            if different:
                question = _(
                    "Merge {src} into {dst}? These are DIFFERENT customers; replies will go "
                    "to whoever wrote the message answered. (u undoes it)"
                ).format(src=src, dst=dst)
            else:
                question = _("Merge {src} into {dst}? (u undoes it)").format(src=src, dst=dst)
            self._screen().app.push_screen(ConfirmScreen(question), confirmed)

        self._screen().app.push_screen(
            PromptScreen(_("Merge into ticket #"), placeholder="123"), entered
        )

    def action_undo(self) -> None:
        from supportdesk.actions import journal

        try:
            result = journal.undo(self.desk)
        except ServiceError as exc:
            self._screen().notify(str(exc), severity="error", markup=False)
            return
        from supportdesk.core.i18n import language

        if language() == "en" or not result.tickets:
            done = _("Undone: {what}").format(what=result.description)
        else:  # the journal's description is English: say what was undone by count and number
            ids = ", ".join(f"#{i}" for i in result.tickets[:8])
            done = _("Undone: your last action on {n} ticket(s), {ids}.").format(
                n=len(result.tickets), ids=ids + ("…" if len(result.tickets) > 8 else "")
            )
        self._screen().notify(done, markup=False, timeout=4)
        self.after_change()
