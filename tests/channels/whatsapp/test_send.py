"""Replies through the Cloud API: text, files, templates, the 24-hour window, refusals."""

from __future__ import annotations

import time

import pytest

from supportdesk.channels.base import Attachment, OutboundMessage, SendError
from supportdesk.channels.whatsapp.channel import WhatsAppChannel
from tests.peers.graphapi import GraphAPIServer


def reply(text: str = "", outbox_id: int = 5, **extra: object) -> OutboundMessage:
    return OutboundMessage(
        kind="whatsapp",
        to_address="+79001234567",
        text=text,
        extra={"outbox_id": outbox_id, **extra},
    )


async def test_reply_inside_the_window(wa: WhatsAppChannel, graph: GraphAPIServer) -> None:
    graph.customer_wrote("79001234567")
    result = await wa.send(reply("Здравствуйте! Заказ в пути."))
    [sent] = graph.sent
    assert sent.to == "79001234567" and sent.text == "Здравствуйте! Заказ в пути."
    assert sent.body["biz_opaque_callback_data"] == "outbox:5:0"
    assert sent.body["text"]["preview_url"] is False
    assert result.external_ids == [f"wa:{sent.wamid}"]


async def test_outside_the_window_only_a_template(
    wa: WhatsAppChannel, graph: GraphAPIServer
) -> None:
    graph.customer_wrote("79001234567", time.time() - 25 * 3600)
    with pytest.raises(SendError) as err:
        await wa.send(reply("free text"))
    assert err.value.permanent and "24-hour" in str(err.value)
    assert graph.sent == []
    result = await wa.send(reply(approved_template="order_update", template_params=["#1234"]))
    [sent] = graph.sent
    assert sent.body["template"] == {
        "name": "order_update",
        "language": {"code": "en"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1234"}]}],
    }
    assert result.external_ids == [f"wa:{sent.wamid}"]
    with pytest.raises(SendError, match="not an approved template"):
        await wa.send(reply(approved_template="marketing_blast"))


async def test_window_known_to_the_desk_is_checked_before_the_api(
    wa: WhatsAppChannel, graph: GraphAPIServer
) -> None:
    graph.customer_wrote("79001234567")
    with pytest.raises(SendError, match="24-hour"):
        await wa.send(reply("late", window_closes_at="2020-01-01T00:00:00+00:00"))
    assert graph.requests == []


async def test_files_are_uploaded_then_sent(wa: WhatsAppChannel, graph: GraphAPIServer) -> None:
    graph.customer_wrote("79001234567")
    att = Attachment(filename="invoice.pdf", content_type="application/pdf", data=b"%PDF inv")
    out = OutboundMessage(
        kind="whatsapp",
        to_address="79001234567",
        text="Счёт во вложении",
        attachments=[att],
        extra={"outbox_id": 9},
    )
    result = await wa.send(out)
    text, doc = graph.sent
    assert text.text == "Счёт во вложении"
    assert doc.body["type"] == "document" and doc.body["document"]["filename"] == "invoice.pdf"
    assert graph.media[doc.body["document"]["id"]][0] == b"%PDF inv"
    assert doc.body["biz_opaque_callback_data"] == "outbox:9:1"
    assert len(result.external_ids) == 2


async def test_bad_number_and_bad_token(wa: WhatsAppChannel, graph: GraphAPIServer) -> None:
    with pytest.raises(SendError, match="not a WhatsApp number"):
        await wa.send(OutboundMessage(kind="whatsapp", to_address="ann@example.com", text="x"))
    graph.token = "rotated"
    graph.customer_wrote("79001234567")
    with pytest.raises(SendError, match="rejected the access token") as err:
        await wa.send(reply("x"))
    assert not err.value.permanent
