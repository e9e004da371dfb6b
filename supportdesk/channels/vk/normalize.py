"""VK message objects (API 5.199) to InboundMessage: text, attachments, descriptions."""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
from typing import Any

from supportdesk.channels.base import Attachment, ChannelError, InboundMessage

CHAT_PEER_BASE = 2_000_000_000  # peer ids of multi-user chats start here


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def external_id(peer_id: int, cmid: int) -> str:
    return f"vk:{peer_id}:{cmid}"


def is_customer_message(m: dict[str, Any]) -> bool:
    """A private message a person wrote to the community (not ours, not a chat)."""
    try:
        peer, sender = int(m.get("peer_id") or 0), int(m.get("from_id") or 0)
    except (TypeError, ValueError, OverflowError):
        return False
    return not m.get("out") and 0 < sender and 0 < peer < CHAT_PEER_BASE


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # None, "x", inf
        return 0


def _largest(sizes: Any) -> str:
    """The URL of the biggest picture in a list of ``{"url", "width", "height"}``."""
    best, area = "", -1
    for size in sizes if isinstance(sizes, list) else []:
        if not isinstance(size, dict) or not size.get("url"):
            continue
        a = _int(size.get("width")) * _int(size.get("height"))
        if a > area:
            best, area = str(size["url"]), a
    return best


class Wanted:
    """A file to download for an attachment (filled in by the channel)."""

    def __init__(self, attachment: Attachment, url: str) -> None:
        self.attachment = attachment
        self.url = url


def describe(message: dict[str, Any]) -> tuple[list[str], list[Wanted]]:
    """Lines describing what is not plain text, and the files to download."""
    lines: list[str] = []
    files: list[Wanted] = []
    for item in _list(message.get("attachments")):
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "")
        found = item.get(kind)
        obj: dict[str, Any] = found if isinstance(found, dict) else {}
        owner, oid = _int(obj.get("owner_id")), _int(obj.get("id"))
        if kind == "photo":
            url = _largest(obj.get("sizes"))
            name = f"photo_{owner}_{oid}.jpg"
            if url:
                files.append(Wanted(Attachment(filename=name, content_type="image/jpeg"), url))
            else:
                lines.append("[photo]")
        elif kind == "doc":
            title = str(obj.get("title") or f"doc_{owner}_{oid}")
            ext = str(obj.get("ext") or "")
            if ext and not title.lower().endswith("." + ext.lower()):
                title = f"{title}.{ext}"
            ctype = mimetypes.guess_type(title)[0] or "application/octet-stream"
            att = Attachment(filename=title, content_type=ctype, size=_int(obj.get("size")))
            if obj.get("url"):
                files.append(Wanted(att, str(obj["url"])))
            else:
                att.note = "VK gave no address for this document"
                files.append(Wanted(att, ""))
        elif kind == "audio_message":
            seconds = _int(obj.get("duration"))
            lines.append(f"[voice message, {seconds} s]")
            url = str(obj.get("link_ogg") or obj.get("link_mp3") or "")
            ogg = bool(obj.get("link_ogg"))
            name = f"voice_{owner}_{oid}." + ("ogg" if ogg else "mp3")
            ctype = "audio/ogg" if ogg else "audio/mpeg"
            if url:
                files.append(Wanted(Attachment(filename=name, content_type=ctype), url))
            if obj.get("transcript"):
                lines.append(f"Transcript: {obj['transcript']}")
        elif kind == "sticker":
            lines.append("[sticker]")
            url = _largest(obj.get("images") or obj.get("images_with_background"))
            if url:
                sid = _int(obj.get("sticker_id"))
                att = Attachment(filename=f"sticker_{sid}.png", content_type="image/png")
                files.append(Wanted(att, url))
        elif kind == "link":
            title = str(obj.get("title") or "").strip()
            url = str(obj.get("url") or "")
            lines.append(f"Link: {title} {url}".replace("  ", " ").strip())
        elif kind == "wall":
            owner = _int(obj.get("owner_id") or obj.get("to_id") or obj.get("from_id"))
            lines.append(f"Wall post: https://vk.com/wall{owner}_{oid}")
            text = str(obj.get("text") or "").strip()
            if text:
                lines.append("> " + text[:1000].replace("\n", "\n> "))
        elif kind == "video":
            title = str(obj.get("title") or "").strip()
            lines.append(f"Video: https://vk.com/video{owner}_{oid} {title}".strip())
        elif kind == "audio":
            lines.append(f"Audio: {obj.get('artist') or ''} — {obj.get('title') or ''}".strip())
        elif kind == "market":
            lines.append(f"Product: {obj.get('title') or ''} https://vk.com/product{owner}_{oid}")
        elif kind:
            lines.append(f"[{kind.replace('_', ' ')}: not supported by the helpdesk]")
    geo = message.get("geo")
    if isinstance(geo, dict) and isinstance(geo.get("coordinates"), dict):
        c = geo["coordinates"]
        lines.append(f"Location: {c.get('latitude')}, {c.get('longitude')}")
    for fwd in _list(message.get("fwd_messages")):
        if isinstance(fwd, dict):
            text = str(fwd.get("text") or "").strip()
            lines.append("Forwarded: " + (text[:1000] if text else "(no text)"))
    return lines, files


def normalize(
    message: dict[str, Any], *, edited: bool, names: dict[int, tuple[str, str]]
) -> tuple[InboundMessage, list[Wanted]] | None:
    """One customer message to an InboundMessage (files not yet downloaded); None to skip."""
    if not is_customer_message(message):
        return None
    peer = int(message["peer_id"])
    sender = int(message["from_id"])
    cmid = _int(message.get("conversation_message_id")) or _int(message.get("id"))
    if not cmid:
        return None
    text = str(message.get("text") or "")
    lines, files = describe(message)
    if not text and not lines and not files:
        return None  # a service action (chat_invite_user and the like)
    body = "\n".join(part for part in (text, *lines) if part)
    name, screen = names.get(sender, ("", ""))
    reply = message.get("reply_message") if isinstance(message.get("reply_message"), dict) else None
    reply_cmid = _int(reply.get("conversation_message_id")) if reply else 0
    extra: dict[str, Any] = {
        "peer_id": peer,
        "chat_id": peer,  # where replies go (the pipeline's name for it)
        "from_id": sender,
        "message_id": _int(message.get("id")),
        "conversation_message_id": cmid,
        "username": screen or None,
    }
    if message.get("payload"):
        extra["payload"] = str(message["payload"])[:1000]
        try:
            extra["is_start"] = json.loads(str(message["payload"])).get("command") == "start"
        except (ValueError, AttributeError):
            pass
    if edited and message.get("update_time"):
        extra["edit_date"] = dt.datetime.fromtimestamp(
            _int(message["update_time"]), dt.UTC
        ).isoformat()
    date = _int(message.get("date"))
    msg = InboundMessage(
        kind="vk",
        external_id=external_id(peer, cmid),
        sender_address=str(sender),
        sender_name=name,
        text=body,
        sent_at=dt.datetime.fromtimestamp(date, dt.UTC) if date else None,
        in_reply_to=[external_id(peer, reply_cmid)] if reply_cmid else [],
        attachments=[w.attachment for w in files],
        extra=extra,
        edited=edited,
        raw=json.dumps(message, ensure_ascii=False, sort_keys=True).encode(),
    )
    msg.conversation = f"vk:{peer}"
    return msg, files


def guard_int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ChannelError(f"VK sent a {what} that is not a number.") from exc
