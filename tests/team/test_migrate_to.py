"""`supportdesk migrate-to URL`: a SQLite desk copied into PostgreSQL with nothing lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from supportdesk.desk.desk import Conflict, open_desk
from supportdesk.people import customers, presence
from supportdesk.replies import kb
from supportdesk.store.models import Customer, Message, Ticket
from supportdesk.team.move import migrate_to, tables
from supportdesk.tickets import live, replying, triage
from tests.factories import Attachment, inbound_email, inbound_telegram, ingest


def _fill(desk: Any) -> dict[str, int]:
    """A desk with something in most tables, including awkward values."""
    t1 = ingest(
        desk,
        inbound_email(
            subject="Принтер не печатает",
            text="Добрый день! Принтер в бухгалтерии\x00 не печатает.",
            attachments=[Attachment("скан.pdf", "application/pdf", b"%PDF-1.4 x", 10)],
        ),
    ).ticket_id
    t2 = ingest(desk, inbound_telegram(chat_id=5005, text="Бот молчит")).ticket_id
    ingest(desk, inbound_email(sender_address="anna@example.com", sender_name="Anna", subject="Hi"))
    triage.assign(desk, [t1], "me")
    triage.tag(desk, [t1, t2], add=["billing", "vip"])
    triage.set_fields(desk, [t2], priority="urgent")
    replying.reply(desk, t1, text="Перезагрузите принтер, пожалуйста.")
    replying.reply(desk, t2, text="Внутренняя заметка", note=True)
    # customer 1 merged into customer 3: a self-reference pointing at a higher id
    customers.merge(desk, "ivan@example.ru", "anna@example.com")
    kb.add_article(desk, title="Как перезагрузить принтер", body="Выключите и включите.")
    with desk.db.write() as s:
        live.notify(s, "refresh", t1)
    presence.heartbeat(desk, t1, "viewing")
    return {"t1": t1 or 0, "t2": t2 or 0}


def _dump(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with db.read_engine.connect() as conn:
        for table in tables():
            pk = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*pk))]
    return out


def test_every_row_is_copied_with_its_ids(desk: Any, pg_empty_url: str, home: Path) -> None:
    from supportdesk.search.search import search

    ids = _fill(desk)
    before = _dump(desk.db)
    words = ("принтера", "бот", "перезагрузить", "anna")
    with desk.db.read() as s:
        found = {w: [(h["kind"], h["id"]) for h in search(s, desk, w)] for w in words}
    assert all(found.values())
    report = migrate_to(desk, pg_empty_url)
    assert all(t.ok for t in report.tables)
    assert report.nul_characters_replaced == 1
    assert report.search_documents > 0
    pg = open_desk(home, agent="alice", db_url=pg_empty_url)
    try:
        assert pg.db.dialect == "postgresql"
        after = _dump(pg.db)
        assert set(after) == set(before)
        for name, rows in before.items():
            if name == "message":  # the NUL character became U+FFFD, nothing else changed
                rows = [
                    tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in r)
                    for r in rows
                ]
            assert after[name] == rows, name
        assert sum(len(r) for r in before.values()) == report.rows
        with pg.db.read() as s:
            merged = s.exec(select(Customer).where(Customer.merged_into_id.is_not(None))).all()  # type: ignore[union-attr]
            assert len(merged) == 1
        # the sequences moved past the copied ids: new rows get new ids
        new = ingest(pg, inbound_email(sender_address="new@example.org", subject="После"))
        with pg.db.read() as s:
            assert new.ticket_id == max(t.id or 0 for t in s.exec(select(Ticket)).all())
            assert new.ticket_id > ids["t2"]
            assert new.message_id == max(m.id or 0 for m in s.exec(select(Message)).all())
        # the rebuilt PostgreSQL index finds what the SQLite one found
        with pg.db.read() as s:
            assert {w: [(h["kind"], h["id"]) for h in search(s, pg, w)] for w in words} == found
        # and the desk works as before: triage on the copied tickets
        triage.tag(pg, [ids["t1"]], add=["moved"])
        with pg.db.read() as s:
            assert s.get(Ticket, ids["t1"]) is not None
    finally:
        pg.close()


def test_a_database_that_holds_data_is_refused(desk: Any, pg_url: str, home: Path) -> None:
    _fill(desk)
    other = open_desk(home, db_url=pg_url)
    try:
        ingest(other, inbound_email(subject="already here"))
    finally:
        other.close()
    try:
        migrate_to(desk, pg_url)
    except Conflict as exc:
        assert "already holds data" in str(exc)
    else:
        raise AssertionError("a non-empty target was accepted")


def test_cli_migrate_to_then_use_it_with_db(cli: Any, desk: Any, pg_empty_url: str) -> None:
    _fill(desk)
    before = json.loads(cli("tickets", "list", "--json").output)
    r = cli("migrate-to", pg_empty_url.replace("postgresql+psycopg", "postgresql"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert {t["table"]: t["copied_rows"] for t in doc["tables"]}["ticket"] == 3
    after = json.loads(cli("--db", pg_empty_url, "tickets", "list", "--json").output)
    assert after == before
    shown = json.loads(
        cli("--db", pg_empty_url, "tickets", "show", str(before[0]["id"]), "--json").output
    )
    assert shown["id"] == before[0]["id"]


def test_cli_migrate_to_refuses_bad_targets(cli: Any, desk: Any) -> None:
    r = cli("migrate-to", "sqlite:///tmp/x.db")
    assert r.exit_code == 2
    assert "PostgreSQL URL" in r.stderr
    r = cli("migrate-to", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert r.exit_code == 7
    assert "cannot be opened" in r.stderr
    assert "Traceback" not in r.output + r.stderr
