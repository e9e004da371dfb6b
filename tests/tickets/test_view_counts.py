"""The sidebar's counts come from one pass over the tickets and equal each view's own count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.desk.desk import BadInput
from supportdesk.store.models import Agent, Ticket, utcnow
from supportdesk.tickets import views


def _varied(desk: Any) -> None:
    from supportdesk.demo.build import add_synthetic
    from tests.sla.helpers import add_tags

    add_synthetic(desk, 180)
    now = utcnow()
    with desk.db.write() as s:
        ids = []
        for name in ("alice", "bob"):
            a = Agent(name=name)
            s.add(a)
            s.flush()
            ids.append(a.id)
        for i, (t,) in enumerate(s.exec(sa.select(Ticket).order_by(Ticket.id)).all()):  # type: ignore[call-overload,arg-type]
            if i % 3 == 0:
                t.assignee_id = ids[i % 2]
            if i % 7 == 0:  # snoozed for a day, or a snooze that has run out
                t.snoozed_until = now + timedelta(days=1 if i % 2 else -1)
            if i % 5 == 0:  # deadlines around the at-risk edge (2 h), far off, or none
                t.due_at = now + timedelta(minutes=(i % 4) * 50 - 30) if i % 10 else None
            if i % 11 == 0:
                t.spam = True
            if i % 13 == 0:
                t.kind = "telegram"  # a channel view also matches its kind
            s.add(t)
    add_tags(desk, 3, "billing")
    add_tags(desk, 4, "billing", "vip")


def test_counts_equal_each_views_own_count(desk: Any) -> None:
    _varied(desk)
    vs = views.builtin_views(desk)
    vs += [
        v
        for v in (
            views.View("channel:telegram", "telegram", "is:open channel:telegram"),
            views.View("channel:billing", "billing", "is:open channel:billing"),
        )
        if v.key not in {b.key for b in vs}
    ]
    vs += [
        views.save_view(desk, "vip billing", "tag:billing,vip -status:pending"),
        views.save_view(desk, "urgent", "priority:>=high is:assigned"),
        views.save_view(desk, "everything", ""),
        views.save_view(desk, "spam", "is:spam"),
        views.save_view(desk, "customer", "customer:user1"),
        views.View("saved:999", "broken", "is:nonsense", saved=True),
    ]
    got = views.counts(desk, vs)

    def one(v: views.View) -> int | None:
        try:
            return views.count(desk, v.query)
        except BadInput:
            return None

    expected = {v.key: one(v) for v in vs}
    assert got == expected
    assert list(got) == [v.key for v in vs]
    # the desk is varied enough for the figures to differ from view to view
    assert got["saved:999"] is None and got["open"] and got["unassigned"]
    assert 0 < got["open"] < got[next(v.key for v in vs if v.name == "everything")]
    assert got["at-risk"] and got["channel:telegram"] and got["pending"]
    assert len({n for n in got.values() if n is not None}) >= 6


def _tally_rows(desk: Any) -> dict[tuple[Any, ...], int]:
    """The tally as it stands, and as counted again from the tickets: the same when the
    triggers kept it (zero rows left behind by moves are left out)."""
    from supportdesk.store import tally

    cols = ", ".join(f'"{c}"' for c in tally.TALLY_COLUMNS)
    with desk.db.read() as s:
        kept = s.connection().exec_driver_sql(
            f"SELECT {cols}, sum(n) FROM ticket_tally GROUP BY {cols} HAVING sum(n) <> 0"
        )
        got = {tuple(r[:-1]): int(r[-1]) for r in kept}
        fresh = s.connection().exec_driver_sql(
            f"SELECT {cols}, count(*) FROM ticket WHERE snoozed_until IS NULL GROUP BY {cols}"
        )
        want = {tuple(r[:-1]): int(r[-1]) for r in fresh}
    assert got == want
    return got


def test_tally_follows_every_change(desk: Any) -> None:
    """Inserts, triage, snoozes (set, run out, woken), merges, bulk updates and deletes: the
    triggers keep the tally equal to a count of the tickets, and every view's count equal to
    its own COUNT."""
    from supportdesk.tickets import repair, snooze, triage

    _varied(desk)
    rows = _tally_rows(desk)
    assert len(rows) > 10 and sum(rows.values()) > 100
    with desk.db.read() as s:
        ids = [int(i) for (i,) in s.execute(sa.select(Ticket.id).order_by(Ticket.id)).all()]  # type: ignore[call-overload]
        open_ids = [
            int(i)
            for (i,) in s.execute(
                sa.select(Ticket.id)  # type: ignore[call-overload]
                .where(Ticket.status.in_(["new", "open"]), Ticket.snoozed_until.is_(None))  # type: ignore[attr-defined,union-attr]
                .order_by(Ticket.id)
            ).all()
        ]
    triage.assign(desk, ids[:9], "me")
    triage.assign(desk, ids[3:6], "none")
    snooze.snooze(desk, open_ids[:20], utcnow() + timedelta(hours=3))
    snooze.snooze(desk, open_ids[:5], None)  # woken
    repair.merge(desk, ids[50:53], ids[49], different_customers=True)
    with desk.db.write() as s:  # one statement over many rows, and deletes
        s.execute(sa.update(Ticket).where(Ticket.id.in_(ids[60:90])).values(status="pending"))  # type: ignore[attr-defined]
        s.execute(
            sa.update(Ticket)
            .where(Ticket.id.in_(ids[90:95]))
            .values(priority="urgent", priority_rank=3)
        )  # type: ignore[attr-defined]
        s.execute(
            sa.update(Ticket)
            .where(Ticket.id.in_(ids[95:99]))
            .values(channel="billing", kind="telegram")
        )  # type: ignore[attr-defined]
        s.execute(sa.update(Ticket).where(Ticket.id.in_(ids[100:104])).values(updated_at=utcnow()))  # type: ignore[attr-defined]
        cid = s.execute(sa.select(Ticket.customer_id).limit(1)).scalar()  # type: ignore[call-overload]
        fresh = [
            Ticket(customer_id=cid, status="open", channel="support"),
            Ticket(customer_id=cid, status="new", snoozed_until=utcnow() + timedelta(days=2)),
            Ticket(customer_id=cid, status="pending", channel="telegram", kind="telegram"),
        ]
        s.add_all(fresh)
        s.flush()
        s.execute(sa.delete(Ticket).where(Ticket.id.in_([t.id for t in fresh[:2]])))  # type: ignore[attr-defined]
    _tally_rows(desk)
    vs = views.builtin_views(desk) + [
        views.save_view(desk, "urgent billing", "priority:urgent channel:billing"),
        views.save_view(desk, "low or normal", "priority:<=normal -is:assigned"),
        views.save_view(desk, "not pending", "-status:pending is:open"),
        views.save_view(desk, "snoozed", "is:snoozed"),
    ]
    got = views.counts(desk, vs)
    assert got == {v.key: views.count(desk, v.query) for v in vs}
    assert got == {v.key: views.total(desk, v.query) for v in vs}  # the queue's total
    assert got[vs[-1].key] >= 15 and got["mine"]


def test_builtin_views_but_at_risk_are_counted_on_the_tally(desk: Any) -> None:
    from supportdesk.search.query import apply_query
    from supportdesk.store import tally

    tallied = []
    with desk.db.read() as s:
        for v in views.builtin_views(desk):
            clause = apply_query(sa.select(Ticket.id), v.query, desk=desk, session=s).whereclause  # type: ignore[call-overload]
            try:
                tally.on_tally(clause)
                tallied.append(v.key)
            except tally.NotTallied:
                pass
    assert set(tallied) == {v.key for v in views.builtin_views(desk)} - {"at-risk"}


# -- a bulk insert on SQLite keeps the tally once per batch (store/tally.tally_in_bulk) --------


def _bulk_rows(desk: Any, first_id: int, n: int) -> list[Any]:
    """``n`` new tickets (ids from ``first_id``) of every status, priority, channel, kind,
    assignee (none, alice, bob), group and spam flag, some snoozed (left out of the tally)."""
    from itertools import product

    from supportdesk.core.terms import PRIORITIES, PRIORITY_RANK, STATUSES
    from supportdesk.store.bulk import Row

    with desk.db.read() as s:
        cid = s.execute(sa.select(Ticket.customer_id).limit(1)).scalar()  # type: ignore[call-overload]
        agents = [None, *s.execute(sa.select(Agent.id).order_by(Agent.id)).scalars()]  # type: ignore[call-overload]
    kinds = [("support", "email"), ("billing", "email"), ("telegram", "telegram"), ("", "phone")]
    combos = list(product(STATUSES, PRIORITIES, kinds, agents))
    now = utcnow()
    rows = []
    for i in range(n):
        status, prio, (channel, kind), assignee = combos[(i * 7) % len(combos)]
        rows.append(
            Row(
                Ticket,
                id=first_id + i,
                subject=f"bulk {i}",
                status=status,
                priority=prio,
                priority_rank=PRIORITY_RANK[prio],
                channel=channel,
                kind=kind,
                customer_id=cid,
                assignee_id=assignee,
                group=("tier2" if i % 4 == 0 else None),
                spam=(i % 9 == 0),
                snoozed_until=(now + timedelta(hours=1) if i % 10 == 3 else None),
            )
        )
    assert len({(r.status, r.priority, r.channel, r.assignee_id) for r in rows}) > 100
    return rows


def _whole_tally(conn: Any) -> list[tuple[Any, ...]]:
    """Every row of the tally, its id included."""
    return list(conn.exec_driver_sql("SELECT * FROM ticket_tally ORDER BY id").all())


def _insert_trigger(conn: Any) -> str | None:
    return conn.exec_driver_sql(  # type: ignore[no-any-return]
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'ticket_tally_insert'"
    ).scalar()


@pytest.mark.sqlite_only
def test_bulk_insert_makes_the_tally_the_row_trigger_makes(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same new tickets written through the row trigger and through tally_in_bulk, from the
    same desk: the tally is the same, row for row (ids, keys and counts), the trigger is back as
    it was, and every view counts as before."""
    from supportdesk.store import bulk, tally

    _varied(desk)
    with desk.db.read() as s:
        first = int(s.execute(sa.select(sa.func.max(Ticket.id))).scalar()) + 1  # type: ignore[arg-type]
        trigger = _insert_trigger(s.connection())
    assert trigger is not None
    rows = _bulk_rows(desk, first, 400)
    traced: list[str] = []

    def write(bulk_min: int) -> list[tuple[Any, ...]]:
        monkeypatch.setattr(tally, "BULK_MIN", bulk_min)
        traced.clear()
        with desk.db.write() as s:
            conn = s.connection()
            raw = conn.connection.driver_connection
            raw.set_trace_callback(traced.append)
            try:
                bulk.write_rows(conn, Ticket, rows)
            finally:
                raw.set_trace_callback(None)
            got = _whole_tally(conn)
            assert _insert_trigger(conn) == trigger
            s.rollback()
        return got

    per_row = write(10**9)
    assert not any("DROP TRIGGER" in t for t in traced)
    in_bulk = write(100)
    assert any(t.startswith("DROP TRIGGER ticket_tally_insert") for t in traced)
    assert in_bulk == per_row
    with desk.db.read() as s:  # both rolled back: nothing of them left
        assert s.execute(sa.select(sa.func.count()).where(Ticket.id >= first)).scalar() == 0  # type: ignore[arg-type]
    before = views.counts(desk, views.builtin_views(desk))
    with desk.db.write() as s:  # and kept: the counts follow
        bulk.write_rows(s.connection(), Ticket, rows)
    rows_now = _tally_rows(desk)
    assert sum(rows_now.values()) > 400
    vs = views.builtin_views(desk) + [
        views.save_view(desk, "spam", "is:spam"),
        views.save_view(desk, "urgent billing", "priority:urgent channel:billing"),
        views.save_view(desk, "tier2 closed", "status:closed group:tier2"),
        views.save_view(desk, "snoozed", "is:snoozed"),
    ]
    got = views.counts(desk, vs)
    assert got == {v.key: views.count(desk, v.query) for v in vs}
    assert got != {**before, **{k: got[k] for k in got if k not in before}}  # the rows counted
    with desk.db.read() as s:
        assert _insert_trigger(s.connection()) == trigger


