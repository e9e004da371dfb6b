"""An example supportdesk channel, kept as small as a channel can be.

The "network" is a spool folder: a customer's message is a JSON file in ``<spool>/in/``
(``{"id", "from", "name", "text"}``, files read in name order), and every reply the desk sends
becomes a JSON file in ``<spool>/out/``. The cursor is the name of the last file read.

Config::

    [[channel]]
    name = "echo"
    type = "echo"
    spool = "/var/spool/echo"
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from supportdesk.channels.base import (
    Capabilities,
    Channel,
    Fetched,
    InboundMessage,
    OutboundMessage,
    ParseError,
    SendError,
    SendResult,
)
from supportdesk.core.config import ChannelConfigBase


class EchoConfig(ChannelConfigBase):
    type: Literal["echo"]
    spool: Path
    batch: int = 100  # files per fetch


class EchoChannel(Channel):
    type: ClassVar[str] = "echo"
    title: ClassVar[str] = "Echo"
    icon: ClassVar[str] = "◎"
    identity_kind: ClassVar[str] = "echo"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = EchoConfig
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=1000)

    config: EchoConfig

    def cursor_keys(self) -> list[str]:
        return [""]  # one stream

    async def fetch(self, key: str, cursor: Any | None, *, timeout: float) -> Fetched:
        inbox = self.config.spool / "in"
        names = sorted(p.name for p in inbox.glob("*.json")) if inbox.is_dir() else []
        todo = [n for n in names if cursor is None or n > cursor][: self.config.batch]
        messages = [self._read(inbox / n) for n in todo]
        return Fetched(messages, todo[-1] if todo else cursor, more=len(todo) == self.config.batch)

    def _read(self, path: Path) -> InboundMessage:
        raw = path.read_bytes()
        try:
            return self.parse_raw(raw)
        except ParseError as exc:  # the pipeline keeps it in quarantine; the rest goes on
            return InboundMessage(
                kind="echo",
                external_id=f"echo-file:{path.name}",
                sender_address="",
                raw=raw,
                source=f"echo:{path.name}",
                parse_error=str(exc),
            )

    async def wait(self, key: str, cursor: Any | None, timeout: float) -> None:
        await asyncio.sleep(min(timeout, 0.2))  # a test peer: look again soon

    def parse_raw(self, raw: bytes) -> InboundMessage:
        try:
            data = json.loads(raw)
            sender = str(data["from"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ParseError(f"an echo message is JSON with a 'from': {exc}") from None
        return InboundMessage(
            kind="echo",
            external_id=f"echo:{data.get('id') or sender}",
            sender_address=sender,
            sender_name=str(data.get("name") or ""),
            text=str(data.get("text") or ""),
            conversation=sender,  # one conversation per sender: it joins the open ticket
            raw=raw,
        )

    async def send(self, msg: OutboundMessage) -> SendResult:
        if len(msg.text) > self.capabilities.max_text:
            raise SendError("an echo message is at most 1000 characters", permanent=True)
        out = self.config.spool / "out"
        out.mkdir(parents=True, exist_ok=True)
        n = len(os.listdir(out)) + 1
        body = {"to": msg.to_address, "text": msg.text, "auto": msg.auto}
        (out / f"{n:06d}.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        return SendResult(external_ids=[f"echo-out:{n}"])
