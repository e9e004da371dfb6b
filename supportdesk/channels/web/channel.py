"""The website channel: an embeddable chat widget, a websocket per open widget, a contact form.

``serve(sink)`` runs an aiohttp server on ``listen`` until cancelled:

- ``GET /widget.js``  the widget (one ``<script>`` tag on the customer's site, no build step)
- ``GET /ws``         the widget's websocket (JSON frames, see ``_Conn``)
- ``GET /contact``    the contact form page; ``POST /contact`` its target
- ``GET /healthz``    ``{"status": "ok", ...}``

A visitor's message is acknowledged to the browser only after ``await sink([...])`` returned,
i.e. after it is in the raw ledger and committed. Every message carries a client id chosen by the
browser; its external id ``web:<visitor>:<client id>`` makes a resend after a lost
acknowledgement or a reconnect a duplicate the pipeline recognises, never a second message.

Nothing a visitor sends is ever put into HTML: pages escape every value, and the widget builds
its DOM with ``textContent`` only.

Long because: the listener's routes, the websocket protocol of the widget and the contact form
share the visitor's token, the rate limits and the sink; they are one HTTP surface.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import html
import ipaddress
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.parser import BytesParser
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from supportdesk.channels import hub
from supportdesk.channels.base import (
    Attachment,
    Availability,
    Capabilities,
    Channel,
    ChannelError,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    ParseError,
    SendError,
    SendResult,
)
from supportdesk.channels.web import security
from supportdesk.channels.web.config import TEXTS, WebConfig
from supportdesk.core.config import ChannelConfigBase, parse_duration

log = logging.getLogger("supportdesk.channels.web")

_CID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SEEN_TIMEOUT = 3.0  # a pushed reply counts as shown when the widget confirms it within this
STATUS_EVERY = 30.0  # seconds between availability checks pushed to open widgets


def clean_text(text: str, limit: int) -> str:
    """Visitor text as data: control characters (and so terminal escapes) dropped, CRLF -> LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CTRL.sub("", text)[:limit].strip()


def _json_for_script(value: Any) -> str:
    """JSON safe to place inside a <script> element (no '</script>', no U+2028)."""
    out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        out = out.replace(a, b)
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """A posted form's text fields (first value of each) and its non-empty files, from the
    exact bytes received (those bytes are what the raw ledger keeps)."""
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(k, v)
        return fields, files
    if ctype != "multipart/form-data":
        return fields, files
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    msg = BytesParser(policy=email_policy.default).parsebytes(head + body)
    if not msg.is_multipart():
        return fields, files
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None or name == "files":
            if data:
                files.append((filename or "", data))
        else:
            fields.setdefault(name, data.decode("utf-8", "replace"))
    return fields, files


def _static(name: str) -> str:
    return resources.files("supportdesk.channels.web").joinpath("static", name).read_text("utf-8")


def _human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    return f"{max(n // 1024, 1)} KB"


@dataclass
class _Visitor:
    vid: str
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    last_seen: float = field(default_factory=time.monotonic)
    name: str = ""
    email: str = ""
    page: str = ""
    lang: str = "en"
    waiting: dict[str, asyncio.Future[bool]] = field(default_factory=dict)


