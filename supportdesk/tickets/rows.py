"""Queue rows: the JSON shape of ``tickets list`` (DESIGN.md), built the same way from model
objects (the full path) and from plain rows (the command line's quick path), over the SQL of
``store.reads``. Imports nothing heavy: the quick path loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supportdesk.core.terms import utcnow
from supportdesk.core.text import iso
from supportdesk.sla.breach import is_breached
from supportdesk.store import reads
from supportdesk.store.reads import Run


def ticket_docs(run: Run, tickets: Sequence[Any]) -> list[dict[str, Any]]:
    """Queue rows for ``tickets`` (Ticket objects or ``reads.TicketRow``s), in their order."""
    ids = [t.id or 0 for t in tickets]
    tags = reads.tags_of(run, ids)
    custs = reads.customer_cards(run, [t.customer_id for t in tickets])
    agents = reads.agent_names(run, [t.assignee_id or 0 for t in tickets])
    now = utcnow()
    out = []
    for t in tickets:
        out.append(
            {
                "id": t.id,
                "subject": t.subject,
                "status": t.status,
                "priority": t.priority,
                "channel": t.channel,
                "kind": t.kind,
                "customer": custs.get(
                    t.customer_id, {"id": t.customer_id, "name": "", "identities": []}
                ),
                "assignee": agents.get(t.assignee_id or 0),
                "group": t.group,
                "tags": tags.get(t.id or 0, []),
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
                "due_at": iso(t.due_at),
                "first_response_due_at": iso(t.first_response_due_at),
                "resolution_due_at": iso(t.resolution_due_at),
                "first_response_at": iso(t.first_response_at),
                "solved_at": iso(t.solved_at),
                "snoozed_until": iso(t.snoozed_until),
                # the same test as the query's sla:breached, whether or not a runner has run
                "sla_breached": is_breached(t, now),
                "message_count": t.message_count,
                "csat": t.csat_score,
            }
        )
    return out


def whole_queue(run: Run, *, order: str = "hot", limit: int | None = 100) -> list[dict[str, Any]]:
    """The queue without query terms, as rows (``tickets list`` with no query)."""
    return ticket_docs(run, reads.queue(run, order=order, limit=limit))
