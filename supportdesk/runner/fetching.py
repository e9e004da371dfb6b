"""Fetching from a polling channel: one loop per cursor key, every batch through the one
inbound pipeline (committed with its cursor), then confirmed to the channel.

Nothing here knows a channel's type: IMAP folders and the Telegram update stream are both
"a key, a cursor, fetch, confirm, wait".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from supportdesk.channels.base import Channel, Fetched, Stored
from supportdesk.desk.desk import Desk
from supportdesk.inbound import pipeline
from supportdesk.runner.report import ChannelReport
from supportdesk.store.cursors import get_cursor

log = logging.getLogger("supportdesk.runner.fetching")


def read_cursor(desk: Desk, channel: str, key: str) -> Any:
    with desk.db.read() as s:
        return get_cursor(s, channel, key)


class Fetcher:
    """Fetches one channel's keys into the store; ``on_stored`` hears of every batch."""

    def __init__(
        self,
        desk: Desk,
        channel: Channel,
        on_stored: Callable[[list[Stored]], None],
    ) -> None:
        self.desk = desk
        self.channel = channel
        self.on_stored = on_stored

    async def _store(self, key: str, cursor: Any, got: Fetched, rep: ChannelReport) -> Any:
        """Commit one fetched batch with its cursor, then confirm it; returns the new cursor."""
        if got.messages or got.cursor != cursor:
            summary = pipeline.Summary()
            stored = await asyncio.to_thread(
                pipeline.store,
                self.desk,
                got.messages,
                channel=self.channel.name,
                summary=summary,
                cursor=(key, got.cursor),
            )
            rep.fetched += len(got.messages)
            rep.new_tickets += len(summary.new_tickets)
            rep.quarantined += summary.quarantined
            self.on_stored(stored)
            await self.channel.confirm(key, got.cursor)
        return got.cursor

    async def drain(self, key: str, rep: ChannelReport, *, timeout: float = 0) -> Any:
        """Fetch ``key`` until the channel has nothing more; returns the cursor reached."""
        cursor = await asyncio.to_thread(read_cursor, self.desk, self.channel.name, key)
        while True:
            got = await self.channel.fetch(key, cursor, timeout=timeout)
            cursor = await self._store(key, cursor, got, rep)
            if not got.more:
                return cursor

    async def follow(
        self, key: str, *, timeout: float, wait: float, healthy: Callable[[], None]
    ) -> None:
        """Fetch, store and wait until cancelled; ``healthy`` runs (in a thread) after each
        round that reached the end of the stream. Errors propagate to the caller."""
        rep = ChannelReport(self.channel.name)
        cursor = await asyncio.to_thread(read_cursor, self.desk, self.channel.name, key)
        while True:
            got = await self.channel.fetch(key, cursor, timeout=timeout)
            cursor = await self._store(key, cursor, got, rep)
            if not got.more:
                await asyncio.to_thread(healthy)
                await self.channel.wait(key, cursor, wait)
