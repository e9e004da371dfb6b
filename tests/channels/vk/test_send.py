"""Replies through messages.send: random_id from the outbox row, splitting, files, refusals."""

from __future__ import annotations

import pytest

from supportdesk.channels.base import Attachment, OutboundMessage, SendError
from supportdesk.channels.vk.channel import VkChannel, random_id
from tests.peers.vkapi import VkAPIServer


def reply(text: str, outbox_id: int = 41, to: str = "501", **kw: object) -> OutboundMessage:
    return OutboundMessage(
        kind="vk", to_address=to, text=text, extra={"outbox_id": outbox_id}, **kw
    )  # type: ignore[arg-type]


async def test_reply_is_sent_with_a_random_id_from_the_outbox_row(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    vk.push_message(501, "hi")
    result = await channel.send(reply("Добрый день! Смотрим заказ."))
    [sent] = vk.sent
    assert sent.peer_id == 501 and sent.text == "Добрый день! Смотрим заказ."
    assert sent.random_id == random_id(vk.group_id, "outbox:41", 0)
    assert result.external_ids == [f"vk:501:{sent.cmid}"]


async def test_a_resend_after_a_crash_is_dropped_by_vk(channel: VkChannel, vk: VkAPIServer) -> None:
    vk.push_message(501, "hi")
    first = await channel.send(reply("only once"))
    again = await channel.send(reply("only once"))  # the runner died before marking it sent
    assert len(vk.sent) == 1
    assert again.external_ids == first.external_ids
    other = await channel.send(reply("only once", outbox_id=42))  # another row is another message
    assert len(vk.sent) == 2 and other.external_ids != first.external_ids


async def test_long_text_is_split_and_files_go_with_the_last_part(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    vk.push_message(501, "hi")
    text = ("Абзац. " * 700).strip()  # about 4900 characters
    att = Attachment(filename="label.pdf", content_type="application/pdf", data=b"%PDF label")
    result = await channel.send(reply(text, attachments=[att]))
    assert len(vk.sent) == 2 and len(result.external_ids) == 2
    assert all(len(s.text) <= 4096 for s in vk.sent)
    assert " ".join(s.text for s in vk.sent).split() == text.split()
    assert vk.sent[0].attachments == [] and len(vk.sent[1].attachments) == 1
    doc = vk._docs[vk.sent[1].attachments[0]]
    assert vk.files[doc["url"].rsplit("/", 1)[1]] == b"%PDF label"
    # the resend of a split reply is dropped part by part
    await channel.send(reply(text, attachments=[att]))
    assert len(vk.sent) == 2


async def test_person_who_did_not_allow_messages_is_a_permanent_failure(
    channel: VkChannel, vk: VkAPIServer
) -> None:
    vk.push_message(501, "hi")
    vk.block(501)
    with pytest.raises(SendError) as err:
        await channel.send(reply("hello"))
    assert err.value.permanent and "501" in str(err.value)


async def test_rate_limit_is_retried_then_temporary(channel: VkChannel, vk: VkAPIServer) -> None:
    vk.push_message(501, "hi")
    vk.fail_next("messages.send", 6)
    await channel.send(reply("after one refusal"))
    assert len(vk.sent) == 1
    vk.fail_next("messages.send", 10, times=3)
    with pytest.raises(SendError) as err:
        await channel.send(reply("refused three times", outbox_id=43))
    assert not err.value.permanent


async def test_bad_address_and_empty_message(channel: VkChannel) -> None:
    with pytest.raises(SendError, match="not a VK peer id"):
        await channel.send(reply("x", to="@someone"))
    with pytest.raises(SendError, match="neither text nor attachments"):
        await channel.send(reply("   "))
