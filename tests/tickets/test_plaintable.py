"""cli.plaintable prints the same bytes as rich's Table (as ``output.print_table`` builds it) when
stdout is not a terminal: compared byte for byte over many widths, column limits and texts
(Cyrillic, wide CJK, emoji, combining marks, long words, empty cells, hostile text made inert)."""

from __future__ import annotations

import io
import random
import subprocess
import sys

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from supportdesk.cli import output
from supportdesk.cli.plaintable import plain_lines, plain_table, plain_width, terminal_width
from supportdesk.core.text import inert

WORDS = [
    "printer", "Пароль", "доставка", "принтер", "ошибка", "invoice", "打印机坏了", "请帮忙",
    "😀", "👍🏽", "e\u0301", "ok", "", "a", "overdue 89d", "in 3h", "x" * 60, "Клиент 13226",
    "[bold]x[/bold]", "\x1b[31mred", "tab\there", "line\nbreak", "\u200b", "ｆｕｌｌ", "…",
]  # fmt: skip


def _rich(titles, rows, width, lows, highs, terminal=None):
    buf = io.StringIO()
    con = Console(
        file=buf, width=width, markup=False, highlight=False, emoji=False, soft_wrap=False,
        force_terminal=terminal is not None, color_system=terminal,
    )  # fmt: skip
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for title, low, high in zip(titles, lows, highs, strict=True):
        table.add_column(title, overflow="ellipsis", no_wrap=True, max_width=high, min_width=low)
    for r in rows:
        table.add_row(*(Text(c) for c in r))
    con.print(table)
    return buf.getvalue()


def _cell(rnd: random.Random) -> str:
    return inert(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 3))), one_line=True)


