"""Inbound: the real python-telegram-bot client long-polling the Bot API stand-in."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import pytest

from supportdesk.channels.base import ChannelError, InboundMessage
from supportdesk.channels.telegram.bot import TelegramConnector, TelegramSettings
from tests.channels.telegram.conftest import settings_for
from tests.peers.botapi import BotAPIServer

IVAN = {"id": 4201, "first_name": "Иван", "last_name": "Петров", "username": "ivan_p"}


async def fetch_all(tg: TelegramConnector, offset: int | None = None) -> list[InboundMessage]:
    messages, _ = await tg.fetch(offset, 0)
    return messages


# --------------------------------------------------------------------------- connection


async def test_check_returns_bot_username(connector: TelegramConnector) -> None:
    assert await connector.check() == "supportdesk_test_bot"


async def test_start_removes_a_stale_webhook_but_keeps_pending_updates(
    botapi: BotAPIServer,
) -> None:
    botapi.webhook_url = "https://old.example/hook"
    botapi.push_message(4201, "waiting since the webhook days", user=IVAN)
    async with TelegramConnector(settings_for(botapi)) as tg:
        assert botapi.webhook_url == ""
        messages = await fetch_all(tg)
    assert [m.text for m in messages] == ["waiting since the webhook days"]


async def test_bad_token_is_a_channel_error_without_the_token(botapi: BotAPIServer) -> None:
    secret = "987654321:AAWrongWrongWrongWrongWrongWrong123"
    tg = TelegramConnector(settings_for(botapi, token=secret))
    with pytest.raises(ChannelError) as caught:
        await tg.start()
    assert str(caught.value) == "Telegram rejected the bot token."
    with pytest.raises(ChannelError) as caught_check:
        await tg.check()
    assert secret not in str(caught_check.value)
    assert "987654321" not in repr(tg.settings)
    await tg.close()


async def test_empty_token_is_refused_up_front(botapi: BotAPIServer) -> None:
    with pytest.raises(ChannelError, match="No Telegram bot token"):
        TelegramConnector(settings_for(botapi, token="  "))


def test_file_url_is_derived_from_the_api_url() -> None:
    assert TelegramSettings("t").file_url == "https://api.telegram.org/file/bot"
    custom = TelegramSettings("t", api_url="http://tg.local:8081/bot/")
    assert custom.file_url == "http://tg.local:8081/file/bot"
    explicit = TelegramSettings("t", api_url="http://a/x", file_url="http://a/files/")
    assert explicit.file_url == "http://a/files"
    with pytest.raises(ChannelError, match="set file_url"):
        TelegramSettings("t", api_url="http://a/x")


async def test_unreachable_server_is_a_clear_channel_error(botapi: BotAPIServer) -> None:
    tg = TelegramConnector(settings_for(botapi))
    await tg.start()
    botapi.stop()
    with pytest.raises(ChannelError) as caught:
        await tg.fetch(None, 0)
    message = str(caught.value)
    assert message.startswith(f"Could not fetch updates from Telegram at {botapi.api_url}")
    assert botapi.token not in message
    await tg.close()


async def test_server_error_during_fetch_is_a_channel_error(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.fail_next("getUpdates", code=500)
    with pytest.raises(ChannelError, match="Internal Server Error"):
        await connector.fetch(None, 0)
    botapi.push_message(4201, "after the outage", user=IVAN)
    assert [m.text for m in await fetch_all(connector)] == ["after the outage"]


async def test_flood_limit_during_fetch_tells_how_long_to_wait(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.fail_next("getUpdates", code=429, retry_after=3)
    with pytest.raises(ChannelError, match="wait 3 s") as caught:
        await connector.fetch(None, 0)
    assert caught.value.retry_after == 3  # type: ignore[attr-defined]


async def test_webhook_set_meanwhile_is_explained(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.webhook_url = "https://elsewhere.example/hook"
    with pytest.raises(ChannelError, match="webhook is set"):
        await connector.fetch(None, 0)


async def test_a_second_poller_is_explained(botapi: BotAPIServer) -> None:
    async with (
        TelegramConnector(settings_for(botapi)) as first,
        TelegramConnector(settings_for(botapi)) as second,
    ):
        waiting = asyncio.create_task(first.fetch(None, 10))
        await asyncio.to_thread(botapi.wait_polling)
        second_poll = asyncio.create_task(second.fetch(None, 0))
        with pytest.raises(ChannelError, match="Another program is already receiving updates"):
            await asyncio.wait_for(waiting, 5)
        assert await second_poll == ([], None)


# --------------------------------------------------------------------------- long polling


async def test_long_poll_returns_promptly_when_a_message_arrives(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    poll = asyncio.create_task(connector.fetch(None, 20))
    await asyncio.to_thread(botapi.wait_polling)
    assert not poll.done()
    update = botapi.push_message(4201, "привет", user=IVAN)
    # returns on arrival, long before the 20 s poll ends (the latency is measured in bench/)
    messages, next_offset = await asyncio.wait_for(poll, 10)
    assert [m.text for m in messages] == ["привет"]
    assert next_offset == update["update_id"] + 1
    # The poll really was a long poll with the timeout we asked for.
    assert botapi.calls("getUpdates")[-1]["timeout"] == "20"


async def test_long_poll_ends_empty_at_the_timeout(connector: TelegramConnector) -> None:
    started = time.monotonic()
    messages, next_offset = await connector.fetch(None, 1)
    elapsed = time.monotonic() - started
    assert (messages, next_offset) == ([], None)
    assert 0.9 <= elapsed  # it waited; that it then returned at all is the point


async def test_offset_confirms_updates_exactly_like_telegram(botapi: BotAPIServer) -> None:
    first = botapi.push_message(4201, "one", user=IVAN)
    botapi.push_message(4201, "two", user=IVAN)
    async with TelegramConnector(settings_for(botapi)) as tg:
        messages, offset = await tg.fetch(None, 0)
    assert [m.text for m in messages] == ["one", "two"]
    assert offset == first["update_id"] + 2
    # "Crash" before the offset was committed: a new instance with the old (no) offset gets the
    # same updates again, with the same external ids for dedupe.
    async with TelegramConnector(settings_for(botapi)) as tg:
        again, offset_again = await tg.fetch(None, 0)
        assert [m.external_id for m in again] == [m.external_id for m in messages]
        assert offset_again == offset
        # Committed: the next call confirms them, and a third message arrives.
        botapi.push_message(4201, "three", user=IVAN)
        newer, offset3 = await tg.fetch(offset, 0)
    assert [m.text for m in newer] == ["three"]
    assert offset is not None and offset3 == offset + 1
    # A restarted instance passing the committed offset never sees the confirmed ones again,
    # and even one that lost its offset does not: Telegram forgot them.
    async with TelegramConnector(settings_for(botapi)) as tg:
        assert [m.text for m in await fetch_all(tg, offset)] == ["three"]
        assert [m.text for m in await fetch_all(tg, None)] == ["three"]
        assert await fetch_all(tg, offset3) == []
    assert botapi.pending == []


async def test_other_update_kinds_are_skipped_but_advance_the_offset(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    blocked = botapi.push_raw(
        {
            "my_chat_member": {
                "chat": {"id": 4201, "type": "private", "first_name": "Иван"},
                "from": IVAN | {"is_bot": False},
                "date": 1_767_225_600,
                "old_chat_member": {"status": "member", "user": botapi.bot_user},
                "new_chat_member": {
                    "status": "kicked",
                    "user": botapi.bot_user,
                    "until_date": 0,
                },
            }
        }
    )
    service = botapi.push_message(
        4201,
        user=IVAN,
        fields={
            "pinned_message": {"message_id": 1, "date": 0, "chat": {"id": 4201, "type": "private"}}
        },
    )
    messages, offset = await connector.fetch(None, 0)
    assert messages == []
    assert offset == service["update_id"] + 1 == blocked["update_id"] + 2
    assert await fetch_all(connector, offset) == []
    assert botapi.calls("getUpdates")[-1]["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ]


# --------------------------------------------------------------------------- normalization


async def test_text_message_is_normalized(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    update = botapi.push_message(4201, "Не печатает принтер", user=IVAN, date=1_767_225_600)
    [message] = await fetch_all(connector)
    assert message.kind == "telegram"
    assert message.external_id == "tg:4201:1"
    assert message.sender_address == "4201"
    assert message.sender_name == "Иван Петров"
    assert message.subject == ""
    assert message.text == "Не печатает принтер"
    assert message.sent_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert message.sent_at is not None and message.sent_at.utcoffset() is not None
    assert not message.edited
    assert message.attachments == []
    assert message.extra == {
        "chat_id": 4201,
        "message_id": 1,
        "chat_type": "private",
        "username": "ivan_p",
        "chat_title": None,
        "reply_to_message_id": None,
        "update_id": update["update_id"],
        "is_start": False,
        "group": False,
    }


async def test_start_command_is_flagged(connector: TelegramConnector, botapi: BotAPIServer) -> None:
    botapi.push_message(4201, "/start", user=IVAN)
    botapi.push_message(4201, "/start order-1234", user=IVAN)
    botapi.push_message(4201, "how do I /start over?", user=IVAN)
    first, deep_link, plain = await fetch_all(connector)
    assert first.extra["is_start"] and first.extra["start_param"] == ""
    assert deep_link.extra["is_start"] and deep_link.extra["start_param"] == "order-1234"
    assert not plain.extra["is_start"] and "start_param" not in plain.extra


async def test_edit_keeps_the_external_id(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    original = botapi.push_message(4201, "oredr 12", user=IVAN)
    message_id = original["message"]["message_id"]
    botapi.push_edit(4201, message_id, "order 12", edit_date=1_767_225_660)
    first, edit = await fetch_all(connector)
    assert (first.edited, edit.edited) == (False, True)
    assert first.external_id == edit.external_id == f"tg:4201:{message_id}"
    assert edit.text == "order 12"
    assert edit.sender_name == "Иван Петров"
    assert edit.extra["edit_date"] == "2026-01-01T00:01:00+00:00"


async def test_reply_points_at_the_quoted_message(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.push_message(4201, "first", user=IVAN)
    botapi.push_message(4201, "about that", user=IVAN, reply_to=1)
    _, reply = await fetch_all(connector)
    assert reply.extra["reply_to_message_id"] == 1
    assert reply.in_reply_to == ["tg:4201:1"]


async def test_group_messages_are_dropped_by_default(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    group = botapi.push_message(
        -100777, "@bot help", user=IVAN, chat_type="supergroup", chat_title="Клиенты"
    )
    botapi.push_message(4201, "private one", user=IVAN)
    messages, offset = await connector.fetch(None, 0)
    assert [m.text for m in messages] == ["private one"]
    assert offset == group["update_id"] + 2


async def test_group_messages_come_in_when_allowed(botapi: BotAPIServer) -> None:
    botapi.push_message(
        -100777, "@bot help", user=IVAN, chat_type="supergroup", chat_title="Клиенты"
    )
    botapi.push_message(-5, "in a small group", user=IVAN, chat_type="group", chat_title="Ops")
    async with TelegramConnector(settings_for(botapi, allow_groups=True)) as tg:
        supergroup, small = await fetch_all(tg)
    assert supergroup.sender_address == "group:-100777"
    assert supergroup.sender_name == "Иван Петров"
    assert supergroup.external_id == "tg:-100777:1"
    assert supergroup.extra["group"] is True
    assert supergroup.extra["chat_type"] == "supergroup"
    assert supergroup.extra["chat_title"] == "Клиенты"
    assert supergroup.extra["username"] == "ivan_p"
    assert small.sender_address == "group:-5" and small.extra["chat_type"] == "group"


async def test_callback_query_is_normalized(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    update = botapi.push_callback(4201, "csat:5", 17, user=IVAN)
    query_id = update["callback_query"]["id"]
    [press] = await fetch_all(connector)
    assert press.external_id == f"tg:4201:callback:{query_id}"
    assert press.sender_address == "4201"
    assert press.sender_name == "Иван Петров"
    assert press.extra["callback_data"] == "csat:5"
    assert press.extra["callback_query_id"] == query_id
    assert press.extra["message_id"] == 17
    assert press.extra["chat_id"] == 4201
    assert press.extra["is_start"] is False
    await connector.answer_callback(query_id, "Спасибо за оценку!")
    assert botapi.answered_callbacks == [
        {"callback_query_id": query_id, "text": "Спасибо за оценку!", "show_alert": False}
    ]


async def test_answering_an_unknown_callback_is_a_channel_error(
    connector: TelegramConnector,
) -> None:
    with pytest.raises(ChannelError, match="^Telegram refused the request: Query is too old"):
        await connector.answer_callback("123", "late")


async def test_contact_and_location_are_described(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    contact = {
        "phone_number": "+7 916 000-00-00",
        "first_name": "Анна",
        "last_name": "К",
        "user_id": 9,
    }
    botapi.push_message(4201, user=IVAN, contact=contact)
    botapi.push_message(4201, user=IVAN, location=(55.75, 37.62))
    shared_contact, shared_location = await fetch_all(connector)
    assert shared_contact.text == "Contact: Анна К +7 916 000-00-00"
    assert shared_contact.extra["contact"] == contact
    assert shared_location.text == "Location: 55.75, 37.62"
    assert shared_location.extra["location"] == {"latitude": 55.75, "longitude": 37.62}


async def test_unsupported_content_is_named_not_lost(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.push_message(4201, user=IVAN, fields={"dice": {"emoji": "🎲", "value": 4}})
    [dice] = await fetch_all(connector)
    assert dice.text == "[dice: not supported by the helpdesk]"


# --------------------------------------------------------------------------- media


async def test_every_media_kind_is_downloaded(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    files = {
        "photo1": b"\xff\xd8JPEG",
        "doc1": b"%PDF-1.7 invoice",
        "voice1": b"OggS voice",
        "audio1": b"ID3 song",
        "video1": b"\x00\x00\x00 ftyp video",
        "note1": b"\x00\x00\x00 ftyp round",
        "anim1": b"\x00\x00\x00 ftyp gif",
        "sticker1": b"RIFF webp",
    }
    for file_id, data in files.items():
        botapi.add_file(file_id, data)
    botapi.files["doc1"].file_name = "Счёт №5.pdf"
    botapi.files["doc1"].mime_type = "application/pdf"
    botapi.files["doc1"].path = "documents/Счёт №5.pdf"  # percent-encoded by the client
    botapi.push_message(4201, user=IVAN, caption="скрин", photo="photo1")
    botapi.push_message(4201, user=IVAN, document="doc1")
    botapi.push_message(4201, user=IVAN, voice="voice1")
    botapi.push_message(4201, user=IVAN, audio="audio1")
    botapi.push_message(4201, user=IVAN, video="video1")
    botapi.push_message(4201, user=IVAN, video_note="note1")
    botapi.push_message(4201, user=IVAN, animation="anim1")
    botapi.push_message(4201, user=IVAN, sticker={"file_id": "sticker1", "emoji": "😀"})
    messages = await fetch_all(connector)
    got = [
        (m.text, a.filename, a.content_type, a.data, a.size, a.note)
        for m in messages
        for a in m.attachments
    ]
    uid = {file_id: botapi.files[file_id].file_unique_id for file_id in files}
    assert got == [
        ("скрин", f"photo_{uid['photo1']}.jpg", "image/jpeg", files["photo1"], 6, None),
        ("", "Счёт №5.pdf", "application/pdf", files["doc1"], 16, None),
        ("", f"voice_{uid['voice1']}.ogg", "audio/ogg", files["voice1"], 10, None),
        ("", f"audio_{uid['audio1']}.mp3", "audio/mpeg", files["audio1"], 8, None),
        ("", f"video_{uid['video1']}.mp4", "video/mp4", files["video1"], 14, None),
        ("", f"video_note_{uid['note1']}.mp4", "video/mp4", files["note1"], 14, None),
        ("", f"animation_{uid['anim1']}.mp4", "video/mp4", files["anim1"], 12, None),
        (
            "[sticker 😀]",
            f"sticker_{uid['sticker1']}.webp",
            "image/webp",
            files["sticker1"],
            9,
            None,
        ),
    ]
    # Only the largest photo size was fetched; the animation was not fetched twice.
    assert [c["file_id"] for c in botapi.calls("getFile")] == list(files)


async def test_animated_sticker_keeps_its_format(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.add_file("tgs1", b"\x1f\x8b lottie")
    botapi.push_message(
        4201, user=IVAN, sticker={"file_id": "tgs1", "is_animated": True, "emoji": None}
    )
    [message] = await fetch_all(connector)
    assert message.text == "[sticker]"
    assert message.attachments[0].filename.endswith(".tgs")
    assert message.attachments[0].content_type == "application/x-tgsticker"


async def test_file_over_the_download_limit_is_noted_not_fetched(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.add_file("big1", b"x", size=25 * 1024 * 1024, file_name="backup.zip")
    botapi.push_message(4201, "вот архив", user=IVAN, document="big1")
    [message] = await fetch_all(connector)
    [attachment] = message.attachments
    assert attachment.filename == "backup.zip"
    assert attachment.data is None
    assert attachment.size == 25 * 1024 * 1024
    assert attachment.note == "file of 25.0 MB is over the Bot API download limit, not downloaded"
    assert botapi.calls("getFile") == []


async def test_file_refused_as_too_big_by_get_file_is_noted(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.add_file("big2", b"x", size=30 * 1024 * 1024)
    # The message does not tell the size, so only getFile finds out.
    botapi.push_message(4201, user=IVAN, video={"file_id": "big2", "file_size": None})
    [message] = await fetch_all(connector)
    [attachment] = message.attachments
    assert attachment.data is None
    assert attachment.note == "file is over the Bot API download limit, not downloaded"
    assert len(botapi.calls("getFile")) == 1


async def test_download_limit_is_configurable(botapi: BotAPIServer) -> None:
    botapi.add_file("doc2", b"0123456789" * 200, file_name="log.txt")
    botapi.push_message(4201, user=IVAN, document="doc2")
    async with TelegramConnector(settings_for(botapi, download_limit=1000)) as tg:
        [message] = await fetch_all(tg)
    assert message.attachments[0].data is None
    assert message.attachments[0].note is not None
    assert "over the Bot API download limit" in message.attachments[0].note


async def test_invalid_file_id_is_noted_and_does_not_block(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.push_message(4201, "see file", user=IVAN, document={"file_id": "gone", "file_size": 10})
    [message] = await fetch_all(connector)
    assert message.attachments[0].data is None
    assert message.attachments[0].note == "Telegram did not hand out the file: Invalid file_id"


async def test_download_failure_fails_the_batch_so_it_is_fetched_again(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.add_file("photo2", b"\xff\xd8 again")
    botapi.push_message(4201, user=IVAN, photo="photo2")
    botapi.fail_next("download", code=502)
    with pytest.raises(ChannelError, match="Could not download a file from Telegram"):
        await connector.fetch(None, 0)
    [message] = await fetch_all(connector)
    assert message.attachments[0].data == b"\xff\xd8 again"


async def test_connector_recovers_when_telegram_comes_back() -> None:
    down = BotAPIServer()  # not started: nothing listens on its port yet
    tg = TelegramConnector(settings_for(down))
    with pytest.raises(ChannelError, match="^Could not connect to Telegram at http://127.0.0.1"):
        await tg.start()
    with BotAPIServer(port=down.port) as up:
        up.push_message(4201, "back online", user=IVAN)
        messages, _ = await tg.fetch(None, 0)
        assert [m.text for m in messages] == ["back online"]
        assert await tg.check() == "supportdesk_test_bot"
        await tg.close()


async def test_the_token_never_reaches_the_logs(
    botapi: BotAPIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with TelegramConnector(settings_for(botapi)) as tg:
        botapi.push_message(4201, "hi", user=IVAN)
        await tg.fetch(None, 0)
    assert "getUpdates" in caplog.text  # httpx logged the request URLs...
    assert botapi.token not in caplog.text  # ...without the token
    assert "/bot<token>/getUpdates" in caplog.text
