"""The report as it was computed before issue 21 (every ticket of the history, then filter):
kept only as the oracle that tests/reports/test_bounded.py compares the bounded report to.

Long because: it is a verbatim copy of the old ``reports.metrics`` computation.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.desk.desk import BadInput, Desk
from supportdesk.replies.nps import summary as nps_summary
from supportdesk.sla.hours import BusinessHours
from supportdesk.store.models import (
    PRIORITIES,
    Agent,
    Event,
    Outbox,
    Tag,
    Ticket,
    TicketTag,
    utcnow,
)

DONE = ("solved", "closed")
WAITING = ("pending", "solved")
COMPLAINT_TAG = "complaint"
UNASSIGNED = "(unassigned)"
AGE_BUCKETS: list[tuple[str, timedelta | None]] = [
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    ("7-30d", timedelta(days=30)),
    (">30d", None),
]
MAX_DAYS = 3660
ALWAYS = BusinessHours(tz=ZoneInfo("UTC"))  # calendar time: open around the clock
EVENT_KINDS = ("reply", "delivered", "status", "csat_requested", "csat_rated", "sla_breached")


def parse_date(text: str, option: str = "date") -> date:
    """``2026-11-01`` -> date; BadInput with one sentence otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{option} {text!r} is not a date such as 2026-11-01") from None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _median_minutes(seconds: list[float]) -> float | None:
    return round(statistics.median(seconds) / 60, 1) if seconds else None


def _summary(seconds: list[float]) -> dict[str, Any]:
    minutes = [s / 60 for s in seconds]
    med = statistics.median(minutes) if minutes else None
    p90 = percentile(minutes, 90)
    return {
        "median": round(med, 1) if med is not None else None,
        "p90": round(p90, 1) if p90 is not None else None,
        "count": len(minutes),
    }


@dataclass
class _Status:
    at: datetime
    seq: int
    before: str
    after: str
    agent: str


@dataclass
class _TicketFacts:
    id: int
    created_at: datetime
    channel: str
    priority: str
    status: str
    assignee: str | None
    fr_due: datetime | None
    res_due: datetime | None
    solved_at: datetime | None
    csat_score: int | None
    csat_requested_at: datetime | None
    replies: list[datetime] = field(default_factory=list)
    reply_agents: list[tuple[datetime, str]] = field(default_factory=list)
    statuses: list[_Status] = field(default_factory=list)
    breach_events: list[datetime] = field(default_factory=list)
    rated: list[tuple[datetime, int, int]] = field(default_factory=list)  # (at, seq, score)

    def solves(self) -> list[_Status]:
        """Changes into solved/closed from an active status, oldest first."""
        out = [s for s in self.statuses if s.after in DONE and s.before not in DONE]
        if not out and self.status in DONE:
            at = self.solved_at or (self.statuses[-1].at if self.statuses else self.created_at)
            out = [_Status(at, 0, "open", self.status, self.assignee or "")]
        return out

    def status_at(self, moment: datetime) -> str:
        if not self.statuses and self.status in DONE:
            solves = self.solves()
            return self.status if solves and solves[0].at <= moment else "open"
        cur = "new"
        for s in self.statuses:
            if s.at > moment:
                break
            cur = s.after
        return cur

    def first_reply(self) -> datetime | None:
        ok = [r for r in self.replies if r >= self.created_at]
        return min(ok) if ok else None

    def waiting_time(self, hours: BusinessHours, until: datetime) -> timedelta:
        """Business time spent pending (or solved, then reopened) before ``until``."""
        total = timedelta(0)
        cur, since = "new", None
        for s in self.statuses:
            if s.at >= until:
                break
            if s.after in WAITING and cur not in WAITING:
                since = s.at
            elif s.after not in WAITING and cur in WAITING and since is not None:
                total += hours.between(since, s.at)
                since = None
            cur = s.after
        return total

    def pause_start(self, moment: datetime) -> datetime | None:
        """When the current wait on the customer (as of ``moment``) began."""
        start, cur = None, "new"
        for s in self.statuses:
            if s.at > moment:
                break
            if s.after in WAITING and cur not in WAITING:
                start = s.at
            elif s.after not in WAITING:
                start = None
            cur = s.after
        return start


