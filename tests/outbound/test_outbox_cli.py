"""`outbox cancel` and `outbox retry` refuse what would send a reply twice."""

from __future__ import annotations

import json
from typing import Any

from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Outbox, Ticket
from tests.factories import inbound_email, ingest


def _queued(desk: Any) -> int:
    r = ingest(desk, inbound_email(external_id="ob1@x"), historical=True)
    with desk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        m = queue_outbound(s, desk, t, "Ответ", agent="alice")
        return int(m.id or 0)


def _row(cli: Any) -> dict[str, Any]:
    [row] = json.loads(cli("outbox", "list", "--json").stdout)
    return row


def test_cancel_then_retry(desk: Any, cli: Any) -> None:
    _queued(desk)
    oid = _row(cli)["id"]
    assert cli("outbox", "cancel", str(oid)).exit_code == 0
    assert _row(cli)["state"] == "cancelled"
    assert cli("outbox", "retry", str(oid)).exit_code == 0
    assert _row(cli)["state"] == "queued"


def test_a_sent_item_is_neither_cancelled_nor_sent_again(desk: Any, cli: Any) -> None:
    _queued(desk)
    with desk.db.write() as s:
        [row] = s.query(Outbox).all()
        row.state = "sent"
        s.add(row)
    oid = _row(cli)["id"]
    for verb in ("cancel", "retry"):
        res = cli("outbox", verb, str(oid))
        assert res.exit_code == 5 and "already sent" in res.stderr and "Traceback" not in res.output
    assert _row(cli)["state"] == "sent"
    assert cli("outbox", "cancel", "999").exit_code == 3


def test_quarantine_show_and_list(cli: Any, home: Any, tmp_path: Any) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"Subject: no sender at all\r\n\r\nbody\r\n")
    assert cli("import", str(bad)).exit_code == 0
    [entry] = json.loads(cli("quarantine", "list", "--json").stdout)
    assert entry["error"]
    shown = cli("quarantine", "show", str(entry["id"]))
    assert shown.exit_code == 0 and "Reason:" in shown.stdout
    raw = cli("quarantine", "show", str(entry["id"]), "--raw")
    assert raw.stdout_bytes == bad.read_bytes()
    assert cli("quarantine", "show", "999").exit_code == 3
