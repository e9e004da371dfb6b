"""WhatsApp under `supportdesk run`: the webhook on its listener, replies, delivery reports,
a forged call refused, a customer found by phone."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Customer, Identity, Message, Outbox, Ticket
from tests.configs import desk_config
from tests.conftest import write_config
from tests.peers.graphapi import GraphAPIServer, sign, text_message, webhook_body
from tests.peers.util import free_port, port_open
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.peers]

SECRET = "runner-test-app-secret"


@pytest.fixture
def graph(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphAPIServer]:
    with GraphAPIServer() as server:
        port = free_port()
        server.listen_port = port  # type: ignore[attr-defined]
        monkeypatch.setenv("TEST_WA_TOKEN", server.token)
        monkeypatch.setenv("TEST_WA_SECRET", SECRET)
        monkeypatch.setenv("TEST_WA_VERIFY", "verify-me")
        channel = (
            f'\n[[channel]]\nname = "wa"\ntype = "whatsapp"\n'
            f'phone_number_id = "{server.phone_number_id}"\ntoken_env = "TEST_WA_TOKEN"\n'
            f'app_secret_env = "TEST_WA_SECRET"\nverify_token_env = "TEST_WA_VERIFY"\n'
            f'api_url = "{server.api_url}"\nlisten = "127.0.0.1:{port}"\nacknowledge = false\n'
            'templates = ["order_update"]\n'
        )
        write_config(home, desk_config(channels=[channel]))
        yield server


def _post(port: int, body: bytes, signature: str) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/whatsapp/wa",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _inbound(desk: Any) -> list[Message]:
    with desk.db.read() as s:
        return list(s.exec(select(Message).where(Message.direction == "in")).all())


def test_webhook_reply_and_delivery_reports_under_run(home: Path, graph: GraphAPIServer) -> None:
    port = graph.listen_port  # type: ignore[attr-defined]
    desk = open_desk(home)
    with desk.db.write() as s:  # a customer the desk knows by phone, typed the Russian way
        s.add(Customer(name="Анна Смирнова", phone="8 (900) 123-45-67"))
    proc = start_runner(home)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 20, "the webhook listener")
        forged = text_message("79001234567", "forged", wamid="wamid.F")
        assert _post(port, forged, sign(forged, "not-the-secret")) == 403
        body = text_message("79001234567", "Где мой заказ?", wamid="wamid.IN1", name="Anna")
        graph.customer_wrote("79001234567")
        assert _post(port, body, sign(body, SECRET)) == 200
        # 200 came after the commit: the message is there now, not eventually
        [msg] = _inbound(desk)
        assert msg.text == "Где мой заказ?"
        assert _post(port, body, sign(body, SECRET)) == 200  # a replay changes nothing
        assert len(_inbound(desk)) == 1
        with desk.db.read() as s:
            t = s.exec(select(Ticket)).one()
            assert t.kind == "whatsapp"
            cust = s.get(Customer, t.customer_id)
            assert cust is not None and cust.name == "Анна Смирнова"
            ident = s.exec(select(Identity).where(Identity.kind == "whatsapp")).one()
            assert ident.address == "+79001234567" and ident.customer_id == cust.id
        with desk.db.write() as s:
            t = s.exec(select(Ticket)).one()
            queue_outbound(s, desk, t, "Заказ в пути", agent="alice")
        [sent] = graph.wait_sent(1, timeout=60)
        assert sent.text == "Заказ в пути" and sent.to == "79001234567"

        def sent_row() -> Outbox | None:
            with desk.db.read() as s:
                row = s.exec(select(Outbox)).one()
                return row if row.state == "sent" else None

        row = wait_until(sent_row, 20, "the reply marked sent")
        assert row.external_message_id == f"wa:{sent.wamid}"
        report = webhook_body(
            statuses=[
                {
                    "id": sent.wamid,
                    "status": "delivered",
                    "timestamp": "1764800000",
                    "recipient_id": "79001234567",
                    "biz_opaque_callback_data": f"outbox:{row.id}:0",
                },
                {
                    "id": sent.wamid,
                    "status": "read",
                    "timestamp": "1764800050",
                    "recipient_id": "79001234567",
                },
            ]
        )
        assert _post(port, report, sign(report, SECRET)) == 200
        with desk.db.read() as s:
            row = s.exec(select(Outbox)).one()
            assert json.loads(row.payload)["delivery"]["status"] == "read"
    finally:
        stop(proc)
    desk.close()
