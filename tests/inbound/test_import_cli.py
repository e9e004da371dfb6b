"""`supportdesk import` over the shared corpus, .eml, mbox and Maildir."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from supportdesk.cli.main import app
from tests.factories import raw_email
from tests.peers.util import corpus_dir, require_corpus

CORPUS = corpus_dir()
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []


def _import(home: Path, *paths: Path) -> dict[str, Any]:
    if not (home / "config.toml").exists():
        assert CliRunner().invoke(app, ["--home", str(home), "init"]).exit_code == 0
    res = CliRunner().invoke(
        app, ["--home", str(home), "import", *map(str, paths), "--json", "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return json.loads(res.stdout)


def test_corpus_imports_and_second_run_adds_nothing(home: Path) -> None:
    require_corpus()
    first = _import(home, CORPUS)
    assert (
        first["seen"]
        == first["imported"] + first["duplicates"] + first["quarantined"] + first["unreadable"]
    )
    assert first["imported"] > 80
    q = CliRunner().invoke(app, ["--home", str(home), "quarantine", "list", "--json"])
    for row in json.loads(q.stdout):
        assert row["error"], row  # every quarantined message says why
    second = _import(home, CORPUS)
    assert second["imported"] == 0 and second["seen"] == first["seen"]
    tickets = CliRunner().invoke(
        app, ["--home", str(home), "tickets", "list", "--json", "--limit", "1000"]
    )
    assert len(json.loads(tickets.stdout)) == first["new_tickets"]


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-home")


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_every_corpus_file_imports_on_its_own(shared_home: Path, path: Path) -> None:
    doc = _import(shared_home, path)
    assert doc["seen"] >= 1
    assert (
        doc["seen"] == doc["imported"] + doc["duplicates"] + doc["quarantined"] + doc["unreadable"]
    )


def test_mbox_single_from_line_and_maildir(home: Path, tmp_path: Path) -> None:
    single = tmp_path / "one.mbox"
    single.write_bytes(
        b"From ivan@example.ru Thu Nov 20 10:00:00 2026\n"
        + raw_email(msgid="mb1@x").replace(b"\r\n", b"\n")
    )
    box = mailbox.mbox(str(tmp_path / "many.mbox"))
    for i in range(3):
        box.add(raw_email(msgid=f"mb{i + 2}@x", subject=f"Тема {i}"))
    box.flush()
    md = mailbox.Maildir(str(tmp_path / "Maildir"))
    md.add(raw_email(msgid="md1@x"))
    md.add(raw_email(msgid="mb2@x", subject="Тема 0"))  # the same mail twice is one message
    doc = _import(home, single, tmp_path / "many.mbox", tmp_path / "Maildir")
    assert doc["imported"] == 5 and doc["duplicates"] == 1


def test_own_address_becomes_outbound_and_no_acks(home: Path, tmp_path: Path, cli: Any) -> None:
    q = tmp_path / "q.eml"
    q.write_bytes(raw_email(msgid="q@x", subject="Вопрос"))
    a = tmp_path / "a.eml"
    a.write_bytes(
        raw_email(
            msgid="a@acme.test",
            frm="Support <support@acme.test>",
            to="ivan@example.ru",
            subject="Re: Вопрос",
            in_reply_to="q@x",
        )
    )
    _import(home, q, a)
    shown = json.loads(cli("tickets", "show", "1", "--json").stdout)
    assert [m["direction"] for m in shown["messages"]] == ["in", "out"]
    assert (
        json.loads(cli("outbox", "list", "--json").stdout) == []
    )  # imported history never acknowledges


def test_missing_path_is_one_sentence(cli: Any) -> None:
    res = cli("import", "/nonexistent/mail.eml")
    assert res.exit_code == 2 and "does not exist" in res.stderr and "Traceback" not in res.output


def test_mail_without_message_id_dedupes_by_content(home: Path, tmp_path: Path) -> None:
    raw = raw_email(msgid="zz@x").replace(b"Message-ID: <zz@x>\n", b"")
    assert b"Message-ID" not in raw
    (tmp_path / "a.eml").write_bytes(raw)
    (tmp_path / "b.eml").write_bytes(raw)  # the same mail delivered to two mailboxes
    doc = _import(home, tmp_path / "a.eml", tmp_path / "b.eml")
    assert doc["imported"] == 1 and doc["duplicates"] == 1


@pytest.mark.sqlite_only  # with a database URL the home holds only files, so none is needed
def test_a_mistyped_home_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "desk"
    res = CliRunner().invoke(app, ["--home", str(missing), "tickets", "list"])
    assert res.exit_code == 3 and "there is no desk" in res.stderr
    assert not missing.exists()


def test_folder_import_counts_and_names_skipped_files(home: Path, tmp_path: Path) -> None:
    box = tmp_path / "export"
    box.mkdir()
    (box / "1.eml").write_bytes(raw_email(msgid="skip-1@x"))
    (box / "notes.txt").write_bytes(b"just some notes, no headers\n")
    (box / "old.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)
    doc = _import(home, box)
    assert doc["imported"] == 1
    assert doc["skipped"] == 2
    assert {Path(s["file"]).name: s["reason"] for s in doc["skipped_files"]} == {
        "notes.txt": "no mail header at the start",
        "old.msg": "a binary file",
    }
    res = CliRunner().invoke(app, ["--home", str(home), "import", str(box), "--workers", "1"])
    assert (
        res.exit_code == 0 and "skipped 2" in res.stdout and "old.msg: a binary file" in res.stdout
    )
