"""Fixtures for the Telegram connector tests: the Bot API stand-in and a connector on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from supportdesk.channels.telegram.bot import TelegramConnector, TelegramSettings
from tests.peers.botapi import BotAPIServer, botapi

__all__ = ["botapi", "connector", "settings_for"]


def settings_for(server: BotAPIServer, **overrides: object) -> TelegramSettings:
    values: dict[str, object] = {"token": server.token, "api_url": server.api_url}
    values.update(overrides)
    return TelegramSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def connector(botapi: BotAPIServer) -> AsyncIterator[TelegramConnector]:
    """A started connector talking to the stand-in (groups not allowed)."""
    async with TelegramConnector(settings_for(botapi)) as tg:
        yield tg
