"""The Telegram channel: Bot API long polling in, messages (with CSAT buttons) out.

One cursor stream (the update offset). The offset is confirmed to Telegram by the next
``getUpdates`` call, which the runner makes only after it committed the messages: commit first,
confirm second, so a crash in between re-delivers updates (deduplicated) instead of losing them.
Button presses are answered in :meth:`TelegramChannel.confirm`, after the commit, with the text
the pipeline left in ``extra["callback_answer"]``.
"""

from __future__ import annotations

import builtins
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from supportdesk.channels.base import (
    Capabilities,
    Channel,
    ChannelError,
    Fetched,
    InboundMessage,
    OutboundMessage,
    SendResult,
)
from supportdesk.core.config import ChannelConfigBase

if TYPE_CHECKING:
    from supportdesk.channels.telegram.bot import TelegramConnector

log = logging.getLogger(__name__)

OFFSET_KEY = "telegram:offset"


class TelegramConfig(ChannelConfigBase):
    type: Literal["telegram"]
    token_env: str | None = None
    token_cmd: str | None = None
    api_url: str = "https://api.telegram.org/bot"
    file_url: str | None = None  # derived from api_url when absent
    groups: bool = False  # one ticket per group chat when true

    def token(self) -> str | None:
        return self._resolve(self.token_env, self.token_cmd, f"bot token of channel {self.name}")


class TelegramChannel(Channel):
    type: ClassVar[str] = "telegram"
    title: ClassVar[str] = "Telegram"
    icon: ClassVar[str] = "✈"
    identity_kind: ClassVar[str] = "telegram"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = TelegramConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        attachments=True,
        max_attachment_bytes=50 * 1024 * 1024,
        max_text=4096,
        edits=True,
        buttons=True,
        fenced_send=True,
    )

    config: TelegramConfig

    def __init__(self, config: ChannelConfigBase, *, home: Any, desk_name: str) -> None:
        super().__init__(config, home=home, desk_name=desk_name)
        self._conn: TelegramConnector | None = None
        self._callbacks: list[InboundMessage] = []  # button presses of the last fetch
        self._unconfirmed: Any = None

    async def open(self) -> None:
        from supportdesk.channels.telegram.bot import TelegramConnector, TelegramSettings

        if self._conn is not None:
            return
        token = self.config.token()
        if not token:
            raise ChannelError(f"channel {self.name} has no bot token (set token_env or token_cmd)")
        settings = TelegramSettings(
            token=token,
            api_url=self.config.api_url,
            file_url=self.config.file_url,
            allow_groups=self.config.groups,
        )
        conn = TelegramConnector(settings)
        await conn.start()
        self._conn = conn

    async def _connector(self) -> TelegramConnector:
        if self._conn is None:
            await self.open()
        assert self._conn is not None
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._unconfirmed is not None:
                # confirm what was committed, so the server does not send it again; updates
                # this call returns stay pending on the server and come again next time
                await conn.fetch(self._unconfirmed, 0)
        except ChannelError as exc:
            log.info("confirming the Telegram offset failed: %s", exc)
        finally:
            self._unconfirmed = None
            await conn.close()

    def cursor_keys(self) -> list[str]:
        return [OFFSET_KEY]

    async def fetch(self, key: str, cursor: Any | None, *, timeout: float) -> Fetched:
        conn = await self._connector()
        messages, next_offset = await conn.fetch(cursor, timeout)
        self._unconfirmed = None  # this call confirmed everything below `cursor`
        self._callbacks = [m for m in messages if m.extra.get("callback_query_id")]
        return Fetched(messages, next_offset, more=bool(messages))

    async def confirm(self, key: str, cursor: Any) -> None:
        callbacks, self._callbacks = self._callbacks, []
        conn = await self._connector()
        for msg in callbacks:
            answer = str(msg.extra.get("callback_answer") or "")
            try:
                await conn.answer_callback(str(msg.extra["callback_query_id"]), answer)
            except ChannelError as exc:
                log.info("answering a callback failed: %s", exc)
        self._unconfirmed = cursor

    async def wait(self, key: str, cursor: Any | None, timeout: float) -> None:
        return None  # fetch long-polls: it is the wait

    async def send(self, msg: OutboundMessage) -> SendResult:
        conn = await self._connector()
        return await conn.send(msg)
