"""A small HTTP sink on loopback standing in for an ntfy server or a webhook endpoint.

It keeps every request (method, path, headers, body) and answers 200, or the status set with
``fail_with``. ``wait_for(n)`` waits on a condition for n requests, no sleeps::

    def test_x(http_sink):
        url = f"json://127.0.0.1:{http_sink.port}/hook"      # an apprise URL that posts JSON
        ...
        [req] = http_sink.wait_for(1)
        req.json()["title"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.peers.util import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class HttpSink:
    port: int = field(default_factory=free_port)
    received: list[Request] = field(default_factory=list)
    status: int = 200
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _take(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with sink._cond:
                    sink.received.append(
                        Request(self.command, self.path, dict(self.headers.items()), body)
                    )
                    sink._cond.notify_all()
                self.send_response(sink.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = _take  # noqa: N815
            do_PUT = _take  # noqa: N815
            do_GET = _take  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_with(self, status: int) -> None:
        self.status = status

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Request]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= n, timeout):
                raise AssertionError(f"expected {n} request(s), got {len(self.received)}")
            return list(self.received)


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()
