"""Every trigger kind and every action, on the desk's database (SQLite, or PostgreSQL with
SUPPORTDESK_TEST_DB=postgres); the audit names the rule, undo reverts it, loops stop."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from supportdesk.automation import engine
from supportdesk.store.models import Agent, Event, Message, Outbox, Ticket, utcnow
from supportdesk.tickets import triage
from supportdesk.tickets.read import tags_of
from tests.automation.conftest import write_rules
from tests.factories import inbound_email, inbound_telegram, ingest


def _ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def _assignee(desk: Any, tid: int) -> str | None:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        a = s.get(Agent, t.assignee_id) if t.assignee_id else None
        return a.name if a else None


def _tags(desk: Any, tid: int) -> list[str]:
    with desk.db.read() as s:
        return tags_of(s, [tid]).get(tid, [])


def _events(desk: Any, tid: int, kind: str | None = None) -> list[Event]:
    with desk.db.read() as s:
        q = select(Event).where(Event.ticket_id == tid)
        if kind:
            q = q.where(Event.kind == kind)
        return list(s.exec(q.order_by(col(Event.id))).all())


def _new(desk: Any, subject: str, text: str, sender: str = "ivan@example.ru", **kw: Any) -> int:
    res = ingest(desk, inbound_email(subject=subject, text=text, sender_address=sender, **kw))
    return int(res.ticket_id)


# ---------------------------------------------------------------- ticket.created + routing


def test_ticket_created_routes_to_group_round_robin_and_the_audit_names_the_rule(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "route-billing"
        when = "ticket.created"
        if = "refund"
        then = [
          { action = "group", group = "billing" },
          { action = "assign", to = "round-robin" },
          { action = "tag", add = ["billing"] },
        ]
        """,
    )
    a = _new(team, "Refund please", "I want a refund", "a@x.test")
    b = _new(team, "Printer", "It is broken", "b@x.test")
    c = _new(team, "Another refund", "refund again", "c@x.test")
    rep = engine.process(team)
    assert [(r, t) for r, t, _ in rep.fired] == [("route-billing", a), ("route-billing", c)]
    assert (_ticket(team, a).group, _assignee(team, a), _tags(team, a)) == (
        "billing",
        "bob",
        ["billing"],
    )
    assert (_ticket(team, c).group, _assignee(team, c)) == ("billing", "carol")
    assert _ticket(team, b).group is None and _assignee(team, b) is None
    changes = [e for e in _events(team, a) if e.kind in ("group", "assign", "tag")]
    assert changes and all(e.agent == "rule:route-billing" for e in changes)
    fired = _events(team, a, "rule_fired")
    assert len(fired) == 1 and json.loads(fired[0].data)["trigger"] == "ticket.created"
    # a second pass does nothing more: the cursor moved with the firing
    assert engine.process(team).fired == []


def test_rule_changes_are_undone_like_a_persons(team: Any, cli: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "route-billing"
        when = "ticket.created"
        if = "refund"
        then = [{ action = "group", group = "billing" }, { action = "assign", to = "bob" }]
        """,
    )
    tid = _new(team, "Refund please", "refund")
    engine.process(team)
    assert _assignee(team, tid) == "bob"
    r = cli("rules", "undo", "route-billing")
    assert r.exit_code == 0, r.output
    assert f"rule route-billing on #{tid}" in r.output
    t = _ticket(team, tid)
    assert t.group is None and t.assignee_id is None


def test_least_loaded_with_a_cap_leaves_the_ticket_unassigned_when_everyone_is_full(
    team: Any,
) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "fair"
        when = "ticket.created"
        then = [{ action = "assign", to = "least-loaded", group = "billing", cap = 1 }]
        """,
    )
    ids = [_new(team, f"Q{i}", "question", f"c{i}@x.test") for i in range(3)]
    rep = engine.process(team)
    assert [_assignee(team, i) for i in ids] == ["bob", "carol", None]
    assert any(
        "everyone in billing has 1 open tickets or more" in " ".join(x) for _r, _t, x in rep.fired
    )
    skipped = _events(team, ids[2], "routing_skipped")
    assert skipped and skipped[0].agent == "rule:fair"


