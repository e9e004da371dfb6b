"""Priority rules from config: words, customers, channels and tags raise priority."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from supportdesk.core.config import PriorityRule
from supportdesk.sla import priority as priority_rules
from supportdesk.store.models import Event, Ticket
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.sla.conftest import msk
from tests.sla.helpers import add_tags, ticket


def test_words_in_the_subject_raise_priority_at_creation(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(subject="URGENT: site is down", sent_at=msk(16, 10)),
               historical=True)  # fmt: skip
    t = ticket(bdesk, r.ticket_id)
    assert (t.priority, t.priority_rank) == ("urgent", 3)
    # the urgent target applies: 15 minutes instead of the e-mail hour
    assert t.first_response_due_at == msk(16, 10, 15)


def test_words_match_word_starts_in_any_script(bdesk: Any) -> None:
    hit = ingest(bdesk, inbound_email(subject="Нужно срочное решение", sent_at=msk(16, 10),
                                      sender_address="a@x.test"), historical=True)  # fmt: skip
    miss = ingest(bdesk, inbound_email(subject="Nonurgent question", sent_at=msk(16, 10),
                                       sender_address="b@x.test"), historical=True)  # fmt: skip
    assert ticket(bdesk, hit.ticket_id).priority == "urgent"
    assert ticket(bdesk, miss.ticket_id).priority == "normal"


def test_customer_rule_by_domain(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sender_address="cto@bigcorp.test", sent_at=msk(16, 10)),
               historical=True)  # fmt: skip
    assert ticket(bdesk, r.ticket_id).priority == "high"


def test_tag_rule_runs_when_tags_change_and_is_audited(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_telegram(chat_id=77, sent_at=msk(16, 10)), historical=True)
    t = ticket(bdesk, r.ticket_id)
    assert t.priority == "normal"
    add_tags(bdesk, r.ticket_id, "outage")
    with bdesk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        assert t is not None
        assert priority_rules.reapply(s, bdesk, t, now=msk(16, 10, 2))
        assert not priority_rules.reapply(s, bdesk, t)  # nothing more to raise
    t = ticket(bdesk, r.ticket_id)
    assert t.priority == "high"
    with bdesk.db.read() as s:
        ev = s.exec(select(Event).where(Event.kind == "priority")).one()
    assert json.loads(ev.data) == {"before": "normal", "after": "high", "why": "rule"}


def test_a_lead_override_is_left_alone_and_rules_never_lower(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    add_tags(bdesk, r.ticket_id, "outage")
    with bdesk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        assert t is not None
        t.priority, t.priority_rank, t.priority_locked = "low", 0, True
        assert not priority_rules.reapply(s, bdesk, t)
        assert t.priority == "low"
        t.priority_locked = False
        t.priority, t.priority_rank = "urgent", 3
        assert not priority_rules.reapply(s, bdesk, t)
        assert t.priority == "urgent"


def test_rule_conditions_all_hold() -> None:
    t = Ticket(subject="Payment failed", channel="support", kind="email", customer_id=1)
    rule = PriorityRule(priority="high", channel="telegram", words=["payment"])
    assert not priority_rules.rule_matches(rule, t)
    t.kind, t.channel = "telegram", "tg"
    assert priority_rules.rule_matches(rule, t)
    tagged = PriorityRule(priority="high", tag="vip")
    assert not priority_rules.rule_matches(tagged, t)  # tags unknown at creation
    assert priority_rules.rule_matches(tagged, t, tags=["VIP"])
    company = PriorityRule(priority="urgent", customer="Big Corp")
    assert priority_rules.rule_matches(company, t, company="big corp")
