"""The VK channel against the stand-in: long polling, failed answers, gaps, edits, media."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from supportdesk.channels.base import ChannelError
from supportdesk.channels.vk.channel import TS_KEY, VkChannel
from tests.peers.vkapi import VkAPIServer


async def first_cursor(channel: VkChannel) -> Any:
    fetched = await channel.fetch(TS_KEY, None, timeout=0)
    assert fetched.messages == []
    return fetched.cursor


async def test_first_poll_then_a_message(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "Здравствуйте, заказ не пришёл")
    fetched = await channel.fetch(TS_KEY, cursor, timeout=5)
    [msg] = fetched.messages
    assert msg.kind == "vk"
    assert msg.external_id == "vk:501:1"
    assert msg.sender_address == "501"
    assert msg.sender_name == "Ivan Petrov"
    assert msg.extra["username"] == "ivan.petrov"
    assert msg.conversation == "vk:501"
    assert msg.text == "Здравствуйте, заказ не пришёл"
    assert msg.raw and b"conversation_message_id" in msg.raw
    assert fetched.cursor["ts"] != cursor["ts"]


async def test_re_poll_with_the_committed_cursor_adds_nothing(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "one")
    vk.push_message(502, "two")
    first = await channel.fetch(TS_KEY, cursor, timeout=5)
    assert [m.text for m in first.messages] == ["one", "two"]
    again = await channel.fetch(TS_KEY, first.cursor, timeout=0)
    assert again.messages == []
    # a cursor that was never committed (a runner killed mid-batch) gets the same ids again
    replay = await channel.fetch(TS_KEY, cursor, timeout=0)
    assert [m.external_id for m in replay.messages] == [m.external_id for m in first.messages]


async def test_our_own_replies_and_chats_are_not_customer_messages(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "hi")
    vk._call("messages.send", {"peer_id": "501", "random_id": "7", "message": "ours"})
    with vk._cond:  # a multi-user chat message
        m = vk._new_message(2_000_000_001, 501, "chat", out=False)
        vk._event("message_new", {"message": m})
    fetched = await channel.fetch(TS_KEY, cursor, timeout=5)
    assert [m.text for m in fetched.messages] == ["hi"]


async def test_expired_key_is_renewed_and_ts_kept(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "before expiry")
    vk.expire_key()
    fetched = await channel.fetch(TS_KEY, cursor, timeout=5)
    assert [m.text for m in fetched.messages] == ["before expiry"]
    assert vk.calls.count("groups.getLongPollServer") == 2


async def test_lost_history_recovers_the_gap(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "seen")
    seen = await channel.fetch(TS_KEY, cursor, timeout=5)
    vk.push_message(501, "missed one")
    vk.push_message(502, "missed two")
    vk.push_edit(501, 1, "seen, then edited in the gap")
    vk.forget_events()  # failed=1: the events were never delivered
    fetched = await channel.fetch(TS_KEY, seen.cursor, timeout=5)
    by_id = {m.external_id: m for m in fetched.messages}
    assert by_id["vk:501:2"].text == "missed one"
    assert by_id["vk:502:1"].text == "missed two"
    assert by_id["vk:501:1"].text == "seen, then edited in the gap"
    assert by_id["vk:501:1"].edited
    assert "messages.getHistory" in vk.calls
    # the cursor moved past the gap: polling again adds nothing, new messages come as usual
    assert (await channel.fetch(TS_KEY, fetched.cursor, timeout=0)).messages == []
    vk.push_message(502, "after")
    after = await channel.fetch(TS_KEY, fetched.cursor, timeout=5)
    assert [m.text for m in after.messages] == ["after"]


async def test_lost_state_gets_new_key_and_ts_and_recovers(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "lost in failed 3")
    vk.lose_state()
    fetched = await channel.fetch(TS_KEY, cursor, timeout=5)
    assert [m.text for m in fetched.messages] == ["lost in failed 3"]
    vk.push_message(501, "next")
    nxt = await channel.fetch(TS_KEY, fetched.cursor, timeout=5)
    assert [m.text for m in nxt.messages] == ["next"]


async def test_edit_comes_with_the_same_id(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(501, "my order is 1234")
    first = await channel.fetch(TS_KEY, cursor, timeout=5)
    vk.push_edit(501, 1, "my order is 1243")
    edit = await channel.fetch(TS_KEY, first.cursor, timeout=5)
    [msg] = edit.messages
    assert msg.edited and msg.external_id == "vk:501:1"
    assert msg.text == "my order is 1243"
    assert "edit_date" in msg.extra


async def test_media_is_downloaded_or_described(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    photo = vk.add_file("photo.jpg", b"\xff\xd8jpeg-bytes")
    small = vk.add_file("photo_s.jpg", b"small")
    doc = vk.add_file("invoice.pdf", b"%PDF-1.4 invoice")
    voice = vk.add_file("voice.ogg", b"OggS voice")
    sticker = vk.add_file("sticker.png", b"\x89PNG sticker")
    vk.push_message(
        501,
        "see attached",
        attachments=[
            {
                "type": "photo",
                "photo": {
                    "id": 1,
                    "owner_id": 501,
                    "sizes": [
                        {"type": "s", "url": small, "width": 75, "height": 50},
                        {"type": "w", "url": photo, "width": 1280, "height": 960},
                    ],
                },
            },
            {
                "type": "doc",
                "doc": {
                    "id": 2,
                    "owner_id": 501,
                    "title": "invoice",
                    "ext": "pdf",
                    "size": 16,
                    "url": doc,
                },
            },
            {
                "type": "audio_message",
                "audio_message": {
                    "id": 3,
                    "owner_id": 501,
                    "duration": 7,
                    "link_ogg": voice,
                    "link_mp3": voice,
                },
            },
            {
                "type": "sticker",
                "sticker": {
                    "sticker_id": 9,
                    "product_id": 1,
                    "images": [{"url": sticker, "width": 128, "height": 128}],
                },
            },
            {"type": "link", "link": {"url": "https://example.com/faq", "title": "FAQ"}},
            {"type": "wall", "wall": {"id": 77, "owner_id": -229000001, "text": "Big sale"}},
            {"type": "poll", "poll": {"id": 5}},
        ],
    )
    [msg] = (await channel.fetch(TS_KEY, cursor, timeout=5)).messages
    files = {a.filename: a for a in msg.attachments}
    assert files["photo_501_1.jpg"].data == b"\xff\xd8jpeg-bytes"  # the largest size
    assert files["invoice.pdf"].data == b"%PDF-1.4 invoice"
    assert files["invoice.pdf"].content_type == "application/pdf"
    assert files["voice_501_3.ogg"].data == b"OggS voice"
    assert files["sticker_9.png"].data == b"\x89PNG sticker"
    assert "[voice message, 7 s]" in msg.text
    assert "[sticker]" in msg.text
    assert "Link: FAQ https://example.com/faq" in msg.text
    assert "Wall post: https://vk.com/wall-229000001_77" in msg.text and "> Big sale" in msg.text
    assert "[poll: not supported by the helpdesk]" in msg.text


async def test_a_missing_file_is_noted_not_fatal(channel: VkChannel, vk: VkAPIServer) -> None:
    cursor = await first_cursor(channel)
    vk.push_message(
        501,
        "",
        attachments=[
            {
                "type": "doc",
                "doc": {
                    "id": 2,
                    "owner_id": 501,
                    "title": "gone.txt",
                    "url": f"{vk.base}/files/nothing-here",
                },
            }
        ],
    )
    [msg] = (await channel.fetch(TS_KEY, cursor, timeout=5)).messages
    [att] = msg.attachments
    assert att.data is None and att.note and "404" in att.note


async def test_token_never_logged_nor_in_errors(
    channel: VkChannel, vk: VkAPIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cursor = await first_cursor(channel)
    vk.push_message(501, "hello")
    vk.lose_state()
    await channel.fetch(TS_KEY, cursor, timeout=5)
    vk.fail_next("messages.getConversations", 5)
    vk.lose_state()
    with pytest.raises(ChannelError) as err:
        await channel.fetch(TS_KEY, cursor, timeout=5)
    assert "token" in str(err.value) and vk.token not in str(err.value)
    assert all(vk.token not in r.getMessage() for r in caplog.records)
    assert vk.token not in repr(channel.config) and vk.token not in repr(channel._api)


async def test_wrong_token_is_one_sentence(
    vk: VkAPIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from tests.channels.vk.conftest import TOKEN_ENV, config_for

    monkeypatch.setenv(TOKEN_ENV, "wrong")
    ch = VkChannel(config_for(vk), home=tmp_path, desk_name="Acme")
    try:
        with pytest.raises(ChannelError, match="rejected the community token of channel vk"):
            await ch.fetch(TS_KEY, None, timeout=0)
    finally:
        await ch.close()
