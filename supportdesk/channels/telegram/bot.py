"""Telegram Bot API client: long-polls updates and sends replies, on python-telegram-bot.

Long because: normalising every kind of update (text, media, contacts,
buttons, edits, groups) and the send path (splitting, files, error wording) share the Bot API
objects and its error classes; ``channel.py`` is the Channel on top of it.

The connector owns no cursor.  :meth:`TelegramConnector.fetch` makes exactly one ``getUpdates``
call with the offset the caller passes: that call confirms every update below the offset to
Telegram.  It returns the normalized messages and the next offset, which the caller commits
together with the messages and passes to the next ``fetch`` -- commit first, confirm second, so
a crash between the two re-delivers updates (deduplicated on ``tg:<chat>:<message>``) instead of
losing them.

Outgoing text is sent without ``parse_mode``: nothing an agent types is read as markup.  Long
text is split into parts of at most 4096 UTF-16 code units; a failure reports how many parts went
out (``SendError.sent_parts``) and ``extra["skip_parts"]`` resumes after them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import httpx
from telegram import (
    Animation,
    Audio,
    Bot,
    CallbackQuery,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    PhotoSize,
    Sticker,
    Update,
    Video,
    VideoNote,
    Voice,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from supportdesk.channels.base import (
    Attachment,
    ChannelError,
    InboundMessage,
    OutboundMessage,
    SendAborted,
    SendError,
    SendResult,
)

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096  # Bot API limit for one text message, in UTF-16 code units
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
GROUP_TYPES = frozenset({"group", "supergroup", "channel"})
# Service messages (joins, pins, ...) carry none of these and are skipped.
UNSUPPORTED_CONTENT = (
    "poll",
    "dice",
    "game",
    "invoice",
    "story",
    "paid_media",
    "successful_payment",
    "passport_data",
    "giveaway",
)

# Loggers that may write request URLs, which carry the bot token (httpx logs every request at
# INFO, PTB logs its base URL at DEBUG).
_URL_LOGGERS = (
    "httpx",
    "telegram.Bot",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
)


class _TokenScrubber(logging.Filter):
    """Replaces known bot tokens in log records with ``<token>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.tokens:
            text = record.getMessage()
            scrubbed = text
            for token in self.tokens:
                scrubbed = scrubbed.replace(token, "<token>")
            if scrubbed != text:
                record.msg, record.args = scrubbed, ()
        return True


_SCRUBBER = _TokenScrubber()
for _name in _URL_LOGGERS:
    logging.getLogger(_name).addFilter(_SCRUBBER)


_Media = PhotoSize | Document | Voice | Audio | Video | VideoNote | Animation | Sticker


@dataclass
class TelegramSettings:
    """How to reach one bot.  ``file_url`` defaults to ``api_url`` with its trailing ``/bot``
    replaced by ``/file/bot`` (the layout of api.telegram.org and of telegram-bot-api)."""

    token: str
    api_url: str = "https://api.telegram.org/bot"
    file_url: str | None = None
    allow_groups: bool = False
    download_limit: int = BOT_API_DOWNLOAD_LIMIT

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        if self.file_url is None:
            if not self.api_url.endswith("/bot"):
                raise ChannelError(
                    f"Cannot derive the Telegram file URL from api_url {self.api_url!r} "
                    "(it does not end in /bot); set file_url as well."
                )
            self.file_url = self.api_url[: -len("/bot")] + "/file/bot"
        self.file_url = self.file_url.rstrip("/")

    def __repr__(self) -> str:  # never show the token
        return (
            f"TelegramSettings(token='***', api_url={self.api_url!r}, "
            f"file_url={self.file_url!r}, allow_groups={self.allow_groups!r}, "
            f"download_limit={self.download_limit!r})"
        )


