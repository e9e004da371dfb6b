"""The 24-hour customer-service window, enforced by the desk before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.channels.base import InboundMessage
from supportdesk.core.errors import BadInput
from supportdesk.outbound.window import window_notice
from supportdesk.store.models import Outbox
from supportdesk.tickets import replying
from tests.factories import ingest

CONFIG = """
[desk]
name = "Acme"
timezone = "UTC"

[[channel]]
name = "wa"
type = "whatsapp"
phone_number_id = "1098765"
token_env = "SD_TEST_WA_TOKEN"
app_secret_env = "SD_TEST_WA_SECRET"
templates = ["order_update", "order_update:ru"]
"""


@pytest.fixture
def wa_desk(home: Path) -> Iterator[Any]:
    from supportdesk.desk.desk import open_desk

    (home / "config.toml").write_text(CONFIG, encoding="utf-8")
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def customer_wrote(desk: Any, at: datetime, wamid: str = "wamid.1") -> int:
    msg = InboundMessage(
        kind="whatsapp",
        external_id=f"wa:{wamid}",
        sender_address="+79001234567",
        sender_name="Анна",
        text="Где мой заказ?",
        sent_at=at,
        channel="wa",
        extra={"chat_id": "79001234567", "wa_id": "79001234567"},
    )
    msg.conversation = "wa:79001234567"
    res = ingest(desk, msg)
    assert res.ticket_id
    return int(res.ticket_id)


def payload_of(desk: Any, message_id: int) -> dict[str, Any]:
    with desk.db.read() as s:
        row = s.exec(select(Outbox).where(Outbox.message_id == message_id)).one()
        return dict(json.loads(row.payload), to=row.to_address)


def test_inside_the_window_a_reply_is_queued_with_its_deadline(wa_desk: Any) -> None:
    wrote = datetime.now(UTC) - timedelta(hours=2)
    tid = customer_wrote(wa_desk, wrote)
    assert window_notice(wa_desk, tid) is None
    msg = replying.reply(wa_desk, tid, text="Заказ в пути")
    payload = payload_of(wa_desk, msg.id)
    closes = datetime.fromisoformat(payload["window_closes_at"])
    assert abs((closes - (wrote + timedelta(hours=24))).total_seconds()) < 2
    assert payload["to"].lstrip("+") == "79001234567"


def test_outside_the_window_only_an_approved_template(wa_desk: Any) -> None:
    tid = customer_wrote(wa_desk, datetime.now(UTC) - timedelta(hours=25))
    notice = window_notice(wa_desk, tid)
    assert notice is not None and "24-hour WhatsApp window" in notice
    assert "order_update" in notice
    with pytest.raises(BadInput, match="only an approved template can be sent"):
        replying.reply(wa_desk, tid, text="Sorry for the wait")
    with pytest.raises(BadInput, match="not an approved template"):
        replying.reply(wa_desk, tid, approved_template="spam_blast")
    msg = replying.reply(wa_desk, tid, approved_template="order_update", template_params=["#1234"])
    payload = payload_of(wa_desk, msg.id)
    assert payload["approved_template"] == "order_update"
    assert payload["template_params"] == ["#1234"]
    assert "order_update" in msg.text and "#1234" in msg.text
    # a note is always allowed
    replying.reply(wa_desk, tid, text="customer is on holiday", note=True)


def test_cli_says_so_before_the_editor_opens(wa_desk: Any, cli: Any, monkeypatch: Any) -> None:
    tid = customer_wrote(wa_desk, datetime.now(UTC) - timedelta(days=3))
    opened: list[str] = []
    monkeypatch.setattr("supportdesk.cli.triage.open_editor", lambda t: opened.append(t) or "hi")
    result = cli("tickets", "reply", str(tid), "--editor")
    assert result.exit_code == 2
    assert "window" in result.output and "--approved" in result.output
    assert opened == []
    ok = cli("tickets", "reply", str(tid), "--approved", "order_update", "--param", "#1234")
    assert ok.exit_code == 0, ok.output


def test_delivery_reports_land_on_the_outbox_row(wa_desk: Any) -> None:
    from supportdesk.channels.base import DeliveryReport
    from supportdesk.outbound.receipts import delivery_of_row, record_delivery

    tid = customer_wrote(wa_desk, datetime.now(UTC) - timedelta(minutes=5))
    msg = replying.reply(wa_desk, tid, text="Заказ в пути")
    with wa_desk.db.read() as s:
        row = s.exec(select(Outbox).where(Outbox.message_id == msg.id)).one()
        assert row.state == "queued"
        row_id = row.id
    # the runner sent it and died before marking it sent: the report marks it, with the id
    sent = DeliveryReport("wa:wamid.OUT", "sent", correlation=f"outbox:{row_id}:0")
    read = DeliveryReport("wa:wamid.OUT", "read", at=datetime.now(UTC))
    late = DeliveryReport("wa:wamid.OUT", "delivered")
    with wa_desk.db.write() as s:
        assert record_delivery(s, wa_desk, "wa", [sent, read, late]) == 2
        assert record_delivery(s, wa_desk, "other", [read]) == 0
    with wa_desk.db.read() as s:
        row = s.get(Outbox, row_id)
        assert row is not None and row.state == "sent"
        assert row.external_message_id == "wa:wamid.OUT"
        assert delivery_of_row(row)["status"] == "read"
        from supportdesk.store.models import Ticket

        ticket = s.get(Ticket, tid)
        assert ticket is not None and ticket.first_response_at is not None
