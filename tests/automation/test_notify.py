"""Agent notifications received by real peers: the Bot API stand-in (a DM from the desk's own
bot), the SMTP sink (mail through the desk's SMTP) and an HTTP sink standing in for ntfy and a
JSON webhook (apprise URLs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from supportdesk.automation import engine
from supportdesk.automation import settings as agent_settings
from supportdesk.desk.desk import open_desk
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Event, Ticket, utcnow
from supportdesk.tickets import replying, triage
from tests.conftest import write_config
from tests.factories import inbound_email, inbound_telegram, ingest


@pytest.fixture
def ndesk(
    home: Path, botapi: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    from supportdesk.people.agents import add_agent

    monkeypatch.setenv("TEST_TG_TOKEN", botapi.token)
    write_config(
        home,
        f"""
[desk]
name = "Acme support"
timezone = "UTC"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
  [channel.smtp]
  host = "{smtp_sink.host}"
  port = {smtp_sink.port}
  security = "none"
  timeout = 5

[[channel]]
name = "telegram"
type = "telegram"
token_env = "TEST_TG_TOKEN"
api_url = "{botapi.api_url}"
file_url = "{botapi.file_url}"

[sla]
first_response = "4h"
resolution = "3d"
""",
    )
    d = open_desk(home, agent="alice")
    add_agent(d, "alice", role="lead")
    add_agent(d, "bob")
    engine.process(d)
    yield d
    d.close()


def _notified(desk: Any) -> list[dict[str, Any]]:
    with desk.db.read() as s:
        rows = s.exec(select(Event).where(Event.kind == "notified").order_by(col(Event.id))).all()
        return [json.loads(e.data) for e in rows]


def test_assigned_goes_to_a_json_webhook_and_ntfy(ndesk: Any, http_sink: Any) -> None:
    agent_settings.edit(
        ndesk.home,
        "bob",
        notify=[
            f"json://127.0.0.1:{http_sink.port}/hook",
            f"ntfy://127.0.0.1:{http_sink.port}/acme-bob",
        ],
    )
    tid = ingest(ndesk, inbound_email(subject="Printer on fire", text="help")).ticket_id
    triage.assign(ndesk, [tid], "bob")
    engine.tick(ndesk)
    reqs = http_sink.wait_for(2)
    [hook] = [r for r in reqs if r.path == "/hook"]
    [ntfy] = [r for r in reqs if r.path != "/hook"]
    assert hook.method == "POST" and hook.path == "/hook"
    body = hook.json()
    assert body["title"] == "Acme support: Assigned to you"
    assert body["message"] == f"#{tid} Printer on fire was assigned to you"
    # ntfy's publish API: a JSON document naming the topic, posted to the server's root
    assert ntfy.method == "POST" and ntfy.json()["topic"] == "acme-bob"
    assert ntfy.json()["message"] == f"#{tid} Printer on fire was assigned to you"
    [out] = _notified(ndesk)
    assert out["to"] == "bob" and out["event"] == "assigned" and len(out["sent"]) == 2
    # assigning yourself tells nobody
    triage.assign(replace_agent(ndesk, "bob"), [tid], "none")
    triage.assign(replace_agent(ndesk, "bob"), [tid], "me")
    engine.tick(ndesk)
    assert len(http_sink.received) == 2


def replace_agent(desk: Any, name: str) -> Any:
    from dataclasses import replace

    return replace(desk, agent=name)


def test_mention_in_a_note_is_a_telegram_dm_from_the_desk_bot(ndesk: Any, botapi: Any) -> None:
    botapi.add_chat(5550001)
    agent_settings.edit(ndesk.home, "bob", notify=["telegram:5550001"])
    tid = ingest(ndesk, inbound_email(subject="Refund", text="refund")).ticket_id
    replying.reply(ndesk, tid, text="@bob can you check the payment? @nobody", note=True)
    engine.tick(ndesk)
    Runner(ndesk).run_once()  # takes the lease, sends the outbox
    [sent] = botapi.wait_sent(1)
    assert str(sent.chat_id) == "5550001"
    assert (
        sent.text
        == f"alice mentioned you on #{tid} Refund: @bob can you check the payment? @nobody"
    )


def test_customer_answer_on_my_ticket_is_mailed_through_the_desk_smtp(
    ndesk: Any, smtp_sink: Any
) -> None:
    agent_settings.edit(ndesk.home, "bob", notify=["email:bob@acme.test"])
    first = ingest(ndesk, inbound_telegram(chat_id=777, text="Оплата не проходит"))
    triage.assign(ndesk, [first.ticket_id], "bob")
    engine.tick(ndesk)  # "assigned"
    ingest(ndesk, inbound_telegram(chat_id=777, text="Карта Visa"))
    engine.tick(ndesk)  # "answered"
    Runner(ndesk).run_once()  # takes the lease, sends the outbox
    mails = smtp_sink.wait_for(2)
    subjects = sorted(m.message["Subject"] for m in mails)
    assert subjects == ["Acme support: Assigned to you", "Acme support: Customer answered"]
    answered = next(m for m in mails if m.message["Subject"].endswith("answered"))
    assert answered.rcpt_tos == ["bob@acme.test"]
    assert f"The customer answered #{first.ticket_id}" in answered.message.get_content()


def test_quiet_hours_hold_notifications_back(ndesk: Any, http_sink: Any) -> None:
    now = utcnow()
    span = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    agent_settings.edit(
        ndesk.home, "bob", notify=[f"json://127.0.0.1:{http_sink.port}/hook"], quiet=span
    )
    tid = ingest(ndesk, inbound_email(subject="Q", text="q")).ticket_id
    triage.assign(ndesk, [tid], "bob")
    engine.tick(ndesk)
    [out] = _notified(ndesk)
    assert out["held"] == f"quiet hours ({span})" and out["sent"] == []
    assert http_sink.received == []


def test_sla_due_soon_and_breached_reach_the_assignee_once(ndesk: Any, http_sink: Any) -> None:
    from supportdesk.sla import clocks

    agent_settings.edit(
        ndesk.home, "bob", notify=[f"json://127.0.0.1:{http_sink.port}/hook"], sla_minutes=30
    )
    tid = ingest(ndesk, inbound_email(subject="Soon", text="q")).ticket_id
    triage.assign(replace_agent(ndesk, "bob"), [tid], "me")
    now = utcnow()
    with ndesk.db.write() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        t.due_at = t.first_response_due_at = now + timedelta(minutes=20, seconds=30)
        s.add(t)
    engine.tick(ndesk, now)
    engine.tick(ndesk, now + timedelta(minutes=1))
    [due] = http_sink.wait_for(1)
    assert due.json()["message"] == f"#{tid} Soon: SLA deadline in 20 min"
    with ndesk.db.write() as s:
        clocks.tick(s, ndesk, now + timedelta(minutes=25))
    engine.tick(ndesk, now + timedelta(minutes=25))
    reqs = http_sink.wait_for(2)
    assert reqs[1].json()["title"] == "Acme support: SLA breached"
    assert reqs[1].json()["message"] == f"#{tid} Soon: SLA first response breached"


def test_a_rule_notifies_through_the_webhook(ndesk: Any, http_sink: Any) -> None:
    from tests.automation.conftest import write_rules

    agent_settings.edit(ndesk.home, "bob", notify=[f"json://127.0.0.1:{http_sink.port}/hook"])
    write_rules(
        ndesk.home,
        """
        [[rule]]
        name = "vip-alert"
        when = "ticket.created"
        if = "vip"
        then = [{ action = "notify", to = "bob", text = "VIP ticket #{{ ticket.id }}: {{ ticket.subject }}" }]
        """,
    )
    tid = ingest(ndesk, inbound_email(subject="VIP customer", text="vip")).ticket_id
    engine.tick(ndesk)
    [req] = http_sink.wait_for(1)
    assert req.json()["message"] == f"VIP ticket #{tid}: VIP customer"
    assert req.json()["title"] == "Acme support: Rule"


def test_a_failing_endpoint_is_recorded_not_raised(ndesk: Any, http_sink: Any) -> None:
    http_sink.fail_with(500)
    agent_settings.edit(ndesk.home, "bob", notify=[f"json://127.0.0.1:{http_sink.port}/hook"])
    tid = ingest(ndesk, inbound_email(subject="Q", text="q")).ticket_id
    triage.assign(ndesk, [tid], "bob")
    engine.tick(ndesk)
    http_sink.wait_for(1)
    [out] = _notified(ndesk)
    assert out["sent"] == [] and out["failed"] == [
        f"json://127.0.0.1:{http_sink.port}/...: the service did not accept it"
    ]
