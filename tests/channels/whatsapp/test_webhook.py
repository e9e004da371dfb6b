"""The WhatsApp webhook: handshake, signatures, replays, messages, media, statuses."""

from __future__ import annotations

import hashlib
import logging

import httpx
import pytest

from supportdesk.channels.whatsapp.channel import WhatsAppChannel
from tests.channels.whatsapp.conftest import SECRET, VERIFY, RecordingSink
from tests.peers.graphapi import GraphAPIServer, sign, text_message, webhook_body

Served = tuple[WhatsAppChannel, RecordingSink, str]


async def post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers)


async def test_verify_handshake(served: Served) -> None:
    _wa, _sink, url = served
    async with httpx.AsyncClient() as client:
        ok = await client.get(
            url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY,
                "hub.challenge": "1158201444",
            },
        )
        assert ok.status_code == 200 and ok.text == "1158201444"
        bad = await client.get(
            url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": "nope",
                "hub.challenge": "1158201444",
            },
        )
        assert bad.status_code == 403 and "1158201444" not in bad.text


async def test_signed_message_is_stored_with_name_and_number(served: Served) -> None:
    _wa, sink, url = served
    body = text_message("79001234567", "Где мой заказ?", wamid="wamid.A1", name="Анна")
    resp = await post(url, body, sign(body, SECRET))
    assert resp.status_code == 200
    [msg] = sink.messages
    assert msg.kind == "whatsapp" and msg.external_id == "wa:wamid.A1"
    assert msg.sender_address == "+79001234567" and msg.sender_name == "Анна"
    assert msg.text == "Где мой заказ?" and msg.conversation == "wa:79001234567"
    assert msg.extra["chat_id"] == "79001234567"


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "sha256=" + sign(b"other", SECRET)[7:]],
)
async def test_forged_webhook_is_refused(
    served: Served, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    _wa, sink, url = served
    body = text_message("79001234567", "forged", wamid="wamid.FORGED")
    with caplog.at_level(logging.WARNING):
        resp = await post(url, body, signature)
    assert resp.status_code == 403
    assert sink.messages == []
    assert any("without a valid signature" in r.getMessage() for r in caplog.records)


async def test_signed_with_another_secret_is_refused(served: Served) -> None:
    _wa, sink, url = served
    body = text_message("79001234567", "forged")
    assert (await post(url, body, sign(body, "not-" + SECRET))).status_code == 403
    # a body changed after signing (one byte) is refused too
    good = sign(body, SECRET)
    assert (await post(url, body.replace(b"forged", b"Forged"), good)).status_code == 403
    assert sink.messages == []


async def test_replayed_call_is_ignored(served: Served) -> None:
    _wa, sink, url = served
    body = text_message("79001234567", "once", wamid="wamid.R1")
    for _ in range(3):
        assert (await post(url, body, sign(body, SECRET))).status_code == 200
    assert [m.external_id for m in sink.messages] == ["wa:wamid.R1"]
    assert len(sink.statuses) == 0


async def test_a_failed_commit_is_retried_by_meta(served: Served) -> None:
    _wa, sink, url = served
    body = text_message("79001234567", "retry me", wamid="wamid.T1")
    sink.fail_next = True
    assert (await post(url, body, sign(body, SECRET))).status_code == 503
    assert sink.messages == []
    assert (await post(url, body, sign(body, SECRET))).status_code == 200  # Meta's retry
    assert [m.text for m in sink.messages] == ["retry me"]


async def test_media_is_downloaded_through_the_graph_api(
    served: Served, graph: GraphAPIServer
) -> None:
    _wa, sink, url = served
    pdf = b"%PDF-1.7 receipt"
    doc_id = graph.add_media(pdf, "application/pdf")
    ogg_id = graph.add_media(b"OggS voice", "audio/ogg; codecs=opus")
    img_id = graph.add_media(b"\xff\xd8 tampered", "image/jpeg")
    body = webhook_body(
        contacts=[{"profile": {"name": "Ann"}, "wa_id": "79001234567"}],
        messages=[
            {
                "from": "79001234567",
                "id": "wamid.M1",
                "timestamp": "1764800000",
                "type": "document",
                "document": {
                    "id": doc_id,
                    "mime_type": "application/pdf",
                    "filename": "receipt.pdf",
                    "caption": "my receipt",
                    "sha256": hashlib.sha256(pdf).hexdigest(),
                },
            },
            {
                "from": "79001234567",
                "id": "wamid.M2",
                "timestamp": "1764800001",
                "type": "audio",
                "audio": {"id": ogg_id, "mime_type": "audio/ogg; codecs=opus", "voice": True},
            },
            {
                "from": "79001234567",
                "id": "wamid.M3",
                "timestamp": "1764800002",
                "type": "image",
                "image": {"id": img_id, "mime_type": "image/jpeg", "sha256": "ab" * 32},
            },
            {
                "from": "79001234567",
                "id": "wamid.M4",
                "timestamp": "1764800003",
                "type": "location",
                "location": {"latitude": 55.75, "longitude": 37.61, "name": "Office"},
            },
        ],
    )
    assert (await post(url, body, sign(body, SECRET))).status_code == 200
    doc, voice, image, where = sink.messages
    assert doc.text == "my receipt" and doc.attachments[0].filename == "receipt.pdf"
    assert doc.attachments[0].data == pdf
    assert voice.text == "[voice message]" and voice.attachments[0].data == b"OggS voice"
    assert voice.attachments[0].filename.endswith(".ogg")
    assert image.attachments[0].data is None and "SHA-256" in (image.attachments[0].note or "")
    assert where.text == "Location: Office (55.75, 37.61)"


async def test_statuses_reach_the_desk(served: Served) -> None:
    _wa, sink, url = served
    body = webhook_body(
        statuses=[
            {
                "id": "wamid.OUT1",
                "status": "delivered",
                "timestamp": "1764800000",
                "recipient_id": "79001234567",
                "biz_opaque_callback_data": "outbox:7:0",
            },
            {
                "id": "wamid.OUT1",
                "status": "read",
                "timestamp": "1764800100",
                "recipient_id": "79001234567",
            },
            {
                "id": "wamid.OUT2",
                "status": "failed",
                "timestamp": "1764800100",
                "recipient_id": "79001234567",
                "errors": [{"code": 131026, "title": "Message undeliverable"}],
            },
        ]
    )
    assert (await post(url, body, sign(body, SECRET))).status_code == 200
    assert [(s.external_id, s.status) for s in sink.statuses] == [
        ("wa:wamid.OUT1", "delivered"),
        ("wa:wamid.OUT1", "read"),
        ("wa:wamid.OUT2", "failed"),
    ]
    assert sink.statuses[0].correlation == "outbox:7:0"
    assert sink.statuses[2].error == "131026 Message undeliverable"


async def test_other_numbers_and_junk_are_skipped(served: Served) -> None:
    _wa, sink, url = served
    other = webhook_body(
        phone_number_id="999",
        messages=[
            {"from": "1", "id": "wamid.X", "timestamp": "1", "type": "text", "text": {"body": "x"}}
        ],
    )
    assert (await post(url, other, sign(other, SECRET))).status_code == 200
    junk = b"\xff\xfenot json"
    assert (await post(url, junk, sign(junk, SECRET))).status_code == 400
    weird = b'{"entry": [{"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "1098765"}, "messages": [{"from": "+evil", "id": "w"}, 5, {"from": "1", "id": "wamid.Z", "type": "order"}]}}]}]}'
    assert (await post(url, weird, sign(weird, SECRET))).status_code == 200
    assert [m.text for m in sink.messages] == ["[order: not supported by the helpdesk]"]
