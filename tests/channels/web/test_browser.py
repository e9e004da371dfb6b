"""End to end with Debian's headless Chromium: the widget on a page, the CLI, the SMTP sink.

A visitor writes in the widget on a customer's page; the ticket appears in ``tickets list``; an
agent answers with ``tickets reply``; the browser shows the answer. The contact form makes a
ticket whose acknowledgement reaches the SMTP sink. A dropped websocket loses and doubles
nothing. Hostile text stays text in the widget and the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.store.models import Message, Ticket
from tests.channels.web.harness import LiveSite, wait_until
from tests.peers.util import peer_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.peers]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOSTILE = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2> [bold]x[/bold] [red]red[/red]"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def make_driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,760",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        peer_unavailable("chromium and chromium-driver are not installed")
    driver = make_driver(tmp_path / "profile")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def live(home: Path, smtp_sink: Any) -> Iterator[LiveSite]:
    site = LiveSite(home, smtp=smtp_sink).start()
    yield site
    site.stop()


@pytest.fixture
def mail_desk(live: LiveSite) -> Iterator[Any]:
    from supportdesk.desk.desk import open_desk

    d = open_desk(live.home, agent="alice")
    yield d
    d.close()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPPORTDESK_AGENT": "alice", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class Widget:
    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.By = By
        host = wait_until(
            lambda: driver.find_elements(By.ID, "supportdesk-widget"), what="the widget"
        )
        self.root = host[0].shadow_root

    def q(self, css: str) -> Any:
        return self.root.find_element(self.By.CSS_SELECTOR, css)

    def qs(self, css: str) -> list[Any]:
        return self.root.find_elements(self.By.CSS_SELECTOR, css)

    def open(self) -> None:
        self.q(".btn").click()
        wait_until(
            lambda: "reconnecting" not in self.q(".status").text.lower() and self.q(".status").text,
            what="the status line",
        )

    def write(self, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.q("textarea")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def lines(self, direction: str) -> list[str]:
        out = []
        for m in self.qs(f".m.{direction}"):
            small = m.find_elements(self.By.CSS_SELECTOR, "small")
            text = m.text
            if small:
                text = text[: len(text) - len(small[0].text)].rstrip("\n")
            out.append(text)
        return out

    def received(self) -> list[str]:
        return [m.text for m in self.qs(".m.in small")]


def in_messages(desk: Any) -> list[Message]:
    with desk.db.read() as s:
        return list(
            s.exec(select(Message).where(Message.direction == "in", Message.kind == "web")).all()
        )


def test_visitor_writes_agent_replies_browser_shows_it(
    live: LiveSite, browser: Any, mail_desk: Any
) -> None:
    browser.get(live.origin + "/")
    w = Widget(browser)
    w.open()
    assert "online" in w.q(".status").text.lower() or "nobody" in w.q(".status").text.lower()
    assert "4 h" in w.q(".promise").text
    w.write("My order #77 never arrived " + HOSTILE)
    wait_until(lambda: w.received() == ["received"], what="the desk's acknowledgement")
    listed = cli(mail_desk.home, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [ticket] = [t for t in json.loads(listed.stdout) if t["channel"] == "site"]
    assert ticket["subject"].startswith("My order #77 never arrived")
    reply = cli(
        mail_desk.home,
        "tickets",
        "reply",
        str(ticket["id"]),
        "--text",
        "Sorry! <b>It ships today</b>",
    )
    assert reply.returncode == 0, reply.stderr
    wait_until(
        lambda: "Sorry! <b>It ships today</b>" in w.lines("out"),
        what="the agent's reply in the widget",
    )
    # hostile text stayed text: no element was made from it, no script ran
    assert w.qs(".log b") == [] and w.qs(".log img") == [] and w.qs(".log script") == []
    assert browser.execute_script("return window.pwned === undefined")
    assert any("<script>window.pwned=1</script>" in line for line in w.lines("in"))
    # ... and in the CLI: no escape sequence reaches the terminal
    shown = cli(mail_desk.home, "tickets", "show", str(ticket["id"]))
    assert shown.returncode == 0 and "<script>window.pwned=1</script>" in shown.stdout
    assert "\x1b" not in shown.stdout
    assert f"the visitor is on {live.origin}/" in shown.stdout
    # a reload shows the same conversation once
    browser.refresh()
    w = Widget(browser)
    w.open()
    wait_until(
        lambda: "Sorry! <b>It ships today</b>" in w.lines("out"), what="the history after a reload"
    )
    assert len([x for x in w.lines("in") if x.startswith("My order #77")]) == 1
    assert len(in_messages(mail_desk)) == 1


def test_dropped_websocket_loses_and_doubles_nothing(
    live: LiveSite, browser: Any, mail_desk: Any
) -> None:
    browser.get(live.origin + "/")
    w = Widget(browser)
    w.open()
    w.write("first message")
    wait_until(lambda: w.received() == ["received"], what="the first ack")
    assert live.proc is not None
    live.proc.send_signal(signal.SIGKILL)  # the runner dies: every socket drops at once
    live.proc.wait(10)
    w.write("written while the connection was down")
    wait_until(lambda: "reconnecting" in w.q(".status").text.lower(), what="the widget to notice")
    w.write("and one more")
    live.start_runner()  # a new runner; the widget reconnects on its own and sends what waits
    wait_until(lambda: w.received() == ["received"] * 3, timeout=30, what="all three acknowledged")
    texts = sorted(m.text for m in in_messages(mail_desk))
    assert texts == ["and one more", "first message", "written while the connection was down"]
    with mail_desk.db.read() as s:
        assert len(s.exec(select(Ticket).where(Ticket.channel == "site")).all()) == 1
    assert sorted(w.lines("in")) == texts  # each shown once


def test_contact_form_makes_a_ticket_and_the_ack_reaches_smtp(
    live: LiveSite, browser: Any, mail_desk: Any, smtp_sink: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    shot = tmp_path / "screenshot.png"
    shot.write_bytes(PNG)
    browser.get(live.url + "/contact")
    browser.find_element(By.ID, "f-name").send_keys("Dana <b>D</b>")
    browser.find_element(By.ID, "f-email").send_keys("dana@example.test")
    browser.find_element(By.ID, "f-subject").send_keys("Broken invoice")
    browser.find_element(By.ID, "f-message").send_keys("The PDF does not open.\nSee the picture.")
    browser.find_element(By.ID, "f-files").send_keys(str(shot))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "[role=status]"), what="the thanks page"
    )
    assert "ticket #" in status[0].text
    listed = json.loads(cli(mail_desk.home, "tickets", "list", "--json").stdout)
    [t] = [x for x in listed if x["subject"] == "Broken invoice"]
    assert t["channel"] == "support"
    [mail] = smtp_sink.wait_for(1, timeout=15)
    assert (
        mail.message["To"].endswith("dana@example.test>")
        or "dana@example.test" in mail.message["To"]
    )
    assert f"[#{t['id']}]" in mail.message["Subject"]
    shown = cli(mail_desk.home, "tickets", "show", str(t["id"]), "--json")
    assert "screenshot.png" in shown.stdout


def test_offline_widget_asks_for_email_and_the_reply_follows_by_mail(
    home: Path, smtp_sink: Any, browser: Any
) -> None:
    site = LiveSite(home, smtp=smtp_sink, lang="ru", away_after="1s").start()
    try:
        browser.get(site.origin + "/")
        w = Widget(browser)
        w.open()
        assert "никого нет" in w.q(".status").text  # Russian texts from the page's lang
        assert w.q(".off").is_displayed()
        w.q(".off input[type=email]").send_keys("dana@example.test")
        w.q(".off input[type=text]").send_keys("Дана")
        w.write("Здравствуйте, не приходит счёт")
        wait_until(lambda: w.received() == ["получено"], what="the acknowledgement")
        browser.get("about:blank")  # the visitor leaves
        listed = json.loads(site.cli("tickets", "list", "--json").stdout)
        [t] = [x for x in listed if x["channel"] == "site"]
        assert t["customer"]["name"] == "Дана"
        kinds = {(i["kind"], i["address"]) for i in t["customer"]["identities"]}
        assert ("email", "dana@example.test") in kinds and "web" in {k for k, _a in kinds}
        assert (
            site.cli("tickets", "reply", str(t["id"]), "--text", "Счёт отправлен").returncode == 0
        )
        [mail] = smtp_sink.wait_for(1, timeout=60)
        assert "dana@example.test" in mail.message["To"]
        assert "Счёт отправлен" in mail.message.get_content()
        assert f"[#{t['id']}]" in mail.message["Subject"]
    finally:
        site.stop()
