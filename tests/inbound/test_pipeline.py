"""The one inbound pipeline: what it does around ingest (greeting, buttons, quarantine, cursor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.inbound import pipeline
from supportdesk.store.cursors import get_cursor
from supportdesk.store.models import Outbox, Quarantine, Ticket
from tests.configs import desk_config, email_channel, telegram_channel
from tests.factories import inbound_email, inbound_telegram


def _desk(home: Path, language: str | None) -> Any:
    cfg = desk_config(language=language, channels=[email_channel(), telegram_channel()])
    (home / "config.toml").write_text(cfg, encoding="utf-8")
    return open_desk(home, agent="alice")


def test_opener_is_greeted_in_the_desks_language_and_is_no_ticket(home: Path) -> None:
    desk = _desk(home, "ru")
    start = inbound_telegram(chat_id=42, text="/start", extra={"is_start": True})
    [stored] = pipeline.store(desk, [start], channel="telegram", cursor=("telegram:offset", 7))
    assert stored.outcome == "ignored"
    with desk.db.read() as s:
        assert s.exec(select(Ticket)).all() == []
        (row,) = s.exec(select(Outbox)).all()
        assert row.to_address == "42" and row.channel == "telegram"
        assert json.loads(row.payload)["text"].startswith(
            "Здравствуйте! Это поддержка Acme support"
        )
        assert get_cursor(s, "telegram", "telegram:offset") == 7  # committed with the batch
    desk.close()


def test_unparsed_bytes_are_quarantined_and_the_rest_goes_on(home: Path) -> None:
    from supportdesk.channels.email.channel import failed_parse

    desk = _desk(home, None)
    bad = failed_parse(b"\x00garbage", "imap:support/INBOX/1/5", "no headers at all")
    good = inbound_email(external_id="fine-1@example.ru")
    out = pipeline.store(desk, [bad, good], channel="support")
    assert [o.outcome for o in out] == ["quarantined", "new_ticket"]
    with desk.db.read() as s:
        (q,) = s.exec(select(Quarantine)).all()
        assert q.source == "imap:support/INBOX/1/5" and q.error == "no headers at all"
    desk.close()


def test_a_button_nobody_handles_gets_an_empty_answer(home: Path) -> None:
    desk = _desk(home, None)
    press = inbound_telegram(chat_id=9, text="", extra={"callback_data": "menu:help"})
    press.extra["callback_query_id"] = "77"
    [stored] = pipeline.store(desk, [press], channel="telegram")
    assert stored.outcome == "ignored" and press.extra["callback_answer"] == ""
    desk.close()
