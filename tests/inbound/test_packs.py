"""The raw ledger of a bulk import: packs, their index, and what stays a file of its own."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.desk.desk import open_desk
from supportdesk.store import packs
from supportdesk.store.files import raw_path
from supportdesk.store.ledger import read_raw
from tests.factories import raw_email

COUNT = 150  # above import_prep.SMALL: a bulk import


def _maildir(root: Path, count: int = COUNT, broken: int = 0) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        raw = raw_email(
            msgid=f"bulk{i}@example.ru",
            frm=f"Клиент {i % 40} <c{i % 40}@example.ru>",
            subject=f"Вопрос номер {i}",
            body=f"Здравствуйте, это письмо {i}.",
        )
        (root / "cur" / f"{1700000000 + i}.M{i}.host:2,S").write_bytes(raw)
    for i in range(broken):
        (root / "cur" / f"{1800000000 + i}.broken:2,S").write_bytes(b"\x00\x01 not mail at all")
    return root


def _shas(home: Path) -> list[str]:
    desk = open_desk(home)
    with desk.db.read() as s:
        rows = s.connection().execute(sa.text("SELECT raw_sha256 FROM message")).all()
    return [r[0] for r in rows]


def _pack_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in packs.packs_dir(home).glob("*.pack"))


def test_a_bulk_import_keeps_every_message_in_packs_once(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    cli("init")
    box = _maildir(tmp_path / "Maildir")
    res = cli("import", str(box), "--json", "--workers", "2")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["imported"] == COUNT
    shas = _shas(home)
    assert len(shas) == COUNT
    for sha in shas:
        data = read_raw(home, sha)  # from a pack: no file of its own
        assert hashlib.sha256(data).hexdigest() == sha
        assert not raw_path(home, sha).exists()
    originals = sorted(p.read_bytes() for p in (box / "cur").iterdir())
    assert sorted(read_raw(home, sha) for sha in shas) == originals
    size = _pack_bytes(home)
    again = cli("import", str(box), "--json", "--workers", "2")
    assert json.loads(again.stdout)["duplicates"] == COUNT
    assert _pack_bytes(home) == size  # the second import stored no byte twice


def test_a_message_that_fails_to_parse_keeps_a_file_of_its_own(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    cli("init")
    box = _maildir(tmp_path / "Maildir", count=80, broken=1)
    res = cli("import", str(box), "--json", "--workers", "2")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["quarantined"] == 1
    [row] = json.loads(cli("quarantine", "list", "--json").stdout)
    assert raw_path(home, row["raw_sha256"]).read_bytes() == b"\x00\x01 not mail at all"


def test_a_lost_or_damaged_index_is_rebuilt_from_the_packs(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    cli("init")
    cli("import", str(_maildir(tmp_path / "Maildir")), "--workers", "1")
    shas = _shas(home)
    for name in os.listdir(packs.packs_dir(home)):
        if name.startswith(packs.INDEX):
            os.remove(packs.packs_dir(home) / name)
    # the next read rebuilds it from the packs alone
    assert all(hashlib.sha256(read_raw(home, s)).hexdigest() == s for s in shas)
    assert (packs.packs_dir(home) / packs.INDEX).exists()
    (packs.packs_dir(home) / packs.INDEX).write_bytes(b"not a database at all" * 100)
    assert read_raw(home, shas[1])  # a damaged index too
    assert packs.rebuild_index(home) == COUNT


def test_a_record_cut_short_ends_the_pack(tmp_path: Path) -> None:
    home = tmp_path / "home"
    packs.prepare(home)
    writer = packs.PackWriter(home)
    datas = [b"first message", b"second message", b"third message"]
    shas = writer.add_many(datas)
    writer.close()
    [pack] = packs.packs_dir(home).glob("*.pack")
    with pack.open("r+b") as fh:
        fh.truncate(pack.stat().st_size - 3)  # a crash in the middle of the last append
    assert [sha for sha, _o, _n in packs.iter_pack(pack)] == shas[:2]
    assert packs.rebuild_index(home) == 2
    assert packs.read(home, shas[1]) == datas[1]
    assert packs.read(home, shas[2]) is None


def test_the_writer_skips_what_the_ledger_holds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    packs.prepare(home)
    one = packs.PackWriter(home)
    one.add_many([b"a", b"b"])
    one.close()
    two = packs.PackWriter(home)  # another process, another pack
    shas = two.add_many([b"b", b"c", b"c"])
    two.close()
    records = [r for p in packs.packs_dir(home).glob("*.pack") for r in packs.iter_pack(p)]
    assert sorted(sha for sha, _o, _n in records) == sorted(
        hashlib.sha256(x).hexdigest() for x in (b"a", b"b", b"c")
    )
    assert [packs.read(home, s) for s in shas] == [b"b", b"c", b"c"]


def test_the_parsers_work_in_chunks_bounded_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supportdesk.channels.files import RawItem
    from supportdesk.inbound import prep as import_prep

    monkeypatch.setattr(import_prep, "CHUNK_BYTES", 3_000_000)
    big = "слово " * 90_000  # about 1 MB of UTF-8 each
    items = [
        RawItem(f"big{i}.eml", raw_email(msgid=f"big{i}@example.ru", body=big)) for i in range(10)
    ]
    home = tmp_path / "home"
    (home / "raw").mkdir(parents=True)
    with import_prep.Preparer(home, items, workers=1) as prep:
        chunks = [[p.source for p in chunk] for chunk in prep]
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert sum(chunks, []) == [f"big{i}.eml" for i in range(10)]  # in order


def test_an_import_into_a_new_home_keeps_it_private(tmp_path: Path) -> None:
    """With --db the home may not exist yet: the ledger it gets is readable by its owner only."""
    import stat

    from typer.testing import CliRunner

    from supportdesk.cli.main import app

    db = tmp_path / "elsewhere.db"
    home = tmp_path / "new-home"
    box = _maildir(tmp_path / "Maildir", count=70)
    url = f"sqlite:///{db}"
    res = CliRunner().invoke(app, ["--home", str(home), "--db", url, "import", str(box), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["imported"] == 70
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for p in (home / "raw").rglob("*"):
        assert not stat.S_IMODE(p.stat().st_mode) & 0o077, p


def test_what_the_parsers_stemmed_is_what_the_index_would_hold(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    """Stems made in the parser processes equal stemming here, for messages and new tickets."""
    from supportdesk.store import search as store

    cli("init")
    box = _maildir(tmp_path / "Maildir", count=90)
    (box / "cur" / "1900000000.M1.host:2,S").write_bytes(
        raw_email(msgid="reply@example.ru", subject="Re: [#1] Ёлка и принтеры", body="Ёжики")
    )
    assert cli("import", str(box), "--workers", "2").exit_code == 0
    desk = open_desk(home)
    with desk.db.read() as s:
        conn = s.connection()
        tickets = conn.execute(sa.text("SELECT id, subject FROM ticket")).all()
        messages = conn.execute(sa.text("SELECT id, subject, text FROM message")).all()
        docs = {
            r[0]: (r[1], r[2])
            for r in conn.execute(sa.text("SELECT rowid, title, body FROM search_doc")).all()
        }
    assert len(tickets) >= 90
    for tid, subject in tickets:
        assert docs[store.doc_key(store.KIND_TICKET, tid)][0] == store.stem_text(subject)
    for mid, subject, text in messages:
        assert docs[store.doc_key(store.KIND_MESSAGE, mid)] == (
            store.stem_text(subject),
            store.stem_text(text),
        )
