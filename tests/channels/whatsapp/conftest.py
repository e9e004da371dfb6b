"""Fixtures for the WhatsApp channel: the Graph API stand-in, a serving channel, a sink."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from supportdesk.channels.base import InboundMessage, Stored
from supportdesk.channels.whatsapp.channel import WhatsAppChannel, WhatsAppConfig
from supportdesk.channels.whatsapp.webhook import Status
from tests.peers.graphapi import GraphAPIServer
from tests.peers.util import free_port

SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"


class RecordingSink:
    """Stands in for the desk: keeps what it was given, dedupes by external id."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.statuses: list[Status] = []
        self.arrived = asyncio.Event()
        self.fail_next = False

    async def __call__(self, messages: list[InboundMessage]) -> list[Stored]:
        if self.fail_next:
            self.fail_next = False
            from supportdesk.channels.base import ChannelError

            raise ChannelError("the desk could not commit")
        known = {m.external_id for m in self.messages}
        out = []
        for m in messages:
            dup = m.external_id in known
            if not dup:
                self.messages.append(m)
            out.append(Stored(m.external_id, 1, 1, "duplicate" if dup else "new_ticket"))
        self.arrived.set()
        return out

    async def delivery(self, statuses: list[Status]) -> None:
        self.statuses.extend(statuses)
        self.arrived.set()


@pytest.fixture
def graph() -> Iterator[GraphAPIServer]:
    with GraphAPIServer() as server:
        yield server


def config_for(graph: GraphAPIServer, **overrides: Any) -> WhatsAppConfig:
    values: dict[str, Any] = {
        "name": "wa",
        "type": "whatsapp",
        "phone_number_id": graph.phone_number_id,
        "token_env": "SD_TEST_WA_TOKEN",
        "app_secret_env": "SD_TEST_WA_SECRET",
        "verify_token_env": "SD_TEST_WA_VERIFY",
        "api_url": graph.api_url,
        "listen": f"127.0.0.1:{free_port()}",
        "templates": ["order_update", "order_update:ru"],
    }
    values.update(overrides)
    return WhatsAppConfig.model_validate(values)


@pytest.fixture
def wa_env(graph: GraphAPIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SD_TEST_WA_TOKEN", graph.token)
    monkeypatch.setenv("SD_TEST_WA_SECRET", SECRET)
    monkeypatch.setenv("SD_TEST_WA_VERIFY", VERIFY)


@pytest.fixture
async def wa(graph: GraphAPIServer, wa_env: None, tmp_path: Path) -> AsyncIterator[WhatsAppChannel]:
    ch = WhatsAppChannel(config_for(graph), home=tmp_path, desk_name="Acme")
    await ch.open()
    yield ch
    await ch.close()


@pytest.fixture
async def served(
    wa: WhatsAppChannel,
) -> AsyncIterator[tuple[WhatsAppChannel, RecordingSink, str]]:
    """The channel serving its webhook; yields (channel, sink, webhook URL)."""
    sink = RecordingSink()
    task = asyncio.create_task(wa.serve(sink))
    for _ in range(500):
        if wa.bound is not None or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert wa.bound is not None
    host, port = wa.bound
    yield wa, sink, f"http://{host}:{port}/whatsapp/{wa.name}"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
