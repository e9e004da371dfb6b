"""Fixtures for the VK channel tests: the VK API stand-in and a channel on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from supportdesk.channels.vk.channel import VkChannel, VkConfig
from tests.peers.vkapi import VkAPIServer

TOKEN_ENV = "SUPPORTDESK_TEST_VK_TOKEN"


@pytest.fixture
def vk() -> Iterator[VkAPIServer]:
    with VkAPIServer() as server:
        server.add_user(501, "Ivan", "Petrov", "ivan.petrov")
        server.add_user(502, "Мария", "Иванова", "masha")
        yield server


def config_for(server: VkAPIServer, **overrides: object) -> VkConfig:
    values: dict[str, object] = {
        "name": "vk",
        "type": "vk",
        "group_id": server.group_id,
        "token_env": TOKEN_ENV,
        "api_url": server.api_url,
    }
    values.update(overrides)
    return VkConfig.model_validate(values)


@pytest.fixture
async def channel(
    vk: VkAPIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[VkChannel]:
    monkeypatch.setenv(TOKEN_ENV, vk.token)
    ch = VkChannel(config_for(vk), home=tmp_path, desk_name="Acme")
    await ch.open()
    yield ch
    await ch.close()
