"""A Telegram Bot API stand-in speaking real HTTP on 127.0.0.1.

Good enough for the real python-telegram-bot client: requests arrive form-encoded, multipart
(uploads) or as JSON; nested fields such as ``reply_markup`` are JSON strings inside the form.

Semantics copied from Telegram:

* ``getUpdates(offset, limit, timeout)`` long-polls: it blocks on a condition variable until an
  update is pushed or the timeout ends.  Updates stay pending until a later call confirms them
  with a higher ``offset``; a negative offset keeps only the last ``-offset`` updates.  A newer
  ``getUpdates`` ends a waiting one with 409 "terminated by other getUpdates request", and a set
  webhook makes ``getUpdates`` answer 409 as well.
* A wrong token answers 401 Unauthorized, an unknown method 404 Not Found.
* Sending to a chat the bot never saw answers 400 "chat not found" (use :meth:`add_chat` for
  proactive messages), to a chat that blocked the bot 403 (see :meth:`block`).
* ``getFile`` refuses files over 20 MB with 400 "file is too big"; files are served at
  ``/file/bot<token>/<file_path>``.
* Text longer than 4096 UTF-16 code units is refused with 400 "message is too long".

Test API: :meth:`BotAPIServer.push_message`, :meth:`push_edit`, :meth:`push_callback`,
:meth:`push_raw`, :meth:`add_file`, :meth:`add_chat`, :meth:`block`, :meth:`fail_next`,
:attr:`sent`, :meth:`wait_sent`, :attr:`requests`, :attr:`answered_callbacks`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_TOKEN = "123456789:AAH-stand-in-token_for_tests-0123456789"
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
MAX_TEXT = 4096
MAX_CAPTION = 1024

# The update kinds Telegram sends when allowed_updates was never given (or given as []).
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
# Parameters that arrive as JSON text inside a form.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
    }
)


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    size: int
    path: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class SentDocument:
    """A file the bot uploaded (sendDocument / sendPhoto)."""

    filename: str | None
    data: bytes
    content_type: str | None
    file_id: str
    field: str = "document"


@dataclass
class SentMessage:
    """One message the bot sent (sendMessage, sendDocument, sendPhoto)."""

    method: str
    chat_id: int | str
    message_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    documents: list[SentDocument] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Fault:
    code: int
    retry_after: int | None
    description: str | None


@dataclass
class _Upload:
    filename: str | None
    content_type: str | None
    data: bytes


def _unique_id(file_id: str) -> str:
    return "AgAD" + hashlib.sha1(file_id.encode()).hexdigest()[:12]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DISPOSITION_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))')


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, _Upload]]:
    """Split a multipart/form-data body into plain fields and uploaded files."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "Bad Request: multipart body without boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, content = chunk.partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        params = {
            m.group(1).lower(): (
                m.group(2).replace('\\"', '"').replace("\\\\", "\\")
                if m.group(2) is not None
                else m.group(3)
            )
            for m in _DISPOSITION_PARAM.finditer(headers.get("content-disposition", ""))
        }
        name = params.get("name")
        if name is None:
            continue
        filename = params.get("filename")
        if "filename*" in params:  # RFC 5987: utf-8''percent-encoded
            _, _, encoded = params["filename*"].partition("''")
            filename = urllib.parse.unquote(encoded)
        if filename is not None or "content-type" in headers:
            files[name] = _Upload(filename, headers.get("content-type"), content)
        else:
            fields[name] = content.decode("utf-8")
    return fields, files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        try:
            if path.startswith("/file/bot"):
                token, _, file_path = path[len("/file/bot") :].partition("/")
                data = api._download(token, file_path)
                self._reply(200, data, "application/octet-stream")
                return
            if not path.startswith("/bot"):
                raise ApiError(404, "Not Found")
            token, _, method = path[len("/bot") :].partition("/")
            params, uploads = self._params(url.query, body)
            result = api._call(token, method, params, uploads)
        except ApiError as err:
            if err.code == 0:  # injected fault: drop the connection without an answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            answer: dict[str, Any] = {
                "ok": False,
                "error_code": err.code,
                "description": err.description,
            }
            if err.parameters:
                answer["parameters"] = err.parameters
            self._reply(err.code, json.dumps(answer).encode(), "application/json")
            return
        payload = json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()
        self._reply(200, payload, "application/json")

    def _params(self, query: str, body: bytes) -> tuple[dict[str, Any], dict[str, _Upload]]:
        raw: dict[str, Any] = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        uploads: dict[str, _Upload] = {}
        ctype = self.headers.get("Content-Type", "")
        if body:
            if ctype.startswith("multipart/form-data"):
                fields, uploads = _parse_multipart(body, ctype)
                raw.update(fields)
            elif ctype.startswith("application/json"):
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise ApiError(400, "Bad Request: can't parse JSON body") from exc
                raw.update(decoded)
                return raw, uploads
            else:
                parsed = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
                raw.update({k: v[0] for k, v in parsed.items()})
        for key in JSON_FIELDS & raw.keys():
            if isinstance(raw[key], str):
                try:
                    raw[key] = json.loads(raw[key])
                except ValueError as exc:
                    raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
        return raw, uploads

    def _reply(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (a runner killed or frozen mid-request): as Telegram's end


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: BotAPIServer):
        super().__init__(address, _Handler)
        self.api = api


