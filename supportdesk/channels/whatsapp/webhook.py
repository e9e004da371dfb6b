"""The WhatsApp webhook as plain functions: the verify handshake, the signature, the payload.

Meta signs every POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>``
over the exact bytes sent; :func:`signature_ok` compares in constant time. The payload is
``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {"metadata": {"phone_number_id"}, "contacts", "messages", "statuses"}}]}]}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from supportdesk.channels.base import Attachment, DeliveryReport, InboundMessage

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_EXT = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "application/pdf": "pdf",
}


def verify_challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when the handshake is ours, else None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    given = params.get("hub.verify_token", "")
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    challenge = params.get("hub.challenge", "")
    return challenge if challenge.isascii() and 0 < len(challenge) <= 256 else None


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """True when ``header`` is ``sha256=`` + the HMAC of ``body`` under the app secret."""
    if not header or not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len("sha256=") :].strip().lower().encode())


class ReplayGuard:
    """Bodies already handled (their SHA-256), the newest ``size`` kept: a replayed call is
    answered 200 and ignored. Messages are deduplicated by their ``wamid`` besides."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def seen(self, digest: str) -> bool:
        return digest in self._seen

    def remember(self, digest: str) -> None:
        self._seen[digest] = None
        self._seen.move_to_end(digest)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


Status = DeliveryReport  # the webhook's "statuses"


@dataclass
class MediaWanted:
    attachment: Attachment
    media_id: str
    sha256: str = ""


@dataclass
class Parsed:
    messages: list[tuple[InboundMessage, list[MediaWanted]]] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _when(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _str(value: Any, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse(payload: Any, phone_number_id: str) -> Parsed:
    """Messages and statuses for our number; anything else in the payload is skipped."""
    out = Parsed()
    if not isinstance(payload, dict):
        return out
    for entry in _list(payload.get("entry")):
        if not isinstance(entry, dict):
            continue
        for change in _list(entry.get("changes")):
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            meta = _dict(value.get("metadata"))
            if str(meta.get("phone_number_id") or "") != phone_number_id:
                continue
            names = {
                str(c.get("wa_id")): _str((c.get("profile") or {}).get("name"), 200)
                for c in _list(value.get("contacts"))
                if isinstance(c, dict) and isinstance(c.get("profile") or {}, dict)
            }
            for m in _list(value.get("messages")):
                if isinstance(m, dict):
                    made = message(m, names)
                    if made is not None:
                        out.messages.append(made)
            for s in _list(value.get("statuses")):
                if isinstance(s, dict) and s.get("id"):
                    errors = s.get("errors") if isinstance(s.get("errors"), list) else []
                    first = errors[0] if errors and isinstance(errors[0], dict) else {}
                    out.statuses.append(
                        Status(
                            external_id=f"wa:{_str(s['id'], 200)}",
                            status=_str(s.get("status"), 20),
                            at=_when(s.get("timestamp")),
                            recipient=_str(s.get("recipient_id"), 40),
                            correlation=_str(s.get("biz_opaque_callback_data"), 512),
                            error=(
                                f"{first.get('code', '')} {_str(first.get('title'), 300)}".strip()
                                if first
                                else ""
                            ),
                        )
                    )
    return out


def message(
    m: dict[str, Any], names: dict[str, str]
) -> tuple[InboundMessage, list[MediaWanted]] | None:
    wamid = _str(m.get("id"), 200)
    sender = _str(m.get("from"), 40)
    if not wamid or not sender.isdigit():
        return None
    kind = _str(m.get("type"), 40)
    lines: list[str] = []
    media: list[MediaWanted] = []
    body = _dict(m.get(kind))
    if kind == "text":
        lines.append(_str(body.get("body")))
    elif kind in MEDIA_TYPES:
        caption = _str(body.get("caption"))
        if caption:
            lines.append(caption)
        mime = _str(body.get("mime_type"), 100).split(";")[0].strip() or "application/octet-stream"
        media_id = _str(body.get("id"), 200)
        name = _str(body.get("filename"), 255) or f"{kind}_{media_id}.{_EXT.get(mime, 'bin')}"
        if kind == "audio" and body.get("voice"):
            lines.append("[voice message]")
        if kind == "sticker":
            lines.append("[sticker]")
        if media_id:
            media.append(
                MediaWanted(
                    Attachment(filename=name, content_type=mime),
                    media_id,
                    _str(body.get("sha256"), 128),
                )
            )
    elif kind == "location":
        where = ", ".join(x for x in (_str(body.get("name")), _str(body.get("address"))) if x)
        lines.append(
            f"Location: {where + ' ' if where else ''}({body.get('latitude')}, {body.get('longitude')})"
        )
    elif kind == "contacts":
        for c in _list(m.get("contacts")):
            if not isinstance(c, dict):
                continue
            name = _str(_dict(c.get("name")).get("formatted_name"), 200)
            phones = ", ".join(
                _str(p.get("phone"), 40) for p in _list(c.get("phones")) if isinstance(p, dict)
            )
            lines.append(f"Contact: {name} {phones}".strip())
    elif kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or {}
        lines.append(_str(reply.get("title")) if isinstance(reply, dict) else "")
    elif kind == "button":
        lines.append(_str(body.get("text")))
    elif kind == "reaction":
        lines.append(f"[reaction {_str(body.get('emoji'), 20)}]".replace(" ]", "]"))
    else:
        lines.append(f"[{kind or 'unknown'}: not supported by the helpdesk]")
    text = "\n".join(line for line in lines if line)
    context = _dict(m.get("context"))
    replied = _str(context.get("id"), 200) or (
        _str(body.get("message_id"), 200) if kind == "reaction" else ""
    )
    msg = InboundMessage(
        kind="whatsapp",
        external_id=f"wa:{wamid}",
        sender_address="+" + sender,
        sender_name=names.get(sender, ""),
        text=text,
        sent_at=_when(m.get("timestamp")),
        in_reply_to=[f"wa:{replied}"] if replied else [],
        attachments=[w.attachment for w in media],
        extra={"chat_id": sender, "wa_id": sender, "type": kind},
        raw=json.dumps(m, ensure_ascii=False, sort_keys=True).encode(),
    )
    msg.conversation = f"wa:{sender}"
    return msg, media
