"""Priority rules from config: burning tickets come first.

Each ``[[priority_rule]]`` names a priority and conditions that must all hold::

    [[priority_rule]]
    priority = "urgent"
    channel = "telegram"          # a channel name or type
    tag = "outage"                # the ticket carries this tag
    customer = "@bigcorp.com"     # part of one of the customer's addresses, or the company
    words = ["down", "сломал"]    # any of these starts a word in the subject

Rules only raise a priority, never lower it, and leave a ticket alone once a lead has set its
priority by hand (``ticket.priority_locked``). Word matching is case-insensitive and matches
at the start of a word, so ``сломал`` also finds ``сломался``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from supportdesk.core.config import PriorityRule
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    PRIORITY_RANK,
    Customer,
    Identity,
    Tag,
    Ticket,
    TicketTag,
    utcnow,
)


def _has_word(subject: str, word: str) -> bool:
    w = word.strip().casefold()
    if not w:
        return False
    return re.search(r"(?<!\w)" + re.escape(w), subject.casefold()) is not None


def rule_matches(
    rule: PriorityRule,
    ticket: Ticket,
    *,
    addresses: Iterable[str] = (),
    company: str = "",
    tags: Iterable[str] | None = None,
) -> bool:
    """Whether every condition of ``rule`` holds for the ticket.

    ``tags=None`` means the tags are not known yet (a ticket being created): a rule that
    needs a tag does not match then.
    """
    if rule.channel and rule.channel.casefold() not in (
        ticket.channel.casefold(),
        ticket.kind.casefold(),
    ):
        return False
    if rule.tag:
        if tags is None or rule.tag.strip().lower() not in {t.lower() for t in tags}:
            return False
    if rule.customer:
        needle = rule.customer.strip().casefold()
        hay = [a.casefold() for a in addresses]
        if not any(needle in a for a in hay) and needle != company.strip().casefold():
            return False
    if rule.words and not any(_has_word(ticket.subject or "", w) for w in rule.words):
        return False
    return True


def best_priority(
    rules: Iterable[PriorityRule],
    ticket: Ticket,
    *,
    addresses: Iterable[str] = (),
    company: str = "",
    tags: Iterable[str] | None = None,
) -> str:
    """The ticket's priority raised by every matching rule (never lowered)."""
    addresses = list(addresses)
    best = ticket.priority
    for rule in rules:
        if PRIORITY_RANK[rule.priority] <= PRIORITY_RANK.get(best, 1):
            continue
        if rule_matches(rule, ticket, addresses=addresses, company=company, tags=tags):
            best = rule.priority
    return best


def apply_to_new(desk: Desk, ticket: Ticket, customer_address: str) -> bool:
    """At creation (before the first flush): raise the priority by the rules that need no tag.

    Returns True when the priority changed. The caller sets the due times afterwards.
    """
    if ticket.priority_locked or not desk.config.priority_rule:
        return False
    best = best_priority(desk.config.priority_rule, ticket, addresses=[customer_address])
    if best == ticket.priority:
        return False
    ticket.priority = best
    ticket.priority_rank = PRIORITY_RANK[best]
    return True


def _customer_facts(session: Session, customer_id: int) -> tuple[list[str], str]:
    from supportdesk.desk.identity import resolve_customer

    root = resolve_customer(session, customer_id)
    ids = {customer_id, root.id or customer_id}
    addresses = list(
        session.exec(select(Identity.address).where(col(Identity.customer_id).in_(ids))).all()
    )
    cust = session.get(Customer, root.id) if root.id is not None else None
    return addresses, cust.company if cust is not None else ""


def _tags(session: Session, ticket_id: int) -> list[str]:
    return list(
        session.exec(
            select(Tag.name)
            .join(TicketTag, col(TicketTag.tag_id) == col(Tag.id))
            .where(TicketTag.ticket_id == ticket_id)
        ).all()
    )


def reapply(
    session: Session,
    desk: Desk,
    ticket: Ticket,
    *,
    batch: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Run every rule (tag rules too) on an existing ticket: call it after tags change.

    A raised priority moves the SLA deadlines and is written to the audit log as a
    ``priority`` event by ``system`` with ``why="rule"``. Returns True when it changed.
    """
    if ticket.priority_locked or ticket.id is None or not desk.config.priority_rule:
        return False
    addresses, company = _customer_facts(session, ticket.customer_id)
    best = best_priority(
        desk.config.priority_rule,
        ticket,
        addresses=addresses,
        company=company,
        tags=_tags(session, ticket.id),
    )
    if best == ticket.priority:
        return False
    before = ticket.priority
    ticket.priority = best
    ticket.priority_rank = PRIORITY_RANK[best]
    sla.apply_due_times(desk.config, ticket)
    session.add(ticket)
    events.record(
        session, "priority", agent="system", ticket_id=ticket.id, batch=batch,
        at=now or utcnow(), before=before, after=best, why="rule",
    )  # fmt: skip
    return True