def test_routing_skips_agents_off_shift_and_returns_their_tickets_to_the_group(team: Any) -> None:
    from supportdesk.automation import settings as agent_settings

    now = utcnow()
    # bob's shift is over (it ended an hour ago), carol works around the clock
    start = (now - timedelta(hours=3)).strftime("%H:%M")
    end = (now - timedelta(hours=1)).strftime("%H:%M")
    agent_settings.edit(team.home, "bob", shift=f"{start}-{end}")
    write_rules(
        team.home,
        """
        [[rule]]
        name = "rr"
        when = "ticket.created"
        then = [{ action = "assign", to = "round-robin", group = "billing" }]
        """,
    )
    tid = _new(team, "Q", "question")
    engine.process(team)
    assert _assignee(team, tid) == "carol"
    # a ticket bob still holds goes back to billing, unassigned, when the timer runs
    other = _new(team, "Q2", "question", "z@x.test")
    engine.process(team)
    triage.assign(team, [other], "bob")
    engine.tick(team, now)
    t = _ticket(team, other)
    assert t.assignee_id is None and t.group == "billing"
    ev = [e for e in _events(team, other, "assign") if e.agent == "routing"]
    assert ev and json.loads(ev[-1].data)["reason"] == "bob is off shift"


# ---------------------------------------------------------------- message.in, ticket.updated


def test_message_in_raises_priority_when_a_body_says_urgent(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "urgent-words"
        when = "message.in"
        if = "channel:telegram urgent"
        then = [{ action = "priority", priority = "urgent" }]
        """,
    )
    first = ingest(team, inbound_telegram(chat_id=900, text="Hello, the bot is down"))
    engine.process(team)
    assert _ticket(team, first.ticket_id).priority == "normal"
    second = ingest(team, inbound_telegram(chat_id=900, text="It is URGENT, we lose money"))
    assert second.ticket_id == first.ticket_id
    engine.process(team)
    assert _ticket(team, first.ticket_id).priority == "urgent"
    assert _events(team, first.ticket_id, "set")[-1].agent == "rule:urgent-words"


def test_ticket_updated_watches_named_fields_and_never_triggers_itself(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "urgent-to-escalations"
        when = "ticket.updated"
        fields = ["priority"]
        if = "priority:urgent"
        then = [{ action = "group", group = "escalations" }, { action = "priority", priority = "urgent" },
                { action = "tag", add = ["escalated"] }]
        """,
    )
    tid = _new(team, "Help", "help")
    engine.process(team)
    triage.tag(team, [tid], add=["vip"])  # not a priority change: ignored
    engine.process(team)
    assert _ticket(team, tid).group is None
    triage.set_fields(team, [tid], priority="urgent")
    engine.process(team)
    engine.process(team)
    assert _ticket(team, tid).group == "escalations"
    assert _tags(team, tid) == ["escalated", "vip"]
    assert len(_events(team, tid, "rule_fired")) == 1  # its own group/tag events did not re-fire it


def test_two_rules_undoing_each_other_stop_at_the_per_ticket_cap(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "up"
        when = "ticket.updated"
        if = "priority:normal"
        then = [{ action = "priority", priority = "high" }]

        [[rule]]
        name = "down"
        when = "ticket.updated"
        if = "priority:high"
        then = [{ action = "priority", priority = "normal" }]
        """,
    )
    tid = _new(team, "Ping", "pong")
    engine.process(team)
    triage.set_fields(team, [tid], priority="high")
    rep = engine.process(team)
    assert len(_events(team, tid, "rule_fired")) == engine.PER_TICKET_CAP
    capped = _events(team, tid, "rules_capped")
    assert len(capped) == 1 and "leave this ticket alone" in json.loads(capped[0].data)["reason"]
    assert tid in rep.capped
    assert engine.process(team).fired == []


# ---------------------------------------------------------------- timed triggers


def test_sla_due_in_fires_once_per_deadline(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "at-risk"
        when = "sla.due_in"
        within = "30m"
        then = [{ action = "tag", add = ["at-risk"] }, { action = "notify", to = "group" }]
        """,
    )
    tid = _new(team, "Q", "question")
    triage.assign(team, [tid], "bob")
    with team.db.write() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        t.group = "billing"
        t.due_at = t.first_response_due_at = utcnow() + timedelta(minutes=20)
        s.add(t)
    now = utcnow()
    rep = engine.tick(team, now)
    assert [r for r, _t, _x in rep.fired] == ["at-risk"]
    assert _tags(team, tid) == ["at-risk"]
    notes = [json.loads(e.data) for e in _events(team, tid, "notify")]
    assert sorted(n["to"] for n in notes if n["event"] == "rule") == ["bob", "carol"]
    assert engine.tick(team, now + timedelta(minutes=1)).fired == []


