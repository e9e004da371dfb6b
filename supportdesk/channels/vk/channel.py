"""The VK channel: community messages over the Bots Long Poll API, replies with messages.send.

Cursor (one stream, key ``vk:ts``): ``{"ts": <long-poll ts>, "at": <unix time of the newest
message seen>}``. The runner commits it in the same transaction as the messages, so a runner
killed mid-batch polls again from the committed ``ts`` and VK hands out the same events again
(deduplicated on ``vk:<peer>:<conversation_message_id>``).

The long-poll key lives in memory only; a new one is asked for with
``groups.getLongPollServer`` whenever VK answers ``failed``:

* ``failed: 1`` -- the event history is outdated or partly lost: continue from the ``ts`` VK
  gives and recover the gap;
* ``failed: 2`` -- the key expired: get a new key, keep ``ts``;
* ``failed: 3`` -- the information is lost: get a new key and ``ts`` and recover the gap.

Recovering a gap reads ``messages.getConversations`` (newest activity first) down to the
cursor's ``at`` (less a safety margin) and ``messages.getHistory`` of each of those
conversations; what was already stored is dropped by the pipeline's deduplication, messages
edited in the gap come as edits.

Replies carry a ``random_id`` derived from the group and the outbox row (and the part), so a
resend after a crash between send and commit is dropped by VK, which answers with the message
it already delivered.

Long because: one protocol end to end: the long poll with its three `failed` answers, gap
recovery through the history methods, and sending with random_id.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import time
from typing import Any, ClassVar, Literal

from supportdesk.channels.base import (
    Capabilities,
    Channel,
    ChannelError,
    Fetched,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
)
from supportdesk.channels.vk import api as vkapi
from supportdesk.channels.vk.api import VkApi, VkApiError
from supportdesk.channels.vk.normalize import (
    external_id,
    guard_int,
    is_customer_message,
    normalize,
)
from supportdesk.core.config import ChannelConfigBase

log = logging.getLogger(__name__)

TS_KEY = "vk:ts"
MAX_TEXT = 4096  # characters in one messages.send
MAX_ATTACHMENTS = 10  # per message
RECOVERY_MARGIN = 120  # seconds before the cursor's `at` that a gap recovery reads from
PAGE = 200  # getConversations / getHistory page size (VK's maximum)
MAX_HISTORY_PAGES = 50


class VkConfig(ChannelConfigBase):
    type: Literal["vk"]
    group_id: int
    token_env: str | None = None
    token_cmd: str | None = None
    api_url: str = "https://api.vk.com/method"
    wait: int = 25  # long-poll wait in seconds (VK allows up to 90)

    def token(self) -> str | None:
        return self._resolve(
            self.token_env, self.token_cmd, f"community token of channel {self.name}"
        )


def random_id(group_id: int, key: str, part: int) -> int:
    """A stable positive int32 for one part of one outbox row (VK drops a repeated one)."""
    digest = hashlib.sha256(f"{group_id}:{key}:{part}".encode()).digest()
    return (int.from_bytes(digest[:4], "big") & 0x7FFFFFFF) or 1


class VkChannel(Channel):
    type: ClassVar[str] = "vk"
    title: ClassVar[str] = "VK"
    icon: ClassVar[str] = "V"
    identity_kind: ClassVar[str] = "vk"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = VkConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        attachments=True,
        max_attachment_bytes=200 * 1024 * 1024,
        max_text=MAX_TEXT,
        edits=True,
        idempotent_send=True,
    )

    config: VkConfig

    def __init__(self, config: ChannelConfigBase, *, home: Any, desk_name: str) -> None:
        super().__init__(config, home=home, desk_name=desk_name)
        self._api: VkApi | None = None
        self._server: str = ""
        self._key: str = ""
        self._server_ts: str = ""
        self._names: dict[int, tuple[str, str]] = {}

    # ------------------------------------------------------------------ life cycle

    async def open(self) -> None:
        if self._api is not None:
            return
        token = self.config.token()
        if not token:
            raise ChannelError(
                f"channel {self.name} has no community token (set token_env or token_cmd)"
            )
        self._api = VkApi(token, self.config.api_url)

    async def close(self) -> None:
        api, self._api = self._api, None
        self._key = ""
        if api is not None:
            await api.close()

    async def _client(self) -> VkApi:
        if self._api is None:
            await self.open()
        assert self._api is not None
        return self._api

    async def _call(self, method: str, **params: Any) -> Any:
        api = await self._client()
        for attempt in range(3):
            try:
                return await api.call(method, **params)
            except VkApiError as exc:
                if exc.code == vkapi.AUTH_FAILED:
                    raise ChannelError(
                        f"VK rejected the community token of channel {self.name}."
                    ) from exc
                if exc.code not in vkapi.RETRYABLE or attempt == 2:
                    raise
                await vkapi.sleep_for(exc.code)
        raise AssertionError("unreachable")

    async def _new_key(self) -> None:
        answer = await self._call("groups.getLongPollServer", group_id=self.config.group_id)
        try:
            self._server = str(answer["server"])
            self._key = str(answer["key"])
            self._server_ts = str(answer["ts"])
        except (TypeError, KeyError) as exc:
            raise ChannelError("VK's long-poll server answer lacks server, key or ts.") from exc

    # ------------------------------------------------------------------ inbound

    def cursor_keys(self) -> list[str]:
        return [TS_KEY]

    async def wait(self, key: str, cursor: Any | None, timeout: float) -> None:
        return None  # fetch long-polls: it is the wait

    async def fetch(self, key: str, cursor: Any | None, *, timeout: float) -> Fetched:
        if not self._key:
            await self._new_key()
        if not isinstance(cursor, dict) or "ts" not in cursor:
            # the first run starts at the present (earlier history is not imported); the cursor
            # goes back at once to be committed, so nothing after this moment can be missed
            return Fetched([], {"ts": self._server_ts, "at": int(time.time())}, more=True)
        ts, at = str(cursor["ts"]), int(cursor.get("at") or 0)
        api = await self._client()
        for _ in range(3):
            wait = max(0, min(int(timeout), self.config.wait))
            answer = await api.long_poll(self._server, self._key, ts, wait)
            failed = answer.get("failed")
            if failed is None:
                break
            if failed == 2:
                await self._new_key()
                continue
            if failed == 1:
                new_ts = str(answer.get("ts") or "")
                if not new_ts:
                    await self._new_key()
                    new_ts = self._server_ts
                log.warning("VK long-poll history for %s was lost; recovering the gap", self.name)
                return await self._recovered(new_ts, at)
            if failed == 3:
                await self._new_key()
                log.warning("VK long-poll state for %s was lost; recovering the gap", self.name)
                return await self._recovered(self._server_ts, at)
            raise ChannelError(f"VK's long-poll server answered failed={failed!r}.")
        else:
            raise ChannelError("VK keeps refusing the long-poll key.")
        updates = answer.get("updates")
        if not isinstance(updates, list):
            raise ChannelError("The VK long-poll answer has no updates list.")
        objects: list[tuple[dict[str, Any], bool]] = []
        for update in updates:
            if not isinstance(update, dict) or not isinstance(update.get("object"), dict):
                continue
            if update.get("group_id") not in (None, self.config.group_id):
                continue
            kind = update.get("type")
            obj = update["object"]
            if kind == "message_new":
                message = obj.get("message") if isinstance(obj.get("message"), dict) else obj
                objects.append((message, False))
            elif kind == "message_edit":
                objects.append((obj, True))
        messages = await self._messages(objects)
        new_at = max([at, *(_stamp(m) for m, _e in objects)])
        new_ts = str(answer.get("ts") or ts)
        return Fetched(messages, {"ts": new_ts, "at": new_at}, more=bool(updates))

    async def _recovered(self, ts: str, at: int) -> Fetched:
        objects = await self._history_since(at - RECOVERY_MARGIN)
        messages = await self._messages(objects)
        new_at = max([at, *(_stamp(m) for m, _e in objects)])
        return Fetched(messages, {"ts": ts, "at": new_at}, more=True)

    async def _history_since(self, since: int) -> list[tuple[dict[str, Any], bool]]:
        """Customer messages sent or edited at or after ``since`` (oldest first)."""
        found: list[tuple[dict[str, Any], bool]] = []
        offset = 0
        while True:
            page = await self._call(
                "messages.getConversations",
                group_id=self.config.group_id,
                offset=offset,
                count=PAGE,
                filter="all",
            )
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ChannelError("VK's getConversations answer has no items.")
            done = False
            for item in items:
                last = item.get("last_message") or {}
                if max(_stamp(last), 0) < since:
                    done = True  # sorted by the newest activity: the rest are older
                    break
                peer = (item.get("conversation") or {}).get("peer") or {}
                if peer.get("type") not in (None, "user"):
                    continue
                found.extend(await self._peer_history(guard_int(peer.get("id"), "peer id"), since))
            if done or len(items) < PAGE:
                break
            offset += PAGE
        found.sort(key=lambda pair: (_int(pair[0].get("date")), _int(pair[0].get("id"))))
        return found

    async def _peer_history(self, peer: int, since: int) -> list[tuple[dict[str, Any], bool]]:
        out: list[tuple[dict[str, Any], bool]] = []
        for page_no in range(MAX_HISTORY_PAGES):
            page = await self._call(
                "messages.getHistory",
                group_id=self.config.group_id,
                peer_id=peer,
                offset=page_no * PAGE,
                count=PAGE,
            )
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ChannelError("VK's getHistory answer has no items.")
            older = False
            for m in items:  # newest first
                if not isinstance(m, dict):
                    continue
                if _int(m.get("date")) < since:
                    older = True
                    if _int(m.get("update_time")) < since:
                        continue
                # a message edited in the gap, or any message we may have missed: the pipeline
                # keeps what it has (an unchanged text is a duplicate) and updates edited text
                out.append((m, bool(m.get("update_time"))))
            if older or len(items) < PAGE:
                break
        return out

    async def _messages(self, objects: list[tuple[dict[str, Any], bool]]) -> list[InboundMessage]:
        wanted = [m for m, _e in objects if is_customer_message(m)]
        await self._learn_names({int(m["from_id"]) for m in wanted})
        api = await self._client()
        result: list[InboundMessage] = []
        for message, edited in objects:
            made = normalize(message, edited=edited, names=self._names)
            if made is None:
                continue
            msg, files = made
            for want in files:
                att = want.attachment
                if not want.url:
                    continue
                try:
                    data = await api.download(want.url)
                except ChannelError as exc:
                    att.note = f"not downloaded: {exc}"
                    continue
                att.data, att.size = data, len(data)
            result.append(msg)
        return result

    async def _learn_names(self, user_ids: set[int]) -> None:
        unknown = sorted(u for u in user_ids if u not in self._names)
        if not unknown:
            return
        try:
            users = await self._call("users.get", user_ids=unknown, fields="screen_name")
        except ChannelError as exc:  # names are nice to have: never fail a batch for them
            log.info("VK users.get failed: %s", exc)
            return
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict) and user.get("id"):
                name = " ".join(
                    str(user.get(k) or "").strip() for k in ("first_name", "last_name")
                ).strip()
                self._names[_int(user["id"])] = (name, str(user.get("screen_name") or ""))

    def parse_raw(self, raw: bytes) -> InboundMessage:
        import json

        from supportdesk.channels.base import ParseError

        try:
            message = json.loads(raw)
        except ValueError as exc:
            raise ParseError("the kept VK message is not JSON") from exc
        made = normalize(message, edited=False, names={}) if isinstance(message, dict) else None
        if made is None:
            raise ParseError("the kept VK message is not a customer's message")
        return made[0]

    # ------------------------------------------------------------------ outbound

    async def send(self, msg: OutboundMessage) -> SendResult:
        try:
            peer = int(str(msg.to_address).strip().removeprefix("vk:"))
        except ValueError:
            raise SendError(f"{msg.to_address!r} is not a VK peer id.", permanent=True) from None
        from supportdesk.channels.telegram.bot import split_text

        texts = split_text(msg.text, MAX_TEXT) if msg.text and msg.text.strip() else []
        for att in msg.attachments:
            if att.data is None:
                raise SendError(f"Attachment {att.filename!r} has no data to send.", permanent=True)
        if not texts and not msg.attachments:
            raise SendError("The message has neither text nor attachments.", permanent=True)
        row = msg.extra.get("outbox_id")
        key = f"outbox:{row}" if row is not None else (msg.message_id or "")
        if not key:
            raise SendError("The reply has no outbox row to derive VK's random_id from.")
        uploaded = [await self._upload_doc(peer, att) for att in msg.attachments]
        groups = [
            uploaded[i : i + MAX_ATTACHMENTS] for i in range(0, len(uploaded), MAX_ATTACHMENTS)
        ]
        parts: list[tuple[str, list[str]]] = [(t, []) for t in texts] or [("", [])]
        # the files go with the last text part; more than ten make parts of their own
        if groups:
            parts[-1] = (parts[-1][0], groups[0])
            parts.extend(("", g) for g in groups[1:])
        ids: list[str] = []
        for index, (text, attachments) in enumerate(parts):
            ids.append(
                await self._send_part(
                    peer, text, attachments, random_id(self.config.group_id, key, index)
                )
            )
        return SendResult(external_ids=ids, detail=f"{len(ids)} part(s)")

    async def _send_part(self, peer: int, text: str, attachments: list[str], rid: int) -> str:
        try:
            answer = await self._call(
                "messages.send",
                peer_ids=[peer],
                random_id=rid,
                message=text or None,
                attachment=attachments or None,
                dont_parse_links=1,
            )
        except VkApiError as exc:
            raise self._send_error(exc, peer) from exc
        except SendError:
            raise
        except ChannelError as exc:
            raise SendError(str(exc), permanent=False) from exc
        # with peer_ids VK answers [{"peer_id", "message_id", "conversation_message_id"}]
        if isinstance(answer, list) and answer and isinstance(answer[0], dict):
            first = answer[0]
            if first.get("error"):
                err = first["error"] if isinstance(first["error"], dict) else {}
                raise self._send_error(
                    VkApiError(
                        "messages.send", _int(err.get("code")), str(err.get("description") or "")
                    ),
                    peer,
                )
            cmid = _int(first.get("conversation_message_id"))
            if cmid:
                return external_id(peer, cmid)
            return f"vk:{peer}:id{_int(first.get('message_id'))}"
        return f"vk:{peer}:id{_int(answer)}"

    async def _upload_doc(self, peer: int, att: Any) -> str:
        try:
            server = await self._call("docs.getMessagesUploadServer", type="doc", peer_id=peer)
            url = str(server["upload_url"])
            api = await self._client()
            up = await api.upload(url, "file", att.filename, att.data or b"", att.content_type)
            if not isinstance(up, dict) or not up.get("file"):
                raise SendError(
                    f"VK's upload server refused {att.filename!r}: {(up or {}).get('error', 'no file')}.",
                    permanent=True,
                )
            saved = await self._call("docs.save", file=up["file"], title=att.filename)
            doc = saved.get("doc") if isinstance(saved, dict) else None
            if not isinstance(doc, dict):
                raise SendError("VK's docs.save answer has no doc.")
            return f"doc{_int(doc.get('owner_id'))}_{_int(doc.get('id'))}"
        except VkApiError as exc:
            raise self._send_error(exc, peer) from exc
        except (KeyError, TypeError) as exc:
            raise SendError("VK's upload server answer has no upload_url.") from exc
        except SendError:
            raise
        except ChannelError as exc:
            raise SendError(str(exc)) from exc

    def _send_error(self, exc: VkApiError, peer: int) -> SendError:
        if exc.code in (
            vkapi.CANT_SEND_NO_PERMISSION,
            vkapi.CANT_SEND_PRIVACY,
            vkapi.PERMISSION_DENIED,
        ):
            return SendError(
                f"VK refused to deliver to {peer}: {exc.vk_message} (the person has not allowed "
                "messages from the community).",
                permanent=True,
            )
        if exc.code in vkapi.RETRYABLE:
            return SendError(f"VK asks to slow down: {exc.vk_message}.", retry_after=1.0)
        return SendError(str(exc), permanent=exc.code == vkapi.INVALID_PARAMS)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _stamp(message: dict[str, Any]) -> int:
    return max(_int(message.get("date")), _int(message.get("update_time")))
