"""A desk whose website channel is served by a real `supportdesk run`, on loopback.

``LiveSite`` writes the desk's config.toml (the web channel, plus an e-mail channel whose SMTP is
the test's sink), starts `supportdesk run` as a subprocess and waits for ``/healthz``. A small
server on another loopback port plays the customer's site that embeds the widget with one
script tag. ``restart_runner()`` kills the runner outright and starts a new one: every
websocket drops, and what the browser sends meanwhile must neither be lost nor doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.peers.util import free_port

HOST_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Acme shop</title></head>
<body style="font-family:sans-serif;background:#eef">
<h1>Acme shop</h1><p>Our products. Questions? Use the chat.</p>
<script src="{widget}" async></script>
</body></html>
"""


def wait_until(pred: Callable[[], Any], timeout: float = 15.0, what: str = "a condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LiveSite:
    def __init__(
        self,
        home: Path,
        *,
        smtp: Any = None,
        lang: str = "en",
        extra_config: str = "",
        away_after: str = "30s",
    ) -> None:
        self.home = home
        self.port = free_port()
        self.site_port = free_port()
        self.origin = f"http://127.0.0.1:{self.site_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.lang = lang
        mail = ""
        if smtp is not None:
            mail = f"""
[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
[channel.smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
"""
        config = f"""
[desk]
name = "Acme support"
{mail}
[[channel]]
name = "site"
type = "web"
listen = "127.0.0.1:{self.port}"
allowed_origins = ["{self.origin}"]
color = "#0b7a75"
display_name = "Acme support"
greeting = "Hello! Ask us anything."
kb_url = "https://help.acme.test/kb"
away_after = "{away_after}"
{extra_config}
[sla]
first_response = "4h"
"""
        path = home / "config.toml"
        path.write_text(config, encoding="utf-8")
        os.chmod(path, 0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / "runner.log"
        page = HOST_PAGE.format(lang=lang, widget=f"{self.url}/widget.js").encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                return None

        self.site = ThreadingHTTPServer(("127.0.0.1", self.site_port), Page)
        self._site_thread = threading.Thread(target=self.site.serve_forever, daemon=True)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SUPPORTDESK_AGENT": "alice", "NO_COLOR": "1", "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "supportdesk", "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    def start(self) -> LiveSite:
        self._site_thread.start()
        self.start_runner()
        return self

    def start_runner(self) -> None:
        env = {**os.environ, "SUPPORTDESK_AGENT": "alice"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supportdesk", "--home", str(self.home), "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, 60, what="the runner to serve the website channel")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the runner exited: {self.log.read_text(errors='replace')[-2000:]}"
            )
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError:
            return False

    def restart_runner(self) -> None:
        """Kill the runner (no goodbye to any socket) and start a new one."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.start_runner()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.site.shutdown()
