"""The runner lease on both backends, the CLI against PostgreSQL with --db, backups, collisions."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from supportdesk.desk.desk import open_desk
from supportdesk.runner import state as runtime
from supportdesk.store.models import Lease
from supportdesk.tickets import collisions, replying
from tests.conftest import write_config
from tests.factories import inbound_email, ingest, raw_email


def test_one_lease_holder_at_a_time(team_desk: Any) -> None:
    assert runtime.acquire_lease(team_desk, holder="a")
    assert not runtime.acquire_lease(team_desk, holder="b")
    assert runtime.acquire_lease(team_desk, holder="a")  # renewing
    with team_desk.db.read() as s:
        lease = s.get(Lease, "runner")
        assert lease is not None and lease.holder == "a"
    runtime.release_lease(team_desk, holder="a")
    assert runtime.acquire_lease(team_desk, holder="b")
    assert not runtime.acquire_lease(team_desk, holder="a")
    runtime.release_lease(team_desk, holder="b")


def test_postgres_lease_is_fenced_by_its_deadline_not_by_a_session(
    home: Path, pg_url: str, postgres_server: Any
) -> None:
    """A frozen holder keeps its PostgreSQL session (FACTS.md): the standby must not wait for
    it to close. The deadline, by the server's clock, decides; the epoch fences the old holder."""
    write_config(home, "[desk]\nname = 'x'\n")
    desk = open_desk(home, db_url=pg_url)
    try:
        with desk.db.read() as s:
            t0 = runtime._db_now(s, desk)
        first = runtime.acquire_lease(desk, holder="a", now=t0)
        assert first
        # the holder's sessions are all still open: that alone keeps nobody out
        assert not runtime.acquire_lease(desk, holder="b", now=t0 + runtime.LEASE_TTL / 2)
        later = t0 + runtime.LEASE_TTL + timedelta(seconds=1)
        assert runtime.acquire_lease(desk, holder="b", now=later) == first + 1
        assert not runtime.acquire_lease(desk, holder="a", now=later)  # the old holder lost it
        runtime.release_lease(desk, holder="b")
        assert runtime.acquire_lease(desk, holder="a") == first + 2
        runtime.release_lease(desk, holder="a")
    finally:
        desk.close()


def test_cli_end_to_end_on_postgres_with_db(
    cli: Any, home: Path, tmp_path: Path, pg_empty_url: str
) -> None:
    r = cli("--db", pg_empty_url, "init")
    assert r.exit_code == 0, r.output
    assert not (home / "supportdesk.db").exists()  # nothing went to SQLite
    mails = tmp_path / "mails"
    mails.mkdir()
    for i in range(3):
        (mails / f"{i}.eml").write_bytes(
            raw_email(frm=f"C{i} <c{i}@example.org>", subject=f"Вопрос {i}", msgid=f"q{i}@x")
        )
    r = cli("--db", pg_empty_url, "import", str(mails))
    assert r.exit_code == 0, r.output
    listed = json.loads(cli("--db", pg_empty_url, "tickets", "list", "--json").output)
    assert sorted(t["subject"] for t in listed) == ["Вопрос 0", "Вопрос 1", "Вопрос 2"]
    # the same import again adds nothing (dedupe works on PostgreSQL too)
    assert cli("--db", pg_empty_url, "import", str(mails)).exit_code == 0
    again = json.loads(cli("--db", pg_empty_url, "tickets", "list", "--json").output)
    assert len(again) == 3
    tid = listed[0]["id"]
    assert cli("--db", pg_empty_url, "tickets", "reply", str(tid), "--text", "Ответ").exit_code == 0
    shown = json.loads(cli("--db", pg_empty_url, "tickets", "show", str(tid), "--json").output)
    assert [m["direction"] for m in shown["messages"]] == ["in", "out"]
    r = cli("--db", pg_empty_url, "backup", str(tmp_path))
    assert r.exit_code == 0
    assert "pg_dump --format=custom" in r.output and "postgresql://postgres@" in r.output