def period_bounds(
    desk: Desk, since: date | None, until: date | None, now: datetime, days: int = 30
) -> tuple[date, date, datetime, datetime]:
    """(since, until, start instant, end instant) of a report period in the desk's zone.

    ``until`` defaults to today and ``since`` to ``days`` days up to ``until``.
    """
    tz = BusinessHours.from_config(desk.config).tz
    until = until or now.astimezone(tz).date()
    since = since or until - timedelta(days=max(days, 1) - 1)
    if since > until:
        raise BadInput(f"the period starts ({since}) after it ends ({until})", field="since")
    if (until - since).days > MAX_DAYS:
        raise BadInput("a report covers at most ten years; choose a shorter period")
    start = datetime.combine(since, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return since, until, start, end


def _load(session: Session, end: datetime) -> dict[int, _TicketFacts]:
    agents = {a.id: a.name for a in session.exec(select(Agent)).all()}
    ticket_cols: list[Any] = [
        Ticket.id, Ticket.created_at, Ticket.channel, Ticket.priority, Ticket.status,
        Ticket.assignee_id, Ticket.first_response_due_at, Ticket.resolution_due_at,
        Ticket.solved_at, Ticket.closed_at, Ticket.csat_score, Ticket.csat_requested_at,
        Ticket.first_response_at, Ticket.spam, Ticket.reply_to_address,
    ]  # fmt: skip
    rows = session.execute(sa.select(*ticket_cols).where(col(Ticket.created_at) < end)).all()
    facts: dict[int, _TicketFacts] = {}
    fallback_reply: dict[int, datetime] = {}
    for r in rows:
        (tid, created, channel, prio, status, assignee_id, fr_due, res_due, solved_at,
         closed_at, score, requested, first_resp, spam, reply_to) = r  # fmt: skip
        if tid is None or spam or (reply_to or "").startswith("merged:"):
            continue
        facts[tid] = _TicketFacts(
            id=tid, created_at=created, channel=channel, priority=prio, status=status,
            assignee=agents.get(assignee_id) if assignee_id else None, fr_due=fr_due,
            res_due=res_due, solved_at=solved_at or closed_at, csat_score=score,
            csat_requested_at=requested,
        )  # fmt: skip
        if first_resp is not None:
            fallback_reply[tid] = first_resp
    event_cols: list[Any] = [
        Event.id, Event.ticket_id, Event.kind, Event.agent, Event.data, Event.created_at,
    ]  # fmt: skip
    evs = session.execute(
        sa.select(*event_cols)
        .where(col(Event.kind).in_(EVENT_KINDS), col(Event.created_at) < end)
        .order_by(col(Event.created_at), col(Event.id))
    ).all()
    has_reply: set[int] = set()
    delivered: dict[int, datetime] = {}  # outbox id -> when the channel accepted it
    queued: list[tuple[_TicketFacts, datetime, str, Any]] = []
    for eid, tid, kind, agent, data, at in evs:
        t = facts.get(tid or -1)
        if t is None:
            continue
        try:
            d = json.loads(data or "{}")
        except ValueError:
            d = {}
        if not isinstance(d, dict):
            d = {}
        if kind == "reply":
            queued.append((t, at, agent, d.get("outbox_id")))
            continue
        if kind == "delivered":
            if isinstance(d.get("outbox_id"), int):
                delivered.setdefault(d["outbox_id"], at)
            continue
        if kind == "status":
            before, after = str(d.get("before") or ""), str(d.get("after") or "")
            if after:
                t.statuses.append(_Status(at, eid or 0, before, after, agent))
        elif kind == "sla_breached":
            t.breach_events.append(at)
        elif kind == "csat_rated":
            try:
                t.rated.append((at, eid or 0, int(d.get("score") or 0)))
            except (TypeError, ValueError):
                continue
    # a reply counts when it was delivered, at that time (its delivered event, else the outbox
    # row's sent_at); one with no outbox row (seeded history) counts as is
    wanted = sorted({o for _t, _a, _g, o in queued if isinstance(o, int) and o not in delivered})
    for i in range(0, len(wanted), 500):
        ob_cols: list[Any] = [Outbox.id, Outbox.state, Outbox.sent_at]
        for oid, state, sent_at in session.execute(
            sa.select(*ob_cols).where(col(Outbox.id).in_(wanted[i : i + 500]))
        ).all():
            if state == "sent" and sent_at is not None and sent_at < end:
                delivered[oid] = sent_at
    for t, at, agent, outbox_id in queued:
        if outbox_id is not None:
            if not isinstance(outbox_id, int) or outbox_id not in delivered:
                continue
            at = delivered[outbox_id]
        t.replies.append(at)
        t.reply_agents.append((at, agent))
        has_reply.add(t.id)
    for tid, at in fallback_reply.items():
        if tid not in has_reply and tid in facts:
            facts[tid].replies.append(at)
    return facts


def compute(
    session: Session,
    desk: Desk,
    since: date | None = None,
    until: date | None = None,
    *,
    now: datetime | None = None,
    days: int = 30,
    top_tags: int = 10,
) -> dict[str, Any]:
    """Every figure of the report as one JSON-ready dictionary (see the module docstring)."""
    now = now or utcnow()
    since, until, start, end = period_bounds(desk, since, until, now, days)
    as_of = min(now, end)
    hours = BusinessHours.from_config(desk.config)
    per_channel: dict[str, BusinessHours] = {}

    def hours_of(channel: str) -> BusinessHours:
        if channel not in per_channel:
            per_channel[channel] = BusinessHours.from_config(desk.config, channel)
        return per_channel[channel]

    facts = _load(session, end)

    def in_period(at: datetime | None) -> bool:
        return at is not None and start <= at < end and at <= as_of

    created = [t for t in facts.values() if in_period(t.created_at)]
    created_ids = {t.id for t in created}

    # solved in the period: the last solve of each ticket inside the period
    solved: dict[int, _Status] = {}
    for t in facts.values():
        for s in t.solves():
            if in_period(s.at):
                solved[t.id] = s

    first_resp: list[float] = []
    first_resp_cal: list[float] = []
    fr_by_channel: dict[str, list[float]] = defaultdict(list)
    fr_by_agent: dict[str, list[float]] = defaultdict(list)
    breached: set[int] = set()
    for t in created:
        reply = t.first_reply()
        if reply is not None and reply <= as_of:
            secs = hours_of(t.channel).between(t.created_at, reply).total_seconds()
            first_resp.append(secs)
            first_resp_cal.append((reply - t.created_at).total_seconds())
            fr_by_channel[t.channel].append(secs)
            who = next((a for at, a in sorted(t.reply_agents) if at == reply), None)
            fr_by_agent[who or t.assignee or UNASSIGNED].append(secs)
        if _breached(t, as_of):
            breached.add(t.id)

    resolution: list[float] = []
    resolution_cal: list[float] = []
    res_by_agent: dict[str, list[float]] = defaultdict(list)
    one_touch = 0
    reopened = 0
    for tid, s in solved.items():
        t = facts[tid]
        h = hours_of(t.channel)
        busy = max(h.between(t.created_at, s.at) - t.waiting_time(h, s.at), timedelta(0))
        resolution.append(busy.total_seconds())
        calendar = (s.at - t.created_at) - t.waiting_time(ALWAYS, s.at)
        resolution_cal.append(max(calendar, timedelta(0)).total_seconds())
        res_by_agent[s.agent or t.assignee or UNASSIGNED].append(busy.total_seconds())
        if sum(1 for r in t.replies if t.created_at <= r <= s.at) == 1:
            one_touch += 1  # solved with one agent reply
        first_solve = t.solves()[0].at
        if any(
            st.before in DONE and st.after not in DONE and first_solve < st.at <= as_of
            for st in t.statuses
        ):
            reopened += 1

    # CSAT
    requested = [
        t for t in facts.values() if in_period(t.csat_requested_at)
    ]  # one survey per ticket: its time is on the ticket and in the csat_requested event
    latest: dict[int, tuple[datetime, int]] = {}
    for t in facts.values():
        ratings = sorted((r for r in t.rated if r[0] <= as_of), key=lambda r: (r[0], r[1]))
        if ratings:
            latest[t.id] = (ratings[-1][0], ratings[-1][2])
        elif t.csat_score is not None and not t.rated:  # seeded without events
            at = t.csat_requested_at or t.solved_at or t.created_at
            if at <= as_of:
                latest[t.id] = (at, t.csat_score)
    responses = [score for tid, (at, score) in latest.items() if in_period(at)]
    rated_requested = sum(1 for t in requested if t.id in latest)
    csat = {
        "requested": len(requested),
        "responses": len(responses),
        "average": round(statistics.fmean(responses), 2) if responses else None,
        "response_rate": round(rated_requested / len(requested), 4) if requested else None,
        "scores": {str(n): responses.count(n) for n in range(1, 6)},
    }

    # NPS: the latest score per customer given in the period
    nps_rated: list[tuple[datetime, int, int]] = []
    nps_requested = 0
    nps_cols: list[Any] = [Event.kind, Event.customer_id, Event.data, Event.created_at]
    for kind, cid, data, at in session.execute(
        sa.select(*nps_cols).where(
            col(Event.kind).in_(("nps_requested", "nps_rated")),
            col(Event.created_at) >= start,
            col(Event.created_at) < end,
        )
    ).all():
        if not in_period(at):
            continue
        if kind == "nps_requested":
            nps_requested += 1
            continue
        try:
            score = int(json.loads(data or "{}").get("score"))
        except (ValueError, TypeError, AttributeError):
            continue
        if 0 <= score <= 10 and cid is not None:
            nps_rated.append((at, cid, score))
    nps = {"requested": nps_requested, **nps_summary(nps_rated)}

    # by channel, priority, agent
    channels = [c.name for c in desk.config.channel]
    for t in created:
        if t.channel not in channels:
            channels.append(t.channel)
    for tid in solved:
        if facts[tid].channel not in channels:
            channels.append(facts[tid].channel)
    by_channel: dict[str, dict[str, Any]] = {}
    for name in channels:
        fr = fr_by_channel.get(name, [])
        by_channel[name] = {
            "created": sum(1 for t in created if t.channel == name),
            "solved": sum(1 for tid in solved if facts[tid].channel == name),
            "breached": sum(1 for t in created if t.channel == name and t.id in breached),
            "first_response_median": round(statistics.median(fr) / 60, 1) if fr else None,
        }
    by_priority = {
        p: {
            "created": sum(1 for t in created if t.priority == p),
            "solved": sum(1 for tid in solved if facts[tid].priority == p),
            "breached": sum(1 for t in created if t.priority == p and t.id in breached),
        }
        for p in reversed(PRIORITIES)
    }
    tags = _tags(session, sorted(created_ids))
    agents: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"solved": 0, "replies": 0, "complaints": 0}
    )
    for t in created:
        if COMPLAINT_TAG in tags.get(t.id, []):
            agents[t.assignee or UNASSIGNED]["complaints"] += 1
    for t in facts.values():
        for at, agent in t.reply_agents:
            if in_period(at):
                agents[agent]["replies"] += 1
    for tid, s in solved.items():
        agents[s.agent or facts[tid].assignee or UNASSIGNED]["solved"] += 1
    for name in set(fr_by_agent) | set(res_by_agent):
        agents[name]  # noqa: B018 - every agent with a figure gets a row
    for name in agents:
        fr_a, res_a = fr_by_agent.get(name, []), res_by_agent.get(name, [])
        agents[name]["first_response_median"] = _median_minutes(fr_a)
        agents[name]["resolution_median"] = _median_minutes(res_a)
    by_agent = {name: agents[name] for name in sorted(agents)}

    tag_counts = Counter(tag for tid in created_ids for tag in tags.get(tid, []))
    top = sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_tags]

    # backlog as of the end of the period
    buckets = {label: 0 for label, _ in AGE_BUCKETS}
    backlog = 0
    for t in facts.values():
        if t.created_at > as_of or t.status_at(as_of) in DONE:
            continue
        backlog += 1
        age = as_of - t.created_at
        for label, limit in AGE_BUCKETS:
            if limit is None or age < limit:
                buckets[label] += 1
                break

    # volume per day in the desk's zone
    created_by_day = Counter(hours.local_date(t.created_at) for t in created)
    solved_by_day = Counter(hours.local_date(s.at) for s in solved.values())
    per_day: list[dict[str, Any]] = []
    d = since
    while d <= until:
        per_day.append(
            {"date": d.isoformat(), "created": created_by_day[d], "solved": solved_by_day[d]}
        )
        d += timedelta(days=1)

    return {
        "period": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "timezone": desk.config.desk.timezone,
            "as_of": as_of.isoformat(),
            "business_hours": not hours.always_open,
        },
        "tickets_created": len(created),
        "tickets_solved": len(solved),
        "first_response_minutes": _summary(first_resp),
        "first_response_minutes_calendar": _summary(first_resp_cal),
        "resolution_minutes": _summary(resolution),
        "resolution_minutes_calendar": _summary(resolution_cal),
        "first_contact_resolution": {
            "count": one_touch,
            "rate": round(one_touch / len(solved), 4) if solved else None,
        },
        "reopened": {
            "count": reopened,
            "rate": round(reopened / len(solved), 4) if solved else None,
        },
        "sla_breached": len(breached),
        "sla_breach_rate": round(len(breached) / len(created), 4) if created else None,
        "csat": csat,
        "nps": nps,
        "by_channel": by_channel,
        "by_agent": by_agent,
        "by_priority": by_priority,
        "top_tags": [{"tag": name, "count": n} for name, n in top],
        "backlog": backlog,
        "backlog_by_age": [{"age": label, "count": n} for label, n in buckets.items()],
        "volume_by_day": per_day,
    }


