"""Incoming HTML mail in the console: laid out with lists, tables and links as numbered notes
(H), and a sanitised copy for $BROWSER (B)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from supportdesk.ui.app import make_app
from tests.factories import inbound_email, ingest
from tests.ui.conftest import settle, text_of, wait_for

HTML = (
    "<p>Hello,</p><ul><li>order 4471</li><li>order 4472</li></ul>"
    "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Toner</td><td>30</td></tr></table>"
    '<p>Pay <a href="https://evil.test/pay">on our site</a>.</p>'
    '<script>alert(1)</script><img src="https://tracker.test/p.gif" alt="logo">'
)


async def test_html_laid_out_and_opened_sanitised(desk: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    r = ingest(desk, inbound_email(external_id="html@x", text="Hello, order 4471", html=HTML))
    copy = tmp_path / "seen.html"
    script = tmp_path / "browser.py"
    script.write_text(f"import shutil, sys\nshutil.copy(sys.argv[1], {str(copy)!r})\n")
    monkeypatch.setenv("BROWSER", f"{sys.executable} {script}")
    app = make_app(desk, live=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.open_ticket(r.ticket_id)
        await settle(pilot)
        assert "[1] https://evil.test/pay" not in text_of(app)
        await pilot.press("H")
        await settle(pilot)
        shown = text_of(app)
        assert "on our site [1]" in shown and "[1] https://evil.test/pay" in shown
        assert "* order 4472" in shown and "Toner" in shown and "alert" not in shown
        await pilot.press("B")
        await wait_for(pilot, copy.exists)
    page = copy.read_text(encoding="utf-8")
    assert "order 4472" in page and "<script" not in page and "tracker.test" not in page
    assert "Content-Security-Policy" in page