def test_bad_db_urls_are_one_sentence(cli: Any) -> None:
    for url, words in (
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot be opened"),
        ("mysql+nosuchdriver://x/y", "is not usable"),
    ):
        r = cli("--db", url, "tickets", "list")
        assert r.exit_code == 7, r.output
        assert words in r.stderr
        assert "Traceback" not in r.output + r.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_backup_is_a_consistent_copy(cli: Any, team_desk: Any, tmp_path: Path) -> None:
    for i in range(5):
        ingest(team_desk, inbound_email(subject=f"S{i}"))
    dest = tmp_path / "b.db"
    r = cli("backup", str(dest), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["path"] == str(dest)
    with sqlite3.connect(dest) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ticket").fetchone()[0] == 5
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (dest.stat().st_mode & 0o777) == 0o600
    r = cli("backup", str(dest))
    assert r.exit_code == 5 and "--force" in r.stderr
    assert cli("backup", str(dest), "--force").exit_code == 0
    r = cli("backup", str(tmp_path))  # a folder: a dated file inside it
    assert r.exit_code == 0
    assert len(list(tmp_path.glob("supportdesk-*.db"))) == 1


def test_newer_customer_messages_since_a_draft(team_desk: Any) -> None:
    t = ingest(team_desk, inbound_email(subject="Draft", external_id="d1@x")).ticket_id or 0
    started = collisions.newest_message_id(team_desk, t)
    replying.reply(team_desk, t, text="internal", note=True)  # ours: not a collision
    assert collisions.newer_customer_messages(team_desk, t, started) == []
    r1 = ingest(
        team_desk,
        inbound_email(
            subject="Re: Draft",
            external_id="d2@x",
            in_reply_to=["d1@x"],
            text="И ещё: он теперь пищит",
        ),
    )
    r2 = ingest(team_desk, inbound_email(subject="Auto", external_id="d3@x", in_reply_to=["d1@x"],
                                         auto_reason="auto-replied"))  # fmt: skip
    assert r1.ticket_id == r2.ticket_id == t
    newer = collisions.newer_customer_messages(team_desk, t, started)
    assert [m.text for m in newer] == ["И ещё: он теперь пищит"]
    assert len(collisions.newer_customer_messages(team_desk, t, None)) == 2
    assert collisions.newest_message_id(team_desk, 999999) is None


def test_reply_in_editor_warns_about_a_newer_customer_message(
    cli: Any, desk: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat
    import sys

    first = tmp_path / "first.eml"
    first.write_bytes(raw_email(subject="Сканер", msgid="scan1@example.ru", body="Сканер сломан"))
    assert cli("import", str(first)).exit_code == 0
    tid = json.loads(cli("tickets", "list", "--json").output)[0]["id"]
    later = tmp_path / "later.eml"
    later.write_bytes(
        raw_email(subject="Re: Сканер", msgid="scan2@example.ru", in_reply_to="scan1@example.ru",
                  body="Уже не надо, заработал")
    )  # fmt: skip
    # the "editor": the first time, the customer's new mail arrives while the agent types
    flag = tmp_path / "arrived"
    script = tmp_path / "editor"
    script.write_text(
        f"#!{sys.executable}\nimport os, subprocess, sys\np = sys.argv[1]\n"
        f"if not os.path.exists({str(flag)!r}):\n"
        f"    open({str(flag)!r}, 'w').close()\n"
        f"    subprocess.run([{sys.executable!r}, '-m', 'supportdesk', '--home', {str(home)!r},"
        f" 'import', {str(later)!r}], check=True, capture_output=True)\n"
        "    open(p, 'w').write('Попробуйте перезагрузить')\n"
        "else:\n"
        "    old = open(p).read()\n"
        "    open(p, 'w').write(old + ' — рад, что заработал!')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(script))
    r = cli("tickets", "reply", str(tid), "--editor", input="n\n")
    assert r.exit_code == 0, r.output + r.stderr
    assert "new message(s) while you were writing" in r.stderr
    assert "Уже не надо, заработал" in r.stderr
    shown = json.loads(cli("tickets", "show", str(tid), "--json").output)
    assert [m["direction"] for m in shown["messages"]] == ["in", "in", "out"]
    assert shown["messages"][-1]["text"] == "Попробуйте перезагрузить — рад, что заработал!"
    # no newer message: no question asked
    r = cli("tickets", "reply", str(tid), "--editor")
    assert r.exit_code == 0 and "while you were writing" not in r.stderr
