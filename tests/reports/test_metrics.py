"""Metrics from an imported history with known timestamps: the exact figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import BadInput
from supportdesk.reports import metrics
from tests.sla.helpers import build_history, ticket

NOW = datetime(2026, 12, 10, tzinfo=UTC)


def test_history_is_what_the_figures_assume(bdesk: Any) -> None:
    ids = build_history(bdesk)
    t2 = ticket(bdesk, ids["t2"])
    assert t2.status == "solved" and t2.csat_requested_at is not None
    # pending Mon 09:45-18:00 and Tue 09:00-11:00: 615 business minutes
    assert t2.sla_paused_seconds == 615 * 60
    assert ticket(bdesk, ids["t3"]).priority == "urgent"
    assert ticket(bdesk, ids["t1"]).csat_score == 5
    assert ticket(bdesk, ids["t1"]).status == "solved"
    assert ticket(bdesk, ids["t4"]).csat_requested_at is None  # opted out


def test_november_report(bdesk: Any) -> None:
    build_history(bdesk)
    doc = metrics.report(bdesk, date(2026, 11, 1), date(2026, 11, 30), now=NOW)
    assert doc["period"]["as_of"] == "2026-11-30T21:00:00+00:00"  # 1 Dec 00:00 in Moscow
    assert doc["tickets_created"] == 5  # t6 arrived on 1 December, Moscow time
    assert doc["tickets_solved"] == 4
    # first responses 90 (over the holiday), 30, 3, 75 (over the weekend), 60 business minutes
    assert doc["first_response_minutes"] == {"median": 60.0, "p90": 90.0, "count": 5}
    # resolutions 120, 300, 10 and 135 (t2 less 615 minutes pending)
    assert doc["resolution_minutes"] == {"median": 127.5, "p90": 300.0, "count": 4}
    # t4 (90 > 60 min), t2 (09:45 > 09:30) and t3 (urgent: 15 min) missed the first response
    assert doc["sla_breached"] == 3
    assert doc["sla_breach_rate"] == 0.6
    assert doc["csat"] == {
        "requested": 3,
        "responses": 2,
        "average": 4.5,
        "response_rate": 0.6667,
        "scores": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }
    assert doc["by_channel"] == {
        "support": {"created": 4, "solved": 3, "breached": 3, "first_response_median": 67.5},
        "telegram": {"created": 1, "solved": 1, "breached": 0, "first_response_median": 3.0},
    }
    assert doc["by_priority"] == {
        "urgent": {"created": 1, "solved": 0, "breached": 1},
        "high": {"created": 0, "solved": 0, "breached": 0},
        "normal": {"created": 4, "solved": 4, "breached": 2},
        "low": {"created": 0, "solved": 0, "breached": 0},
    }
    # the same in calendar time: 2430 (Tue 17:00 to Thu 09:30), 30, 3, 3855, 2760 minutes
    assert doc["first_response_minutes_calendar"] == {"median": 2430.0, "p90": 3855.0, "count": 5}
    # 2460, 300, 10 and 3915 (t2: 5430 less 1515 calendar minutes pending)
    assert doc["resolution_minutes_calendar"] == {"median": 1380.0, "p90": 3915.0, "count": 4}
    assert doc["first_contact_resolution"] == {"count": 4, "rate": 1.0}
    assert doc["reopened"] == {"count": 0, "rate": 0.0}
    # per agent, in business minutes: alice answered t4 (90) and t1 (30), bob t5, t2, t3
    assert doc["by_agent"] == {
        "alice": {"solved": 2, "replies": 2, "complaints": 0, "first_response_median": 60.0,
                  "resolution_median": 210.0},
        "bob": {"solved": 2, "replies": 3, "complaints": 1, "first_response_median": 60.0,
                "resolution_median": 72.5},
    }  # fmt: skip
    assert doc["top_tags"] == [
        {"tag": "billing", "count": 2},
        {"tag": "bot", "count": 1},
        {"tag": "complaint", "count": 1},
    ]
    assert doc["backlog"] == 1  # t3, 9.5 days old on 1 December
    assert doc["backlog_by_age"] == [
        {"age": "<1d", "count": 0},
        {"age": "1-3d", "count": 0},
        {"age": "3-7d", "count": 0},
        {"age": "7-30d", "count": 1},
        {"age": ">30d", "count": 0},
    ]
    days = {d["date"]: (d["created"], d["solved"]) for d in doc["volume_by_day"]}
    assert len(days) == 30
    busy = {k: v for k, v in days.items() if v != (0, 0)}
    assert busy == {
        "2026-11-03": (1, 0),
        "2026-11-05": (0, 1),
        "2026-11-16": (1, 1),
        "2026-11-18": (1, 1),
        "2026-11-20": (1, 0),
        "2026-11-21": (1, 0),
        "2026-11-24": (0, 1),
    }


def test_a_narrow_period_and_the_backlog_as_of_its_end(bdesk: Any) -> None:
    build_history(bdesk)
    doc = metrics.report(bdesk, date(2026, 11, 16), date(2026, 11, 20), now=NOW)
    assert doc["tickets_created"] == 3  # t1, t5, t2
    assert doc["tickets_solved"] == 2  # t1, t5
    assert doc["first_response_minutes"]["count"] == 2  # t2 was answered after the period
    assert doc["resolution_minutes"] == {"median": 155.0, "p90": 300.0, "count": 2}
    assert doc["csat"]["requested"] == 2 and doc["csat"]["responses"] == 2
    assert doc["backlog"] == 1  # t2, 6.5 hours old at the end of Friday
    assert doc["backlog_by_age"][0] == {"age": "<1d", "count": 1}
    assert doc["by_agent"]["bob"]["replies"] == 1  # only the Telegram reply on the 18th


def test_a_period_in_progress_counts_up_to_now(bdesk: Any) -> None:
    ids = build_history(bdesk)
    mid = datetime(2026, 11, 16, 12, tzinfo=UTC)  # Monday 15:00 in Moscow
    doc = metrics.report(bdesk, date(2026, 11, 16), date(2026, 11, 16), now=mid)
    assert doc["tickets_created"] == 1 and doc["tickets_solved"] == 1
    assert doc["csat"]["responses"] == 0  # the rating came at 16:00
    assert ids["t1"]


def test_empty_period_and_bad_dates(bdesk: Any) -> None:
    doc = metrics.report(bdesk, date(2026, 1, 1), date(2026, 1, 2), now=NOW)
    assert doc["tickets_created"] == 0
    assert doc["first_response_minutes"] == {"median": None, "p90": None, "count": 0}
    assert doc["sla_breach_rate"] is None and doc["csat"]["average"] is None
    with pytest.raises(BadInput, match="after it ends"):
        metrics.report(bdesk, date(2026, 2, 1), date(2026, 1, 1), now=NOW)
    with pytest.raises(BadInput, match="not a date"):
        metrics.parse_date("1st of May", "--since")


def test_percentile_nearest_rank() -> None:
    assert metrics.percentile([], 90) is None
    assert metrics.percentile([5.0], 90) == 5.0
    assert metrics.percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert metrics.percentile([float(i) for i in range(1, 12)], 90) == 10.0


def test_export_by_tag(bdesk: Any) -> None:
    ids = build_history(bdesk)
    rows = metrics.export_tickets(bdesk, "tag:billing")
    assert [r["id"] for r in rows] == [ids["t2"], ids["t1"]]
    assert rows[0]["tags"] == ["billing", "complaint"]
    assert rows[0]["first_message"] == "Hello, my printer is broken."
    assert rows[1]["csat"] == 5 and rows[1]["csat_comment"] == "great"
    assert rows[0]["customer_addresses"] == ["email:olga@x.test"]


def test_reopen_rate_first_contact_resolution_and_undelivered_replies(bdesk: Any) -> None:
    from supportdesk.outbound import outbox
    from supportdesk.store.models import Ticket
    from tests.factories import inbound_email, ingest
    from tests.sla.conftest import msk
    from tests.sla.helpers import desk_reply, set_status

    def mail(sender: str, day: int) -> tuple[int, str]:
        ext = f"{sender}-{day}@mail.test"
        r = ingest(bdesk, inbound_email(sender_address=f"{sender}@x.test", external_id=ext,
                                        sent_at=msk(day, 10)), historical=True)  # fmt: skip
        return r.ticket_id, ext

    a, ma = mail("a", 16)  # one reply, solved, reopened, solved again
    desk_reply(bdesk, "a@x.test", ma, msk(16, 10, 30), "alice")
    set_status(bdesk, a, "solved", msk(16, 11))
    set_status(bdesk, a, "open", msk(17, 10))
    set_status(bdesk, a, "solved", msk(17, 11))
    b, mb = mail("b", 16)  # two replies before it was solved
    desk_reply(bdesk, "b@x.test", mb, msk(16, 10, 20), "alice")
    desk_reply(bdesk, "b@x.test", mb, msk(16, 12), "alice")
    set_status(bdesk, b, "solved", msk(16, 13))
    c, _mc = mail("c", 18)  # only a reply that was never delivered
    with bdesk.db.write() as s:
        outbox.queue_outbound(s, bdesk, s.get(Ticket, c), "On it", agent="bob", at=msk(18, 10, 5))
    d, _md = mail("d", 19)  # a reply whose outbox row says sent (seeded, no delivered event)
    with bdesk.db.write() as s:
        m = outbox.queue_outbound(s, bdesk, s.get(Ticket, d), "Done", agent="alice",
                                  at=msk(19, 10, 5))  # fmt: skip
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
        ob.state, ob.sent_at = "sent", msk(19, 10, 6)
        s.add(ob)
    doc = metrics.report(bdesk, date(2026, 11, 16), date(2026, 11, 20), now=NOW)
    assert doc["tickets_solved"] == 2
    assert doc["reopened"] == {"count": 1, "rate": 0.5}
    assert doc["first_contact_resolution"] == {"count": 1, "rate": 0.5}
    # c's queued reply is not a response; d's sent one is, at its sending time (6 minutes)
    assert doc["first_response_minutes"]["count"] == 3
    assert doc["first_response_minutes_calendar"]["count"] == 3
    assert "bob" not in doc["by_agent"]


def test_every_status_change_is_in_the_backlog_history(bdesk: Any) -> None:
    """Triage, merge and undo write status events too, so the backlog follows them: a ticket
    solved by a reply and reopened by triage is in the backlog, one set pending and then closed
    by triage is not, and an undone close counts again. (Before, only replies and intake wrote
    status events, and the replay put the first two the wrong way round.)"""
    from datetime import timedelta

    from supportdesk.actions import journal
    from supportdesk.store.models import Event, utcnow
    from supportdesk.tickets import repair, triage
    from tests.factories import inbound_email, ingest
    from tests.sla.helpers import set_status

    start = utcnow() - timedelta(hours=2)

    def new(who: str) -> int:
        at = start - timedelta(days=2) if who == "b" else start  # its own age bucket
        r = ingest(bdesk, inbound_email(sender_address=f"{who}@x.test", sent_at=at))
        return int(r.ticket_id)

    reopened, closed, undone, merged_from, merged_into = (new(w) for w in "abcde")
    set_status(bdesk, reopened, "solved", start + timedelta(minutes=10))
    set_status(bdesk, closed, "pending", start - timedelta(days=1))
    set_status(bdesk, merged_into, "solved", start + timedelta(minutes=10))
    triage.reopen(bdesk, [reopened])
    triage.close(bdesk, [closed])
    triage.close(bdesk, [undone])
    journal.undo(bdesk)
    repair.merge(bdesk, [merged_from], into=merged_into, different_customers=True)  # reopens it

    with bdesk.db.read() as s:
        statuses = {
            t: [
                e.data
                for e in s.exec(
                    select(Event)
                    .where(Event.ticket_id == t, Event.kind == "status")
                    .order_by(Event.id)  # type: ignore[arg-type]
                ).all()
            ]
            for t in (reopened, closed, undone, merged_from, merged_into)
        }
    assert len(statuses[reopened]) == 2 and '"after": "open"' in statuses[reopened][1]
    assert len(statuses[closed]) == 2 and '"after": "closed"' in statuses[closed][1]
    assert statuses[undone] == [
        '{"before": "new", "after": "closed"}',
        '{"before": "closed", "after": "new"}',
    ]
    assert '"after": "closed"' in statuses[merged_from][0]
    assert '"after": "open"' in statuses[merged_into][-1]
    later = utcnow() + timedelta(minutes=1)
    day = timedelta(days=1)  # a period around now in any time zone, "as of" now
    doc = metrics.report(bdesk, (start - day).date(), (later + day).date(), now=later)
    # active: reopened, undone, merged_into; done: closed, merged_from (and merged: left out)
    assert doc["backlog"] == 3
    ages = {b["age"]: b["count"] for b in doc["backlog_by_age"]}
    assert ages["<1d"] == 3 and ages["1-3d"] == 0
