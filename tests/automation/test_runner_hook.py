"""The runner's calls: rules run after the inbound commit (worker thread) and on the timer tick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from supportdesk.automation import engine, hook
from supportdesk.desk.desk import open_desk
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Event, Ticket
from tests.automation.conftest import write_rules
from tests.runner.helpers import setup_telegram_home

RULE = """
[[rule]]
name = "urgent-words"
when = "message.in"
if = "срочно"
then = [{ action = "priority", priority = "urgent" }, { action = "tag", add = ["urgent"] }]
"""


@pytest.fixture
def tdesk(home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    setup_telegram_home(home, botapi, monkeypatch)
    d = open_desk(home, agent="alice")
    engine.process(d)
    yield d
    d.close()


def _urgent(desk: Any) -> list[int]:
    with desk.db.read() as s:
        return [t.id or 0 for t in s.exec(select(Ticket).where(Ticket.priority == "urgent")).all()]


def test_poll_once_runs_rules_after_the_commit(tdesk: Any, botapi: Any) -> None:
    write_rules(tdesk.home, RULE)
    botapi.push_message(4242, "Срочно! Не проходит оплата", user={"id": 4242, "first_name": "Иван"})
    botapi.push_message(4343, "Hello, a question", user={"id": 4343, "first_name": "Ann"})
    Runner(tdesk).run_once()
    hook.wait_for_pass(tdesk)  # the worker woken by the commit, if it was the one that ran
    [tid] = _urgent(tdesk)
    with tdesk.db.read() as s:
        evs = s.exec(select(Event).where(Event.ticket_id == tid).order_by(col(Event.id))).all()
    kinds = [(e.kind, e.agent) for e in evs]
    # the message was stored (and committed) first; the rule's changes are later events
    assert kinds.index(("message_in", "system")) < kinds.index(("rule_fired", "rule:urgent-words"))
    assert ("set", "rule:urgent-words") in kinds


def test_the_inbound_commit_wakes_the_worker(tdesk: Any) -> None:
    from tests.factories import inbound_telegram, ingest

    write_rules(tdesk.home, RULE)
    res = ingest(tdesk, inbound_telegram(chat_id=5151, text="срочно нужна помощь"))
    hook.after_inbound_commit(tdesk)
    assert hook.wait_for_pass(tdesk)
    assert _urgent(tdesk) == [res.ticket_id]


def test_no_rules_no_worker(tdesk: Any) -> None:
    from tests.factories import inbound_telegram, ingest

    ingest(tdesk, inbound_telegram(chat_id=5252, text="hello"))
    hook.after_inbound_commit(tdesk)
    assert not hook.wait_for_pass(tdesk, timeout=0.1)
