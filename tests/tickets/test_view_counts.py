"""The sidebar's counts come from one pass over the tickets and equal each view's own count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
