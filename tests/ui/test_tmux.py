"""End to end: the real ``supportdesk`` program in tmux — start, search, open a ticket, reply
with a template, quit — then the reply is in ``supportdesk outbox list``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.configs import desk_config, email_channel
from tests.factories import inbound_email, ingest
from tests.peers.util import peer_unavailable

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / ".venv" / "bin" / "supportdesk"

CONFIG = desk_config(name="E2E desk", language="en", channels=[email_channel()], sla="")


def _need_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        peer_unavailable("tmux is not installed (apt-get install tmux)")
    return path


class Pane:
    def __init__(self, tmux: str, session: str) -> None:
        self.tmux, self.session = tmux, session

    def text(self) -> str:
        out = subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.session],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return out.stdout

    def alive(self) -> bool:
        return subprocess.run([self.tmux, "has-session", "-t", self.session],
                              capture_output=True, check=False).returncode == 0  # fmt: skip

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.session, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.session, "-l", text], check=True)

    def wait(self, cond: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if cond(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")
            time.sleep(0.1)

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        return self.wait(lambda s: needle in s, repr(needle), timeout)


@pytest.mark.slow
def test_console_in_tmux(home: Path, cli: Any) -> None:
    tmux = _need_tmux()
    if not PROGRAM.exists():
        peer_unavailable(f"{PROGRAM} is not installed (pip install -e .)")
    (home / "config.toml").write_text(CONFIG, encoding="utf-8")
    from supportdesk.desk.desk import open_desk
    from supportdesk.replies.templates import add_template

    desk = open_desk(home, agent="alice")
    ingest(desk, inbound_email(subject="Printer jams on page two", sender_name="Ivan Petrov",
                               external_id="e2e-1@example.ru"))  # fmt: skip
    ingest(desk, inbound_email(subject="Refund please", sender_address="olga@example.com",
                               sender_name="Olga", external_id="e2e-2@example.com"))  # fmt: skip
    add_template(desk, "thanks", "Hello {{ customer.first_name }}, thank you for writing.")
    desk.close()

    session = f"sd-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "SUPPORTDESK_HOME": str(home), "SUPPORTDESK_AGENT": "alice",
        "SUPPORTDESK_CONSOLE_RUNNER": "0", "LANG": "C.UTF-8", "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(home)),
    }  # fmt: skip
    command = " ".join(f"{k}={json.dumps(v)}" for k, v in env.items()) + f" {PROGRAM}"
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    "env", "-i", "sh", "-c", command], check=True)  # fmt: skip
    pane = Pane(tmux, session)
    try:
        pane.wait_for("Printer jams on page two")
        pane.wait_for("Refund please")
        pane.keys("/")
        # the search bar has the focus when the key bar no longer offers the list's keys
        pane.wait(lambda s: "Reply" not in s.rstrip().splitlines()[-1], "the search bar")
        pane.type("jams")
        pane.keys("Enter")
        pane.wait(lambda s: "Search: jams" in s and "Refund please" not in s, "the search")
        pane.keys("Enter")
        pane.wait_for("joined: new ticket")
        pane.keys("r")
        pane.wait_for("Internal note" if False else "Template")
        pane.keys("C-t")
        pane.wait_for("Type to filter")
        pane.wait_for("thank you for")  # the picker lists the template
        pane.type("thanks")
        pane.keys("Enter")
        pane.wait_for("Hello Ivan, thank you for writing.")
        pane.keys("C-s")
        pane.wait_for("Preview: what goes out")
        pane.keys("Enter")
        pane.wait(lambda s: "Reply queued" in s or ("queued" in s and "Back" in s), "queued")
        pane.keys("q")
        pane.wait(lambda s: not pane.alive(), "the console to exit", timeout=10)
    finally:
        if pane.alive():
            subprocess.run([tmux, "kill-session", "-t", session], check=False)
    result = cli("outbox", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert any(r.get("state") == "queued" for r in rows), rows
    shown = cli("tickets", "show", "1", "--json")
    doc = json.loads(shown.output)
    assert doc["messages"][-1]["text"] == "Hello Ivan, thank you for writing."
    assert doc["messages"][-1]["delivery"]["status"] == "queued"


EMAIL_CONFIG = """
[desk]
name = "E2E desk"
timezone = "UTC"
language = "en"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
  [channel.smtp]
  host = "127.0.0.1"
  port = {port}
  security = "none"
  timeout = 5
