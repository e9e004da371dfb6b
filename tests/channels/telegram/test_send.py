"""Outbound: replies through the real python-telegram-bot client to the Bot API stand-in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.channels.base import Attachment, OutboundMessage, SendError
from supportdesk.channels.telegram.bot import MAX_MESSAGE, TelegramConnector, split_text
from tests.peers.botapi import BotAPIServer

CHAT = 4201


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def reply(text: str, to: int | str = CHAT, **kwargs: Any) -> OutboundMessage:
    return OutboundMessage(kind="telegram", to_address=str(to), text=text, **kwargs)


@pytest.fixture(autouse=True)
def known_chat(botapi: BotAPIServer) -> None:
    botapi.add_chat(CHAT, user={"first_name": "Иван"})


async def test_text_goes_out_verbatim_without_parse_mode(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    text = "*bold* <b>x</b> [link](http://x) _it_ `code`"
    result = await connector.send(reply(text))
    [sent] = botapi.sent
    assert sent.text == text
    assert sent.parse_mode is None
    assert "parse_mode" not in sent.params
    assert "entities" not in sent.params
    assert result.external_ids == [f"tg:{CHAT}:{sent.message_id}"]


async def test_long_text_is_split_at_4096_with_cyrillic_and_emoji(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    paragraph = "Здравствуйте! Проверили заказ 😀👍🏽, всё в порядке. " * 30
    text = "\n\n".join([paragraph] * 6)
    result = await connector.send(reply(text))
    parts = [s.text or "" for s in botapi.sent]
    assert len(parts) >= 3
    assert all(utf16(p) <= MAX_MESSAGE for p in parts)
    assert result.external_ids == [f"tg:{CHAT}:{s.message_id}" for s in botapi.sent]
    # Split at paragraph breaks: every part is whole paragraphs, nothing lost or re-ordered.
    assert "\n\n".join(parts) == text
    assert all(p.startswith("Здравствуйте") for p in parts)


async def test_unbroken_text_is_split_between_characters(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    family = "👨‍👩‍👧"  # three emoji joined by ZWJ: one character on screen
    text = "я" * 4095 + family + "ё" * 10
    await connector.send(reply(text))
    parts = [s.text or "" for s in botapi.sent]
    assert parts == ["я" * 4095, family + "ё" * 10]


def test_split_never_breaks_pairs_flags_or_combining_marks() -> None:
    assert split_text("a" * 4095 + "😀b") == ["a" * 4095, "😀b"]  # surrogate pair: 2 units
    flags = "🇷🇺" * 3
    assert split_text("ab" + flags, 6) == ["ab🇷🇺", "🇷🇺", "🇷🇺"]
    assert split_text("a" + flags, 6) == ["a🇷🇺", "🇷🇺", "🇷🇺"]  # never half a flag
    accented = "e\u0301" * 5  # e + combining acute
    assert split_text(accented, 3) == ["e\u0301", "e\u0301", "e\u0301", "e\u0301", "e\u0301"]
    assert split_text("👍🏽👍🏽", 5) == ["👍🏽", "👍🏽"]
    assert split_text("line one\nline two", 12) == ["line one", "line two"]
    assert split_text("   \n\n   ") == []
    assert split_text("short") == ["short"]


CLUSTERS = [
    "a",
    "b",
    "я",
    "Ё",
    " ",
    "\n",
    "\r\n",
    "😀",
    "🇷🇺",
    "e\u0301",
    "👍🏽",
    "👨\u200d👩",
    "❤\ufe0f",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(CLUSTERS), max_size=120), st.integers(min_value=5, max_value=40))
def test_split_cuts_only_between_whole_characters(clusters: list[str], limit: int) -> None:
    text = "".join(clusters)
    boundaries = {0}
    position = 0
    for cluster in clusters:
        position += len(cluster)
        boundaries.add(position)
    parts = split_text(text, limit)
    assert all(utf16(p) <= limit for p in parts)
    assert all(p.strip() for p in parts)
    position = 0
    for part in parts:
        start = text.find(part, position)
        assert start >= 0, "parts are pieces of the text, in order"
        assert text[position:start].strip() == "", "only whitespace is dropped between parts"
        assert start in boundaries and start + len(part) in boundaries
        position = start + len(part)
    assert text[position:].strip() == ""


async def test_buttons_go_on_the_last_part_and_can_be_removed(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    buttons = [
        [{"text": "😞", "callback_data": "csat:1"}, {"text": "😊", "callback_data": "csat:5"}]
    ]
    await connector.send(reply("Оцените ответ\n\n" + "x" * 5000, extra={"buttons": buttons}))
    first, last = botapi.sent
    assert first.reply_markup is None
    assert last.reply_markup == {
        "inline_keyboard": [
            [{"text": "😞", "callback_data": "csat:1"}, {"text": "😊", "callback_data": "csat:5"}]
        ]
    }
    await connector.set_buttons(CHAT, last.message_id, None)
    assert botapi.sent[-1].reply_markup is None
    await connector.set_buttons(CHAT, last.message_id, None)  # "not modified" is no error


async def test_bad_buttons_are_a_permanent_error(connector: TelegramConnector) -> None:
    with pytest.raises(SendError) as caught:
        await connector.send(reply("rate us", extra={"buttons": [[{"label": "x"}]]}))
    assert caught.value.permanent


async def test_attachments_are_uploaded_as_documents(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    result = await connector.send(
        reply(
            "Счёт во вложении",
            attachments=[
                Attachment("Счёт №5.pdf", "application/pdf", data=pdf, size=len(pdf)),
                Attachment("notes.txt", "text/plain", data=b"plain\n", size=6),
            ],
        )
    )
    text, doc1, doc2 = botapi.sent
    assert text.method == "sendMessage" and text.text == "Счёт во вложении"
    assert [d.method for d in (doc1, doc2)] == ["sendDocument", "sendDocument"]
    [upload] = doc1.documents
    assert (upload.filename, upload.content_type, upload.data) == (
        "Счёт №5.pdf",
        "application/pdf",
        pdf,
    )
    assert doc2.documents[0].data == b"plain\n"
    assert len(result.external_ids) == 3


async def test_attachment_only_message(connector: TelegramConnector, botapi: BotAPIServer) -> None:
    await connector.send(reply("", attachments=[Attachment("a.bin", data=b"\x00\x01")]))
    [sent] = botapi.sent
    assert sent.documents[0].data == b"\x00\x01"


async def test_flood_limit_is_a_retry_later_error(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.fail_next("sendMessage", code=429, retry_after=7)
    with pytest.raises(SendError) as caught:
        await connector.send(reply("hello"))
    assert caught.value.retry_after == 7
    assert not caught.value.permanent
    assert "wait 7 s" in str(caught.value)
    assert botapi.sent == []


async def test_server_error_is_transient(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.fail_next("sendMessage", code=500)
    with pytest.raises(SendError) as caught:
        await connector.send(reply("hello"))
    assert not caught.value.permanent
    assert caught.value.retry_after is None
    await connector.send(reply("hello"))
    assert [s.text for s in botapi.sent] == ["hello"]


async def test_dropped_connection_is_transient(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.fail_next("sendMessage", code=0)
    with pytest.raises(SendError) as caught:
        await connector.send(reply("hello"))
    assert not caught.value.permanent
    assert str(caught.value).startswith("Could not reach Telegram")


async def test_blocked_bot_is_permanent(connector: TelegramConnector, botapi: BotAPIServer) -> None:
    botapi.block(CHAT)
    with pytest.raises(SendError) as caught:
        await connector.send(reply("hello"))
    assert caught.value.permanent
    assert str(caught.value) == (
        f"Telegram refused to deliver to chat {CHAT}: bot was blocked by the user."
    )


async def test_unknown_chat_is_permanent(connector: TelegramConnector) -> None:
    with pytest.raises(SendError) as caught:
        await connector.send(reply("hello", to=999))
    assert caught.value.permanent
    assert str(caught.value) == "Telegram refused the message to chat 999: Chat not found."


@pytest.mark.parametrize("address", ["", "ivan@example.com", "group:abc"])
async def test_bad_address_is_permanent(connector: TelegramConnector, address: str) -> None:
    with pytest.raises(SendError, match="is not a Telegram chat id") as caught:
        await connector.send(reply("hello", to=address))
    assert caught.value.permanent


async def test_group_address_is_accepted(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    botapi.add_chat(-100777, "supergroup", title="Клиенты")
    result = await connector.send(reply("hi all", to="group:-100777"))
    assert result.external_ids == [f"tg:-100777:{botapi.sent[0].message_id}"]


async def test_empty_message_is_permanent(connector: TelegramConnector) -> None:
    with pytest.raises(SendError, match="neither text nor attachments") as caught:
        await connector.send(reply("  \n "))
    assert caught.value.permanent


async def test_partial_failure_resumes_without_resending(
    connector: TelegramConnector, botapi: BotAPIServer
) -> None:
    text = "\n\n".join(["А" * 4000, "Б" * 4000, "В" * 4000])
    document = Attachment("log.txt", "text/plain", data=b"log")
    botapi.fail_next("sendMessage", code=502, after=1)
    with pytest.raises(SendError) as caught:
        await connector.send(reply(text, attachments=[document]))
    error = caught.value
    assert not error.permanent
    assert error.sent_parts == 1  # type: ignore[attr-defined]
    assert error.sent_external_ids == [f"tg:{CHAT}:{botapi.sent[0].message_id}"]  # type: ignore[attr-defined]
    assert [s.text for s in botapi.sent] == ["А" * 4000]

    botapi.fail_next("sendDocument", code=429, retry_after=2)
    with pytest.raises(SendError) as caught_again:
        await connector.send(reply(text, attachments=[document], extra={"skip_parts": 1}))
    assert caught_again.value.sent_parts == 3  # type: ignore[attr-defined]
    assert caught_again.value.retry_after == 2

    result = await connector.send(reply(text, attachments=[document], extra={"skip_parts": 3}))
    assert [s.text for s in botapi.sent] == ["А" * 4000, "Б" * 4000, "В" * 4000, None]
    assert botapi.sent[-1].documents[0].data == b"log"
    assert result.external_ids == [f"tg:{CHAT}:{botapi.sent[-1].message_id}"]
    assert "3 sent earlier" in result.detail
