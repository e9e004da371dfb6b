"""The WhatsApp channel: Business Cloud API webhook in, Graph API messages out.

Inbound is pushed: Meta calls ``GET|POST /whatsapp/<channel name>``. The GET is the verify
handshake (``hub.verify_token`` must equal the secret named by ``verify_token_env``); every
POST must carry ``X-Hub-Signature-256`` made with the app secret (``app_secret_env``) over the
exact body, checked in constant time -- a forged call gets 403 and is never parsed. A body that
was already handled (Meta retries, or someone replays a captured call) is answered 200 and
ignored; messages are deduplicated by their ``wamid`` in the pipeline besides. The answer 200
goes out only after the pipeline committed (``await sink(...)``), so a crash makes Meta retry.

Media come through the Graph API (``GET /<media id>`` for a short-lived URL, then the file
with the same bearer token), checked against the SHA-256 the webhook announced.

Delivery reports (``statuses``: sent, delivered, read, failed) go to the sink's
``delivery`` callback, which records them on the outbox row. The Cloud API has no
idempotency key for messages, so a send is not repeated blindly: each message carries
``biz_opaque_callback_data = "outbox:<row>:<part>"``, which Meta echoes in the status
reports, and the desk marks a row it was unsure about as sent when the report arrives.

The 24-hour customer-service window: a free-form message is only allowed within 24 hours of
the customer's last message; outside it only an approved template may be sent. The desk
checks before an agent writes (``Capabilities.reply_window``) and the API refuses with error
131047 besides, which is a permanent failure here.

The webhook needs an HTTPS endpoint. It belongs on the website channel's listener; until that
listener mounts other channels' routes, this channel serves the same route shape on its own
small aiohttp listener (``listen``), to be put behind the same reverse proxy. The seam is
:meth:`WhatsAppChannel.routes`: an aiohttp route table the web listener can add as it is.

Long because: one protocol end to end: the signed webhook, media downloads, the 24-hour window,
templates and delivery reports.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import hashlib
import json
import logging
from typing import Any, ClassVar, Literal

import httpx
from aiohttp import web
from pydantic import Field

from supportdesk.channels import hub
from supportdesk.channels.base import (
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
from supportdesk.channels.whatsapp.webhook import (
    MediaWanted,
    ReplayGuard,
    parse,
    signature_ok,
    verify_challenge,
)
from supportdesk.core.config import ChannelConfigBase

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_BODY = 3 * 1024 * 1024  # a webhook call is a few KB; anything this big is not Meta
MEDIA_LIMIT = 100 * 1024 * 1024
WINDOW = dt.timedelta(hours=24)
# Graph API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
OUTSIDE_WINDOW = 131047  # "Re-engagement message": more than 24 hours since the customer wrote
RATE_LIMITS = frozenset({4, 80007, 130429, 131048, 131056})
PERMANENT = frozenset({100, 131008, 131009, 131026, 131051, 132000, 132001, 132005, 132012})


class WhatsAppConfig(ChannelConfigBase):
    type: Literal["whatsapp"]
    phone_number_id: str
    token_env: str | None = None
    token_cmd: str | None = None
    app_secret_env: str | None = None
    app_secret_cmd: str | None = None
    verify_token_env: str | None = None
    verify_token_cmd: str | None = None
    api_url: str = "https://graph.facebook.com/v21.0"
    # the website channel whose listener serves the webhook (GET|POST /whatsapp/<name>); without
    # one, the channel listens on its own (host:port)
    web: str | None = None
    listen: str = "127.0.0.1:8788"
    # approved message templates that may be sent outside the 24-hour window ("name" or
    # "name:language"); the language defaults to template_language
    templates: list[str] = Field(default_factory=list)
    template_language: str = "en"

    def token(self) -> str | None:
        return self._resolve(self.token_env, self.token_cmd, f"access token of channel {self.name}")

    def app_secret(self) -> str | None:
        return self._resolve(
            self.app_secret_env, self.app_secret_cmd, f"app secret of channel {self.name}"
        )

    def verify_token(self) -> str | None:
        return self._resolve(
            self.verify_token_env, self.verify_token_cmd, f"verify token of channel {self.name}"
        )


def template_of(config: WhatsAppConfig, name: str) -> tuple[str, str] | None:
    """(name, language) of an approved template, or None."""
    for entry in config.templates:
        tname, _, lang = entry.partition(":")
        if tname.strip() == name:
            return tname.strip(), (lang.strip() or config.template_language)
    return None


class WhatsAppChannel(Channel):
    type: ClassVar[str] = "whatsapp"
    title: ClassVar[str] = "WhatsApp"
    icon: ClassVar[str] = "W"
    identity_kind: ClassVar[str] = "whatsapp"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = WhatsAppConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        attachments=True,
        max_attachment_bytes=MEDIA_LIMIT,
        max_text=MAX_TEXT,
        reply_window=WINDOW,
    )

    config: WhatsAppConfig

    def __init__(self, config: ChannelConfigBase, *, home: Any, desk_name: str) -> None:
        super().__init__(config, home=home, desk_name=desk_name)
        self._http: httpx.AsyncClient | None = None
        self._token = ""
        self._secret = ""
        self._verify = ""
        self._replays = ReplayGuard()
        self._sink: InboundSink | None = None
        self.bound: tuple[str, int] | None = None  # where serve() listens (for tests)

    @classmethod
    def approved_templates(cls, config: ChannelConfigBase) -> list[str]:
        return list(config.templates) if isinstance(config, WhatsAppConfig) else []

    # ------------------------------------------------------------------ life cycle

    async def open(self) -> None:
        if self._http is not None:
            return
        token, secret = self.config.token(), self.config.app_secret()
        if not token:
            raise ChannelError(
                f"channel {self.name} has no access token (set token_env or token_cmd)"
            )
        if not secret:
            raise ChannelError(
                f"channel {self.name} has no app secret (set app_secret_env): "
                "webhook calls could not be checked"
            )
        self._token, self._secret = token.strip(), secret.strip()
        self._verify = (self.config.verify_token() or "").strip()
        self._http = httpx.AsyncClient(
            timeout=30.0,
            follow_redirects=False,
            headers={"Authorization": f"Bearer {self._token}"},
        )

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            await self.open()
        assert self._http is not None
        return self._http

    def __repr__(self) -> str:
        return (
            f"WhatsAppChannel(name={self.name!r}, phone_number_id={self.config.phone_number_id!r})"
        )

    # ------------------------------------------------------------------ inbound (webhook)

    def path(self) -> str:
        return f"/whatsapp/{self.name}"

    def routes(self) -> list[web.RouteDef]:
        """The webhook's routes, for whichever aiohttp listener serves them."""
        return [web.get(self.path(), self._handle_get), web.post(self.path(), self._handle_post)]

    async def serve(self, sink: InboundSink) -> None:
        await self.open()
        self._sink = sink
        if self.config.web:
            hub.mount(self.config.web, self.path(), self._dispatch)
            try:
                await asyncio.Event().wait()
            finally:
                hub.unmount(self.config.web, self.path())
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(self.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, _, port = self.config.listen.rpartition(":")
        try:
            site = web.TCPSite(runner, host or "127.0.0.1", int(port))
            await site.start()
        except (OSError, ValueError) as exc:
            await runner.cleanup()
            raise ChannelError(
                f"channel {self.name} cannot listen on {self.config.listen}: {exc}"
            ) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            addr = sockets[0].getsockname()
            self.bound = (str(addr[0]), int(addr[1]))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return await self._handle_get(request)
        if request.method == "POST":
            return await self._handle_post(request)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        challenge = verify_challenge(dict(request.query), self._verify)
        if challenge is None:
            log.warning(
                "channel %s: a webhook verification with a wrong token was refused", self.name
            )
            return web.Response(status=403, text="forbidden")
        return web.Response(text=challenge)

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not signature_ok(body, request.headers.get("X-Hub-Signature-256"), self._secret):
            log.warning(
                "channel %s: a webhook call without a valid signature was refused", self.name
            )
            return web.Response(status=403, text="bad signature")
        digest = ReplayGuard.digest(body)
        if self._replays.seen(digest):
            return web.Response(text="ok")  # handled before: a retry or a replay
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        sink = self._sink
        if sink is None:
            return web.Response(status=503, text="not ready")
        try:
            await self.handle(payload, sink)
        except ChannelError as exc:
            log.warning("channel %s: webhook call not handled: %s", self.name, exc)
            return web.Response(status=503, text="try again")  # Meta retries
        self._replays.remember(digest)
        return web.Response(text="ok")

    async def handle(self, payload: Any, sink: InboundSink) -> None:
        """Download media, store the messages, record the statuses (in that order)."""
        parsed = parse(payload, self.config.phone_number_id)
        messages: list[InboundMessage] = []
        for msg, media in parsed.messages:
            for wanted in media:
                await self._download(wanted)
            msg.channel = self.name
            messages.append(msg)
        if messages:
            await sink(messages)
        if parsed.statuses:
            await sink.delivery(parsed.statuses)

    async def _download(self, wanted: MediaWanted) -> None:
        att = wanted.attachment
        http = await self._client()
        try:
            meta_resp = await http.get(f"{self.config.api_url.rstrip('/')}/{wanted.media_id}")
            meta = _graph_json(meta_resp)
            if "error" in meta:
                att.note = f"WhatsApp did not hand out the file: {_graph_error(meta)[1]}"
                return
            size = int(meta.get("file_size") or 0)
            if size > MEDIA_LIMIT:
                att.note = f"file of {size / 1048576:.1f} MB is over the download limit"
                return
            url = str(meta.get("url") or "")
            if not url.startswith(("https://", "http://")):
                att.note = "WhatsApp gave no address for the file"
                return
            file_resp = await http.get(url)
        except httpx.HTTPError as exc:  # network trouble: fail the call, Meta sends it again
            raise ChannelError(
                f"the WhatsApp file could not be downloaded: {type(exc).__name__}"
            ) from exc
        if file_resp.status_code != 200:
            att.note = f"WhatsApp answered {file_resp.status_code} for the file"
            return
        data = file_resp.content
        want = wanted.sha256 or str(meta.get("sha256") or "")
        if want and hashlib.sha256(data).hexdigest() != want.lower():
            att.note = "the file's SHA-256 does not match what WhatsApp announced; not kept"
            return
        att.data, att.size = data, len(data)
        if meta.get("mime_type") and att.content_type == "application/octet-stream":
            att.content_type = str(meta["mime_type"]).split(";")[0]

    def parse_raw(self, raw: bytes) -> InboundMessage:
        from supportdesk.channels.whatsapp.webhook import message

        try:
            m = json.loads(raw)
        except ValueError as exc:
            raise ParseError("the kept WhatsApp message is not JSON") from exc
        made = message(m, {}) if isinstance(m, dict) else None
        if made is None:
            raise ParseError("the kept WhatsApp message has no id or sender")
        return made[0]

    # ------------------------------------------------------------------ outbound

    async def send(self, msg: OutboundMessage) -> SendResult:
        to = str(msg.to_address).strip().removeprefix("wa:").removeprefix("+")
        if not to.isdigit():
            raise SendError(f"{msg.to_address!r} is not a WhatsApp number.", permanent=True)
        row = msg.extra.get("outbox_id")
        tag = f"outbox:{row}" if row is not None else ""
        bodies: list[dict[str, Any]] = []
        template = msg.extra.get("approved_template")
        if template:
            found = template_of(self.config, str(template))
            if found is None:
                raise SendError(
                    f"{template!r} is not an approved template of channel {self.name}.",
                    permanent=True,
                )
            name, lang = found
            params = [str(p) for p in msg.extra.get("template_params") or []]
            tpl: dict[str, Any] = {"name": name, "language": {"code": lang}}
            if params:
                tpl["components"] = [
                    {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
                ]
            bodies.append({"type": "template", "template": tpl})
        else:
            closes = msg.extra.get("window_closes_at")
            if closes and dt.datetime.fromisoformat(str(closes)) <= dt.datetime.now(dt.UTC):
                raise SendError(window_sentence(self.name), permanent=True)
            from supportdesk.channels.telegram.bot import split_text

            for part in split_text(msg.text, MAX_TEXT) if msg.text.strip() else []:
                bodies.append({"type": "text", "text": {"body": part, "preview_url": False}})
            for att in msg.attachments:
                if att.data is None:
                    raise SendError(
                        f"Attachment {att.filename!r} has no data to send.", permanent=True
                    )
                media_id = await self._upload(att)
                kind = "image" if att.content_type in ("image/jpeg", "image/png") else "document"
                media: dict[str, Any] = {"id": media_id}
                if kind == "document":
                    media["filename"] = att.filename
                bodies.append({"type": kind, kind: media})
        if not bodies:
            raise SendError("The message has neither text nor attachments.", permanent=True)
        ids: list[str] = []
        skip = int(msg.extra.get("skip_parts") or 0)
        for index, body in enumerate(bodies):
            if index < skip:
                continue
            body = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                **body,
            }
            if tag:
                body["biz_opaque_callback_data"] = f"{tag}:{index}"
            try:
                ids.append(await self._post_message(body))
            except SendError as exc:
                exc.sent_parts = index  # type: ignore[attr-defined]
                exc.sent_external_ids = ids  # type: ignore[attr-defined]
                raise
        return SendResult(external_ids=ids, detail=f"{len(ids)} part(s)")

    async def _post_message(self, body: dict[str, Any]) -> str:
        http = await self._client()
        url = f"{self.config.api_url.rstrip('/')}/{self.config.phone_number_id}/messages"
        try:
            resp = await http.post(url, json=body)
        except httpx.TimeoutException as exc:
            # it may or may not have gone out: the outbox's in-doubt handling decides
            raise SendError("WhatsApp did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise SendError(f"Could not reach WhatsApp: {type(exc).__name__}.") from exc
        answer = _graph_json(resp)
        if "error" in answer:
            code, text = _graph_error(answer)
            if code == OUTSIDE_WINDOW:
                raise SendError(window_sentence(self.name), permanent=True)
            if code in RATE_LIMITS:
                raise SendError(f"WhatsApp asks to slow down: {text}.", retry_after=30.0)
            if code == 190:
                raise SendError(f"WhatsApp rejected the access token of channel {self.name}.")
            raise SendError(
                f"WhatsApp refused the message: {text} (error {code}).",
                permanent=code in PERMANENT or 400 <= resp.status_code < 500,
            )
        try:
            return "wa:" + str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise SendError("WhatsApp's answer has no message id.") from exc

    async def _upload(self, att: Any) -> str:
        http = await self._client()
        url = f"{self.config.api_url.rstrip('/')}/{self.config.phone_number_id}/media"
        try:
            resp = await http.post(
                url,
                data={"messaging_product": "whatsapp", "type": att.content_type},
                files={"file": (att.filename, att.data, att.content_type)},
            )
        except httpx.HTTPError as exc:
            raise SendError(f"Could not upload to WhatsApp: {type(exc).__name__}.") from exc
        answer = _graph_json(resp)
        if "error" in answer or not answer.get("id"):
            code, text = _graph_error(answer)
            raise SendError(f"WhatsApp refused the file {att.filename!r}: {text}.", permanent=True)
        return str(answer["id"])


def window_sentence(channel: str) -> str:
    return (
        f"The 24-hour WhatsApp window of channel {channel} is closed: the customer last wrote "
        "more than 24 hours ago, so only an approved template can be sent."
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _graph_json(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code >= 500:
        raise SendError(f"WhatsApp answered HTTP {resp.status_code}.")
    try:
        body = resp.json()
    except ValueError as exc:
        raise SendError("WhatsApp's answer is not JSON.") from exc
    if not isinstance(body, dict):
        raise SendError("WhatsApp's answer is not an object.")
    return body


def _graph_error(answer: dict[str, Any]) -> tuple[int, str]:
    err = _dict(answer.get("error"))
    try:
        code = int(err.get("code") or 0)
    except (TypeError, ValueError):
        code = 0
    data = _dict(err.get("error_data"))
    text = str(data.get("details") or err.get("message") or "unknown error")[:300]
    return code, text.rstrip(".")