def _breached(t: _TicketFacts, as_of: datetime) -> bool:
    if any(at <= as_of for at in t.breach_events):
        return True
    solves = [s for s in t.solves() if s.at <= as_of]
    state = t.status_at(as_of)
    if t.fr_due is not None:
        reply = t.first_reply()
        if reply is not None and reply <= as_of:
            fr_end = reply
        elif solves:
            fr_end = solves[0].at
        else:
            fr_end = as_of
        if fr_end > t.fr_due:
            return True
    if t.res_due is not None:
        if state in DONE and solves:
            res_end = solves[-1].at
        elif state == "pending":
            res_end = t.pause_start(as_of) or as_of
        else:
            res_end = as_of
        if res_end > t.res_due:
            return True
    return False


def _tags(session: Session, ticket_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for i in range(0, len(ticket_ids), 500):
        rows = session.exec(
            select(TicketTag.ticket_id, Tag.name)
            .join(Tag, col(Tag.id) == col(TicketTag.tag_id))
            .where(col(TicketTag.ticket_id).in_(ticket_ids[i : i + 500]))
        ).all()
        for tid, name in rows:
            out[tid].append(name)
    return out


def report(desk: Desk, since: date, until: date, *, now: datetime) -> dict[str, Any]:
    with desk.db.read() as session:
        return compute(session, desk, since, until, now=now)
