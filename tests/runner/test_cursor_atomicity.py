"""Deterministic store failures in the inbound pipeline, for every polled channel: the store
fails while committing a batch (after its messages, with or without the cursor written). The
messages and the cursor must go together: after the failure neither is there (and the Telegram
offset is not confirmed to the server); the next poll stores every message exactly once.

A regression that commits the cursor in a transaction of its own (before or after the messages)
fails here on every run, not only when a random SIGKILL happens to land in the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.runner.loop import Runner
from supportdesk.store.cursors import set_cursor
from supportdesk.store.models import Cursor, Message
from tests.factories import raw_email
from tests.runner.helpers import setup_email_home, setup_telegram_home

pytestmark = pytest.mark.peers


class StoreFault:
    """Fail the commit of the first write transaction that wrote ``table`` rows."""

    def __init__(self, engine: sa.Engine, table: str) -> None:
        self.engine = engine
        self.table = table
        self.fired = 0
        self.armed = True
        event.listen(engine, "before_cursor_execute", self._seen)
        event.listen(engine, "commit", self._commit)

    def _seen(self, conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        words = statement.lstrip().split(None, 3)
        head = " ".join(words[:3]).lower().replace('"', "")
        if head.startswith((f"insert into {self.table}", f"update {self.table}")):
            conn.info["sd_fault_wrote"] = True

    def _commit(self, conn: Any) -> None:
        if self.armed and conn.info.pop("sd_fault_wrote", False):
            self.armed = False
            self.fired += 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("injected: the disk went away"))

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)
        event.remove(self.engine, "commit", self._commit)


@pytest.fixture
def fault() -> Iterator[list[StoreFault]]:
    made: list[StoreFault] = []
    yield made
    for f in made:
        f.remove()


def _inbound(desk: Any) -> list[str]:
    with desk.db.read() as s:
        return list(s.exec(select(Message.dedupe_key).where(Message.direction == "in")).all())


def _cursors(desk: Any) -> dict[str, str]:
    with desk.db.read() as s:
        return {
            f"{c.channel}/{c.key}": c.value
            for c in s.exec(select(Cursor)).all()
            if c.channel != "sla"
        }  # not the SLA watermark


@pytest.mark.parametrize("table", ["message", "cursor"])
def test_imap_batch_and_uid_cursor_commit_together(
    home: Path,
    imap_account: Any,
    smtp_sink: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault: list[StoreFault],
    table: str,
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    desk = open_desk(home, agent="alice")
    ids = [f"atom{i}@example.ru" for i in range(5)]
    imap_account.append_many("INBOX", [raw_email(msgid=m, subject=f"тема {m}") for m in ids])
    f = StoreFault(desk.db.write_engine, table)
    fault.append(f)
    with pytest.raises(Exception, match="injected"):
        Runner(desk).run_once()
    assert f.fired == 1, "the store fault was never injected: the pipeline changed"
    assert _inbound(desk) == [] and _cursors(desk) == {}  # neither the messages nor the cursor
    Runner(desk).run_once()
    got = _inbound(desk)
    assert sorted(got) == sorted(ids)  # each exactly once
    assert list(_cursors(desk)) == ["support/imap:INBOX"]
    Runner(desk).run_once()
    assert sorted(_inbound(desk)) == sorted(ids)
    desk.close()


@pytest.mark.parametrize("table", ["message", "cursor"])
def test_telegram_updates_and_offset_commit_together(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch, fault: list[StoreFault], table: str
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    desk = open_desk(home, agent="alice")
    keys = []
    for i in range(4):
        upd = botapi.push_message(7700 + i, f"сообщение {i}", user={"id": 7700 + i})
        keys.append(f"tg:{7700 + i}:{upd['message']['message_id']}")
    f = StoreFault(desk.db.write_engine, table)
    fault.append(f)
    try:
        Runner(desk).run_once()
    except Exception as exc:  # the pass may report it or raise it; either way nothing is kept
        assert "injected" in str(exc)
    assert f.fired == 1, "the store fault was never injected: the pipeline changed"
    assert _inbound(desk) == [] and _cursors(desk) == {}
    assert len(botapi.pending) == 4  # nothing confirmed to Telegram: the updates come again
    Runner(desk).run_once()
    assert sorted(_inbound(desk)) == sorted(keys)
    assert list(_cursors(desk)) == ["telegram/telegram:offset"]
    assert not botapi.pending  # confirmed only after the commit
    desk.close()


def test_the_fault_helper_sees_the_cursor_writes(desk: Any, fault: list[StoreFault]) -> None:
    """The injection itself: a cursor write's commit fails once, then writes go through."""
    f = StoreFault(desk.db.write_engine, "cursor")
    fault.append(f)
    with pytest.raises(sa.exc.OperationalError):
        with desk.db.write() as s:
            set_cursor(s, "x", "k", 1)
    with desk.db.write() as s:
        set_cursor(s, "x", "k", 2)
    assert _cursors(desk) == {"x/k": "2"} and f.fired == 1


@pytest.mark.parametrize("table", ["message", "cursor"])
def test_vk_messages_and_long_poll_ts_commit_together(
    home: Path, monkeypatch: pytest.MonkeyPatch, fault: list[StoreFault], table: str
) -> None:
    from tests.configs import desk_config
    from tests.peers.vkapi import VkAPIServer

    with VkAPIServer() as vk:
        vk.add_user(601, "Ivan", "Petrov")
        vk.add_user(602, "Мария", "Иванова")
        monkeypatch.setenv("TEST_VK_TOKEN", vk.token)
        channel = (
            f'\n[[channel]]\nname = "vk"\ntype = "vk"\ngroup_id = {vk.group_id}\n'
            f'token_env = "TEST_VK_TOKEN"\napi_url = "{vk.api_url}"\n'
        )
        (home / "config.toml").write_text(desk_config(channels=[channel]), encoding="utf-8")
        desk = open_desk(home, agent="alice")
        Runner(desk).run_once()  # the first run takes the starting ts
        before = _cursors(desk)
        for i, user in enumerate((601, 602, 601)):
            vk.push_message(user, f"сообщение {i}")
        f = StoreFault(desk.db.write_engine, table)
        fault.append(f)
        try:
            Runner(desk).run_once()
        except Exception as exc:
            assert "injected" in str(exc)
        assert f.fired == 1, "the store fault was never injected: the pipeline changed"
        assert _inbound(desk) == [] and _cursors(desk) == before
        Runner(desk).run_once()
        got = _inbound(desk)
        assert len(got) == 3 == len(set(got))
        assert _cursors(desk) != before
        Runner(desk).run_once()
        assert len(_inbound(desk)) == 3
        desk.close()
