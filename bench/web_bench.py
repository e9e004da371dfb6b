"""The website channel under `supportdesk run`: 500 widget websockets on loopback.

* visitor -> queue: from a widget sending a message until the desk's acknowledgement arrives
  (sent only after the message is in the raw ledger and committed, so it is in the queue);
* reply -> browser: from an agent's reply being committed by another process (as
  `tickets reply` does) until the widget receives it;
* the runner's resident memory with every socket open.

Each socket sends one message at a random moment within a few seconds; replies are queued the
same way, one small transaction each.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Section

SOCKETS = 500
SPREAD = 5.0  # seconds over which the messages (and then the replies) are spread
ORIGIN = "http://shop.bench.test"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def _ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.01 else f"{x * 1000:.1f} ms"


async def _drive(url: str, n: int, home: Path, runner_pid: int) -> dict[str, Any]:
    import aiohttp

    from supportdesk.desk.desk import open_desk
    from supportdesk.outbound import outbox
    from supportdesk.store.models import Ticket

    acks: dict[str, asyncio.Future[float]] = {}
    replies: dict[str, float] = {}
    ticket_of: dict[int, int] = {}
    expected_replies = asyncio.Event()
    reply_count = 0

    async def reader(i: int, ws: Any) -> None:
        nonlocal reply_count
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            f = json.loads(frame.data)
            if f["t"] == "ack":
                fut = acks.get(f["cid"])
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())
                    ticket_of[i] = int(f["ticket"])
            elif f["t"] == "msg":
                replies.setdefault(f["id"], time.perf_counter())
                await ws.send_json({"t": "seen", "id": f["id"]})
                reply_count += 1
                if reply_count >= n:
                    expected_replies.set()

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        sem = asyncio.Semaphore(64)

        async def open_one(i: int) -> Any:
            async with sem:
                ws = await http.ws_connect(f"{url}/ws", headers={"Origin": ORIGIN}, heartbeat=None)
                await ws.send_json({"t": "hello", "lang": "en", "page": ORIGIN + "/"})
                while True:
                    f = await ws.receive_json()
                    if f["t"] == "welcome":
                        return ws

        t0 = time.perf_counter()
        sockets = await asyncio.gather(*(open_one(i) for i in range(n)))
        connect_s = time.perf_counter() - t0
        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        rss_idle = _rss_kib(runner_pid)[0]

        # visitor -> queue
        latencies: list[float] = []

        async def visit(i: int, ws: Any) -> None:
            await asyncio.sleep(random.uniform(0, SPREAD))
            cid = f"bench-{i:06d}"
            fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            acks[cid] = fut
            sent = time.perf_counter()
            await ws.send_json(
                {"t": "msg", "cid": cid, "text": f"Question number {i} about my order"}
            )
            latencies.append(await asyncio.wait_for(fut, 60) - sent)

        await asyncio.gather(*(visit(i, ws) for i, ws in enumerate(sockets)))

        # reply -> browser: queued by this process (another process, like `tickets reply`)
        desk = open_desk(home, agent="alice")
        queued: dict[str, float] = {}

        def queue_one(i: int) -> None:
            with desk.db.write() as s:
                t = s.get(Ticket, ticket_of[i])
                assert t is not None
                m = outbox.queue_outbound(s, desk, t, f"Answer to question {i}", agent="alice")
            queued[m.message_id or ""] = time.perf_counter()

        async def reply(i: int) -> None:
            await asyncio.sleep(random.uniform(0, SPREAD))
            await asyncio.to_thread(queue_one, i)

        await asyncio.gather(*(reply(i) for i in range(n)))
        await asyncio.wait_for(expected_replies.wait(), 120)
        back = [replies[mid] - t for mid, t in queued.items() if mid in replies]
        rss, hwm = _rss_kib(runner_pid)
        with desk.db.read() as s:
            from sqlmodel import func, select

            from supportdesk.store.models import Message

            stored = s.exec(
                select(func.count())
                .select_from(Message)
                .where(Message.kind == "web", Message.direction == "in")
            ).one()
        desk.close()
        for ws in sockets:
            await ws.close()
        for r in readers:
            r.cancel()
    return {
        "connect_s": connect_s,
        "in": latencies,
        "out": back,
        "rss_idle": rss_idle,
        "rss": rss,
        "hwm": hwm,
        "stored": int(stored),
    }


def run_web(work: Path, n: int = SOCKETS) -> Section:
    sec = Section(f"Website channel ({n} widget websockets on loopback, `supportdesk run`)")
    home = work / "web-home"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (home / "config.toml").write_text(
        f"""
[desk]
name = "Bench desk"

[[channel]]
name = "site"
type = "web"
listen = "127.0.0.1:{port}"
allowed_origins = ["{ORIGIN}"]
rate_per_minute = 1000000
""",
        encoding="utf-8",
    )
    os.chmod(home / "config.toml", 0o600)
    env = {**os.environ, "SUPPORTDESK_AGENT": "alice"}
    subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), "init"],
        env=env,
        capture_output=True,
        check=False,
    )
    log = open(work / "web-runner.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "supportdesk", "--home", str(home), "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the runner did not start serving the website channel")
            time.sleep(0.1)
        res = asyncio.run(_drive(url, n, home, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    lat_in, lat_out = res["in"], res["out"]
    sec.add(
        "open and greet the sockets", f"{res['connect_s']:.2f} s", note=f"{n} widgets, 64 at a time"
    )
    sec.add(
        "visitor -> queue (committed, acknowledged)",
        f"p50 {_ms(statistics.median(lat_in))}, p95 {_ms(_pct(lat_in, 95))}",
        note=f"{res['stored']} of {n} messages stored once each",
    )
    sec.add(
        "agent reply -> widget",
        f"p50 {_ms(statistics.median(lat_out))}, p95 {_ms(_pct(lat_out, 95))}",
        note=f"goal < 1 s; {len(lat_out)} of {n} replies; queued by another process",
    )
    sec.add(
        "runner RSS",
        f"{res['rss'] / 1024:.0f} MiB (peak {res['hwm'] / 1024:.0f} MiB)",
        note=f"{res['rss_idle'] / 1024:.0f} MiB with the sockets open and idle",
    )
    return sec


if __name__ == "__main__":
    import tempfile

    from bench.__main__ import render
    from bench.common import machine

    with tempfile.TemporaryDirectory() as tmp:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else SOCKETS
        t0 = time.perf_counter()
        print(render([run_web(Path(tmp), n)], machine(), time.perf_counter() - t0))
