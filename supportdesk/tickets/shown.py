"""One ticket with its thread: the JSON shape of ``tickets show`` (DESIGN.md), built over the SQL
of ``store.reads`` by the full path (``tickets.read.show_ticket``, the console) and by the
command line's quick path alike. Imports nothing heavy: the quick path loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from supportdesk.core.errors import NotFound
from supportdesk.core.text import iso
from supportdesk.desk.addresses import normalize_email
from supportdesk.store import reads
from supportdesk.store.reads import Run
from supportdesk.tickets.rows import ticket_docs


def participants_of(
    kind: str, reply_to: str, rows: Iterable[Sequence[str]], own_addresses: Iterable[str]
) -> list[str]:
    """E-mail addresses on the thread other than the customer's and the desk's, in the order
    they first appeared: inbound senders, To and Cc, and the Cc of earlier replies. ``rows``
    are ``store.reads.participant_rows``: (direction, sender, to, cc), oldest first."""
    if kind != "email":
        return []
    skip = {normalize_email(a) for a in own_addresses} | {normalize_email(reply_to)}
    seen: dict[str, None] = {}
    for direction, sender, to, cc in rows:
        if direction not in ("in", "out"):
            continue
        found = [sender, *to.split(), *cc.split()] if direction == "in" else cc.split()
        for a in found:
            if not a or "@" not in a:
                continue
            norm = normalize_email(a)
            if norm not in skip:
                seen.setdefault(norm, None)
    return list(seen)


def show_doc(run: Run, ticket_id: int, own_addresses: Iterable[str]) -> dict[str, Any]:
    """The ticket, its messages, participants, the customer's other tickets; NotFound when
    there is no such ticket. ``own_addresses``: the desk's own (``Config.own_addresses``)."""
    t = reads.ticket(run, ticket_id)
    if t is None:
        raise NotFound(f"ticket #{ticket_id} does not exist")
    import json

    doc = ticket_docs(run, [t])[0]
    msgs = reads.thread(run, ticket_id)
    mids = [m.id or 0 for m in msgs]
    atts = reads.attachments_of(run, mids)
    deliveries = reads.deliveries(run, mids)
    out_msgs = []
    for m in msgs:
        d = deliveries.get(m.id or 0)
        out_msgs.append(
            {
                "id": m.id,
                "direction": m.direction,
                "channel": m.channel,
                "kind": m.kind,
                "author": m.author,
                "author_address": m.author_address,
                "subject": m.subject,
                "text": m.text,
                "quoted_text": m.quoted_text,
                "created_at": iso(m.created_at),
                "delivery": (
                    {
                        "status": d["state"],
                        "attempts": d["attempts"],
                        "error": d["last_error"] or None,
                        "outbox_id": d["id"],
                    }
                    if d is not None
                    else None
                ),
                "attachments": atts.get(m.id or 0, []),
                "thread_reason": m.thread_reason,
                "to": m.to_addresses.split(),
                "cc": m.cc_addresses.split(),
                "bcc": m.bcc_addresses.split(),
                "html": m.html is not None and bool(m.html.strip()),
                "message_id": m.message_id,
                "edited": m.edited_at is not None,
                "versions": json.loads(m.versions) if m.versions else [],
                "auto": m.is_auto,
            }
        )
    doc["messages"] = out_msgs
    doc["first_response_queued"] = doc["first_response_at"] is None and any(
        m["direction"] == "out"
        and not m["auto"]
        and (m["delivery"] or {}).get("status") in ("queued", "sending")
        for m in out_msgs
    )
    doc["participants"] = participants_of(
        t.kind,
        t.reply_to_address,
        ((m.direction, m.author_address, m.to_addresses, m.cc_addresses) for m in msgs),
        own_addresses,
    )
    doc["reply_to"] = t.reply_to_address
    doc["history"] = [
        {
            "id": h.id,
            "channel": h.channel,
            "kind": h.kind,
            "subject": h.subject,
            "status": h.status,
            "created_at": iso(h.created_at),
        }
        for h in reads.customer_history(run, t.customer_id, exclude=t.id)
    ]
    details = reads.customer_details(run, t.customer_id)
    if details is not None:
        doc["customer"].update(details)
    doc["csat_comment"] = t.csat_comment
    return doc