class WebChannel(Channel):
    type: ClassVar[str] = "web"
    title: ClassVar[str] = "Website"
    icon: ClassVar[str] = "◎"
    identity_kind: ClassVar[str] = "web"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = WebConfig
    # a reply carries its message id; the widget drops one it already shows
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=5000, idempotent_send=True, live_chat=True
    )

    config: WebConfig

    @classmethod
    def reply_id(cls, sender: str) -> str:
        """One id for the push and the visitor's history: the widget shows the reply once."""
        return f"web-out:{secrets.token_hex(10)}"

    def __init__(self, config: ChannelConfigBase, *, home: Path, desk_name: str) -> None:
        if not isinstance(config, WebConfig):
            raise ChannelError(f"channel {config.name} is not configured as a website channel")
        super().__init__(config, home=home, desk_name=desk_name)
        self.signer: security.Signer | None = None
        self.sink: InboundSink | None = None
        self.visitors: dict[str, _Visitor] = {}
        self.started = time.monotonic()
        self.away_after = parse_duration(config.away_after).total_seconds()
        self.ip_limit = security.RateLimiter(config.rate_per_minute)
        self.visitor_limit = security.RateLimiter(config.visitor_messages_per_minute)
        self.suggest_limit = security.RateLimiter(60)
        self.origins = {security.origin_of(o) for o in config.allowed_origins} - {""}
        if config.public_url:
            self.origins.add(security.origin_of(config.public_url))
        self._runner: web.AppRunner | None = None
        self._availability: Availability | None = None
        self.bound: tuple[str, int] | None = None  # the address actually listened on
        self.ready = asyncio.Event()

    # ---- life cycle ---------------------------------------------------------------------
    async def open(self) -> None:
        try:
            configured = self.config.secret()
        except Exception as exc:  # ConfigError: one sentence already
            raise ChannelError(str(exc)) from None
        self.signer = security.Signer(security.load_secret(self.home, configured))

    async def close(self) -> None:
        for v in list(self.visitors.values()):
            for ws in list(v.sockets):
                with contextlib.suppress(Exception):
                    await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def cursor_keys(self) -> list[str]:
        return []

    async def serve(self, sink: InboundSink) -> None:
        """Listen until cancelled, handing every visitor message to ``sink``."""
        if self.signer is None:
            await self.open()
        self.sink = sink
        app = self.make_app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = self.config.host_port()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ChannelError(
                f"channel {self.name} cannot listen on {self.config.listen}: {exc.strerror}"
            ) from None
        addrs = self._runner.addresses
        self.bound = (str(addrs[0][0]), int(addrs[0][1])) if addrs else (host, port)
        self.ready.set()
        log.info("web channel %s listening on %s:%s", self.name, *self.bound)
        try:
            while True:
                await asyncio.sleep(STATUS_EVERY)
                await self._push_status()
        finally:
            self.ready.clear()
            await self.close()

    def make_app(self) -> web.Application:
        max_body = self.config.max_attachments * self.config.max_attachment_bytes + 256 * 1024
        app = web.Application(client_max_size=max_body, middlewares=[self._headers])
        app.router.add_get("/widget.js", self.widget_js)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/contact", self.contact_page)
        app.router.add_post("/contact", self.contact_post)
        app.router.add_get("/healthz", self.healthz)
        # webhooks of other channels served here (WhatsApp: GET|POST /whatsapp/<channel>)
        app.router.add_route("*", "/whatsapp/{name}", self.mounted)
        return app

    async def mounted(self, request: web.Request) -> web.StreamResponse:
        return await hub.dispatch(self.name, request)

    @web.middleware
    async def _headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        resp = await handler(request)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return resp

    # ---- helpers ------------------------------------------------------------------------
    def client_address(self, request: web.Request) -> str:
        peer = request.remote or ""
        if self.config.trust_proxy:
            try:
                loop_peer = ipaddress.ip_address(peer).is_loopback
            except ValueError:
                loop_peer = False
            if loop_peer:
                fwd = request.headers.get("X-Forwarded-For", "")
                if fwd:
                    return fwd.split(",")[-1].strip()[:64]
                real = request.headers.get("X-Real-IP", "")
                if real:
                    return real.strip()[:64]
        return peer

    def origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and security.origin_of(origin or "") in self.origins

    def own_origin(self, request: web.Request) -> str:
        if self.config.public_url:
            return security.origin_of(self.config.public_url)
        return f"{request.scheme}://{request.host}"

    def _visitor_from(self, request: web.Request, token: str | None = None) -> tuple[str, str]:
        assert self.signer is not None
        vid = self.signer.visitor_of(request.cookies.get(security.VISITOR_COOKIE))
        if vid is None:
            vid = self.signer.visitor_of(token)
        if vid is None:
            return self.signer.new_visitor()
        return vid, self.signer.visitor_token(vid)

    def _set_cookie(self, resp: web.StreamResponse, request: web.Request, token: str) -> None:
        secure = (self.config.public_url or "").startswith("https:") or request.secure
        resp.set_cookie(
            security.VISITOR_COOKIE,
            token,
            max_age=365 * 86400,
            path="/",
            httponly=True,
            secure=secure,
            samesite="None" if secure else "Lax",
        )

    def lang_for(self, request: web.Request, asked: str | None = None) -> str:
        if self.config.language != "auto":
            return self.config.language
        if asked in TEXTS:
            return str(asked)
        accept = request.headers.get("Accept-Language", "").lower()
        return "ru" if accept.startswith("ru") else "en"

    async def availability(self) -> Availability | None:
        if self.sink is None:
            return None
        try:
            self._availability = await self.sink.availability(self.name)
        except Exception:
            log.exception("availability")
        return self._availability

    def _status_frame(self, av: Availability | None, lang: str) -> dict[str, Any]:
        if av is None:
            return {"t": "status", "online": False, "promise": ""}
        from_secs = int(av.first_response.total_seconds())
        return {"t": "status", "online": av.online, "promise": _humanize(from_secs, lang)}

    async def _push_status(self) -> None:
        if not self.visitors:
            return
        before = self._availability
        av = await self.availability()
        if av == before:
            return
        for v in list(self.visitors.values()):
            for ws in list(v.sockets):
                with contextlib.suppress(Exception):
                    await ws.send_json(self._status_frame(av, v.lang))

    # ---- GET /healthz, /widget.js --------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        open_ = sum(len(v.sockets) for v in self.visitors.values())
        return web.json_response({"status": "ok", "channel": self.name, "connections": open_})

    async def widget_js(self, request: web.Request) -> web.Response:
        cfg = {
            "channel": self.name,
            "lang": self.config.language,
            "color": self.config.color,
            "textColor": self.config.text_color,
            "greeting": self.config.greeting or "",
            "maxChars": self.config.max_message_chars,
            "base": (self.config.public_url or "").rstrip("/"),
            "texts": {lang: self.config.text_table(lang, self.desk_name) for lang in TEXTS},
        }
        body = _static("widget.js").replace("/*CONFIG*/{}", _json_for_script(cfg), 1)
        return web.Response(
            text=body,
            content_type="application/javascript",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    # ---- the websocket ------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.origin_allowed(request.headers.get("Origin")):
            return web.json_response({"error": "this site may not embed the widget"}, status=403)
        if not self.ip_limit.allow(self.client_address(request)):
            return web.json_response({"error": "too many requests"}, status=429)
        vid, token = self._visitor_from(request, request.query.get("token"))
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024)
        self._set_cookie(ws, request, token)
        await ws.prepare(request)
        v = self.visitors.get(vid)
        if v is None:
            v = self.visitors[vid] = _Visitor(vid)
        v.sockets.add(ws)
        v.last_seen = time.monotonic()
        conn = _Conn(self, ws, v, token, self.client_address(request))
        try:
            await conn.run()
        finally:
            v.sockets.discard(ws)
            v.last_seen = time.monotonic()
        return ws

    # ---- the contact form ---------------------------------------------------------------
    async def contact_page(self, request: web.Request) -> web.Response:
        vid, token = self._visitor_from(request)
        lang = self.lang_for(request, request.query.get("lang"))
        resp = self._page(lang, self._form_html(lang, vid))
        self._set_cookie(resp, request, token)
        return resp

    def _form_html(
        self, lang: str, vid: str, *, error: str = "", values: dict[str, str] | None = None
    ) -> str:
        assert self.signer is not None
        t = self.config.text_table(lang, self.desk_name)
        e = html.escape
        val = values or {}
        hidden = (
            f'<input type="hidden" name="csrf" value="{e(self.signer.csrf_token(vid))}">'
            f'<input type="hidden" name="submission" value="{e(secrets.token_urlsafe(16))}">'
            f'<input type="hidden" name="lang" value="{e(lang)}">'
        )
        err = f'<p class="error" role="alert">{e(t["form_error"])}: {e(error)}</p>' if error else ""
        files = t["files"].replace("{size}", _human_size(self.config.max_attachment_bytes))
        return (
            f"<h1>{e(t['form_title'])}</h1><p>{e(t['form_intro'])}</p>{err}"
            '<form method="post" action="contact" enctype="multipart/form-data">'
            f"{hidden}"
            f'<label for="f-name">{e(t["name"])}</label>'
            f'<input id="f-name" name="name" autocomplete="name" maxlength="100" value="{e(val.get("name", ""))}">'
            f'<label for="f-email">{e(t["email"])}</label>'
            f'<input id="f-email" name="email" type="email" autocomplete="email" required maxlength="254" value="{e(val.get("email", ""))}">'
            f'<label for="f-subject">{e(t["subject"])}</label>'
            f'<input id="f-subject" name="subject" maxlength="200" value="{e(val.get("subject", ""))}">'
            f'<label for="f-message">{e(t["message"])}</label>'
            f'<textarea id="f-message" name="message" rows="8" required maxlength="{self.config.max_message_chars}">{e(val.get("message", ""))}</textarea>'
            f'<label for="f-files">{e(files)}</label>'
            '<input id="f-files" name="files" type="file" multiple accept="image/png,image/jpeg,image/gif,image/webp,application/pdf">'
            '<div class="hp" aria-hidden="true"><label for="f-website">Website</label>'
            '<input id="f-website" name="website" tabindex="-1" autocomplete="off"></div>'
            f'<button type="submit">{e(t["submit"])}</button></form>'
        )

    def _page(self, lang: str, body: str, status: int = 200) -> web.Response:
        t = self.config.text_table(lang, self.desk_name)
        page = (
            _static("contact.html")
            .replace("{lang}", lang)
            .replace("{title}", html.escape(f"{t['form_title']} — {t['title']}"))
            .replace("{color}", self.config.color)
            .replace("{text_color}", self.config.text_color)
            .replace("{body}", body)
        )
        return web.Response(
            text=page,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                "Cache-Control": "no-store",
            },
        )

    async def contact_post(self, request: web.Request) -> web.Response:
        assert self.signer is not None and self.sink is not None
        lang = self.lang_for(request)
        origin = request.headers.get("Origin")
        if origin and security.origin_of(origin) not in self.origins | {self.own_origin(request)}:
            return self._page(lang, "<p>Forbidden.</p>", 403)
        if not self.ip_limit.allow(self.client_address(request)):
            return self._page(lang, "<p>Too many requests; try again in a minute.</p>", 429)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._page(lang, "<p>The form is too large.</p>", 413)
        form, uploads = parse_form(request.headers.get("Content-Type", ""), raw)
        lang = str(form.get("lang") or lang) if form.get("lang") in TEXTS else lang
        t = self.config.text_table(lang, self.desk_name)
        vid = self.signer.visitor_of(request.cookies.get(security.VISITOR_COOKIE))

        def field_(name: str, limit: int) -> str:
            return clean_text(form.get(name, ""), limit)

        values = {
            "name": field_("name", 100),
            "email": field_("email", 254),
            "subject": field_("subject", 200),
            "message": field_("message", self.config.max_message_chars),
        }

        def again(error: str, status: int = 400) -> web.Response:
            fresh_vid, token = self._visitor_from(request)
            resp = self._page(
                lang, self._form_html(lang, fresh_vid, error=error, values=values), status
            )
            self._set_cookie(resp, request, token)
            return resp

        if field_("website", 200):  # the honeypot: a person never sees this field
            return self._page(
                lang,
                f"<p>{html.escape(t['thanks'].replace('#{ticket}', '').replace('{ticket}', ''))}</p>",
            )
        if not self.signer.csrf_ok(vid, form.get("csrf")):
            return again("the form has expired; please send it again", 403)
        if not _EMAIL.match(values["email"]):
            return again("the e-mail address is not valid")
        if not values["message"]:
            return again("the message is empty")
        submission = form.get("submission", "")
        if not _CID.match(submission):
            return again("the form is incomplete; please send it again")
        atts: list[Attachment] = []
        for filename, data in uploads:
            shown = clean_text(filename or "a file", 100)
            if len(data) > self.config.max_attachment_bytes:
                limit = _human_size(self.config.max_attachment_bytes)
                return again(f"{shown} is larger than {limit}", 413)
            ctype = security.sniff_upload(data)
            if ctype is None:
                return again(f"{shown} is not an image or a PDF", 415)
            atts.append(
                Attachment(
                    filename=security.safe_filename(filename, ctype),
                    content_type=ctype,
                    data=data,
                    size=len(data),
                )
            )
        if len(atts) > self.config.max_attachments:
            return again(f"at most {self.config.max_attachments} files can be attached", 413)
        msg = InboundMessage(
            kind="email",
            external_id=f"webform:{submission}",
            sender_address=values["email"],
            sender_name=values["name"],
            subject=values["subject"] or values["message"].splitlines()[0][:80],
            text=values["message"],
            attachments=atts,
            raw=raw,
            sent_at=datetime.now(UTC),
            extra={
                "via": "contact form",
                "visitor": vid or "",
                "page": clean_text(request.headers.get("Referer", ""), 500),
                "client": self.client_address(request),
            },
            channel=self.name,
        )
        try:
            stored = await self.sink([msg])
        except Exception:
            log.exception("contact form")
            return again("the desk could not store it just now; please try again", 503)
        ticket = stored[0].ticket_id if stored else None
        thanks = t["thanks"].replace("{ticket}", str(ticket or "?"))
        return self._page(
            lang,
            f'<h1>{html.escape(t["form_title"])}</h1><p role="status">{html.escape(thanks)}</p>',
        )

    def parse_raw(self, raw: bytes) -> InboundMessage:
        """A widget message again from the ledger (the JSON frame kept before it was stored);
        a contact form's request body cannot be parsed again without its headers."""
        try:
            data = json.loads(raw.decode("utf-8"))
            vid, cid, text = str(data["visitor"]), str(data["cid"]), str(data["text"])
            at = datetime.fromisoformat(str(data["at"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise ParseError("this is not a website chat message kept by this channel") from None
        if not _CID.match(cid) or not vid.startswith("v"):
            raise ParseError("the kept website message has no valid visitor or client id")
        keep = ("conversation", "chat_id", "page", "client_id", "email")
        return InboundMessage(
            kind="web",
            external_id=f"web:{vid}:{cid}",
            sender_address=vid,
            text=clean_text(text, self.config.max_message_chars),
            sent_at=at,
            raw=raw,
            extra={k: data[k] for k in keep if isinstance(data.get(k), str)},
            channel=self.name,
        )

    # ---- outbound -----------------------------------------------------------------------
    async def send(self, msg: OutboundMessage) -> SendResult:
        """Push a reply to the visitor's open widgets; wait for their return otherwise, and
        hand it to the desk's mail when they have gone and left an address."""
        mid = msg.message_id or f"web-out:{secrets.token_hex(8)}"
        v = self.visitors.get(msg.to_address)
        now = time.monotonic()
        if v is not None and v.sockets:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            v.waiting[mid] = fut
            frame = {
                "t": "msg",
                "id": mid,
                "dir": "out",
                "text": msg.text,
                "author": str(msg.extra.get("author") or ""),
                "at": datetime.now(UTC).isoformat(),
            }
            try:
                for ws in list(v.sockets):
                    with contextlib.suppress(Exception):
                        await ws.send_json(frame)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fut), SEEN_TIMEOUT)
                    return SendResult([mid], "shown in the visitor's widget")
            finally:
                v.waiting.pop(mid, None)
        # the last frame the visitor's widget sent (it pings every 20 s while the page is open);
        # a socket that stays connected but silent (a frozen tab) does not count as presence
        last = v.last_seen if v is not None else self.started
        gone_for = now - last
        if gone_for < self.away_after:
            raise SendError(
                "the visitor's widget is not open; the reply waits for their return",
                retry_after=max(self.away_after - gone_for, 1.0),
            )
        if self.sink is not None:
            address = await self.sink.forward_by_email(self.name, msg.to_address, msg)
            if address:
                return SendResult([mid], f"the visitor had left; sent by e-mail to {address}")
        return SendResult([mid], "kept for the visitor's return (no e-mail address)")


def _humanize(secs: int, lang: str) -> str:
    units = (
        [(86400, "дн."), (3600, "ч"), (60, "мин")]
        if lang == "ru"
        else [(86400, "d"), (3600, "h"), (60, "min")]
    )
    parts = []
    for size, label in units:
        if secs >= size:
            parts.append(f"{secs // size} {label}")
            secs %= size
    return " ".join(parts[:2]) or ("1 мин" if lang == "ru" else "1 min")


class _Conn:
    """One open widget. Frames from the browser (JSON objects with ``t``):

    - ``hello {lang, page}``                 -> ``welcome {token, visitor, messages, status}``
    - ``msg {cid, text}``                    -> ``ack {cid, id, ticket}`` once committed
    - ``contact {name, email}``              -> ``contact_ok`` (sent with the next messages)
    - ``suggest {q}``                        -> ``kb {q, items: [{title, url, snippet}]}``
    - ``seen {id}``                          (a pushed reply is on screen)
    - ``ping``                               -> ``pong``
    Errors: ``error {cid?, text}`` (one sentence; the connection stays open).
    """

    def __init__(
        self, ch: WebChannel, ws: web.WebSocketResponse, v: _Visitor, token: str, client: str
    ) -> None:
        self.ch, self.ws, self.v, self.token, self.client = ch, ws, v, token, client

    async def send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_json(frame)

    async def run(self) -> None:
        async for frame in self.ws:
            self.v.last_seen = time.monotonic()
            if frame.type != WSMsgType.TEXT:
                if frame.type == WSMsgType.BINARY:
                    await self.send({"t": "error", "text": "frames are JSON text"})
                continue
            try:
                data = json.loads(frame.data)
            except ValueError:
                await self.send({"t": "error", "text": "a frame is not JSON"})
                continue
            if not isinstance(data, dict):
                await self.send({"t": "error", "text": "a frame is a JSON object"})
                continue
            kind = data.get("t")
            try:
                if kind == "hello":
                    await self.hello(data)
                elif kind == "msg":
                    await self.message(data)
                elif kind == "contact":
                    await self.contact(data)
                elif kind == "suggest":
                    await self.suggest(data)
                elif kind == "seen":
                    fut = self.v.waiting.get(str(data.get("id")))
                    if fut is not None and not fut.done():
                        fut.set_result(True)
                elif kind == "ping":
                    await self.send({"t": "pong"})
                else:
                    await self.send({"t": "error", "text": "unknown frame type"})
            except (ConnectionError, RuntimeError):
                return

    async def hello(self, data: dict[str, Any]) -> None:
        lang = data.get("lang")
        self.v.lang = lang if isinstance(lang, str) and lang in TEXTS else self.v.lang
        page = data.get("page")
        if isinstance(page, str) and page.startswith(("http://", "https://")):
            self.v.page = clean_text(page, 500)
        lines: list[dict[str, Any]] = []
        assert self.ch.sink is not None
        try:
            for line in await self.ch.sink.conversation(self.ch.name, self.v.vid):
                lines.append(
                    {
                        "id": line.id,
                        "dir": line.direction,
                        "text": line.text,
                        "author": line.author if line.direction == "out" else "",
                        "at": line.at.isoformat(),
                    }
                )
        except Exception:
            log.exception("conversation")
        av = self.ch._availability or await self.ch.availability()
        await self.send(
            {
                "t": "welcome",
                "token": self.token,
                "visitor": self.v.vid,
                "messages": lines,
                "email": bool(self.v.email),
                **{k: v for k, v in self.ch._status_frame(av, self.v.lang).items() if k != "t"},
            }
        )

    async def contact(self, data: dict[str, Any]) -> None:
        email = clean_text(str(data.get("email") or ""), 254)
        name = clean_text(str(data.get("name") or ""), 100)
        if email and not _EMAIL.match(email):
            await self.send({"t": "error", "text": "the e-mail address is not valid"})
            return
        if email:
            self.v.email = email
        if name:
            self.v.name = name
        await self.send({"t": "contact_ok", "email": bool(self.v.email)})

    async def message(self, data: dict[str, Any]) -> None:
        cid = data.get("cid")
        if not isinstance(cid, str) or not _CID.match(cid):
            await self.send({"t": "error", "text": "a message needs a client id"})
            return
        text = data.get("text")
        text = clean_text(text, self.ch.config.max_message_chars) if isinstance(text, str) else ""
        if not text:
            await self.send({"t": "error", "cid": cid, "text": "the message is empty"})
            return
        if not self.ch.visitor_limit.allow(self.v.vid) or not self.ch.ip_limit.allow(
            "msg:" + self.client
        ):
            await self.send(
                {
                    "t": "error",
                    "cid": cid,
                    "text": "too many messages; wait a minute",
                    "retry": True,
                }
            )
            return
        now = datetime.now(UTC)
        extra: dict[str, Any] = {
            "conversation": self.v.vid,  # one conversation per browser
            "chat_id": self.v.vid,  # where replies go (the pipeline's name for it)
            "page": self.v.page,
            "client_id": cid,
        }
        if self.v.email:
            extra["email"] = self.v.email
        raw = json.dumps(
            {"visitor": self.v.vid, "cid": cid, "text": text, "at": now.isoformat(), **extra},
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")
        msg = InboundMessage(
            kind="web",  # type: ignore[arg-type]
            external_id=f"web:{self.v.vid}:{cid}",
            sender_address=self.v.vid,
            sender_name=self.v.name,
            text=text,
            sent_at=now,
            raw=raw,
            extra=extra,
            channel=self.ch.name,
        )
        assert self.ch.sink is not None
        try:
            stored = await self.ch.sink([msg])
        except Exception:
            log.exception("storing a widget message")
            await self.send(
                {
                    "t": "error",
                    "cid": cid,
                    "text": "the desk could not store it; retrying",
                    "retry": True,
                }
            )
            return
        st = stored[0] if stored else None
        await self.send(
            {
                "t": "ack",
                "cid": cid,
                "id": msg.external_id,
                "ticket": st.ticket_id if st else None,
                "at": now.isoformat(),
            }
        )

    async def suggest(self, data: dict[str, Any]) -> None:
        q = data.get("q")
        q = clean_text(q, 500) if isinstance(q, str) else ""
        if len(q) < 3 or not self.ch.suggest_limit.allow(self.v.vid):
            return
        assert self.ch.sink is not None
        try:
            found = await self.ch.sink.suggest(q, 3)
        except Exception:
            log.exception("suggest")
            return
        base = (self.ch.config.kb_url or "").rstrip("/")
        items = [
            {
                "title": a.title,
                "snippet": a.snippet,
                "url": f"{base}/{a.slug}.html"
                if base and re.fullmatch(r"[a-z0-9-]+", a.slug)
                else "",
            }
            for a in found[:3]
        ]
        await self.send({"t": "kb", "q": q, "items": items})
