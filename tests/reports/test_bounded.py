"""The report reads only what its period touches, and its figures are the old ones, exactly.

``oracle_metrics`` is the report as it was computed before (every ticket of the history); on a
varied desk (seeded tickets without events, live history, reopens, a merge, spam, CSAT, replies
delivered days later, replies queued, in doubt or cancelled, statuses set by triage that the
status events do not show) both must give the same document for every period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from supportdesk.reports import metrics
from tests.reports import oracle_metrics
from tests.sla.helpers import build_history, desk_reply, set_status

NOW = datetime(2026, 12, 10, tzinfo=UTC)


def _varied_desk(desk: Any) -> dict[str, int]:
    from supportdesk.automation import spam
    from supportdesk.demo.build import add_synthetic
    from supportdesk.desk import audit as events
    from supportdesk.outbound import outbox
    from supportdesk.store.models import Outbox, Ticket
    from supportdesk.tickets import repair, triage
    from tests.factories import inbound_email, ingest
    from tests.sla.conftest import msk

    ids = build_history(desk)

    def mail(sender: str, day: int, month: int = 11) -> tuple[int, str]:
        ext = f"{sender}-{month}-{day}@mail.test"
        at = msk(day, 10, month=month)
        r = ingest(desk, inbound_email(sender_address=f"{sender}@x.test", external_id=ext,
                                       sent_at=at), historical=True)  # fmt: skip
        return r.ticket_id, ext

    a, ma = mail("a", 16)  # solved, reopened, solved again
    desk_reply(desk, "a@x.test", ma, msk(16, 10, 30), "alice")
    set_status(desk, a, "solved", msk(16, 11))
    set_status(desk, a, "open", msk(17, 10))
    set_status(desk, a, "solved", msk(17, 11))
    b, _mb = mail("b", 9)  # a reply written on the 9th, delivered on the 12th
    c, _mc = mail("c", 10)  # replies that never went out: queued, in doubt, cancelled
    d, _md = mail("d", 11)  # a reply whose outbox row says sent (seeded, no delivered event)
    e, _me = mail("e", 12)  # pending on the 12th, then closed by triage (no status event)
    f, _mf = mail("f", 13)  # solved by a status event, reopened by triage
    g, _mg = mail("g", 14)  # merged into f
    h, _mh = mail("h", 15)  # spam
    k, _mk = mail("k", 25, month=10)  # rated in November with an event, solved in October
    m_, _mm = mail("m", 20, month=10)  # seeded: surveyed in November, rated, no events
    n, _mn = mail("n", 28, month=10)  # a reply queued in October, sent in November (no event)
    with desk.db.write() as s:
        m = outbox.queue_outbound(s, desk, s.get(Ticket, b), "Later", agent="bob",
                                  at=msk(9, 11))  # fmt: skip
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
        ob.state, ob.sent_at = "sent", msk(12, 9)
        events.record(s, "delivered", agent="system", ticket_id=b, at=msk(12, 9),
                      outbox_id=ob.id)  # fmt: skip
        for i, state in enumerate(("queued", "in_doubt", "cancelled")):
            m = outbox.queue_outbound(s, desk, s.get(Ticket, c), f"Try {i}", agent="bob",
                                      at=msk(10, 11 + i))  # fmt: skip
            [ob] = outbox.delivery_of(s, [m.id or 0]).values()
            ob.state = state
        m = outbox.queue_outbound(s, desk, s.get(Ticket, d), "Done", agent="alice",
                                  at=msk(11, 10, 5))  # fmt: skip
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
        ob.state, ob.sent_at = "sent", msk(11, 10, 6)
        s.add(ob)
        assert s.exec(sa.select(sa.func.count()).select_from(Outbox)).one()[0] >= 5  # type: ignore[call-overload]
        tk = s.get(Ticket, k)
        assert tk is not None
        tk.status, tk.solved_at = "solved", msk(26, 12, month=10)
        tk.csat_score = 3
        events.record(s, "csat_rated", agent="system", ticket_id=k, at=msk(3, 12), score=3)
        tm = s.get(Ticket, m_)
        assert tm is not None
        tm.csat_requested_at, tm.csat_score = msk(5, 12), 4
        m = outbox.queue_outbound(s, desk, s.get(Ticket, n), "Sorry for the wait", agent="carol",
                                  at=msk(30, 10, month=10))  # fmt: skip
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
        ob.state, ob.sent_at = "sent", msk(2, 9)
    set_status(desk, e, "pending", msk(12, 11))
    set_status(desk, f, "solved", msk(13, 11))
    desk.agent = "alice"
    triage.close(desk, [e])
    triage.reopen(desk, [f])
    repair.merge(desk, [g], into=f, different_customers=True)
    spam.mark(desk, [h])
    # seeded history without events: tickets over the 90 days before NOW, some solved or closed
    # on a date, some rated with or without a survey date
    add_synthetic(desk, 240, now=NOW)
    with desk.db.write() as s:
        seeded = s.exec(sa.select(Ticket).where(Ticket.reply_to_address.like("%synthetic%"))).all()  # type: ignore[call-overload,attr-defined]
        for i, (t,) in enumerate(seeded):
            if i % 4 == 0 and t.status in ("solved", "closed"):
                t.solved_at = t.created_at + timedelta(days=i % 9)
            if i % 7 == 0 and t.status == "closed":
                t.closed_at = t.created_at + timedelta(days=i % 5, hours=3)
            if i % 5 == 0:
                t.csat_score = 1 + i % 5
                if i % 10 == 0:
                    t.csat_requested_at = t.created_at + timedelta(days=2)
            s.add(t)
    return {**ids, "a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "k": k, "n": n}


PERIODS = [
    (date(2026, 11, 1), date(2026, 11, 30)),
    (date(2026, 11, 16), date(2026, 11, 20)),
    (date(2026, 11, 12), date(2026, 11, 12)),
    (date(2026, 11, 2), date(2026, 11, 5)),
    (date(2026, 10, 1), date(2026, 10, 31)),
    (date(2026, 9, 1), date(2026, 12, 31)),  # runs past NOW: as of NOW
    (date(2026, 12, 4), date(2026, 12, 10)),
    (date(2026, 11, 11), date(2026, 12, 10)),
    (date(2025, 1, 1), date(2025, 1, 31)),  # before anything
]


def test_the_bounded_report_gives_the_old_figures(bdesk: Any) -> None:
    ids = _varied_desk(bdesk)
    for since, until in PERIODS:
        new = metrics.report(bdesk, since, until, now=NOW)
        old = oracle_metrics.report(bdesk, since, until, now=NOW)
        assert new == old, (since, until)
    # the desk is as varied as it claims: the backlog depends on replayed status events
    nov = metrics.report(bdesk, date(2026, 11, 1), date(2026, 11, 30), now=NOW)
    assert nov["tickets_solved"] > 4 and nov["csat"]["responses"] >= 3
    assert nov["by_agent"]["bob"]["replies"] >= 1 and nov["by_agent"]["carol"]["replies"] == 1
    wide = metrics.report(bdesk, date(2026, 9, 1), date(2026, 12, 31), now=NOW)
    assert wide["backlog"] > 0 and wide["tickets_created"] > 200
    assert ids["g"] != ids["f"]


def test_many_events_take_the_per_ticket_probe(bdesk: Any, monkeypatch: Any) -> None:
    """With more events than ``FACT_EVENTS_CAP``, plain tickets are told by a probe of the
    event index (``PLAIN_SQL``), not by the list of tickets with events: the same figures."""
    from supportdesk.store import report_sql

    _varied_desk(bdesk)
    monkeypatch.setattr(report_sql, "FACT_EVENTS_CAP", 0)
    probed: list[str] = []
    real = report_sql.ReportSQL.fact_tickets

    def fact_tickets(self: Any, cap: int | None = None) -> Any:
        out = real(self, cap)
        probed.append(self.plain)
        return out

    monkeypatch.setattr(report_sql.ReportSQL, "fact_tickets", fact_tickets)
    for since, until in PERIODS:
        new = metrics.report(bdesk, since, until, now=NOW)
        old = oracle_metrics.report(bdesk, since, until, now=NOW)
        assert new == old, (since, until)
    # every period with events before its end probed (the one before anything has none)
    assert probed.count(report_sql.PLAIN_SQL) == len(PERIODS) - 1


def test_a_short_period_reads_fewer_tickets(bdesk: Any) -> None:
    _varied_desk(bdesk)
    with bdesk.db.read() as s:
        week = metrics._touched(
            s, datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)
        )
        quarter = metrics._touched(
            s, datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)
        )
    assert week < quarter and len(week) * 4 < len(quarter)


def test_a_breach_event_counts_for_a_ticket_without_other_events(bdesk: Any) -> None:
    """A ticket whose only event of a fact kind is ``sla_breached`` is counted in SQL (the
    runner's SLA pass and the demo write one per missed target: most tickets of a big desk),
    and it counts as breached from that event on, even where its due times say it is on time
    (moved after the breach): the old figures, for periods before and after the event."""
    from supportdesk.desk import audit as events
    from supportdesk.reports.figures import FACT_KINDS
    from supportdesk.store.models import Event, Ticket
    from tests.factories import inbound_email, ingest
    from tests.sla.conftest import msk

    got = ingest(bdesk, inbound_email(sender_address="late@x.test", external_id="late@x",
                                      sent_at=msk(16, 10)), historical=True)  # fmt: skip
    tid = got.ticket_id
    with bdesk.db.write() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        t.first_response_due_at = t.resolution_due_at = NOW + timedelta(days=30)
        s.add(t)
        events.record(s, "sla_breached", agent="system", ticket_id=tid, at=msk(18, 10),
                      target="first_response")  # fmt: skip
    with bdesk.db.read() as s:
        kinds = s.exec(sa.select(Event.kind).where(Event.ticket_id == tid)).all()  # type: ignore[call-overload,arg-type]
    assert "sla_breached" in {k for (k,) in kinds}
    assert not {k for (k,) in kinds} & (set(FACT_KINDS) - {"sla_breached"})  # a plain ticket
    for since, until, breached in (
        (date(2026, 11, 1), date(2026, 11, 30), 1),
        (date(2026, 11, 16), date(2026, 11, 17), 0),  # before the event: on time
        (date(2026, 11, 16), date(2026, 11, 18), 1),
    ):
        new = metrics.report(bdesk, since, until, now=NOW)
        assert new == oracle_metrics.report(bdesk, since, until, now=NOW), (since, until)
        assert (new["tickets_created"], new["sla_breached"]) == (1, breached), (since, until)
