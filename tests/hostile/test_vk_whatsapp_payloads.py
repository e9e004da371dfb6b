"""Whatever a VK or WhatsApp payload holds, the parsers return messages or skip: never raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.channels.vk.normalize import normalize
from supportdesk.channels.whatsapp.webhook import message, parse, signature_ok, verify_challenge

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "photo",
                    "doc",
                    "sizes",
                    "url",
                    "text",
                    "from",
                    "id",
                    "peer_id",
                    "from_id",
                    "conversation_message_id",
                    "attachments",
                    "messages",
                    "statuses",
                    "entry",
                    "changes",
                    "value",
                    "metadata",
                    "phone_number_id",
                    "contacts",
                    "profile",
                    "wall",
                    "link",
                    "audio_message",
                    "sticker",
                    "images",
                    "geo",
                    "fwd_messages",
                    "reply_message",
                    "context",
                    "interactive",
                    "errors",
                    "timestamp",
                    "field",
                    "date",
                    "update_time",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_vk_message_objects_never_raise(obj: Any) -> None:
    if isinstance(obj, dict):
        for extra in ({}, {"peer_id": 501, "from_id": 501, "conversation_message_id": 3}):
            made = normalize({**obj, **extra}, edited=False, names={})
            if made is not None:
                msg, files = made
                assert msg.external_id.startswith("vk:")
                assert all(isinstance(w.url, str) for w in files)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_whatsapp_payloads_never_raise(obj: Any) -> None:
    wrapped = {"entry": [{"changes": [{"field": "messages", "value": obj}]}]}
    for payload in (obj, wrapped):
        parsed = parse(payload, "1098765")
        for msg, _media in parsed.messages:
            assert msg.sender_address.startswith("+") and msg.sender_address[1:].isdigit()


@given(st.binary(max_size=200), st.text(max_size=80))
def test_signature_check_never_raises(body: bytes, header: str) -> None:
    assert signature_ok(body, header, "secret") in (True, False)
    assert (
        verify_challenge({"hub.mode": "subscribe", "hub.verify_token": header}, "v") in (None,)
        or header == "v"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "text",
            "image",
            "document",
            "audio",
            "sticker",
            "location",
            "contacts",
            "interactive",
            "button",
            "reaction",
            "order",
            "unknown",
        ]
    ),
    json_values,
    json_values,
)
def test_whatsapp_messages_of_every_type_never_raise(kind: str, body: Any, contacts: Any) -> None:
    m = {
        "from": "79001234567",
        "id": "wamid.X",
        "type": kind,
        kind: body,
        "contacts": contacts,
        "context": body,
    }
    made = message(m, {})
    assert made is not None and made[0].external_id == "wa:wamid.X"
