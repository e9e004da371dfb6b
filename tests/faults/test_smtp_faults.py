"""SMTP refusals and a silent server, through `supportdesk poll --once` and `outbox list --json`.

* a 4xx (at MAIL, RCPT or DATA) keeps the reply queued with the error visible; when the server
  recovers it is delivered exactly once;
* a 5xx fails the reply permanently: later passes do not try again;
* a server that accepts the connection and never answers times out after the channel's
  ``timeout`` (1 s here); the reply stays queued and goes out once a server answers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.inbound.ingest import ingest
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Outbox, Ticket
from tests.configs import desk_config, email_channel
from tests.conftest import write_config
from tests.factories import inbound_email

pytestmark = [pytest.mark.fault, pytest.mark.peers]

REPLIES = 3


def _config(port: int, timeout: float = 5) -> str:
    return desk_config(channels=[email_channel(smtp_port=port, smtp_timeout=timeout)], sla="")


def _queue_replies(home: Path, count: int = REPLIES) -> None:
    desk = open_desk(home, agent="alice")
    try:
        with desk.db.write() as s:
            for i in range(count):
                r = ingest(
                    s,
                    desk,
                    inbound_email(
                        external_id=f"smtpfault{i}@example.ru", sender_address=f"c{i}@example.ru"
                    ),
                    historical=True,
                )
                t = s.get(Ticket, r.ticket_id)
                assert t is not None
                queue_outbound(s, desk, t, f"Ответ номер {i}", agent="alice")
    finally:
        desk.close()


def _outbox(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    res = cli("outbox", "list", "--json")
    assert res.exit_code == 0, res.output
    return sorted(json.loads(res.stdout), key=lambda r: r["id"])


def _poll(cli: Callable[..., Any]) -> dict[str, Any]:
    res = cli("poll", "--once", "--json")
    assert "Traceback" not in res.output
    return json.loads(res.stdout)


def _retry_now(cli: Callable[..., Any], ids: list[int]) -> None:
    """`outbox retry` makes queued items due at once (no waiting for the backoff)."""
    res = cli("outbox", "retry", *map(str, ids))
    assert res.exit_code == 0, res.output


def _message_ids(home: Path) -> set[str]:
    desk = open_desk(home)
    try:
        with desk.db.read() as s:
            return {r.external_message_id.strip("<>") for r in s.exec(select(Outbox)).all()}
    finally:
        desk.close()


def _delivered_ids(sink: Any) -> list[str]:
    return [str(message_from_bytes(m.raw)["Message-ID"]) for m in sink.received]


@pytest.mark.parametrize(("code", "stage"), [(421, "mail"), (451, "rcpt"), (452, "data")])
def test_temporary_refusal_is_retried_and_delivered_once(
    home: Path, cli: Callable[..., Any], smtp_sink: Any, code: int, stage: str
) -> None:
    write_config(home, _config(smtp_sink.port))
    _queue_replies(home)
    smtp_sink.fail_with(code, at=stage)  # type: ignore[arg-type]
    rep = _poll(cli)
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": REPLIES}
    rows = _outbox(cli)
    assert [r["state"] for r in rows] == ["queued"] * REPLIES
    assert all(r["attempts"] == 1 and str(code) in r["last_error"] for r in rows)
    assert all(r["next_attempt_at"] for r in rows)  # a backoff, not a busy loop
    assert smtp_sink.received == []
    # still refusing: a second attempt, still queued, nothing delivered
    _retry_now(cli, [r["id"] for r in rows])
    _poll(cli)
    assert [r["attempts"] for r in _outbox(cli)] == [2] * REPLIES
    assert smtp_sink.received == []
    # the server recovers, but the backoff (next_attempt_at) is honoured: nothing goes yet
    smtp_sink.ok()
    rep = _poll(cli)
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": 0}
    assert [r["state"] for r in _outbox(cli)] == ["queued"] * REPLIES
    assert smtp_sink.received == []
    pinned = _message_ids(home)
    _retry_now(cli, [r["id"] for r in rows])
    rep = _poll(cli)
    assert rep["outbox"]["sent"] == REPLIES
    rep = _poll(cli)  # nothing left to send
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": 0}
    rows = _outbox(cli)
    assert [r["state"] for r in rows] == ["sent"] * REPLIES
    ids = _delivered_ids(smtp_sink)
    lost = REPLIES - len(set(ids))
    duplicated = len(ids) - len(set(ids))
    assert lost == 0 and duplicated == 0
    # the Message-ID made when the reply was queued is the one that went out after the retries
    assert {i.strip("<>") for i in ids} == pinned == _message_ids(home)
    # every reply is addressed to its own customer
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == [
        f"c{i}@example.ru" for i in range(REPLIES)
    ]


@pytest.mark.parametrize(("code", "stage"), [(550, "rcpt"), (554, "data"), (553, "mail")])
def test_permanent_refusal_fails_and_is_not_retried(
    home: Path, cli: Callable[..., Any], smtp_sink: Any, code: int, stage: str
) -> None:
    write_config(home, _config(smtp_sink.port))
    _queue_replies(home)
    smtp_sink.fail_with(code, at=stage)  # type: ignore[arg-type]
    rep = _poll(cli)
    assert rep["outbox"] == {"sent": 0, "failed": REPLIES, "retrying": 0}
    smtp_sink.ok()
    _poll(cli)  # a later pass does not pick failed items up again
    rows = _outbox(cli)
    assert [r["state"] for r in rows] == ["failed"] * REPLIES
    assert all(r["attempts"] == 1 and str(code) in r["last_error"] for r in rows)
    assert smtp_sink.received == []
    failed = json.loads(cli("outbox", "list", "--state", "failed", "--json").stdout)
    assert len(failed) == REPLIES
    # the failure shows on the ticket too
    doc = json.loads(cli("tickets", "show", str(rows[0]["ticket_id"]), "--json").stdout)
    [reply] = [m for m in doc["messages"] if m["direction"] == "out"]
    assert reply["delivery"]["status"] == "failed" and str(code) in reply["delivery"]["error"]


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A loopback server that accepts connections and never says a word."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(c)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(timeout=2)
        for c in conns:
            c.close()
        srv.close()


def test_silent_server_times_out_then_delivers_once(
    home: Path, cli: Callable[..., Any], silent_smtp: int, smtp_sink: Any
) -> None:
    write_config(home, _config(silent_smtp, timeout=1))
    _queue_replies(home, 1)
    t0 = time.monotonic()
    rep = _poll(cli)
    took = time.monotonic() - t0
    assert took < 8  # the 1 s timeout holds; no hanging on a dead server
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": 1}
    [row] = _outbox(cli)
    assert row["state"] == "queued" and row["attempts"] == 1
    assert "did not answer within 1 s" in row["last_error"]  # one sentence
    assert "\n" not in row["last_error"]
    # the mail server is answering again (here: another one on the channel's config)
    write_config(home, _config(smtp_sink.port))
    _retry_now(cli, [row["id"]])
    rep = _poll(cli)
    assert rep["outbox"]["sent"] == 1
    _poll(cli)
    [row] = _outbox(cli)
    assert row["state"] == "sent"
    ids = _delivered_ids(smtp_sink)
    assert len(ids) == len(set(ids)) == 1  # lost 0, duplicated 0