# --------------------------------------------------------------------------- text splitting


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _extends(ch: str) -> bool:
    """True when ``ch`` belongs to the character before it (never start a part with it)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp == 0x200D  # zero width joiner
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (flags of regions)
        or 0x1160 <= cp <= 0x11FF  # Hangul conjoining vowels and final consonants
    )


def _is_boundary(text: str, i: int) -> bool:
    """May ``text`` be cut between ``text[i-1]`` and ``text[i]`` without breaking a character
    as the reader sees it (combining marks, ZWJ emoji, flags, CR LF)?"""
    if i <= 0 or i >= len(text):
        return True
    before, after = text[i - 1], text[i]
    if _extends(after) or ord(before) == 0x200D:
        return False
    if before == "\r" and after == "\n":
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        j = i - 1
        while j >= 0 and _is_regional_indicator(text[j]):
            run += 1
            j -= 1
        return run % 2 == 0
    return True


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 code units.

    Prefers a paragraph break, then a line break, then a space in the second half of a part;
    otherwise cuts between two user-perceived characters.  Whitespace-only parts are dropped.
    The result depends only on ``text`` and ``limit`` (resuming with ``skip_parts`` relies on it).
    """
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        # The longest prefix that fits.
        used = 0
        fit = 0
        for ch in rest:
            used += 2 if ord(ch) > 0xFFFF else 1
            if used > limit:
                break
            fit += 1
        window = rest[:fit]
        cut = -1
        skip = 0
        for sep in ("\n\n", "\n", " "):
            pos = window.rfind(sep)
            while pos >= fit // 2 and not (
                _is_boundary(rest, pos) and _is_boundary(rest, pos + len(sep))
            ):
                pos = window.rfind(sep, 0, pos)
            if pos >= fit // 2:
                cut, skip = pos, len(sep)
                break
        if cut < 0:
            cut = fit
            while cut > 0 and not _is_boundary(rest, cut):
                cut -= 1
            if cut == 0:  # one "character" longer than the limit: cut between code points
                cut = fit
        parts.append(rest[:cut])
        rest = rest[cut + skip :]
    parts.append(rest)
    return [part for part in parts if part.strip()]


# --------------------------------------------------------------------------- helpers


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


def update_bytes(update: Update) -> bytes:
    """The update as the Bot API sent it (every field, unknown ones too), for the raw ledger."""
    return json.dumps(update.to_dict(), ensure_ascii=False, sort_keys=True, default=str).encode()


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


def _chat_id(address: str) -> int | str:
    """``"123"``, ``"-100123"``, ``"group:-100123"`` or ``"@channel"`` to a Bot API chat id."""
    value = address.strip().removeprefix("group:")
    try:
        return int(value)
    except ValueError:
        if value.startswith("@") and len(value) > 1:
            return value
    raise SendError(f"{address!r} is not a Telegram chat id.", permanent=True)


def _keyboard(buttons: Any) -> InlineKeyboardMarkup:
    try:
        rows = [
            [
                InlineKeyboardButton(
                    text=str(button["text"]), callback_data=str(button["callback_data"])
                )
                for button in row
            ]
            for row in buttons
        ]
    except (TypeError, KeyError) as exc:
        raise SendError(
            "Inline buttons must be rows of {'text', 'callback_data'} objects.", permanent=True
        ) from exc
    return InlineKeyboardMarkup(rows)


