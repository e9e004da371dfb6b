"""Triage keeps SLA clocks, surveys and tag priority rules in step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import DEFAULT_TEST_CONFIG, write_config
from tests.factories import inbound_email, ingest


def test_solving_asks_for_a_rating_once(desk: Any, cli: Any) -> None:
    r = ingest(desk, inbound_email(external_id="s1@x"))
    res = cli("tickets", "close", str(r.ticket_id), "--solved")
    assert res.exit_code == 0, res.output
    outbox = json.loads(cli("outbox", "list", "--json").stdout)
    assert len(outbox) == 1 and outbox[0]["ticket_id"] == r.ticket_id
    cli("tickets", "reopen", str(r.ticket_id))
    cli("tickets", "close", str(r.ticket_id), "--solved")
    assert len(json.loads(cli("outbox", "list", "--json").stdout)) == 1  # one survey per ticket


def test_pending_pauses_the_resolution_clock(desk: Any, cli: Any) -> None:
    r = ingest(desk, inbound_email(external_id="p1@x"))
    before = json.loads(cli("tickets", "show", str(r.ticket_id), "--json").stdout)
    cli("tickets", "set", str(r.ticket_id), "--status", "pending")
    paused = json.loads(cli("tickets", "show", str(r.ticket_id), "--json").stdout)
    assert paused["due_at"] is None and before["due_at"] is not None


def test_tag_rule_raises_priority(home: Path, cli: Any) -> None:
    write_config(
        home, DEFAULT_TEST_CONFIG + '\n[[priority_rule]]\npriority = "urgent"\ntag = "outage"\n'
    )
    from supportdesk.desk.desk import open_desk

    d = open_desk(home, agent="alice")
    r = ingest(d, inbound_email(external_id="t1@x"))
    d.close()
    res = cli("tickets", "tag", str(r.ticket_id), "--add", "outage")
    assert res.exit_code == 0, res.output
    shown = json.loads(cli("tickets", "show", str(r.ticket_id), "--json").stdout)
    assert shown["priority"] == "urgent"
