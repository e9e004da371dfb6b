"""The runner's push-channel worker: serves only while holding the lease, delivers replies."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from supportdesk.runner import state as runtime
from supportdesk.runner.push import PushWorker
from tests.channels.web.harness import wait_until
from tests.peers.util import free_port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except OSError:
        return False


def test_push_worker_serves_under_the_lease_and_delivers(home: Path) -> None:
    from supportdesk.core.config import load_config
    from supportdesk.desk.desk import open_desk
    from supportdesk.outbound import outbox
    from supportdesk.store.models import Outbox, Ticket
    from tests.conftest import write_config

    port = free_port()
    write_config(
        home,
        f'[[channel]]\nname = "site"\ntype = "web"\nlisten = "127.0.0.1:{port}"\n'
        'allowed_origins = ["http://shop.test"]\n',
    )
    desk = open_desk(home, agent="alice")
    cfg = load_config(home).channel[0]
    epoch = runtime.acquire_lease(desk, holder="test-runner")
    assert epoch
    active, stop = threading.Event(), threading.Event()
    worker = PushWorker(desk, cfg, active=active, stop=stop, epoch=lambda: epoch)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert not _healthy(url)  # standing by: no listener
        active.set()
        wait_until(lambda: _healthy(url), what="the listener")

        async def chat() -> dict[str, Any]:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{url}/ws", headers={"Origin": "http://shop.test"})
                await ws.send_json({"t": "hello"})
                while (await ws.receive_json())["t"] != "welcome":
                    pass
                await ws.send_json({"t": "msg", "cid": "worker-1", "text": "hi"})
                ack = await ws.receive_json()
                with desk.db.write() as s:
                    t = s.get(Ticket, ack["ticket"])
                    assert t is not None
                    outbox.queue_outbound(s, desk, t, "hello back", agent="alice")
                while True:
                    f = await ws.receive_json()
                    if f["t"] == "msg":
                        await ws.send_json({"t": "seen", "id": f["id"]})
                        await ws.close()
                        return f

        frame = asyncio.run(asyncio.wait_for(chat(), 30))
        assert frame["text"] == "hello back" and frame["author"] == "alice"

        def sent() -> Any:
            with desk.db.read() as s:
                row = s.get(Outbox, 1)
                return row if row is not None and row.state == "sent" else None

        row = wait_until(sent, what="the reply marked sent")
        assert json.loads(row.payload)["author"] == "alice"
        active.clear()  # the lease is lost: the listener closes
        wait_until(lambda: not _healthy(url), what="the listener to close")
    finally:
        stop.set()
        thread.join(10)
        desk.close()