class TelegramConnector:
    """One bot.  Use ``async with TelegramConnector(settings) as tg:`` or ``start()``/``close()``.

    ``fetch()`` and ``send()`` may run concurrently (long polling has its own connection pool).
    """

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings
        if not settings.token or not settings.token.strip():
            raise ChannelError("No Telegram bot token is configured.")
        _SCRUBBER.tokens.add(settings.token.strip())
        self._start_lock = asyncio.Lock()
        try:
            self._bot = Bot(
                settings.token.strip(),
                base_url=settings.api_url,
                base_file_url=settings.file_url or "",
                request=HTTPXRequest(
                    connection_pool_size=8,
                    connect_timeout=10.0,
                    read_timeout=30.0,
                    write_timeout=30.0,
                    media_write_timeout=120.0,
                    pool_timeout=10.0,
                ),
                get_updates_request=HTTPXRequest(
                    connection_pool_size=1,
                    connect_timeout=10.0,
                    read_timeout=10.0,  # PTB adds the long-poll timeout to this
                    pool_timeout=10.0,
                ),
            )
        except InvalidToken as exc:
            raise ChannelError("The configured Telegram bot token is malformed.") from exc
        self._started = False
        self.username: str | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Open the HTTP pools and check the token (getMe).  Polling needs no webhook, so a
        webhook left by another program is removed (pending updates are kept)."""
        async with self._start_lock:
            if self._started:
                return
            try:
                await self._bot.initialize()
                self.username = self._bot.username
                await self._bot.delete_webhook(drop_pending_updates=False)
            except TelegramError as exc:
                await self._bot.shutdown()
                raise self._channel_error(exc, "connect to") from exc
            self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._bot.shutdown()

    async def __aenter__(self) -> TelegramConnector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _ensure_started(self) -> None:
        if not self._started:
            await self.start()

    async def check(self) -> str:
        """Ask Telegram who the bot is; returns its username (e.g. ``acme_support_bot``)."""
        await self._ensure_started()
        try:
            me = await self._bot.get_me()
        except TelegramError as exc:
            raise self._channel_error(exc, "reach") from exc
        self.username = me.username
        return me.username or str(me.id)

    def _scrub(self, text: str) -> str:
        return text.replace(self.settings.token.strip(), "<token>")

    def _channel_error(self, exc: TelegramError, doing: str) -> ChannelError:
        """One clear sentence for a failed call; never contains the token."""
        if isinstance(exc, InvalidToken):
            return ChannelError("Telegram rejected the bot token.")
        if isinstance(exc, Conflict):
            if "webhook" in exc.message.lower():
                return ChannelError(
                    "Telegram refuses long polling while a webhook is set for this bot."
                )
            return ChannelError(
                "Another program is already receiving updates for this Telegram bot; "
                "only one may poll at a time."
            )
        if isinstance(exc, RetryAfter):
            wait = _seconds(exc.retry_after)
            error = ChannelError(f"Telegram asks to wait {wait:g} s before the next request.")
            error.retry_after = wait  # type: ignore[attr-defined]
            return error
        if isinstance(exc, BadRequest):  # a NetworkError subclass in PTB: test it first
            return ChannelError(f"Telegram refused the request: {self._scrub(exc.message)}.")
        if isinstance(exc, TimedOut):
            return ChannelError(f"Telegram at {self.settings.api_url} did not answer in time.")
        if isinstance(exc, NetworkError):
            reason = self._scrub(exc.message).rstrip(".")
            return ChannelError(f"Could not {doing} Telegram at {self.settings.api_url}: {reason}.")
        return ChannelError(f"Telegram refused the request: {self._scrub(exc.message)}.")

    # ------------------------------------------------------------------ inbound

    async def fetch(
        self,
        offset: int | None,
        timeout: float,  # noqa: ASYNC109 -- the long-poll duration sent to Telegram
    ) -> tuple[list[InboundMessage], int | None]:
        """One long-poll: confirm everything below ``offset``, wait up to ``timeout`` seconds.

        Returns the normalized messages and the offset to pass next time (last update id + 1;
        unchanged when nothing arrived).  Updates of other kinds, service messages and (unless
        allowed) group messages yield nothing but still move the offset.
        """
        await self._ensure_started()
        try:
            updates = await self._bot.get_updates(
                offset=offset,
                timeout=max(0, math.ceil(timeout)),
                limit=100,
                allowed_updates=list(ALLOWED_UPDATES),
            )
        except TelegramError as exc:
            raise self._channel_error(exc, "fetch updates from") from exc
        messages: list[InboundMessage] = []
        next_offset = offset
        for update in updates:
            message = await self._normalize(update)
            if message is not None:
                messages.append(message)
            next_offset = update.update_id + 1
        return messages, next_offset

    async def _normalize(self, update: Update) -> InboundMessage | None:
        if update.callback_query is not None:
            return self._normalize_callback(update, update.callback_query)
        edited = update.edited_message is not None
        message = update.message or update.edited_message
        if message is None:
            return None  # my_chat_member and other kinds: nothing to ingest
        chat = message.chat
        chat_type = str(chat.type)
        is_group = chat_type in GROUP_TYPES
        if is_group and not self.settings.allow_groups:
            return None
        user = message.from_user
        text = message.text or message.caption or ""
        extra: dict[str, Any] = {
            "chat_id": chat.id,
            "message_id": message.message_id,
            "chat_type": chat_type,
            "username": user.username if user else chat.username,
            "chat_title": chat.title,
            "reply_to_message_id": (
                message.reply_to_message.message_id if message.reply_to_message else None
            ),
            "update_id": update.update_id,
            "is_start": text.startswith("/start"),
            "group": is_group,
        }
        if extra["is_start"]:
            extra["start_param"] = text[len("/start") :].strip()
        if message.media_group_id:
            extra["media_group_id"] = message.media_group_id
        if edited and message.edit_date:
            extra["edit_date"] = message.edit_date.isoformat()

        descriptions: list[str] = []
        if message.contact is not None:
            contact = message.contact
            extra["contact"] = {
                "phone_number": contact.phone_number,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "user_id": contact.user_id,
            }
            descriptions.append(
                f"Contact: {_full_name(contact.first_name, contact.last_name)} "
                f"{contact.phone_number}".strip()
            )
        if message.venue is not None:
            venue = message.venue
            loc = venue.location
            extra["location"] = {"latitude": loc.latitude, "longitude": loc.longitude}
            descriptions.append(
                f"Location: {venue.title}, {venue.address} ({loc.latitude}, {loc.longitude})"
            )
        elif message.location is not None:
            loc = message.location
            extra["location"] = {"latitude": loc.latitude, "longitude": loc.longitude}
            descriptions.append(f"Location: {loc.latitude}, {loc.longitude}")
        if message.sticker is not None and not text:
            emoji = message.sticker.emoji
            descriptions.append(f"[sticker {emoji}]" if emoji else "[sticker]")
        for kind in UNSUPPORTED_CONTENT:
            if getattr(message, kind, None):
                descriptions.append(f"[{kind.replace('_', ' ')}: not supported by the helpdesk]")
                break

        attachments = await self._attachments(message)
        if not text and not descriptions and not attachments:
            return None  # a service message (member joined, pinned, ...)
        body = "\n".join(part for part in (text, *descriptions) if part)

        if is_group:
            sender_address = f"group:{chat.id}"
        else:
            sender_address = str(user.id if user else chat.id)
        sender_name = (
            _full_name(user.first_name, user.last_name)
            if user
            else (chat.title or _full_name(chat.first_name, chat.last_name))
        )
        reply_id = extra["reply_to_message_id"]
        return InboundMessage(
            kind="telegram",
            external_id=f"tg:{chat.id}:{message.message_id}",
            sender_address=sender_address,
            sender_name=sender_name,
            subject="",
            text=body,
            sent_at=message.date.astimezone(dt.UTC),
            in_reply_to=[f"tg:{chat.id}:{reply_id}"] if reply_id is not None else [],
            attachments=attachments,
            extra=extra,
            edited=edited,
            raw=update_bytes(update),
            conversation=str(chat.id),  # the chat: its open ticket takes the message
        )

    def _normalize_callback(self, update: Update, query: CallbackQuery) -> InboundMessage | None:
        user = query.from_user
        carrier = query.message  # the bot's message that had the button; None for inline mode
        chat = carrier.chat if carrier is not None else None
        chat_id = chat.id if chat is not None else user.id
        chat_type = str(chat.type) if chat is not None else "private"
        is_group = chat_type in GROUP_TYPES
        if is_group and not self.settings.allow_groups:
            return None
        return InboundMessage(
            kind="telegram",
            external_id=f"tg:{chat_id}:callback:{query.id}",
            sender_address=f"group:{chat_id}" if is_group else str(user.id),
            sender_name=_full_name(user.first_name, user.last_name),
            subject="",
            text="",
            sent_at=dt.datetime.now(dt.UTC),
            conversation=str(chat_id),
            extra={
                "chat_id": chat_id,
                "message_id": carrier.message_id if carrier is not None else None,
                "chat_type": chat_type,
                "username": user.username,
                "chat_title": chat.title if chat is not None else None,
                "reply_to_message_id": None,
                "update_id": update.update_id,
                "is_start": False,
                "group": is_group,
                "callback_data": query.data,
                "callback_query_id": query.id,
            },
        )

    def _media_of(self, message: Message) -> list[tuple[_Media, str, str]]:
        """(file object, file name, content type) for each downloadable file of a message."""
        found: list[tuple[_Media, str, str]] = []
        if message.photo:
            photo = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
            found.append((photo, f"photo_{photo.file_unique_id}.jpg", "image/jpeg"))
        if message.animation is not None:  # Telegram also sends it as a document: skip that
            anim = message.animation
            name = anim.file_name or f"animation_{anim.file_unique_id}.mp4"
            found.append((anim, name, anim.mime_type or "video/mp4"))
        elif message.document is not None:
            doc = message.document
            name = doc.file_name or f"document_{doc.file_unique_id}"
            found.append((doc, name, doc.mime_type or "application/octet-stream"))
        if message.voice is not None:
            voice = message.voice
            found.append(
                (voice, f"voice_{voice.file_unique_id}.ogg", voice.mime_type or "audio/ogg")
            )
        if message.audio is not None:
            audio = message.audio
            name = audio.file_name or f"audio_{audio.file_unique_id}.mp3"
            found.append((audio, name, audio.mime_type or "audio/mpeg"))
        if message.video is not None:
            video = message.video
            name = video.file_name or f"video_{video.file_unique_id}.mp4"
            found.append((video, name, video.mime_type or "video/mp4"))
        if message.video_note is not None:
            note = message.video_note
            found.append((note, f"video_note_{note.file_unique_id}.mp4", "video/mp4"))
        if message.sticker is not None:
            sticker = message.sticker
            if sticker.is_animated:
                ext, ctype = "tgs", "application/x-tgsticker"
            elif sticker.is_video:
                ext, ctype = "webm", "video/webm"
            else:
                ext, ctype = "webp", "image/webp"
            found.append((sticker, f"sticker_{sticker.file_unique_id}.{ext}", ctype))
        return found

    async def _attachments(self, message: Message) -> list[Attachment]:
        result: list[Attachment] = []
        limit = self.settings.download_limit
        for media, filename, content_type in self._media_of(message):
            size = media.file_size or 0
            attachment = Attachment(filename=filename, content_type=content_type, size=size)
            result.append(attachment)
            if size > limit:
                attachment.note = (
                    f"file of {_megabytes(size)} MB is over the Bot API download limit, "
                    "not downloaded"
                )
                continue
            try:
                tg_file = await self._bot.get_file(media.file_id)
                data = bytes(await tg_file.download_as_bytearray())
            except BadRequest as exc:
                if "too big" in exc.message.lower():
                    shown = f"of {_megabytes(size)} MB " if size else ""
                    attachment.note = (
                        f"file {shown}is over the Bot API download limit, not downloaded"
                    )
                else:  # expired or invalid file id: retrying cannot help
                    attachment.note = f"Telegram did not hand out the file: {exc.message}"
                continue
            except TelegramError as exc:  # network trouble: fail the batch, it is re-fetched
                raise self._channel_error(exc, "download a file from") from exc
            attachment.data = data
            attachment.size = len(data)
        return result

    # ------------------------------------------------------------------ outbound

    async def send(self, msg: OutboundMessage) -> SendResult:
        """Deliver ``msg`` to chat ``msg.to_address``: the text (split at 4096), then each
        attachment as a document.  ``msg.extra["buttons"]`` (rows of ``{"text",
        "callback_data"}``) go on the last text part; ``msg.extra["skip_parts"]`` skips parts
        that went out in an earlier attempt.

        Raises :class:`SendError` with ``sent_parts`` (parts delivered so far, counting skipped
        ones: pass it back as ``skip_parts``) and ``sent_external_ids`` (ids sent by this call).
        """
        chat_id = _chat_id(msg.to_address)
        texts = split_text(msg.text) if msg.text else []
        keyboard = _keyboard(msg.extra["buttons"]) if msg.extra.get("buttons") else None
        for attachment in msg.attachments:
            if attachment.data is None:
                raise SendError(
                    f"Attachment {attachment.filename!r} has no data to send.", permanent=True
                )
        total = len(texts) + len(msg.attachments)
        if total == 0:
            raise SendError("The message has neither text nor attachments.", permanent=True)
        try:
            skip = int(msg.extra.get("skip_parts") or 0)
        except (TypeError, ValueError) as exc:
            raise SendError("skip_parts must be a whole number.", permanent=True) from exc
        skip = max(0, min(skip, total))
        await self._ensure_started()

        ids: list[str] = []
        part = skip
        try:
            for index in range(skip, total):
                if msg.fence is not None:
                    msg.fence()  # SendAborted: this part (and the rest) never goes out
                if index < len(texts):
                    last_text = index == len(texts) - 1
                    sent = await self._bot.send_message(
                        chat_id=chat_id,
                        text=texts[index],
                        reply_markup=keyboard if last_text else None,
                    )
                else:
                    attachment = msg.attachments[index - len(texts)]
                    upload = InputFile(attachment.data or b"", filename=attachment.filename)
                    if attachment.content_type:
                        upload.mimetype = attachment.content_type
                    sent = await self._bot.send_document(
                        chat_id=chat_id,
                        document=upload,
                        reply_markup=keyboard if not texts and index == total - 1 else None,
                    )
                ids.append(f"tg:{sent.chat_id}:{sent.message_id}")
                part = index + 1
        except SendAborted as exc:  # the parts before it went out; the retry resumes after them
            exc.sent_parts = part
            exc.sent_external_ids = ids  # type: ignore[attr-defined]
            raise
        except TelegramError as exc:
            error = self._send_error(exc, chat_id)
            error.sent_parts = part
            error.sent_external_ids = ids  # type: ignore[attr-defined]
            raise error from exc
        detail = f"{len(ids)} part(s)" + (f", {skip} sent earlier" if skip else "")
        return SendResult(external_ids=ids, detail=detail)

    def _send_error(self, exc: TelegramError, chat_id: int | str) -> SendError:
        if isinstance(exc, RetryAfter):
            wait = _seconds(exc.retry_after)
            return SendError(
                f"Telegram asks to wait {wait:g} s before sending again.",
                permanent=False,
                retry_after=wait,
            )
        if isinstance(exc, Forbidden):
            return SendError(
                f"Telegram refused to deliver to chat {chat_id}: "
                f"{exc.message.removeprefix('Forbidden: ')}.",
                permanent=True,
            )
        if isinstance(exc, ChatMigrated):
            return SendError(
                f"The Telegram group {chat_id} moved to chat {exc.new_chat_id}.", permanent=True
            )
        if isinstance(exc, InvalidToken):
            return SendError("Telegram rejected the bot token.", permanent=False, connection=True)
        if isinstance(exc, BadRequest):
            return SendError(
                f"Telegram refused the message to chat {chat_id}: {self._scrub(exc.message)}.",
                permanent=True,
            )
        maybe = _maybe_delivered(exc)
        if isinstance(exc, TimedOut):
            return SendError(
                "Telegram did not answer in time.",
                permanent=False,
                maybe_delivered=maybe,
                connection=True,
            )
        if isinstance(exc, NetworkError):
            reason = self._scrub(exc.message).rstrip(".")
            return SendError(
                f"Could not reach Telegram: {reason}.",
                permanent=False,
                maybe_delivered=maybe,
                connection=not _answered(exc),
            )
        return SendError(f"Telegram error: {self._scrub(exc.message)}.", permanent=False)

    async def answer_callback(self, callback_query_id: str, text: str = "") -> None:
        """Stop the button's spinner in the user's app, optionally showing ``text``."""
        await self._ensure_started()
        try:
            await self._bot.answer_callback_query(callback_query_id, text=text or None)
        except TelegramError as exc:
            raise self._channel_error(exc, "answer a button press on") from exc

    async def set_buttons(
        self, chat_id: int | str, message_id: int, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        """Replace (or with ``None`` remove) the inline keyboard of a message the bot sent."""
        await self._ensure_started()
        target = _chat_id(str(chat_id))
        try:
            await self._bot.edit_message_reply_markup(
                chat_id=target,
                message_id=message_id,
                reply_markup=_keyboard(buttons) if buttons else None,
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            raise self._channel_error(exc, "edit a message on") from exc
        except TelegramError as exc:
            raise self._channel_error(exc, "edit a message on") from exc


def _answered(exc: TelegramError) -> bool:
    """Telegram (or a proxy) answered with an HTTP status: the connection itself works."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, httpx.HTTPError):
        cause = cause.__cause__
    return cause is None


def _maybe_delivered(exc: TelegramError) -> bool:
    """Whether the request may have reached Telegram although no answer came back: a read
    timeout or a connection dropped after the request was written. Failing to connect (or to
    get a pooled connection, or to write the request) means it surely did not; so does any
    HTTP answer, 5xx included."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, httpx.HTTPError):
        cause = cause.__cause__
    if cause is None:  # Telegram answered (a 5xx is an answer): the message was not taken
        return False
    return not isinstance(
        cause,
        httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout,
    )
