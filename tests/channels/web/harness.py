"""A desk with its website channel served on loopback, in a background thread.

``LiveSite`` runs what the runner runs for a push channel: ``channel.serve(DeskSink(desk))``
and a delivery worker that claims the channel's outbox rows and calls ``channel.send`` (plus
the e-mail outbox, so acknowledgements reach the SMTP sink). A second small server on another
loopback port plays the customer's site that embeds the widget with one script tag.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from supportdesk.channels.base import OutboundMessage, SendError
from supportdesk.channels.web.channel import WebChannel
from supportdesk.channels.web.config import WebConfig
from supportdesk.inbound.push import DeskSink
from supportdesk.runner import state as runtime
from tests.peers.util import free_port

HOST_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Acme shop</title></head>
<body style="font-family:sans-serif;background:#eef">
<h1>Acme shop</h1><p>Our products. Questions? Use the chat.</p>
<script src="{widget}" async></script>
</body></html>
"""


class LiveSite:
    def __init__(self, desk: Any, *, mail: bool = True, lang: str = "en", **web_over: Any) -> None:
        self.desk = desk
        self.mail = mail
        self.port = free_port()
        self.site_port = free_port()
        self.lang = lang
        self.origin = f"http://127.0.0.1:{self.site_port}"
        cfg: dict[str, Any] = {
            "name": "site",
            "listen": f"127.0.0.1:{self.port}",
            "allowed_origins": [self.origin],
            "color": "#0b7a75",
            "display_name": "Acme support",
            "greeting": "Hello! Ask us anything.",
        }
        cfg.update(web_over)
        self.config = WebConfig.model_validate(cfg)
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.channel: WebChannel | None = None
        self.wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sent: list[tuple[float, OutboundMessage]] = []

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> LiveSite:
        self._thread.start()
        self.call(self._start())
        return self

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        await self._serve()
        self._tasks.append(asyncio.create_task(self._deliver()))
        app = web.Application()
        app.router.add_get("/", self._host_page)
        self._site_runner = web.AppRunner(app, access_log=None)
        await self._site_runner.setup()
        await web.TCPSite(self._site_runner, "127.0.0.1", self.site_port).start()

    async def _serve(self) -> None:
        self.channel = WebChannel(self.config, home=self.desk.home, desk_name="Acme")
        sink = DeskSink(
            self.desk, wake_outbox=lambda: self.loop.call_soon_threadsafe(self.wake.set)
        )
        self._serve_task = asyncio.create_task(self.channel.serve(sink))
        await asyncio.wait_for(self.channel.ready.wait(), 10)

    async def _stop(self) -> None:
        for t in [*self._tasks, self._serve_task]:
            t.cancel()
        await asyncio.gather(*self._tasks, self._serve_task, return_exceptions=True)
        await self._site_runner.cleanup()

    def restart_channel(self) -> None:
        """The runner restarts: every websocket drops, the listener comes back on the port."""

        async def again() -> None:
            self._serve_task.cancel()
            await asyncio.gather(self._serve_task, return_exceptions=True)
            await self._serve()

        self.call(again())

    def drop_sockets(self) -> int:
        """Close every open widget connection from the server side (a proxy timing out)."""

        async def drop() -> int:
            assert self.channel is not None
            n = 0
            for v in self.channel.visitors.values():
                for ws in list(v.sockets):
                    await ws.close()
                    n += 1
            return n

        return int(self.call(drop()))

    async def _host_page(self, request: web.Request) -> web.Response:
        body = HOST_PAGE.format(lang=self.lang, widget=f"{self.url}/widget.js")
        return web.Response(text=body, content_type="text/html")

    # ---- the runner's delivery worker, in small ------------------------------------------
    async def _deliver(self) -> None:
        from supportdesk.runner.loop import Runner

        mailer = Runner(self.desk, channels=["support"]) if self.mail else None
        while True:
            try:
                await self._deliver_web()
                if mailer is not None:
                    await asyncio.to_thread(mailer.send_outbox)
            except Exception:  # keep delivering; the test sees what is missing
                import logging

                logging.getLogger(__name__).exception("delivery")
            try:
                await asyncio.wait_for(self.wake.wait(), 0.05)
            except TimeoutError:
                pass
            self.wake.clear()

    async def _deliver_web(self) -> None:
        assert self.channel is not None
        for item in await asyncio.to_thread(runtime.claim_due, self.desk, channels=["site"]):
            out = OutboundMessage(
                kind="web",  # type: ignore[arg-type]
                to_address=item.to_address,
                text=item.text,
                message_id=item.message_id,
                auto=item.auto,
            )
            try:
                res = await self.channel.send(out)
            except SendError as exc:
                await asyncio.to_thread(
                    runtime.mark_failed,
                    self.desk,
                    item.outbox_id,
                    str(exc),
                    permanent=exc.permanent,
                    retry_after=exc.retry_after,
                )
                continue
            await asyncio.to_thread(runtime.mark_sent, self.desk, item.outbox_id, res.external_ids)
            import time

            self.sent.append((time.monotonic(), out))


def wait_until(pred: Callable[[], Any], timeout: float = 15.0, what: str = "a condition") -> Any:
    import time

    end = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def page_path(tmp: Path) -> Path:
    return tmp
