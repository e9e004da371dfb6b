"""A WhatsApp Business Cloud API stand-in (Graph API) on 127.0.0.1, and a webhook sender.

Written from Meta's public documentation (developers.facebook.com/docs/whatsapp/cloud-api):

* ``POST /<version>/<phone number id>/messages`` (JSON, ``Authorization: Bearer``) answers
  ``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``.
  A free-form message to a number whose last message is more than 24 hours old is refused with
  error 131047 ("Re-engagement message"); a template must be approved (else 132001). The API
  takes no idempotency key: a repeated request sends a second message.
* ``POST /<version>/<phone number id>/media`` (multipart ``file``, ``type``,
  ``messaging_product``) answers ``{"id"}``.
* ``GET /<version>/<media id>`` answers ``{"url", "mime_type", "sha256", "file_size", "id",
  "messaging_product"}``; the URL needs the same bearer token.
* Errors are ``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``
  with HTTP 400 (401 for a bad token, code 190).

:func:`webhook_body` builds a ``whatsapp_business_account`` notification, :func:`sign` its
``X-Hub-Signature-256``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.botapi import _parse_multipart
from tests.peers.util import free_port

DEFAULT_TOKEN = "EAAG-stand-in-graph-token-0123456789"
PHONE_NUMBER_ID = "1098765"
VERSION = "v21.0"


@dataclass
class GraphSent:
    to: str
    body: dict[str, Any]
    wamid: str

    @property
    def text(self) -> str:
        return str((self.body.get("text") or {}).get("body") or "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api = self.server.api
        path = urllib.parse.urlsplit(self.path).path
        if self.headers.get("Authorization") != f"Bearer {api.token}":
            self._json(401, _error(190, "Invalid OAuth access token - Cannot parse access token"))
            return
        if verb == "GET" and path.startswith("/media-file/"):
            data = api.media.get(path[len("/media-file/") :])
            if data is None:
                self._reply(404, b"", "text/plain")
            else:
                self._reply(200, data[0], data[1])
            return
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != VERSION:
            self._json(404, _error(100, "Unknown path"))
            return
        with api.lock:
            api.requests.append((verb, path))
        if verb == "GET" and len(parts) == 2:
            media = api.media.get(parts[1])
            if media is None:
                self._json(400, _error(100, "Invalid parameter", "media id not found"))
                return
            data, mime = media
            self._json(
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": f"{api.base}/media-file/{parts[1]}",
                    "mime_type": mime,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": len(data),
                    "id": parts[1],
                },
            )
            return
        if verb == "POST" and len(parts) == 3 and parts[1] == api.phone_number_id:
            if parts[2] == "messages":
                code, answer = api._send(json.loads(body or b"{}"))
                self._json(code, answer)
                return
            if parts[2] == "media":
                fields, uploads = _parse_multipart(body, self.headers.get("Content-Type", ""))
                up = uploads.get("file")
                if up is None or fields.get("messaging_product") != "whatsapp":
                    self._json(400, _error(100, "Invalid parameter", "file is required"))
                    return
                mid = str(next(api._ids))
                api.media[mid] = (up.data, up.content_type or "application/octet-stream")
                api.uploads[mid] = up.filename or ""
                self._json(200, {"id": mid})
                return
        self._json(400, _error(100, "Unsupported post request"))

    def _json(self, code: int, obj: Any) -> None:
        self._reply(code, json.dumps(obj).encode(), "application/json")

    def _reply(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _error(code: int, message: str, details: str = "") -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": secrets.token_hex(8),
    }
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: GraphAPIServer) -> None:
        super().__init__(address, _Handler)
        self.api = api


class GraphAPIServer:
    def __init__(self, token: str = DEFAULT_TOKEN, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base}/{VERSION}"
        self.lock = threading.Condition(threading.RLock())
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: dict[str, str] = {}
        self.templates: set[tuple[str, str]] = {("order_update", "en"), ("order_update", "ru")}
        self.last_inbound: dict[str, float] = {}  # wa_id -> unix time the customer last wrote
        self.sent: list[GraphSent] = []
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(900_001)
        self._httpd: _Server | None = None

    def __enter__(self) -> GraphAPIServer:
        self._httpd = _Server(("127.0.0.1", self.port), self)
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def add_media(self, data: bytes, mime: str) -> str:
        mid = str(next(self._ids))
        self.media[mid] = (data, mime)
        return mid

    def customer_wrote(self, wa_id: str, at: float | None = None) -> None:
        self.last_inbound[wa_id] = time.time() if at is None else at

    def wait_sent(self, count: int, timeout: float = 10.0) -> list[GraphSent]:
        end = time.monotonic() + timeout
        with self.lock:
            while len(self.sent) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Graph stand-in: {len(self.sent)} of {count} sent")
                self.lock.wait(left)
            return list(self.sent)

    def _send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("messaging_product") != "whatsapp":
            return 400, _error(100, "Invalid parameter", "messaging_product must be whatsapp")
        to = str(body.get("to") or "")
        kind = body.get("type", "text")
        with self.lock:
            if kind == "template":
                tpl = body.get("template") or {}
                key = (tpl.get("name"), (tpl.get("language") or {}).get("code"))
                if key not in self.templates:
                    return 404, _error(132001, "Template name does not exist in the translation")
            else:
                last = self.last_inbound.get(to)
                if last is None or time.time() - last > 24 * 3600:
                    return 400, _error(
                        131047,
                        "Re-engagement message",
                        "Message failed to send because more than 24 hours have passed since "
                        "the customer last replied to this number.",
                    )
                if kind == "text" and len(str((body.get("text") or {}).get("body") or "")) > 4096:
                    return 400, _error(100, "Invalid parameter", "text body is too long")
            wamid = "wamid.HBgL" + secrets.token_hex(12).upper()
            self.sent.append(GraphSent(to, body, wamid))
            self.lock.notify_all()
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }


def webhook_body(
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
    }
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(payload).encode()


def text_message(wa_id: str, text: str, *, wamid: str | None = None, name: str = "") -> bytes:
    return webhook_body(
        contacts=[{"profile": {"name": name or "Customer"}, "wa_id": wa_id}],
        messages=[
            {
                "from": wa_id,
                "id": wamid or "wamid.IN" + secrets.token_hex(10).upper(),
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            }
        ],
    )


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