@pytest.mark.sqlite_only
@pytest.mark.parametrize("where", ["insert", "tally"])
def test_bulk_insert_failing_midway_leaves_trigger_and_tally(
    desk: Any, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A failure in the middle of the batch (a bad row after 150 good ones, or in the tally's
    own statements) rolls the batch back to before it: the trigger there, the tally as it
    was, no ticket of the batch; the transaction goes on with the row trigger working."""
    import sqlite3

    from supportdesk.store import bulk, tally

    _varied(desk)
    with desk.db.read() as s:
        first = int(s.execute(sa.select(sa.func.max(Ticket.id))).scalar()) + 1  # type: ignore[arg-type]
        trigger = _insert_trigger(s.connection())
        tally_before = _whole_tally(s.connection())
    rows = _bulk_rows(desk, first, 300)
    if where == "insert":
        rows[150].customer_id = 10**9  # no such customer: the foreign key refuses row 151
    else:
        monkeypatch.setattr(tally, "_BULK_NEW", "INSERT INTO ticket_tally (no_such) VALUES (?)")
    with desk.db.write() as s:
        conn = s.connection()
        with pytest.raises(sqlite3.Error):
            bulk.write_rows(conn, Ticket, rows)
        assert conn.connection.driver_connection.in_transaction
        assert _insert_trigger(conn) == trigger
        assert _whole_tally(conn) == tally_before
        assert (
            conn.exec_driver_sql(f"SELECT count(*) FROM ticket WHERE id >= {first}").scalar() == 0
        )
        one = rows[0]  # the same transaction goes on: one ticket, counted by the trigger
        bulk.write_rows(conn, Ticket, [one])
    rows_now = _tally_rows(desk)
    key = tuple(getattr(one, c) for c in tally.TALLY_COLUMNS)
    assert rows_now[key] == _by_key(tally_before).get(key, 0) + 1


def _by_key(rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
    """Whole tally rows (id, keys..., n) as key -> count."""
    out: dict[tuple[Any, ...], int] = {}
    for r in rows:
        out[tuple(r[1:-1])] = out.get(tuple(r[1:-1]), 0) + int(r[-1])
    return out


@pytest.mark.sqlite_only
def test_other_connections_never_see_the_trigger_missing(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the batch is inserted (the trigger dropped in the writer's transaction), another
    connection still reads the trigger; outside a transaction the trigger is never dropped."""
    import sqlite3

    from supportdesk.store import bulk, tally

    _varied(desk)
    db_path = desk.db.write_engine.url.database
    with desk.db.read() as s:
        first = int(s.execute(sa.select(sa.func.max(Ticket.id))).scalar()) + 1  # type: ignore[arg-type]
        trigger = _insert_trigger(s.connection())
    rows = _bulk_rows(desk, first, 200)
    seen: list[str | None] = []

    def trigger_elsewhere() -> str | None:
        other = sqlite3.connect(db_path)
        try:
            got = other.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'ticket_tally_insert'"
            ).fetchone()
            return got[0] if got else None
        finally:
            other.close()

    with desk.db.write() as s:
        conn = s.connection()

        def insert() -> None:
            assert _insert_trigger(conn) is None  # dropped, for this transaction only
            seen.append(trigger_elsewhere())
            monkeypatch.setattr(tally, "BULK_MIN", 10**9)  # the plain executemany
            bulk.write_rows(conn, Ticket, rows)

        tally.tally_in_bulk(conn.connection.driver_connection, insert, first, first + 199)
        assert _insert_trigger(conn) == trigger
    assert seen == [trigger]
    _tally_rows(desk)  # the batch counted once, by the GROUP BY

    autocommit = sqlite3.connect(db_path, isolation_level=None)
    try:
        kept: list[str | None] = []
        look = "SELECT sql FROM sqlite_master WHERE name = 'ticket_tally_insert'"
        tally.tally_in_bulk(
            autocommit, lambda: kept.append(autocommit.execute(look).fetchone()[0]), 1, 2
        )
        assert kept == [trigger] and not autocommit.in_transaction
    finally:
        autocommit.close()