"""


def _start(tmux: str, home: Path, cwd: Path) -> Pane:
    session = f"sd-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "SUPPORTDESK_HOME": str(home), "SUPPORTDESK_AGENT": "alice",
        "SUPPORTDESK_CONSOLE_RUNNER": "0", "LANG": "C.UTF-8", "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(home)),
    }  # fmt: skip
    command = (
        f"cd {json.dumps(str(cwd))} && "
        + " ".join(f"{k}={json.dumps(v)}" for k, v in env.items())
        + f" {PROGRAM}"
    )
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    "env", "-i", "sh", "-c", command], check=True)  # fmt: skip
    return Pane(tmux, session)


@pytest.mark.slow
def test_reply_all_with_attachment_and_forward_in_tmux(
    home: Path, cli: Any, smtp_sink: Any, tmp_path: Path
) -> None:
    """Reply-all with a file from the console, then forward the ticket to a third address;
    `poll --once` delivers both to the SMTP sink."""
    tmux = _need_tmux()
    if not PROGRAM.exists():
        pytest.skip(f"{PROGRAM} is not installed (pip install -e .)")
    (home / "config.toml").write_text(EMAIL_CONFIG.format(port=smtp_sink.port), encoding="utf-8")
    from supportdesk.desk.desk import open_desk
    from tests.factories import Attachment

    desk = open_desk(home, agent="alice")
    ingest(desk, inbound_email(
        subject="Invoice 4471 charged twice", sender_name="Ann Lee", sender_address="ann@client.test",
        external_id="e2e-inv@client.test", text="We were charged twice, see the invoice.",
        to_addresses=["support@acme.test", "colleague@client.test"], cc_addresses=["boss@client.test"],
        attachments=[Attachment("invoice.pdf", "application/pdf", b"%PDF-1.4 e2e", 12)],
    ))  # fmt: skip
    desk.close()
    files = tmp_path / "files"
    files.mkdir()
    (files / "refund-receipt.txt").write_text("Refund 4471: done\n", encoding="utf-8")

    pane = _start(tmux, home, files)
    try:
        pane.wait_for("Invoice 4471 charged twice")
        pane.keys("Enter")
        pane.wait_for("joined: new ticket")
        pane.keys("r")
        pane.wait(lambda s: "Send" in s.rstrip().splitlines()[-1], "the composer")
        pane.keys("C-r")  # reply to all: the colleague and the boss in Cc
        pane.wait_for("colleague@client.test, boss@client.test")
        pane.type("Hello Ann, the **refund** is on its way.")
        pane.keys("C-f")
        pane.wait_for("Attach a file")
        pane.type("refund-r")  # the picker starts in the current folder and completes
        pane.wait_for("refund-receipt.txt")
        pane.keys("Right", "Enter")
        pane.wait_for("refund-receipt.txt (18 B)")
        pane.keys("C-s")
        pane.wait_for("Preview: what goes out")
        screen = pane.wait_for("Cc:")
        assert "colleague@client.test, boss@client.test" in screen
        pane.keys("Enter")
        pane.wait_for("Reply queued")
        pane.keys("F")
        pane.wait_for("Forward what?")
        pane.keys("Enter")  # the whole ticket
        pane.wait_for("Forward to")
        pane.type("accountant@acme.test")
        pane.keys("Enter")
        pane.wait_for("Forward to accountant@acme.test queued")
        pane.keys("Escape")
        pane.wait(lambda s: "Search" in s or "/" in s.rstrip().splitlines()[-1], "the queue")
        pane.keys("q")
        pane.wait(lambda s: not pane.alive(), "the console to exit", timeout=10)
    finally:
        if pane.alive():
            subprocess.run([tmux, "kill-session", "-t", pane.session], check=False)
    res = cli("poll", "--once", "--json")
    assert res.exit_code == 0, res.output
    reply, forward = sorted(smtp_sink.wait_for(2), key=lambda m: "Fwd:" in m.message["Subject"])
    m = reply.message
    assert m["To"] == "Ann Lee <ann@client.test>"
    assert m["Cc"] == "colleague@client.test, boss@client.test"
    assert m["In-Reply-To"] == "<e2e-inv@client.test>"
    assert sorted(reply.rcpt_tos) == ["ann@client.test", "boss@client.test",
                                      "colleague@client.test"]  # fmt: skip
    alt = next(p for p in m.walk() if p.get_content_type() == "multipart/alternative")
    plain, html = alt.get_payload()
    assert "the **refund** is on its way" in plain.get_content()
    assert "<strong>refund</strong>" in html.get_content()
    assert [a.get_filename() for a in m.iter_attachments()] == ["refund-receipt.txt"]
    f = forward.message
    assert forward.rcpt_tos == ["accountant@acme.test"] and f["To"] == "accountant@acme.test"
    assert f["Subject"].startswith("Fwd: Invoice 4471 charged twice")
    body = f.get_body(("plain",)).get_content()
    assert "We were charged twice" in body and "the **refund** is on its way" in body
    assert sorted(a.get_filename() for a in f.iter_attachments()) == [
        "invoice.pdf", "refund-receipt.txt"]  # fmt: skip
    doc = json.loads(cli("tickets", "show", "1", "--json").stdout)
    assert [m["direction"] for m in doc["messages"]] == ["in", "out", "out"]
    assert doc["messages"][-1]["to"] == ["accountant@acme.test"]
