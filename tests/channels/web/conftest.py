"""A website channel served on loopback with a sink the test controls (no desk)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar

from supportdesk.channels.base import (
    Article,
    Availability,
    ChatLine,
    InboundMessage,
    OutboundMessage,
    Stored,
)
from supportdesk.channels.web.channel import WebChannel
from supportdesk.channels.web.config import WebConfig


@dataclass
class FakeSink:
    """Keeps what it is given, dedupes by external id like the pipeline does."""

    stored: list[InboundMessage] = field(default_factory=list)
    online: bool = True
    forwarded: list[tuple[str, OutboundMessage]] = field(default_factory=list)
    email_for: dict[str, str] = field(default_factory=dict)
    gate: asyncio.Event | None = None  # when set, storing waits for it (a slow commit)

    async def __call__(self, messages: list[InboundMessage]) -> list[Stored]:
        if self.gate is not None:
            await self.gate.wait()
        out = []
        for m in messages:
            known = [i for i, s in enumerate(self.stored) if s.external_id == m.external_id]
            if known:
                out.append(Stored(m.external_id, 1, known[0] + 1, "duplicate"))
            else:
                self.stored.append(m)
                out.append(Stored(m.external_id, 1, len(self.stored), "new_ticket"))
        return out

    async def conversation(self, channel: str, address: str, limit: int = 100) -> list[ChatLine]:
        return [
            ChatLine(m.external_id, "in", m.text, m.sent_at or datetime.now(UTC))
            for m in self.stored
            if m.sender_address == address
        ]

    async def suggest(self, text: str, limit: int = 3) -> list[Article]:
        if "password" in text.lower():
            return [Article("How to reset your password", "reset-password", "Open settings")]
        return []

    async def availability(self, channel: str) -> Availability:
        return Availability(self.online, timedelta(hours=4))

    async def forward_by_email(
        self, channel: str, address: str, msg: OutboundMessage
    ) -> str | None:
        self.forwarded.append((address, msg))
        return self.email_for.get(address)


@dataclass
class Served:
    channel: WebChannel
    sink: FakeSink
    url: str
    http: ClientSession
    origin: str = "http://shop.test"

    async def ws(self, token: str | None = None, origin: str | None = None) -> Any:
        q = f"?token={token}" if token else ""
        return await self.http.ws_connect(
            f"{self.url}/ws{q}", headers={"Origin": origin or self.origin}
        )


def web_config(**over: Any) -> WebConfig:
    base: dict[str, Any] = {
        "name": "site",
        "listen": "127.0.0.1:0",
        "allowed_origins": ["http://shop.test"],
        "kb_url": "https://help.acme.test/kb",
    }
    base.update(over)
    return WebConfig.model_validate(base)


async def start(home: Path, sink: FakeSink, **over: Any) -> tuple[WebChannel, asyncio.Task[None]]:
    ch = WebChannel(web_config(**over), home=home, desk_name="Acme")
    task = asyncio.create_task(ch.serve(sink))
    await asyncio.wait_for(ch.ready.wait(), 10)
    return ch, task


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    sink = FakeSink()
    ch, task = await start(tmp_path, sink)
    assert ch.bound is not None
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        yield Served(ch, sink, f"http://127.0.0.1:{ch.bound[1]}", http)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
