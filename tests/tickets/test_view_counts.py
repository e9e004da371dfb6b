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
