"""Macros: a named set of actions (template reply + status + tags...) a person runs on a ticket.

A macro runs as the acting agent, as one journal batch: ``supportdesk undo`` reverts it like any
action of theirs. ``dry_run`` performs it inside the transaction and rolls back, so the preview
is exactly what the run would do (the reply text included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from supportdesk.actions.batch import ActionResult, execute
from supportdesk.automation.actions import run_actions
from supportdesk.automation.rules import Macro, load_rules
from supportdesk.desk.desk import Desk
from supportdesk.store.models import Message, utcnow
from supportdesk.tickets.read import get_ticket


@dataclass
class MacroRun:
    macro: Macro
    result: ActionResult
    lines: list[str] = field(default_factory=list)
    reply_text: str = ""


def list_macros(desk: Desk) -> list[Macro]:
    return load_rules(desk.home).macros


def run_macro(desk: Desk, ticket_id: int, name: str, *, dry_run: bool = False) -> MacroRun:
    macro = load_rules(desk.home).macro(name)
    run = MacroRun(macro, ActionResult("macro", "", dry_run, None))

    def work(s: Session, batch: str) -> list[int]:
        t = get_ticket(s, ticket_id)
        from supportdesk.tickets.triage import check_not_merged

        check_not_merged(t)
        before = t.last_message_id or 0
        run.lines = run_actions(
            s, desk, t, macro.actions, batch=batch, now=utcnow(), source=f"macro {name}"
        )
        s.flush()
        if (t.last_message_id or 0) > before:
            m = s.get(Message, t.last_message_id)
            if m is not None and m.direction == "out":
                run.reply_text = m.text
        return [ticket_id]

    run.result = execute(desk, "macro", f"macro {name} on #{ticket_id}", work, dry_run=dry_run)
    return run
