"""A VK API stand-in (methods + Bots Long Poll) speaking real HTTP on 127.0.0.1.

Written from VK's public documentation (dev.vk.com: "Bots Long Poll API", messages.send,
messages.getConversations, messages.getHistory, docs.getMessagesUploadServer, error codes):

* Methods are ``POST /method/<name>`` with a form carrying ``access_token`` and ``v``; the answer
  is ``{"response": ...}`` or ``{"error": {"error_code", "error_msg", "request_params"}}``
  (HTTP 200 either way). A wrong token is error 5.
* ``groups.getLongPollServer`` hands out ``{"server", "key", "ts"}``. The long-poll request is
  ``GET <server>?act=a_check&key=..&ts=..&wait=..``: it blocks until an event with a number at
  or after ``ts`` exists (or ``wait`` seconds pass) and answers ``{"ts": next, "updates": [...]}``.
  Each event is ``{"type", "object", "group_id", "event_id", "v"}``; ``message_new`` carries
  ``{"message", "client_info"}``, ``message_edit``/``message_reply`` the message itself.
  ``{"failed": 1, "ts": n}``: the events before ``n`` are gone (history outdated);
  ``{"failed": 2}``: the key expired; ``{"failed": 3}``: information lost (new key and ts).
* ``messages.send`` with ``random_id``: a repeated ``random_id`` to the same peer sends nothing
  and answers with the message sent the first time. With ``peer_ids`` the answer is a list of
  ``{"peer_id", "message_id", "conversation_message_id"}``. Sending to a person who has not
  allowed messages from the community is error 901; text over 4096 characters is error 914.

Test API: :meth:`VkAPIServer.push_message`, :meth:`push_edit`, :meth:`add_user`,
:meth:`add_file`, :meth:`expire_key`, :meth:`forget_events`, :meth:`lose_state`,
:meth:`block`, :meth:`fail_next`, :attr:`sent`, :meth:`wait_sent`, :attr:`calls`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.botapi import _parse_multipart
from tests.peers.util import free_port

DEFAULT_TOKEN = "vk1.a.stand-in-community-token-0123456789abcdef"
GROUP_ID = 229_000_001
MAX_TEXT = 4096


class VkError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Sent:
    peer_id: int
    text: str
    random_id: int
    message_id: int
    cmid: int
    attachments: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        api = self.server.api
        ctype = self.headers.get("Content-Type", "")
        uploads = {}
        if body and ctype.startswith("multipart/form-data"):
            fields, uploads = _parse_multipart(body, ctype)
            params.update(fields)
        elif body:
            params.update(
                {
                    k: v[0]
                    for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()
                }
            )
        path = url.path
        if path.startswith("/files/"):
            data = api.files.get(path[len("/files/") :])
            if data is None:
                self._reply(404, b"not found", "text/plain")
            else:
                self._reply(200, data, "application/octet-stream")
            return
        if path.startswith("/lp/"):
            answer = api._long_poll(params)
        elif path == "/upload/doc":
            answer = api._upload(params, uploads)
        elif path.startswith("/method/"):
            method = path[len("/method/") :]
            with api._cond:
                api.calls.append(method)
                fault = api._faults.get(method)
                drop = fault.pop(0) if fault else None
            if drop == 0:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                if drop is not None:
                    raise VkError(drop, "Injected fault")
                if params.get("access_token") != api.token:
                    raise VkError(5, "User authorization failed: invalid access_token (4).")
                answer = {"response": api._call(method, params)}
            except VkError as err:
                answer = {
                    "error": {
                        "error_code": err.code,
                        "error_msg": err.message,
                        "request_params": [{"key": "method", "value": method}],
                    }
                }
        else:
            self._reply(404, b"not found", "text/plain")
            return
        self._reply(200, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

    def _reply(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: VkAPIServer) -> None:
        super().__init__(address, _Handler)
        self.api = api


class VkAPIServer:
    """``with VkAPIServer() as vk:`` then point a channel at :attr:`api_url`."""

    def __init__(self, token: str = DEFAULT_TOKEN, group_id: int = GROUP_ID) -> None:
        self.token = token
        self.group_id = group_id
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base}/method"
        self._cond = threading.Condition(threading.RLock())
        self._events: list[dict[str, Any]] = []  # event number n is _events[n - _first]
        self._first = 1  # number of the oldest kept event
        self._next_ts = 1
        self._keys: set[str] = set()
        self._messages: dict[int, list[dict[str, Any]]] = {}  # peer -> messages, oldest first
        self._ids = itertools.count(1001)
        self._random_ids: dict[tuple[int, int], dict[str, Any]] = {}
        self._faults: dict[str, list[int]] = {}
        self._blocked: set[int] = set()
        self._docs: dict[str, dict[str, Any]] = {}
        self._pending_uploads: dict[str, tuple[str, bytes]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.sent: list[Sent] = []
        self.calls: list[str] = []
        self.polls = 0
        self.waiting = 0  # long polls blocked right now
        self._closing = False
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> VkAPIServer:
        self._httpd = _Server(("127.0.0.1", self.port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> VkAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test API
    def add_user(self, user_id: int, first: str, last: str = "", screen_name: str = "") -> None:
        self.users[user_id] = {
            "id": user_id,
            "first_name": first,
            "last_name": last,
            "screen_name": screen_name or f"id{user_id}",
        }

    def add_file(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base}/files/{name}"

    def push_message(
        self,
        user_id: int,
        text: str = "",
        *,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
        payload: str | None = None,
        event: bool = True,
    ) -> dict[str, Any]:
        """A person writes to the community; returns the message object."""
        with self._cond:
            msg = self._new_message(user_id, user_id, text, out=False)
            if attachments:
                msg["attachments"] = attachments
            if payload:
                msg["payload"] = payload
            if reply_to is not None:
                orig = self._find(user_id, reply_to)
                msg["reply_message"] = {
                    k: orig[k] for k in ("id", "conversation_message_id", "text", "from_id", "date")
                }
            if event:
                self._event("message_new", {"message": msg, "client_info": _CLIENT_INFO})
            return msg

    def push_edit(self, user_id: int, cmid: int, text: str, *, event: bool = True) -> None:
        with self._cond:
            msg = self._find(user_id, cmid)
            msg["text"] = text
            msg["update_time"] = int(time.time())
            if event:
                self._event("message_edit", dict(msg))

    def expire_key(self) -> None:
        """Every key handed out so far expires (the next poll answers failed=2)."""
        with self._cond:
            self._keys.clear()
            self._cond.notify_all()

    def forget_events(self) -> None:
        """Drop every kept event: a poll with an older ts answers failed=1 with the current ts."""
        with self._cond:
            self._first = self._next_ts
            self._events.clear()
            self._cond.notify_all()

    def lose_state(self) -> None:
        """The server loses everything: polls answer failed=3 until a new key is asked for."""
        with self._cond:
            self._keys = {"lost:" + k for k in self._keys}
            self._first = self._next_ts
            self._events.clear()
            self._cond.notify_all()

    def block(self, user_id: int) -> None:
        self._blocked.add(user_id)

    def fail_next(self, method: str, code: int = 10, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer error ``code`` (0: drop the connection)."""
        with self._cond:
            self._faults.setdefault(method, []).extend([code] * times)

    def wait_sent(self, count: int, timeout: float = 10.0) -> list[Sent]:
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.sent) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"VK stand-in: {len(self.sent)} of {count} messages sent")
                self._cond.wait(left)
            return list(self.sent)

    def wait_polling(self, timeout: float = 10.0) -> None:
        """Until a long poll is waiting for events (the channel is idle and listening)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.waiting == 0:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("VK stand-in: nobody is long-polling")
                self._cond.wait(left)

    def history(self, peer: int) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(m) for m in self._messages.get(peer, [])]

    # ------------------------------------------------------------------ internals
    def _new_message(self, peer: int, sender: int, text: str, *, out: bool) -> dict[str, Any]:
        history = self._messages.setdefault(peer, [])
        msg: dict[str, Any] = {
            "id": next(self._ids),
            "date": int(time.time()),
            "peer_id": peer,
            "from_id": sender,
            "text": text,
            "out": 1 if out else 0,
            "conversation_message_id": len(history) + 1,
            "attachments": [],
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "version": 1,
        }
        history.append(msg)
        return msg

    def _find(self, peer: int, cmid: int) -> dict[str, Any]:
        for m in self._messages.get(peer, []):
            if m["conversation_message_id"] == cmid:
                return m
        raise KeyError(cmid)

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self._events.append(
            {
                "group_id": self.group_id,
                "type": kind,
                "event_id": secrets.token_hex(20),
                "v": "5.199",
                "object": json.loads(json.dumps(obj)),
            }
        )
        self._next_ts += 1
        self._cond.notify_all()

    def _long_poll(self, params: dict[str, str]) -> dict[str, Any]:
        key = params.get("key", "")
        try:
            ts = int(params.get("ts", ""))
            wait = min(90, int(params.get("wait", "25")))
        except ValueError:
            return {"failed": 1, "ts": str(self._next_ts)}
        end = time.monotonic() + wait
        with self._cond:
            self.polls += 1
            self.waiting += 1
            self._cond.notify_all()
            try:
                return self._poll_answer(key, ts, end)
            finally:
                self.waiting -= 1

    def _poll_answer(self, key: str, ts: int, end: float) -> dict[str, Any]:
        with self._cond:
            while True:
                if ("lost:" + key) in self._keys:
                    return {"failed": 3}
                if key not in self._keys:
                    return {"failed": 2}
                if ts < self._first or ts > self._next_ts:
                    return {"failed": 1, "ts": str(self._next_ts)}
                if ts < self._next_ts:
                    updates = self._events[ts - self._first : ts - self._first + 100]
                    return {"ts": str(ts + len(updates)), "updates": updates}
                left = end - time.monotonic()
                if left <= 0 or self._closing:
                    return {"ts": str(ts), "updates": []}
                self._cond.wait(left)

    def _upload(self, params: dict[str, str], uploads: dict[str, Any]) -> dict[str, Any]:
        up = uploads.get("file")
        if up is None:
            return {"error": "no file"}
        token = secrets.token_hex(8)
        with self._cond:
            self._pending_uploads[token] = (up.filename or "file", up.data)
        return {"file": token}

    def _call(self, method: str, p: dict[str, str]) -> Any:
        with self._cond:
            if method == "groups.getLongPollServer":
                if int(p.get("group_id") or 0) != self.group_id:
                    raise VkError(
                        100,
                        "One of the parameters specified was missing or invalid: group_id is undefined",
                    )
                key = secrets.token_hex(16)
                self._keys = {k for k in self._keys if not k.startswith("lost:")}
                self._keys.add(key)
                return {
                    "key": key,
                    "server": f"{self.base}/lp/{self.group_id}",
                    "ts": str(self._next_ts),
                }
            if method == "users.get":
                ids = [int(x) for x in (p.get("user_ids") or "").split(",") if x.strip()]
                return [self.users[i] for i in ids if i in self.users]
            if method == "messages.getConversations":
                offset, count = int(p.get("offset") or 0), int(p.get("count") or 20)
                convs = [(peer, msgs[-1]) for peer, msgs in self._messages.items() if msgs]
                convs.sort(key=lambda pm: (pm[1]["date"], pm[1]["id"]), reverse=True)
                page = convs[offset : offset + count]
                return {
                    "count": len(convs),
                    "items": [
                        {
                            "conversation": {
                                "peer": {"id": peer, "type": "user", "local_id": peer},
                                "in_read": 0,
                                "out_read": 0,
                            },
                            "last_message": dict(last),
                        }
                        for peer, last in page
                    ],
                }
            if method == "messages.getHistory":
                peer = int(p.get("peer_id") or 0)
                offset, count = int(p.get("offset") or 0), min(200, int(p.get("count") or 20))
                msgs = list(reversed(self._messages.get(peer, [])))
                return {
                    "count": len(msgs),
                    "items": [dict(m) for m in msgs[offset : offset + count]],
                }
            if method == "docs.getMessagesUploadServer":
                return {"upload_url": f"{self.base}/upload/doc?peer={p.get('peer_id')}"}
            if method == "docs.save":
                pending = self._pending_uploads.pop(p.get("file", ""), None)
                if pending is None:
                    raise VkError(
                        100,
                        "One of the parameters specified was missing or invalid: file is invalid",
                    )
                name, data = pending
                doc_id = next(self._ids)
                url = self.add_file(f"doc{doc_id}", data)
                doc = {
                    "id": doc_id,
                    "owner_id": -self.group_id,
                    "title": p.get("title") or name,
                    "size": len(data),
                    "ext": name.rpartition(".")[2],
                    "url": url,
                }
                self._docs[f"doc{-self.group_id}_{doc_id}"] = doc
                return {"type": "doc", "doc": doc}
            if method == "messages.send":
                return self._send(p)
        raise VkError(3, "Unknown method passed")

    def _send(self, p: dict[str, str]) -> Any:
        many = "peer_ids" in p
        peer = int((p.get("peer_ids") or p.get("peer_id") or "0").split(",")[0])
        if "random_id" not in p:
            raise VkError(
                100,
                "One of the parameters specified was missing or invalid: random_id is a required parameter",
            )
        rid = int(p["random_id"])
        text = p.get("message", "")
        attachments = [a for a in (p.get("attachment") or "").split(",") if a]
        if not text and not attachments:
            raise VkError(
                100,
                "One of the parameters specified was missing or invalid: message is empty or invalid",
            )
        if len(text) > MAX_TEXT:
            raise VkError(914, "Message is too long")
        if peer in self._blocked or peer not in self._messages:
            raise VkError(901, "Can't send messages for users without permission")
        for a in attachments:
            if a not in self._docs:
                raise VkError(
                    100,
                    f"One of the parameters specified was missing or invalid: attachment {a} not found",
                )
        known = self._random_ids.get((peer, rid)) if rid else None
        if known is None:
            msg = self._new_message(peer, -self.group_id, text, out=True)
            msg["attachments"] = [{"type": "doc", "doc": self._docs[a]} for a in attachments]
            msg["random_id"] = rid
            if rid:
                self._random_ids[(peer, rid)] = msg
            self.sent.append(
                Sent(peer, text, rid, msg["id"], msg["conversation_message_id"], attachments)
            )
            self._event("message_reply", dict(msg))
            known = msg
        if many:
            return [
                {
                    "peer_id": peer,
                    "message_id": known["id"],
                    "conversation_message_id": known["conversation_message_id"],
                }
            ]
        return known["id"]


_CLIENT_INFO = {
    "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}
