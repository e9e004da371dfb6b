"""Spam: a ticket, a sender or a whole domain.

A spam ticket is flagged and closed in one journaled change, so it leaves the queue (every open
view) and the metrics (which skip ``spam``), and ``supportdesk undo`` restores both. A spam sender
or domain is a row in the Meta table (``spam:ADDRESS`` / ``spam:@DOMAIN``): its messages get no
acknowledgement (``inbound.ack`` asks :func:`is_spam_address`), and the automation worker marks
their new tickets spam right after they are stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from supportdesk.actions.batch import ActionResult, execute, for_each
from supportdesk.actions.journal import record_fields, snapshot
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk, NotFound
from supportdesk.desk.identity import normalize_email
from supportdesk.store.models import Identity, Meta, Ticket, utcnow

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def key_for(entry: str) -> str:
    """``ADDRESS`` or ``@DOMAIN`` (also ``DOMAIN``) -> the Meta key; BadInput when neither."""
    e = entry.strip().lower()
    if e.startswith("@") or ("@" not in e and "." in e):
        d = e.lstrip("@")
        if not _DOMAIN.match(d):
            raise BadInput(f"{entry!r} is not a domain such as spam.example")
        return f"spam:@{d}"
    addr = normalize_email(e)
    if "@" not in addr or not _DOMAIN.match(addr.rsplit("@", 1)[1]):
        raise BadInput(f"{entry!r} is not an e-mail address or @domain")
    return f"spam:{addr}"


def is_spam_address(session: Session, address: str) -> bool:
    """Is this sender (or their domain) marked spam? Two primary-key look-ups."""
    a = (address or "").strip().lower()
    if not a:
        return False
    if session.get(Meta, f"spam:{a}") is not None:
        return True
    if "@" in a:
        return session.get(Meta, f"spam:@{a.rsplit('@', 1)[1]}") is not None
    return False


@dataclass
class ListEntry:
    entry: str
    by: str
    at: str


def list_entries(session: Session) -> list[ListEntry]:
    rows = session.exec(
        select(Meta).where(col(Meta.key).like("spam:%")).order_by(col(Meta.key))
    ).all()
    out = []
    for r in rows:
        d = json.loads(r.value or "{}")
        out.append(ListEntry(r.key.split(":", 1)[1], str(d.get("by", "")), str(d.get("at", ""))))
    return out


def add_entry(session: Session, desk: Desk, entry: str) -> str:
    key = key_for(entry)
    if session.get(Meta, key) is None:
        session.add(Meta(key=key, value=json.dumps({"by": desk.agent, "at": utcnow().isoformat()})))
        events.record(session, "spam_listed", agent=desk.agent, entry=key.split(":", 1)[1])
    return key.split(":", 1)[1]


def remove_entry(session: Session, desk: Desk, entry: str) -> str:
    key = key_for(entry)
    row = session.get(Meta, key)
    if row is None:
        raise NotFound(f"{key.split(':', 1)[1]} is not on the spam list")
    session.delete(row)
    events.record(session, "spam_unlisted", agent=desk.agent, entry=key.split(":", 1)[1])
    return key.split(":", 1)[1]


def sender_of(session: Session, t: Ticket) -> str:
    """The ticket's customer's e-mail address ('' for a customer without one)."""
    ident = session.exec(
        select(Identity)
        .where(Identity.customer_id == t.customer_id, Identity.kind == "email")
        .order_by(col(Identity.id))
    ).first()
    return ident.address if ident is not None else ""


def mark_ticket(session: Session, desk: Desk, t: Ticket, batch: str | None, now: datetime) -> None:
    """Flag and close one ticket (one undoable fields event)."""
    if t.spam and t.status == "closed":
        return
    from supportdesk.tickets.triage import set_status

    snap = snapshot(t)
    t.spam = True
    set_status(t, "closed", now, desk=desk, session=session)
    session.add(t)
    record_fields(session, desk, "spam", t, snap, batch=batch)


def unmark_ticket(
    session: Session, desk: Desk, t: Ticket, batch: str | None, now: datetime
) -> None:
    if not t.spam:
        return
    from supportdesk.tickets.triage import set_status

    snap = snapshot(t)
    t.spam = False
    if t.status == "closed":
        set_status(t, "open", now, desk=desk, session=session)
    session.add(t)
    record_fields(session, desk, "not_spam", t, snap, batch=batch)


def mark(
    desk: Desk,
    ids: list[int],
    *,
    sender: bool = False,
    domain: bool = False,
    dry_run: bool = False,
) -> ActionResult:
    """Mark tickets spam (and their senders or domains), as one undoable action."""
    listed: list[str] = []

    def op(s: Session, t: Ticket, batch: str) -> None:
        mark_ticket(s, desk, t, batch, utcnow())
        if sender or domain:
            addr = sender_of(s, t)
            if not addr:
                raise BadInput(f"ticket #{t.id} has no e-mail sender to list as spam")
            listed.append(add_entry(s, desk, "@" + addr.rsplit("@", 1)[1] if domain else addr))

    what = "spam" + (" (domain)" if domain else " (sender)" if sender else "")
    res = for_each(desk, "spam", f"mark {_ids(ids)} {what}", ids, op, dry_run=dry_run)
    res.created = []
    return res


def unmark(desk: Desk, ids: list[int], *, dry_run: bool = False) -> ActionResult:
    def op(s: Session, t: Ticket, batch: str) -> None:
        unmark_ticket(s, desk, t, batch, utcnow())

    return for_each(desk, "not-spam", f"not spam {_ids(ids)}", ids, op, dry_run=dry_run)


def list_and_sweep(desk: Desk, entry: str) -> ActionResult:
    """Put an address or domain on the spam list and mark its open tickets spam (undoable)."""

    def work(s: Session, batch: str) -> list[int]:
        shown = add_entry(s, desk, entry)
        pattern = shown if not shown.startswith("@") else f"%{shown}"
        cids = select(Identity.customer_id).where(
            Identity.kind == "email", col(Identity.address).like(pattern)
        )
        tickets = s.exec(
            select(Ticket).where(
                col(Ticket.customer_id).in_(cids),
                col(Ticket.status).in_(("new", "open", "pending")),
            )
        ).all()
        now = utcnow()
        for t in tickets:
            mark_ticket(s, desk, t, batch, now)
        return [t.id or 0 for t in tickets]

    return execute(desk, "spam", f"spam list {entry}", work)


def unlist(desk: Desk, entry: str) -> str:
    with desk.db.write() as s:
        return remove_entry(s, desk, entry)


def _ids(ids: list[int]) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


__all__ = [
    "add_entry",
    "is_spam_address",
    "list_and_sweep",
    "list_entries",
    "mark",
    "mark_ticket",
    "remove_entry",
    "unlist",
    "unmark",
]