def test_sla_breached_escalates(team: Any) -> None:
    from supportdesk.sla import clocks

    write_rules(
        team.home,
        """
        [[rule]]
        name = "escalate-breached"
        when = "sla.breached"
        then = [{ action = "priority", priority = "urgent" }, { action = "group", group = "escalations" },
                { action = "note", text = "Breached: escalated by a rule." }]
        """,
    )
    tid = _new(team, "Old", "question", sent_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    with team.db.write() as s:
        assert clocks.tick(s, team, utcnow())
    engine.process(team)
    t = _ticket(team, tid)
    assert (t.priority, t.group) == ("urgent", "escalations")
    with team.db.read() as s:
        notes = s.exec(
            select(Message).where(Message.ticket_id == tid, Message.direction == "note")
        ).all()
    # both targets (first response, resolution) breached: one firing per breach
    assert [n.text for n in notes] == ["Breached: escalated by a rule."] * 2
    assert [json.loads(e.data)["trigger"] for e in _events(team, tid, "rule_fired")] == [
        "sla.breached"
    ] * 2


def test_pending_reminder_then_auto_close_from_templates(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "remind-pending"
        when = "pending.for"
        for = "3d"
        if = "-tag:reminded"
        then = [{ action = "reply", template = "reminder" }, { action = "tag", add = ["reminded"] }]

        [[rule]]
        name = "close-pending"
        when = "pending.for"
        for = "7d"
        then = [{ action = "close", solved = true }]
        """,
    )
    tid = _new(team, "Q", "question")
    triage.set_fields(team, [tid], status="pending")
    now = utcnow()
    with team.db.write() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        t.sla_paused_since = now - timedelta(days=4)
        s.add(t)
    rep = engine.tick(team, now)
    assert [r for r, _t, _x in rep.fired] == ["remind-pending"]
    with team.db.read() as s:
        out = s.exec(
            select(Message).where(Message.ticket_id == tid, Message.direction == "out")
        ).all()
        assert [m.text for m in out][-1] == f"Hello Ivan Petrov, is ticket #{tid} still an issue?"
        assert s.exec(select(Outbox).where(Outbox.ticket_id == tid)).all()
    assert engine.tick(team, now).fired == []  # once per pending spell
    rep = engine.tick(team, now + timedelta(days=4))
    assert [r for r, _t, _x in rep.fired] == ["close-pending"]
    assert _ticket(team, tid).status == "solved"


def test_schedule_runs_once_per_period(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "stale-new"
        when = "schedule"
        every = "1h"
        if = "status:new"
        then = [{ action = "status", status = "open" }]
        """,
    )
    a = _new(team, "A", "a", "a@x.test")
    now = utcnow()
    rep = engine.tick(team, now)
    assert [(r, t) for r, t, _ in rep.fired] == [("stale-new", a)]
    assert _ticket(team, a).status == "open"
    b = _new(team, "B", "b", "b@x.test")
    assert engine.tick(team, now + timedelta(minutes=10)).fired == []
    assert [t for _r, t, _ in engine.tick(team, now + timedelta(minutes=61)).fired] == [b]


# ---------------------------------------------------------------- the other actions


def test_reply_note_status_close_and_spam_actions(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "faq"
        when = "ticket.created"
        if = "refund"
        then = [{ action = "reply", template = "refund-done" }, { action = "status", status = "pending" },
                { action = "note", text = "Answered by the faq rule" }]

        [[rule]]
        name = "closer"
        when = "ticket.created"
        if = "thanks"
        then = [{ action = "close" }]

        [[rule]]
        name = "casino"
        when = "ticket.created"
        if = "casino"
        then = [{ action = "spam", domain = true }]
        """,
    )
    r = _new(team, "Refund", "refund", "r@x.test")
    c = _new(team, "Thanks", "thanks", "t@x.test")
    s_ = _new(team, "Win big", "casino bonus", "promo@spam.example")
    engine.process(team)
    assert _ticket(team, r).status == "pending"
    with team.db.read() as s:
        msgs = s.exec(select(Message).where(Message.ticket_id == r).order_by(col(Message.id))).all()
        assert [(m.direction, m.text) for m in msgs[1:]] == [
            ("out", f"Your refund for #{r} is on its way."),
            ("note", "Answered by the faq rule"),
        ]
    assert _ticket(team, c).status == "closed"
    t = _ticket(team, s_)
    assert t.spam and t.status == "closed"
    # the domain is listed: the next mail from it is spam at once and gets no acknowledgement
    ok = ingest(team, inbound_email(subject="Hi", text="hi", sender_address="x@fine.example"))
    nxt = ingest(team, inbound_email(subject="Again", text="hi", sender_address="x@spam.example"))
    assert ok.needs_ack and not nxt.needs_ack
    engine.process(team)
    assert _ticket(team, nxt.ticket_id).spam


def test_a_failing_action_is_recorded_and_the_others_go_on(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "broken"
        when = "ticket.created"
        then = [{ action = "reply", template = "no-such-template" }]

        [[rule]]
        name = "fine"
        when = "ticket.created"
        then = [{ action = "tag", add = ["seen"] }]
        """,
    )
    tid = _new(team, "Q", "q")
    rep = engine.process(team)
    assert [r for r, _t, _e in rep.failed] == ["broken"]
    assert _tags(team, tid) == ["seen"]
    failed = _events(team, tid, "rule_failed")
    assert failed and "no-such-template" in json.loads(failed[0].data)["error"]


def test_a_disabled_rule_does_nothing(team: Any, cli: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "tagger"
        when = "ticket.created"
        then = [{ action = "tag", add = ["seen"] }]
        """,
    )
    r = cli("rules", "disable", "tagger")
    assert r.exit_code == 0 and "Rule tagger is off" in r.output
    tid = _new(team, "Q", "q")
    engine.process(team)
    assert _tags(team, tid) == []
    assert cli("rules", "enable", "tagger").exit_code == 0
    assert "enabled = true" in (team.home / "rules" / "rules.toml").read_text()


def test_rule_desk_is_not_the_persons(team: Any) -> None:
    # the acting agent of a firing is rule:NAME, never the person whose desk runs the worker
    assert replace(team, agent="rule:x").agent == "rule:x" and team.agent == "alice"


def test_if_as_a_list_matches_any_one_query(team: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "billing-words"
        when = "ticket.created"
        if = ["refund", "invoice", "возврат"]
        then = [{ action = "tag", add = ["billing"] }]
        """,
    )
    a = _new(team, "Refund", "refund please", "a@x.test")
    b = _new(team, "Счёт", "нужен возврат денег", "b@x.test")
    c = _new(team, "Hello", "printer", "c@x.test")
    engine.process(team)
    assert [_tags(team, t) for t in (a, b, c)] == [["billing"], ["billing"], []]


def test_language_routing_uses_the_customers_language(team: Any, cli: Any) -> None:
    write_rules(
        team.home,
        """
        [[rule]]
        name = "russian-line"
        when = "ticket.created"
        if = "lang:ru"
        then = [{ action = "group", group = "billing" }]
        """,
    )
    ru = ingest(team, inbound_telegram(chat_id=4100, text="Здравствуйте, не работает оплата"))
    en = ingest(team, inbound_telegram(chat_id=4200, text="Hello, payment fails"))
    engine.process(team)
    assert _ticket(team, ru.ticket_id).group == "billing"
    assert _ticket(team, en.ticket_id).group is None
    listed = cli("tickets", "list", "lang:en", "--json")
    assert [t["id"] for t in json.loads(listed.output)] == [en.ticket_id]
    bad = cli("tickets", "list", "lang:русский")
    assert bad.exit_code == 2 and "lang takes a language code" in bad.output


def test_imported_history_triggers_no_rules(team: Any, cli: Any, tmp_path: Any) -> None:
    from tests.factories import raw_email

    write_rules(
        team.home,
        """
        [[rule]]
        name = "tagger"
        when = "ticket.created"
        then = [{ action = "tag", add = ["seen"] }]
        """,
    )
    (tmp_path / "old.eml").write_bytes(raw_email(subject="Old question", msgid="old1@x.test"))
    assert cli("import", str(tmp_path / "old.eml")).exit_code == 0
    live = _new(team, "New", "new question", "n@x.test")
    engine.process(team)
    with team.db.read() as s:
        old = s.exec(select(Ticket).where(Ticket.subject == "Old question")).one()
    assert _tags(team, old.id or 0) == [] and _tags(team, live) == ["seen"]
