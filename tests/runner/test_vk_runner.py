"""VK under `supportdesk run`: arrival, edits, replies exactly once, kills, lost long-poll state."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Message, Outbox, Ticket
from tests.configs import desk_config
from tests.conftest import write_config
from tests.peers.vkapi import VkAPIServer
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.peers]


def vk_channel(vk: VkAPIServer) -> str:
    return (
        f'\n[[channel]]\nname = "vk"\ntype = "vk"\ngroup_id = {vk.group_id}\n'
        f'token_env = "TEST_VK_TOKEN"\napi_url = "{vk.api_url}"\nwait = 5\nacknowledge = false\n'
    )


@pytest.fixture
def vk(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VkAPIServer]:
    with VkAPIServer() as server:
        if server._httpd is not None:  # a long poll cut short by a killed runner is no error
            server._httpd.handle_error = lambda *_a: None  # type: ignore[method-assign]
        monkeypatch.setenv("TEST_VK_TOKEN", server.token)
        write_config(home, desk_config(channels=[vk_channel(server)]))
        yield server


def _inbound(desk: Any) -> list[str]:
    with desk.db.read() as s:
        return list(s.exec(select(Message.dedupe_key).where(Message.direction == "in")).all())


def _first_poll_done(home: Path, vk: VkAPIServer) -> Any:
    """Run the runner once until it holds a committed ts (the first poll starts at the present)."""
    proc = start_runner(home)
    vk.wait_polling(timeout=60)
    return proc


def test_arrival_edit_and_reply(home: Path, vk: VkAPIServer) -> None:
    vk.add_user(501, "Ivan", "Petrov", "ivan.petrov")
    desk = open_desk(home)
    proc = _first_poll_done(home, vk)
    try:
        first = vk.push_message(501, "Здравствуйте! Где мой заказ 1234?")
        vk.push_message(501, "Он был оплачен вчера")
        wait_until(lambda: len(_inbound(desk)) == 2, 20, "both VK messages stored")
        with desk.db.read() as s:
            [ticket] = s.exec(select(Ticket)).all()
            assert ticket.kind == "vk" and ticket.channel == "vk"
            assert ticket.subject.startswith("Здравствуйте")
            tid = ticket.id
        vk.push_edit(501, first["conversation_message_id"], "Здравствуйте! Где мой заказ 1243?")

        def edited() -> bool:
            with desk.db.read() as s:
                m = s.exec(select(Message).where(Message.dedupe_key == "vk:501:1")).one()
                return m.text.endswith("1243?") and m.edited_at is not None

        wait_until(edited, 20, "the edit stored")
        with desk.db.read() as s:
            m = s.exec(select(Message).where(Message.dedupe_key == "vk:501:1")).one()
            versions = json.loads(m.versions)
            assert versions[0]["text"] == "Здравствуйте! Где мой заказ 1234?"
        with desk.db.write() as s:
            t = s.get(Ticket, tid)
            assert t is not None
            queue_outbound(s, desk, t, "Заказ 1243 уже в пути.", agent="alice")
        [sent] = vk.wait_sent(1, timeout=60)
        assert sent.peer_id == 501 and sent.text == "Заказ 1243 уже в пути."

        def marked() -> bool:
            with desk.db.read() as s:
                row = s.exec(select(Outbox).where(Outbox.ticket_id == tid)).one()
                return row.state == "sent" and row.external_message_id == f"vk:501:{sent.cmid}"

        wait_until(marked, 20, "the reply marked sent with its VK id")
    finally:
        stop(proc)
    # our own reply came back as a message_reply event: it is no customer message
    assert len(_inbound(desk)) == 2
    desk.close()


def test_reply_resent_after_a_crash_between_send_and_commit_is_delivered_once(
    home: Path, vk: VkAPIServer
) -> None:
    desk = open_desk(home)
    proc = _first_poll_done(home, vk)
    try:
        vk.push_message(502, "Нужна помощь")
        wait_until(lambda: len(_inbound(desk)) == 1, 20, "the VK message stored")
        with desk.db.write() as s:
            t = s.exec(select(Ticket)).one()
            queue_outbound(s, desk, t, "Поможем!", agent="alice")
        vk.wait_sent(1, timeout=60)
        wait_until(lambda: _outbox_state(desk) == "sent", 20, "the reply marked sent")
    finally:
        stop(proc)
    # the commit after the send is undone: exactly what a crash between the two leaves behind
    with desk.db.write() as s:
        row = s.exec(select(Outbox)).one()
        row.state, row.sent_at, row.external_message_id = "queued", None, ""
        s.add(row)
    proc = start_runner(home)
    try:
        wait_until(lambda: _outbox_state(desk) == "sent", 20, "the resend marked sent")
    finally:
        stop(proc)
    assert len(vk.sent) == 1  # VK dropped the resend: same random_id
    assert len([m for m in vk.history(502) if m["out"]]) == 1
    desk.close()


def _outbox_state(desk: Any) -> str:
    with desk.db.read() as s:
        row = s.exec(select(Outbox)).first()
        return row.state if row else ""


def test_lost_long_poll_state_is_recovered_under_run(home: Path, vk: VkAPIServer) -> None:
    desk = open_desk(home)
    proc = _first_poll_done(home, vk)
    try:
        vk.push_message(503, "до сбоя")
        wait_until(lambda: len(_inbound(desk)) == 1, 20, "the first message")
    finally:
        stop(proc)
    # while no runner polls, messages arrive and VK loses the events (failed=1), then its state
    vk.push_message(503, "пропущено 1")
    vk.push_message(504, "пропущено 2")
    vk.forget_events()
    vk.push_message(504, "пропущено 3")
    vk.lose_state()
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) == 4, 20, "the gap recovered")
        vk.push_message(503, "после")
        wait_until(lambda: len(_inbound(desk)) == 5, 20, "new messages after the recovery")
    finally:
        stop(proc)
    keys = _inbound(desk)
    assert sorted(keys) == sorted(["vk:503:1", "vk:503:2", "vk:504:1", "vk:504:2", "vk:503:3"])
    assert "messages.getHistory" in vk.calls
    desk.close()


@pytest.mark.fault
def test_runner_killed_mid_batch_loses_and_duplicates_nothing(home: Path, vk: VkAPIServer) -> None:
    desk = open_desk(home)
    rnd = random.Random(20261204)
    proc = _first_poll_done(home, vk)
    stop(proc)
    total, users = 60, 12
    pushed: list[str] = []

    def pusher() -> None:
        for i in range(total):
            m = vk.push_message(8000 + i % users, f"сообщение {i}")
            pushed.append(f"vk:{m['peer_id']}:{m['conversation_message_id']}")
            time.sleep(0.06)

    t = threading.Thread(target=pusher)
    t.start()
    kills = 0
    while t.is_alive() or kills < 3:
        p = start_runner(home)
        time.sleep(rnd.uniform(0.3, 1.2))  # a random moment: this is the fault being injected
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
    t.join()
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) >= total, 30, "every VK message stored")
        vk.wait_polling(timeout=60)
    finally:
        stop(proc)
    keys = _inbound(desk)
    lost = set(pushed) - set(keys)
    dup = len(keys) - len(set(keys))
    print(f"vk: {kills} kills, {total} messages, lost {len(lost)}, duplicated {dup}")
    assert not lost and dup == 0 and len(keys) == total
    with desk.db.read() as s:
        assert len(s.exec(select(Ticket).where(col(Ticket.kind) == "vk")).all()) == users
    desk.close()