class BotAPIServer:
    """The stand-in.  ``start()`` it (or use it as a context manager), then point a client at
    :attr:`api_url` / :attr:`file_url` with :attr:`token`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "supportdesk_test_bot",
        port: int | None = None,
    ) -> None:
        self.token = token
        self.port = port or _free_port()
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "Support Desk",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.download_limit = TELEGRAM_DOWNLOAD_LIMIT
        self.delays: dict[str, float] = {}  # method -> seconds to wait before handling it
        # method -> called with the request's parameters (in the server's thread) before it is
        # handled: a test's hook into the middle of a send
        self.hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.webhook_url = ""
        self.allowed_updates: frozenset[str] = DEFAULT_ALLOWED
        # Everything below is guarded by _cond.
        self._cond = threading.Condition(threading.RLock())
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._callback_ids = itertools.count(4_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._poll_generation = 0
        self.waiting_polls = 0  # getUpdates calls blocked right now
        self._closing = False
        self._faults: dict[str, list[_Fault]] = {}
        self.chats: dict[int | str, dict[str, Any]] = {}
        self.blocked: set[int | str] = set()
        self.files: dict[str, StoredFile] = {}
        self.sent: list[SentMessage] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self._callbacks: set[str] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.base_url}/file/bot"

    def start(self) -> BotAPIServer:
        self._httpd = _HTTPServer(("127.0.0.1", self.port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="botapi-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()  # wake long polls so their threads end
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BotAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test API: inbound

    def add_file(
        self,
        file_id: str,
        data: bytes,
        size: int | None = None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        path: str | None = None,
    ) -> StoredFile:
        """Register a file the server can hand out.  ``size`` overrides the reported size (to
        simulate a file over the 20 MB download limit without allocating it)."""
        with self._cond:
            n = next(self._file_ids)
            if path is None:
                suffix = ""
                if file_name and "." in file_name:
                    suffix = "." + file_name.rsplit(".", 1)[1]
                path = f"documents/file_{n}{suffix}"
            stored = StoredFile(
                file_id=file_id,
                file_unique_id=_unique_id(file_id),
                data=bytes(data),
                size=len(data) if size is None else size,
                path=path,
                file_name=file_name,
                mime_type=mime_type,
            )
            self.files[file_id] = stored
            return stored

    def add_chat(
        self,
        chat_id: int | str,
        chat_type: str = "private",
        *,
        title: str | None = None,
        user: dict[str, Any] | int | None = None,
    ) -> dict[str, Any]:
        """Make a chat known so the bot may write to it first."""
        with self._cond:
            return self._chat(chat_id, chat_type, title, self._user(chat_id, user))

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: sends to the chat answer 403 from now on."""
        with self._cond:
            self.blocked.add(chat_id)

    def push_message(
        self,
        chat_id: int | str,
        text: str | None = None,
        *,
        user: dict[str, Any] | int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        caption: str | None = None,
        photo: str | dict[str, Any] | None = None,
        document: str | dict[str, Any] | None = None,
        voice: str | dict[str, Any] | None = None,
        audio: str | dict[str, Any] | None = None,
        video: str | dict[str, Any] | None = None,
        video_note: str | dict[str, Any] | None = None,
        animation: str | dict[str, Any] | None = None,
        sticker: str | dict[str, Any] | None = None,
        contact: dict[str, Any] | None = None,
        location: tuple[float, float] | dict[str, Any] | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
        date: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a ``message`` update as if a user wrote to the bot; returns the update.

        Media arguments take a file id registered with :meth:`add_file` (size, name and mime
        type come from there) or a dict merged over the generated object (a key set to None is
        removed, e.g. ``{"file_id": "x", "file_size": None}``).  ``fields`` adds raw message
        fields (e.g. ``{"poll": {...}}``).
        """
        with self._cond:
            sender = self._user(chat_id, user)
            chat = self._chat(chat_id, chat_type, chat_title, sender)
            message: dict[str, Any] = {
                "message_id": self._next_message_id(chat_id),
                "from": sender,
                "chat": chat,
                "date": int(time.time()) if date is None else date,
            }
            if text is not None:
                message["text"] = text
            if caption is not None:
                message["caption"] = caption
            if photo is not None:
                message["photo"] = self._photo_sizes(photo)
            if document is not None:
                message["document"] = self._media(document, {"file_name": None, "mime_type": None})
            if voice is not None:
                message["voice"] = self._media(voice, {"duration": 3, "mime_type": "audio/ogg"})
            if audio is not None:
                message["audio"] = self._media(
                    audio, {"duration": 180, "file_name": None, "mime_type": "audio/mpeg"}
                )
            if video is not None:
                message["video"] = self._media(
                    video,
                    {"width": 640, "height": 360, "duration": 10, "mime_type": "video/mp4"},
                )
            if video_note is not None:
                message["video_note"] = self._media(video_note, {"length": 240, "duration": 5})
            if animation is not None:
                anim = self._media(
                    animation,
                    {"width": 320, "height": 240, "duration": 2, "mime_type": "video/mp4"},
                )
                message["animation"] = anim
                message["document"] = dict(anim)  # Telegram sends both, for old clients
            if sticker is not None:
                message["sticker"] = self._media(
                    sticker,
                    {
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                        "type": "regular",
                        "emoji": "😀",
                    },
                )
            if contact is not None:
                message["contact"] = dict(contact)
            if location is not None:
                if isinstance(location, tuple):
                    location = {"latitude": location[0], "longitude": location[1]}
                message["location"] = dict(location)
            if reply_to is not None:
                original = self._messages.get((chat_id, reply_to))
                message["reply_to_message"] = original or {
                    "message_id": reply_to,
                    "chat": chat,
                    "date": message["date"],
                }
            if media_group_id is not None:
                message["media_group_id"] = media_group_id
            if fields:
                message.update(fields)
            self._messages[(chat_id, message["message_id"])] = message
            return self._queue({"message": message})

    def push_edit(
        self,
        chat_id: int | str,
        message_id: int,
        text: str,
        *,
        user: dict[str, Any] | int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        edit_date: int | None = None,
    ) -> dict[str, Any]:
        """Queue an ``edited_message`` update: the user changed the text of ``message_id``."""
        with self._cond:
            original = self._messages.get((chat_id, message_id))
            sender = (original or {}).get("from") or self._user(chat_id, user)
            chat = self._chat(chat_id, chat_type, chat_title, sender)
            message: dict[str, Any] = {
                "message_id": message_id,
                "from": sender,
                "chat": chat,
                "date": (original or {}).get("date", int(time.time())),
                "edit_date": int(time.time()) if edit_date is None else edit_date,
            }
            key = "caption" if original and "caption" in original else "text"
            message[key] = text
            if original:
                for media in ("photo", "document", "voice", "audio", "video", "animation"):
                    if media in original:
                        message[media] = original[media]
            self._messages[(chat_id, message_id)] = message
            return self._queue({"edited_message": message})

    def push_callback(
        self,
        chat_id: int | str,
        data: str,
        message_id: int,
        *,
        user: dict[str, Any] | int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """Queue a ``callback_query``: the user pressed an inline button on ``message_id``."""
        with self._cond:
            sender = self._user(chat_id, user)
            chat = self._chat(chat_id, chat_type, None, sender)
            message = self._messages.get((chat_id, message_id)) or {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
                "text": "",
            }
            query_id = str(next(self._callback_ids))
            self._callbacks.add(query_id)
            return self._queue(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": sender,
                        "message": message,
                        "chat_instance": str(abs(hash(chat_id)) % 10**12),
                        "data": data,
                    }
                }
            )

    def push_raw(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Queue any update, e.g. ``{"my_chat_member": {...}}``; ``update_id`` is added."""
        with self._cond:
            return self._queue(dict(fields))

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._cond:
            return list(self._updates)

    # ------------------------------------------------------------------ test API: outbound

    def wait_sent(self, n: int, timeout: float = 30.0) -> list[SentMessage]:
        """Block until at least ``n`` messages were sent; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.sent) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {n} sent messages within {timeout} s, got {len(self.sent)}"
                    )
                self._cond.wait(remaining)
            return list(self.sent)

    def fail_next(
        self,
        method: str,
        code: int = 429,
        retry_after: int | None = 1,
        *,
        times: int = 1,
        after: int = 0,
        description: str | None = None,
    ) -> None:
        """Make ``times`` calls of ``method`` fail with ``code``, after ``after`` calls that
        succeed.  ``method`` is a Bot API method name, or ``"download"`` for file downloads.

        429 carries ``parameters.retry_after``; 0 drops the connection without an answer.
        """
        with self._cond:
            fault = _Fault(code, retry_after if code == 429 else None, description)
            passes = [_Fault(-1, None, None)] * after
            self._faults.setdefault(method, []).extend([*passes] + [fault] * times)

    def wait_polling(self, timeout: float = 30.0) -> None:
        """Block until a getUpdates call is waiting for updates (a long poll is open)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.waiting_polls == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no getUpdates long poll was open within {timeout} s")
                self._cond.wait(remaining)

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of ``method`` received so far."""
        with self._cond:
            return [params for name, params in self.requests if name == method]

    # ------------------------------------------------------------------ internals

    def _queue(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._cond.notify_all()
        return update

    def _next_message_id(self, chat_id: int | str) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _user(self, chat_id: int | str, user: dict[str, Any] | int | None) -> dict[str, Any]:
        if isinstance(user, int):
            user = {"id": user}
        base: dict[str, Any] = {
            "id": chat_id if isinstance(chat_id, int) and chat_id > 0 else 555_000_001,
            "is_bot": False,
            "first_name": "Test",
            "last_name": "User",
            "language_code": "en",
        }
        base.update(user or {})
        return {k: v for k, v in base.items() if v is not None}

    def _chat(
        self,
        chat_id: int | str,
        chat_type: str,
        title: str | None,
        user: dict[str, Any],
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            for key in ("first_name", "last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            chat["title"] = title or self.chats.get(chat_id, {}).get("title") or "Test group"
        self.chats[chat_id] = chat
        return chat

    def _media(self, spec: str | dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
        overrides = {"file_id": spec} if isinstance(spec, str) else dict(spec)
        file_id = overrides.get("file_id")
        if not file_id:
            raise ValueError("a media argument needs a file_id")
        stored = self.files.get(file_id)
        if stored is None and isinstance(spec, str):
            raise ValueError(f"file {file_id!r} is not registered: call add_file() first")
        obj: dict[str, Any] = {"file_id": file_id, "file_unique_id": _unique_id(file_id)}
        obj.update(defaults)
        if stored is not None:
            obj["file_size"] = stored.size
            if "file_name" in obj and stored.file_name:
                obj["file_name"] = stored.file_name
            if "mime_type" in obj and stored.mime_type:
                obj["mime_type"] = stored.mime_type
        obj.update(overrides)
        return {k: v for k, v in obj.items() if v is not None}

    def _photo_sizes(self, spec: str | dict[str, Any]) -> list[dict[str, Any]]:
        big = self._media(spec, {"width": 1280, "height": 960})
        thumb = {
            "file_id": big["file_id"] + "-thumb",
            "file_unique_id": _unique_id(big["file_id"] + "-thumb"),
            "width": 90,
            "height": 68,
            "file_size": min(int(big.get("file_size", 1500)), 1500),
        }
        return [thumb, big]

    def _message_dict(self, chat_id: int | str, **fields: Any) -> dict[str, Any]:
        chat = self.chats[chat_id]
        message = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **{k: v for k, v in fields.items() if v is not None},
        }
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _take_fault(self, method: str) -> None:
        faults = self._faults.get(method)
        if not faults:
            return
        fault = faults.pop(0)
        if fault.code == -1:  # a call let through before the failures start
            return
        if fault.code == 0:
            raise ApiError(0, "connection dropped")
        if fault.code == 429:
            after = fault.retry_after or 1
            raise ApiError(
                429,
                fault.description or f"Too Many Requests: retry after {after}",
                {"retry_after": after},
            )
        description = fault.description or {
            400: "Bad Request: chat not found",
            401: "Unauthorized",
            403: "Forbidden: bot was blocked by the user",
            404: "Not Found",
            409: "Conflict: terminated by other getUpdates request",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(fault.code, HTTPStatus(fault.code).phrase)
        raise ApiError(fault.code, description)

    def _call(
        self, token: str, method: str, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = getattr(self, "_m_" + method.lower(), None)
        delay = self.delays.get(method)
        if delay:
            time.sleep(delay)  # a slow Bot API: the request is in, the answer is late
        hook = self.hooks.get(method)
        if hook is not None:
            hook(dict(params))
        with self._cond:
            self.requests.append((method, dict(params)))
            self._take_fault(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params, uploads)

    def _download(self, token: str, file_path: str) -> bytes:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        with self._cond:
            self._take_fault("download")
            for stored in self.files.values():
                if stored.path == file_path:
                    return stored.data
        raise ApiError(404, "Not Found")

    @staticmethod
    def _int(params: dict[str, Any], key: str, default: int | None = None) -> int:
        value = params.get(key, default)
        if value is None or value == "":
            if default is None:
                raise ApiError(400, f"Bad Request: parameter {key} is required")
            return default
        try:
            return int(float(value))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"Bad Request: {key} must be a number") from exc

    def _target_chat(self, params: dict[str, Any]) -> int | str:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat_id: int | str
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            chat_id = str(raw)
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _record(self, sent: SentMessage) -> None:
        self.sent.append(sent)
        self._cond.notify_all()

    # ------------------------------------------------------------------ Bot API methods

    def _m_getme(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        return self.bot_user

    def _m_logout(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        return True

    def _m_deletewebhook(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            self.webhook_url = ""
            if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
                self._updates.clear()
        return True

    def _m_setwebhook(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            self.webhook_url = str(params.get("url", ""))
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            return {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }

    def _m_getupdates(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        offset = self._int(params, "offset", 0)
        limit = max(1, min(100, self._int(params, "limit", 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        deadline = time.monotonic() + timeout
        with self._cond:
            if self.webhook_url:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(allowed, list):
                self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()  # a waiting older poll ends with 409
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            while True:
                # Telegram never creates updates of kinds that were not allowed.
                self._updates = [
                    u for u in self._updates if (set(u) - {"update_id"}) & self.allowed_updates
                ]
                batch = self._updates[:limit]
                if batch or self._closing:
                    return batch
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.waiting_polls += 1
                self._cond.notify_all()
                try:
                    self._cond.wait(remaining)
                finally:
                    self.waiting_polls -= 1

    def _reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _m_sendmessage(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            chat_id = self._target_chat(params)
            text = str(params.get("text", ""))
            if not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
            if _utf16_len(text) > MAX_TEXT:
                raise ApiError(400, "Bad Request: message is too long")
            markup = self._reply_markup(params)
            message = self._message_dict(chat_id, text=text, reply_markup=markup)
            self._record(
                SentMessage(
                    method="sendMessage",
                    chat_id=chat_id,
                    message_id=message["message_id"],
                    text=text,
                    reply_markup=markup,
                    parse_mode=params.get("parse_mode"),
                    params=dict(params),
                )
            )
            return message

    def _upload(
        self, params: dict[str, Any], uploads: dict[str, _Upload], field_name: str
    ) -> tuple[SentDocument, StoredFile]:
        upload = uploads.get(field_name)
        if upload is None:
            ref = params.get(field_name)
            if isinstance(ref, str) and ref.startswith("attach://"):
                upload = uploads.get(ref[len("attach://") :])
            elif isinstance(ref, str) and ref in self.files:
                stored = self.files[ref]
                doc = SentDocument(
                    stored.file_name, stored.data, stored.mime_type, stored.file_id, field_name
                )
                return doc, stored
        if upload is None:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        if not upload.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        file_id = f"BQACAgIAAxUploaded{next(self._file_ids):06d}"
        stored = self.add_file(
            file_id, upload.data, file_name=upload.filename, mime_type=upload.content_type
        )
        doc = SentDocument(upload.filename, upload.data, upload.content_type, file_id, field_name)
        return doc, stored

    def _m_senddocument(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            chat_id = self._target_chat(params)
            caption = params.get("caption")
            if caption is not None and _utf16_len(caption) > MAX_CAPTION:
                raise ApiError(400, "Bad Request: message caption is too long")
            markup = self._reply_markup(params)
            doc, stored = self._upload(params, uploads, "document")
            message = self._message_dict(
                chat_id,
                caption=caption,
                reply_markup=markup,
                document={
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_name": stored.file_name,
                    "mime_type": stored.mime_type,
                    "file_size": stored.size,
                },
            )
            self._record(
                SentMessage(
                    method="sendDocument",
                    chat_id=chat_id,
                    message_id=message["message_id"],
                    text=caption,
                    reply_markup=markup,
                    parse_mode=params.get("parse_mode"),
                    documents=[doc],
                    params=dict(params),
                )
            )
            return message

    def _m_sendphoto(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            chat_id = self._target_chat(params)
            caption = params.get("caption")
            markup = self._reply_markup(params)
            doc, stored = self._upload(params, uploads, "photo")
            message = self._message_dict(
                chat_id,
                caption=caption,
                reply_markup=markup,
                photo=[
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "width": 1280,
                        "height": 960,
                        "file_size": stored.size,
                    }
                ],
            )
            self._record(
                SentMessage(
                    method="sendPhoto",
                    chat_id=chat_id,
                    message_id=message["message_id"],
                    text=caption,
                    reply_markup=markup,
                    parse_mode=params.get("parse_mode"),
                    documents=[doc],
                    params=dict(params),
                )
            )
            return message

    def _m_getfile(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        file_id = str(params.get("file_id", ""))
        with self._cond:
            stored = self.files.get(file_id)
            if stored is None:
                raise ApiError(400, "Bad Request: invalid file_id")
            if stored.size > self.download_limit:
                raise ApiError(400, "Bad Request: file is too big")
            return {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.size,
                "file_path": stored.path,
            }

    def _m_answercallbackquery(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        query_id = str(params.get("callback_query_id", ""))
        with self._cond:
            if query_id not in self._callbacks:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID "
                    "is invalid",
                )
            self.answered_callbacks.append(
                {
                    "callback_query_id": query_id,
                    "text": params.get("text"),
                    "show_alert": str(params.get("show_alert", "")).lower() == "true",
                }
            )
            self._cond.notify_all()
            return True

    def _m_editmessagereplymarkup(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        with self._cond:
            chat_id = self._target_chat(params)
            message_id = self._int(params, "message_id")
            markup = self._reply_markup(params)
            message = self._messages.get((chat_id, message_id))
            if message is None or message.get("from", {}).get("id") != self.bot_user["id"]:
                raise ApiError(400, "Bad Request: message to edit not found")
            if message.get("reply_markup") == markup:
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            if markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = markup
            for sent in self.sent:
                if sent.chat_id == chat_id and sent.message_id == message_id:
                    sent.reply_markup = markup
            self._cond.notify_all()
            return message


@pytest.fixture
def botapi() -> Iterator[BotAPIServer]:
    """A started Bot API stand-in; ``botapi.token``, ``botapi.api_url``, ``botapi.file_url``."""
    server = BotAPIServer().start()
    try:
        yield server
    finally:
        server.stop()