@pytest.mark.parametrize("seed", range(40))
def test_same_bytes_as_rich(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(1, 8)
    titles = [rnd.choice(["#", "Channel", "Customer", "Subject", "Статус", "期限", "Due"])
              for _ in range(n)]  # fmt: skip
    rows = [[_cell(rnd) for _ in range(n)] for _ in range(rnd.randint(1, 12))]
    lows = [rnd.choice([None, 0, 3, 8, 12, min(len(t), 8)]) for t in titles]
    highs = [rnd.choice([None, None, 4, 11, 20, 48]) for _ in titles]
    compared = 0
    for width in (*range(1, 40, 3), 40, 59, 60, 79, 80, 99, 100, 119, 120, 160, 240):
        got = plain_table(titles, rows, width=width, min_width=lows, max_width=highs)
        want = _rich(titles, rows, width, lows, highs)
        if got is not None:
            assert got == want, (width, titles, rows, lows, highs)
            compared += 1
        # on a terminal: the header bold, as rich writes it for any colour system
        bold = plain_table(
            titles, rows, width=width, min_width=lows, max_width=highs, bold_header=True
        )
        assert (bold is None) == (got is None)
        if bold is not None:
            for system in ("standard", "256", "truecolor"):
                want = _rich(titles, rows, width, lows, highs, terminal=system)
                assert bold == want, (width, system, titles, rows, lows, highs)
    assert compared >= 1  # the plain path is taken, not stepped around


def test_hostile_text_stays_inert() -> None:
    rows = [[inert("\x1b]52;c;ZXZpbA==\x07\x1b[2Jowned\r\x08", one_line=True), "x"]]
    got = plain_table(["Subject", "#"], rows, width=80, min_width=[8, 1], max_width=[None, None])
    assert got is not None and got == _rich(["Subject", "#"], rows, 80, [8, 1], [None, None])
    assert not any(ord(c) < 32 and c != "\n" for c in got)
    assert "\x1b" not in got


def test_steps_aside_for_what_rich_would_change() -> None:
    assert plain_table(["a"], [["x\ty"]], width=80, min_width=[1], max_width=[None]) is None
    assert plain_table(["a"], [], width=80, min_width=[1], max_width=[None]) is None


def test_width_as_rich_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for columns in ("57", "133", "0", "x"):
        monkeypatch.setenv("COLUMNS", columns)
        want = Console(markup=False, highlight=False, emoji=False, soft_wrap=False).width
        got = plain_width()
        assert got == (want if want >= 1 else None), columns
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plain_width() is None  # rich writes escape sequences then: rich's to print
    monkeypatch.setenv("FORCE_COLOR", "")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert plain_width() is None
    monkeypatch.setenv("COLUMNS", "91")
    monkeypatch.setenv("TERM", "xterm")
    assert terminal_width() == 91  # a terminal: the table with rich's bold header
    for dumb in ("dumb", "unknown", " Dumb "):
        monkeypatch.setenv("TERM", dumb)  # rich writes no escape there, 80 wide: rich's
        assert terminal_width() is None and plain_width() is None


def test_print_table_without_rich_when_not_a_terminal() -> None:
    """A piped `tickets list`-like table does not load rich.console (the saving), and prints
    what rich prints."""
    code = (
        "import sys\n"
        "from supportdesk.cli.output import print_table\n"
        "print_table([{'id': 1, 'subject': 'Пароль 打印机 \\x1b[31m'}], [('id', '#'), "
        "('subject', 'Subject')], max_width={'subject': 10})\n"
        "assert 'rich.console' not in sys.modules, 'rich.console loaded'\n"
    )
    env = {"COLUMNS": "50", "PATH": "/usr/bin:/bin"}
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    want = _rich(["#", "Subject"], [["1", inert("Пароль 打印机 \x1b[31m", one_line=True)]], 50,
                 [1, 7], [None, 10])  # fmt: skip
    assert got.stdout == want
    assert output.print_table is not None


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("columns", ["40", "60", "80", "99", "100", "119", "120", "200"])
def test_queue_table_same_as_rich(
    columns: str,
    terminal: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tickets list`'s table through plaintable and through rich (plaintable turned off)."""
    from datetime import UTC, datetime, timedelta

    from supportdesk.cli import plaintable, render

    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    if terminal:  # rich takes stdout for a terminal: escape sequences (a bold header)
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("TERM", "xterm-256color")
    now = datetime.now(UTC)
    rnd = random.Random(int(columns))
    rows = [
        {
            "id": rnd.randint(1, 10**6),
            "channel": rnd.choice(["email", "telegram", "billing", "web"]),
            "customer": {
                "name": rnd.choice(["Клиент 13226", "山田太郎", "", "A" * 40]),
                "identities": [{"kind": "email", "address": "x@example.org"}],
            },
            "subject": inert(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 8)))),
            "status": rnd.choice(["open", "pending", "solved"]),
            "priority": rnd.choice(["urgent", "low", "normal"]),
            "assignee": rnd.choice([None, "anna", "Борис"]),
            "tags": rnd.choice([[], ["vip"], ["billing", "refund", "длинный-тег"]]),
            "created_at": (now - timedelta(hours=rnd.randint(0, 4000))).isoformat(),
            "due_at": rnd.choice(
                [None, (now + timedelta(hours=rnd.randint(-900, 900))).isoformat()]
            ),
        }  # fmt: skip
        for _ in range(30)
    ]
    made: list[str | None] = []
    real = plaintable.plain_table
    monkeypatch.setattr(
        plaintable, "plain_table", lambda *a, **k: made.append(real(*a, **k)) or made[-1]
    )
    render.print_queue(rows, json_out=False, csv_out=False, limit=100)
    plain = capsys.readouterr().out
    assert made and made[0] is not None  # the table was plaintable's
    assert ("\x1b[1m" in plain) == terminal
    monkeypatch.setattr(plaintable, "plain_table", lambda *a, **k: None)
    render.print_queue(rows, json_out=False, csv_out=False, limit=100)
    assert capsys.readouterr().out == plain


def _both(monkeypatch, capsys, columns, show) -> tuple[str, str, list[str | None]]:
    """``show()``'s output through plaintable, then through rich (plaintable turned off)."""
    from supportdesk.cli import plaintable

    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    made: list[str | None] = []
    real = _PLAIN_LINES
    monkeypatch.setattr(
        plaintable, "plain_lines", lambda *a, **k: made.append(real(*a, **k)) or made[-1]
    )
    show()
    plain = capsys.readouterr().out
    monkeypatch.setattr(plaintable, "plain_lines", lambda *a, **k: None)
    show()
    return plain, capsys.readouterr().out, made


_PLAIN_LINES = plain_lines
HOSTILE = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\r\x08 tab\t[bold]x[/bold] 打印机 Пароль e\u0301"


@pytest.mark.parametrize("columns", ["1", "2", "7", "12", "30", "60", "80", "120", "300"])
def test_status_same_as_rich(monkeypatch, capsys, columns: str) -> None:
    from pathlib import Path

    from supportdesk.cli import render

    doc = {
        "runner": {"holder": "anna", "pid": 42, "host": "desk-1", "heartbeat_at": "2026-12-05"},
        "channels": [
            {"name": "mail", "type": "imap", "state": "ok", "last_error": None,
             "last_success_at": "2026-12-05T10:00:00.123456+00:00"},
            {"name": HOSTILE, "type": "telegram", "state": "error", "last_error": HOSTILE * 2,
             "last_success_at": None},
            {"name": "Почта", "type": "imap", "state": "backoff", "last_error": "timed out",
             "last_success_at": None},
        ],
        "outbox": {"queued": 1, "failed": 2, "in_doubt": 3, "sent": 4},
        "quarantine": 5,
        "tickets": {"open": 100000},
    }  # fmt: skip

    def show() -> None:
        render.print_status(
            doc, desk_name="Поддержка 打印机", home=Path("/tmp/desk"),
            roles_note="Acting as anna (roles are advisory on SQLite).", json_out=False,
        )  # fmt: skip

    plain, rich_out, made = _both(monkeypatch, capsys, columns, show)
    assert plain == rich_out
    assert made and made[0] is not None  # the plain path was taken, wrapping as rich
    assert "\x1b" not in plain and "\x07" not in plain


@pytest.mark.parametrize("columns", ["1", "10", "40", "80", "133", "400"])
def test_hits_same_as_rich(monkeypatch, capsys, columns: str) -> None:
    from supportdesk.cli import render

    rnd = random.Random(int(columns))
    hits = []
    for _i in range(12):
        title = " ".join(rnd.choice([*WORDS, HOSTILE]) for _ in range(rnd.randint(0, 8)))
        snippet = " ".join(rnd.choice([*WORDS, HOSTILE]) for _ in range(rnd.randint(0, 12)))
        kind = rnd.choice(["ticket", "message", "customer", "kb"])
        hits.append({
            "kind": kind, "id": rnd.randint(1, 10**6), "ticket_id": 7, "slug": HOSTILE,
            "title": title, "title_highlights": [[0, min(3, len(title))]],
            "snippet": snippet, "highlights": [[0, min(5, len(snippet))]],
            "status": rnd.choice([None, "open", HOSTILE]), "customer": rnd.choice(["", "Клиент"]),
        })  # fmt: skip
    for shown in (hits, []):
        plain, rich_out, made = _both(
            monkeypatch, capsys, columns,
            lambda shown=shown: render.print_hits(shown, json_out=False, csv_out=False),
        )  # fmt: skip
        assert plain == rich_out
        assert made and made[0] is not None
        assert "\x1b" not in plain and "\x07" not in plain


@pytest.mark.parametrize("seed", range(30))
def test_lines_wrap_as_rich(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long lines wrap (or are cut with "…") exactly as rich's console does it."""
    rnd = random.Random(seed)
    lines = [_cell(rnd) + "  " * rnd.randint(0, 3) + _cell(rnd) for _ in range(6)]
    lines += [" " * rnd.randint(0, 30) + "x" * rnd.randint(0, 50) + " " * rnd.randint(0, 30)]
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    for width in (1, 2, 3, 5, 8, 13, 21, 34, 55, 89):
        monkeypatch.setenv("COLUMNS", str(width))
        for ellipsis in (False, True):
            buf = io.StringIO()
            con = Console(
                file=buf, width=width, markup=False, highlight=False, emoji=False,
                soft_wrap=False,
            )  # fmt: skip
            for line in lines:
                if ellipsis:
                    con.print(Text(line), overflow="ellipsis", no_wrap=True)
                else:
                    con.print(line)
            got = plain_lines(lines, ellipsis=ellipsis)
            assert got == buf.getvalue(), (width, ellipsis, lines)


@pytest.mark.parametrize("columns", ["1", "9", "40", "80", "200"])
def test_ticket_same_as_rich(monkeypatch, capsys, columns: str) -> None:
    from supportdesk.cli import render

    texts = ["", "\n", "a\n", "\n\nb\n\n", "Hello,\n\nthe printer " * 9 + "\n-- \nАнна",
             HOSTILE + "\n" + HOSTILE, "x" * 300, "  indented\n\ttabbed"]  # fmt: skip
    doc = {
        "id": 7, "subject": HOSTILE, "status": "open", "priority": "urgent",
        "channel": "email", "assignee": None, "tags": ["vip", "длинный"],
        "due_at": "2026-12-05T10:00:00+00:00", "first_response_queued": True,
        "customer": {"name": "Клиент 打印机", "identities": [{"kind": "email", "address": HOSTILE}]},
        "participants": ["a@x", HOSTILE],
        "history": [{"id": 3, "channel": "web", "status": "solved", "subject": HOSTILE,
                     "created_at": "2026-11-01T10:00:00+00:00"}],
        "messages": [
            {"direction": d, "author": HOSTILE if i % 2 else None, "author_address": "a@x",
             "channel": "email", "created_at": "2026-12-01T10:00:00+00:00",
             "delivery": {"status": "in_doubt", "error": HOSTILE, "outbox_id": 5} if i == 1 else None,
             "to": ["b@y"], "cc": ["c@z"] if i % 3 else [], "bcc": ["d@w"],
             "thread_reason": HOSTILE if i == 2 else None, "text": text,
             "quoted_text": "> q\n> r" if i == 3 else None,
             "attachments": [{"filename": HOSTILE, "size": 12, "content_type": "text/plain",
                              "note": "too big"}] if i == 4 else []}
            for i, (d, text) in enumerate(zip(["in", "out", "note"] * 3, texts, strict=False))
        ],
    }  # fmt: skip
    without_tab = {
        **doc,
        "messages": [{**m, "text": m["text"].replace("\t", " ")} for m in doc["messages"]],
    }
    for shown in (doc, without_tab):
        plain, rich_out, made = _both(
            monkeypatch, capsys, columns, lambda shown=shown: render.print_ticket(shown)
        )
        assert plain == rich_out
        assert "\x1b" not in plain and "\x07" not in plain
    assert made and made[0] is not None  # without a tab: the plain path
