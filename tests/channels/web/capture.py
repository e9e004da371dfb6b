"""Capture the widget for the README: ``python -m tests.channels.web.capture docs/widget.png``
(``--offline docs/widget-offline.png``: nobody at work, Russian texts).

A throw-away desk with one public article; a visitor asks, an agent answers; headless Chromium
takes the picture."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.channels.web.harness import LiveSite, wait_until
from tests.channels.web.test_browser import Widget, make_driver


def main(out: Path) -> None:
    from supportdesk.desk.desk import open_desk
    from supportdesk.outbound import outbox
    from supportdesk.people import presence
    from supportdesk.replies import kb
    from supportdesk.store.models import Ticket

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "desk"
        home.mkdir(mode=0o700)
        site = LiveSite(home, extra_config='[sla.channel.site]\nfirst_response = "15m"')
        desk = open_desk(home, agent="alice")
        kb.add_article(
            desk,
            title="Where is my parcel?",
            body="Track a parcel with the number from your order e-mail.",
            public=True,
        )
        kb.add_article(
            desk,
            title="Returns and refunds",
            body="You can return a parcel within 30 days.",
            public=True,
        )
        presence.heartbeat(desk, 1)
        site.start()
        driver = make_driver(Path(tmp) / "profile")
        try:
            driver.get(site.origin + "/")
            w = Widget(driver)
            w.open()
            w.write("Hello! My parcel has not arrived yet, order 4417.")
            wait_until(lambda: w.received() == ["received"], what="the ack")
            with desk.db.write() as s:
                from sqlmodel import select

                t = s.exec(select(Ticket)).one()
                outbox.queue_outbound(
                    s,
                    desk,
                    t,
                    "Hi! I see it at the local depot, it will be delivered tomorrow before noon.",
                    agent="alice",
                )
            wait_until(lambda: len(w.lines("out")) >= 1, what="the reply")
            w.q("textarea").send_keys("Can I track the parcel")
            wait_until(lambda: not w.q(".kb").get_attribute("hidden"), what="suggestions")
            time.sleep(0.3)  # let the last paint happen before the picture
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
            desk.close()
            site.stop()


def offline(out: Path) -> None:
    """Nobody at work, a Russian page: the widget says so and asks for an e-mail address."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "desk"
        home.mkdir(mode=0o700)
        site = LiveSite(
            home,
            lang="ru",
            extra_config='[channel.texts.ru]\ngreeting = "Здравствуйте! Чем помочь?"',
        ).start()
        driver = make_driver(Path(tmp) / "profile")
        try:
            driver.get(site.origin + "/")
            w = Widget(driver)
            w.open()
            w.q(".off input[type=email]").send_keys("dana@example.test")
            w.q("textarea").send_keys("Здравствуйте! Не пришёл счёт за ноябрь.")
            time.sleep(0.3)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
            site.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--offline"]:
        offline(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/widget-offline.png"))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/widget.png"))
