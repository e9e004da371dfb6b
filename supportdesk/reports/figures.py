"""Support metrics, computed from the event log and the tickets so every figure can be checked.

The period is a range of whole days in the desk's time zone: ``since`` 00:00 up to the end of
``until`` (default: the 30 days up to today). "As of" is the end of the period, or now when the
period has not ended yet. Definitions:

* ``tickets_created``: tickets created in the period (spam and tickets merged away are left
  out everywhere).
* ``tickets_solved``: tickets with a change to solved or closed (from an active status) in
  the period: ``status`` events. A ticket solved without such an event (seeded data) counts at
  its ``solved_at``.
* ``first_response_minutes``: for tickets created in the period and answered by "as of", the
  business time (the ticket's channel's hours) from creation to the first agent reply that was
  delivered (its ``delivered`` event; a ``reply`` event without an outbox row counts at its
  time; automatic messages are ``auto_reply`` events and do not count). Median and p90
  (nearest rank). ``first_response_minutes_calendar``: the same in calendar time, so a
  business-hours median of 0 for replies sent at night is explained.
* ``resolution_minutes``: for tickets solved in the period, the business time from creation
  to the last solve in the period, less the business time the ticket spent waiting on the
  customer (pending, or solved before a reopen) before it. ``resolution_minutes_calendar``:
  the same in calendar time.
* ``first_contact_resolution``: of the tickets solved in the period, how many (and the share)
  were solved with exactly one delivered agent reply.
* ``reopened``: of the tickets solved in the period, how many (and the share) went back from
  solved or closed to an active status after their first solve, by "as of".
* ``sla_breach_rate``: of the tickets created in the period, the share that missed a target:
  answered (or solved unanswered, or still unanswered "as of") after ``first_response_due_at``,
  or solved (or paused, or still open "as of") after ``resolution_due_at``; or that have an
  ``sla_breached`` event.
* ``csat``: ``requested`` = surveys sent in the period; ``responses`` and ``average`` = the
  latest rating per ticket given in the period; ``response_rate`` = the share of the period's
  surveys rated by "as of"; ``scores`` = how many of each rating.
* ``nps``: ``requested`` = NPS surveys sent in the period; of the latest score (0-10) per
  customer given in the period, ``responses``, ``promoters`` (9-10), ``passives`` (7-8),
  ``detractors`` (0-6) and ``score`` = % promoters - % detractors (-100..100).
* ``by_channel`` / ``by_priority``: created, solved and breached per channel / priority.
* ``by_agent``: ``replies`` (delivered replies), ``solved`` (tickets they solved), ``complaints``
  (tickets created in the period and tagged ``complaint``, counted for the assignee),
  ``first_response_median`` (business minutes, for the agent who sent the first reply) and
  ``resolution_median`` (business minutes, for the agent who solved).
* ``top_tags``: the most frequent tags of the tickets created in the period.
* ``backlog_by_age``: tickets not solved "as of", by age at that moment.
* ``volume_by_day``: created and solved per day of the period.

This module computes the figures over the store's SQL text (``store.report_sql``) run through a
``store.reads.Run``, and imports nothing heavy: the full path (``reports.metrics.report``) runs
it in a SQLAlchemy session, the command line's quick path (``cli.quick``) on a plain
``sqlite3`` connection, without typer, SQLAlchemy, pydantic or the model classes.

Long because: every figure a lead reads (first response and resolution in business and calendar
time, FCR, reopen rate, per agent, CSAT, NPS) is computed from the same rows in one pass, so the
figures agree.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from supportdesk.core.errors import BadInput
from supportdesk.core.terms import PRIORITIES, utcnow
from supportdesk.replies.nps_figures import summary as nps_summary
from supportdesk.sla.hours import BusinessHours
from supportdesk.store.reads import Run, utc
from supportdesk.store.report_sql import ReportSQL

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
# the kinds of event that change a ticket's figures (a csat_requested event does not: the survey's
# time is on the ticket); a ticket with none of them is "plain" and counted in SQL
FACT_KINDS = ("reply", "delivered", "status", "csat_rated", "sla_breached")


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


@dataclass(slots=True)
class _Status:
    at: datetime
    seq: int
    before: str
    after: str
    agent: str


@dataclass(slots=True)
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
    solved_list: list[_Status] | None = None  # solves(), once the statuses are all loaded

    def solves(self) -> list[_Status]:
        """Changes into solved/closed from an active status, oldest first."""
        if self.solved_list is not None:
            return self.solved_list
        out = [s for s in self.statuses if s.after in DONE and s.before not in DONE]
        if not out and self.status in DONE:
            at = self.solved_at or (self.statuses[-1].at if self.statuses else self.created_at)
            out = [_Status(at, 0, "open", self.status, self.assignee or "")]
        self.solved_list = out
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


class ReportDesk:
    """What the report needs of a desk's config: its time zone's name, its channels' names in
    the config's order, and the business hours of the desk (``hours(None)``) or of a channel,
    as ``sla.hours.BusinessHours.from_config`` gives them."""

    def __init__(
        self,
        timezone: str,
        channels: list[str],
        hours: Callable[[str | None], BusinessHours],
    ):
        self.timezone, self.channels, self.hours = timezone, channels, hours


def period_bounds(
    desk: ReportDesk, since: date | None, until: date | None, now: datetime, days: int = 30
) -> tuple[date, date, datetime, datetime]:
    """(since, until, start instant, end instant) of a report period in the desk's zone.

    ``until`` defaults to today and ``since`` to ``days`` days up to ``until``.
    """
    tz = desk.hours(None).tz
    until = until or now.astimezone(tz).date()
    since = since or until - timedelta(days=max(days, 1) - 1)
    if since > until:
        raise BadInput(f"the period starts ({since}) after it ends ({until})", field="since")
    if (until - since).days > MAX_DAYS:
        raise BadInput("a report covers at most ten years; choose a shorter period")
    start = datetime.combine(since, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return since, until, start, end


def _data(text: str | None) -> dict[str, Any]:
    try:
        d = json.loads(text or "{}")
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _left_out(spam: Any, reply_to: str | None) -> bool:
    """Spam and tickets merged away count nowhere."""
    return bool(spam) or (reply_to or "").startswith("merged:")


def _load(
    sql: ReportSQL,
    touched: set[int],
    agents: dict[Any, str],
    with_facts: list[int] | None = None,
) -> dict[int, _TicketFacts]:
    """The facts of the tickets with events created in the period and of those ``touched``
    (created before it), from their rows and events: one range query for the first (or the
    ``with_facts`` tickets when they are listed: ``ReportSQL.fact_tickets``), chunks of ids for
    the second. The plain tickets are counted in SQL (``store.report_sql``)."""
    end = sql.end
    groups = sql.fact_groups(touched, with_facts)
    facts: dict[int, _TicketFacts] = {}
    fallback_reply: dict[int, datetime] = {}
    for where, params in groups:
        for r in sql.fact_rows(where, params):
            (tid, created, channel, prio, status, assignee_id, fr_due, res_due, solved_at,
             closed_at, score, requested, first_resp, _spam, _reply_to) = r  # fmt: skip
            born = utc(created)
            assert born is not None
            facts[tid] = _TicketFacts(
                id=tid, created_at=born, channel=channel, priority=prio, status=status,
                assignee=agents.get(assignee_id) if assignee_id else None, fr_due=utc(fr_due),
                res_due=utc(res_due), solved_at=utc(solved_at or closed_at), csat_score=score,
                csat_requested_at=utc(requested),
            )  # fmt: skip
            if first_resp is not None:
                fallback_reply[tid] = utc(first_resp)  # type: ignore[assignment]
    has_reply: set[int] = set()
    delivered: dict[int, datetime] = {}  # outbox id -> when the channel accepted it
    queued: list[tuple[_TicketFacts, datetime, str, Any]] = []
    for where, params in groups:
        # a delivered event is on the ticket of its outbox row, which is the reply's ticket:
        # per ticket, this is the order (and so the first delivery) of the whole log
        for eid, tid, kind, agent, data, stored_at in sql.fact_events(where, params):
            at = utc(stored_at)
            assert at is not None
            t = facts[tid]
            d = _data(data)
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
        for oid, state, stored_sent in sql.outbox_rows(wanted[i : i + 500]):
            sent_at = utc(stored_sent)
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


def _age_bucket(age: timedelta) -> str:
    for label, limit in AGE_BUCKETS:
        if limit is None or age < limit:
            return label
    return AGE_BUCKETS[-1][0]  # pragma: no cover - the last bucket has no limit


def _backlog(sql: ReportSQL) -> dict[str, int]:
    """Tickets not done "as of", by age: ``_TicketFacts.status_at`` for every ticket, counted.

    A ticket without status events is not done when its status is active, or when it is done
    but its solve (``solved_at``, else ``closed_at``, else creation) comes after "as of": SQL
    counts those by age on indexes alone (the active ones on ``ix_ticket_status_created``, less
    the spam and merged ones of the partial ``ix_ticket_left_out``; the late solves by
    ``solved_at`` and ``closed_at``). A ticket with status events is whatever its last status
    event up to "as of" says (the status column can disagree: a status set by triage writes a
    fields event, not a status event), so the status events are replayed here, and each such
    ticket's share of the SQL count is swapped for the replayed one.
    """
    as_of = sql.as_of
    counts = {label: 0 for label, _ in AGE_BUCKETS}
    # active tickets counted per active status as ranges of ix_ticket_status_created (a count
    # walks the index and compares nothing; grouping by age sorted every active ticket: 0.45 s
    # CPU at 1M), less the spam and merged ones (the partial index ix_ticket_left_out),
    # counted as "younger than each limit" sums
    limits = [(label, limit) for label, limit in AGE_BUCKETS if limit is not None]
    statuses = [st for st in sql.statuses() if st not in DONE]
    for st in statuses:
        before = 0
        for label, limit in [*limits, (AGE_BUCKETS[-1][0], None)]:
            n = sql.backlog_count(st, None if limit is None else as_of - limit)
            counts[label] += n - before
            before = n
    total, *within = sql.backlog_left_out([as_of - limit for _label, limit in limits])
    before = 0
    for (label, _limit), n in zip(limits, within, strict=True):
        counts[label] -= int(n or 0) - before
        before = int(n or 0)
    counts[AGE_BUCKETS[-1][0]] -= int(total or 0) - before
    # done, but solved (else closed) after "as of": a few, by the solved_at/closed_at indexes
    ages = [(label, as_of - limit) for label, limit in limits]
    for label, n in sql.backlog_late_solves(ages, AGE_BUCKETS[-1][0]):
        counts[label] += n
    rows = sql.status_history()
    history: dict[int, list[tuple[datetime, int, str]]] = defaultdict(list)
    tickets: dict[int, tuple[datetime, str, datetime | None, bool]] = {}
    for tid, eid, stored_at, data, stored_created, status, solved, closed, spam, reply_to in rows:
        if _left_out(spam, reply_to):
            continue
        at, created = utc(stored_at), utc(stored_created)
        assert at is not None and created is not None
        done_at = utc(solved or closed) or created
        tickets[tid] = (created, status, done_at, status not in DONE or done_at > as_of)
        after = str(_data(data).get("after") or "")
        if after:
            history[tid].append((at, eid or 0, after))
    for tid, (created, _status, _done_at, counted) in tickets.items():
        events = sorted(history.get(tid, []))
        if not events:
            continue  # no status to replay: the SQL count is right
        cur = "new"
        for at, _eid, after in events:
            if at > as_of:
                break
            cur = after
        replayed = cur not in DONE
        if replayed != counted:
            counts[_age_bucket(as_of - created)] += 1 if replayed else -1
    return counts


def compute(
    run: Run,
    dialect: str,
    desk: ReportDesk,
    since: date | None = None,
    until: date | None = None,
    *,
    now: datetime | None = None,
    days: int = 30,
    top_tags: int = 10,
) -> dict[str, Any]:
    """Every figure of the report as one JSON-ready dictionary (see the module docstring).

    The tickets with events are loaded as ``_TicketFacts``; the plain ones (most of a big desk's
    history) are counted in SQL by ``store.report_sql`` with the same rules, and the two add up.
    Every query runs through ``run`` (one read transaction) on a ``dialect`` database.
    """
    now = now or utcnow()
    since, until, start, end = period_bounds(desk, since, until, now, days)
    as_of = min(now, end)
    hours = desk.hours(None)
    per_channel: dict[str, BusinessHours] = {}

    def hours_of(channel: str) -> BusinessHours:
        if channel not in per_channel:
            per_channel[channel] = desk.hours(channel)
        return per_channel[channel]

    plain = ReportSQL(run, dialect, start, end, as_of)
    names = plain.agents()

    def assignee(agent_id: Any) -> str | None:
        return names.get(agent_id) if agent_id else None

    with_facts = plain.fact_tickets()
    facts = _load(plain, plain.touched(), names, with_facts)

    def in_period(at: datetime | None) -> bool:
        return at is not None and start <= at < end and at <= as_of

    created = [t for t in facts.values() if in_period(t.created_at)]

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
    for channel, born, replied, agent_id in plain.first_responses():
        born, replied = utc(born), utc(replied)
        assert born is not None and replied is not None
        secs = hours_of(channel).between(born, replied).total_seconds()
        first_resp.append(secs)
        first_resp_cal.append((replied - born).total_seconds())
        fr_by_channel[channel].append(secs)
        fr_by_agent[assignee(agent_id) or UNASSIGNED].append(secs)

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
    # plain tickets: a solve at (or before) creation took no time; the others are computed here
    created_by = Counter((t.channel, t.priority) for t in created)
    breached_by = Counter((t.channel, t.priority) for t in created if t.id in breached)
    solved_by = Counter((facts[tid].channel, facts[tid].priority) for tid in solved)
    plain_solved: Counter[str] = Counter()
    for channel, priority, agent_id, n, at_once, one_reply in plain.solved():
        solved_by[channel, priority] += n
        who = assignee(agent_id) or UNASSIGNED
        plain_solved[who] += n
        one_touch += int(one_reply or 0)
        if at_once:
            resolution += [0.0] * int(at_once)
            resolution_cal += [0.0] * int(at_once)
            res_by_agent[who] += [0.0] * int(at_once)
    for channel, born, done_at, agent_id in plain.solved_later():
        born, done_at = utc(born), utc(done_at)
        assert born is not None and done_at is not None
        took = hours_of(channel).between(born, done_at).total_seconds()
        resolution.append(took)
        resolution_cal.append((done_at - born).total_seconds())
        res_by_agent[assignee(agent_id) or UNASSIGNED].append(took)
    for channel, priority, n, late in plain.created():
        created_by[channel, priority] += n
        breached_by[channel, priority] += int(late or 0)
    tickets_created = sum(created_by.values())
    tickets_solved = sum(solved_by.values())
    sla_breached = sum(breached_by.values())

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
    plain_requested, plain_rated, plain_scores = plain.csat()
    for score, n in plain_scores:
        responses += [int(score)] * int(n)
    n_requested = len(requested) + plain_requested
    rated_requested += plain_rated
    csat = {
        "requested": n_requested,
        "responses": len(responses),
        "average": round(statistics.fmean(responses), 2) if responses else None,
        "response_rate": round(rated_requested / n_requested, 4) if n_requested else None,
        "scores": {str(n): responses.count(n) for n in range(1, 6)},
    }

    # NPS: the latest score per customer given in the period
    nps_rated: list[tuple[datetime, int, int]] = []
    nps_requested = 0
    for kind, cid, data, stored_at in plain.nps_events():
        when = utc(stored_at)
        if when is None or not in_period(when):
            continue
        if kind == "nps_requested":
            nps_requested += 1
            continue
        try:
            score = int(json.loads(data or "{}").get("score"))
        except (ValueError, TypeError, AttributeError):
            continue
        if 0 <= score <= 10 and cid is not None:
            nps_rated.append((when, cid, score))
    nps = {"requested": nps_requested, **nps_summary(nps_rated)}

    # by channel, priority, agent
    channels = list(desk.channels)
    for counts in (created_by, solved_by):
        for name in sorted({c for c, _p in counts} - set(channels)):
            channels.append(name)

    def total(counts: Counter[tuple[str, str]], channel: str | None, priority: str | None) -> int:
        return sum(
            n
            for (c, p), n in counts.items()
            if (channel is None or c == channel) and (priority is None or p == priority)
        )

    by_channel: dict[str, dict[str, Any]] = {}
    for name in channels:
        fr = fr_by_channel.get(name, [])
        by_channel[name] = {
            "created": total(created_by, name, None),
            "solved": total(solved_by, name, None),
            "breached": total(breached_by, name, None),
            "first_response_median": round(statistics.median(fr) / 60, 1) if fr else None,
        }
    by_priority = {
        p: {
            "created": total(created_by, None, p),
            "solved": total(solved_by, None, p),
            "breached": total(breached_by, None, p),
        }
        for p in reversed(PRIORITIES)
    }
    tag_counts, complaints = plain.tags()
    agents: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"solved": 0, "replies": 0, "complaints": 0}
    )
    for agent_id, n in complaints:
        agents[assignee(agent_id) or UNASSIGNED]["complaints"] += int(n)
    for t in facts.values():
        for at, agent in t.reply_agents:
            if in_period(at):
                agents[agent]["replies"] += 1
    for tid, s in solved.items():
        agents[s.agent or facts[tid].assignee or UNASSIGNED]["solved"] += 1
    for name, n in plain_solved.items():
        agents[name]["solved"] += n
    for name in set(fr_by_agent) | set(res_by_agent):
        agents[name]  # noqa: B018 - every agent with a figure gets a row
    for name in agents:
        fr_a, res_a = fr_by_agent.get(name, []), res_by_agent.get(name, [])
        agents[name]["first_response_median"] = _median_minutes(fr_a)
        agents[name]["resolution_median"] = _median_minutes(res_a)
    by_agent = {name: agents[name] for name in sorted(agents)}

    top = sorted(((str(k), int(n)) for k, n in tag_counts), key=lambda kv: (-kv[1], kv[0]))
    top = top[:top_tags]

    # backlog as of the end of the period
    buckets = _backlog(plain)
    backlog = sum(buckets.values())

    # volume per day in the desk's zone
    dates = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    bounds = [
        datetime.combine(d, time(0), tzinfo=hours.tz).astimezone(UTC)
        for d in [*dates, until + timedelta(days=1)]
    ]  # as period_bounds: bounds[0] is start, bounds[-1] is end
    created_by_day = Counter(dict(zip(dates, plain.created_days(bounds), strict=True)))
    solved_by_day = Counter(dict(zip(dates, plain.solved_days(bounds), strict=True)))
    solved_by_day.update(hours.local_date(s.at) for s in solved.values())
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
            "timezone": desk.timezone,
            "as_of": as_of.isoformat(),
            "business_hours": not hours.always_open,
        },
        "tickets_created": tickets_created,
        "tickets_solved": tickets_solved,
        "first_response_minutes": _summary(first_resp),
        "first_response_minutes_calendar": _summary(first_resp_cal),
        "resolution_minutes": _summary(resolution),
        "resolution_minutes_calendar": _summary(resolution_cal),
        "first_contact_resolution": {
            "count": one_touch,
            "rate": round(one_touch / tickets_solved, 4) if tickets_solved else None,
        },
        "reopened": {
            "count": reopened,
            "rate": round(reopened / tickets_solved, 4) if tickets_solved else None,
        },
        "sla_breached": sla_breached,
        "sla_breach_rate": round(sla_breached / tickets_created, 4) if tickets_created else None,
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


def flatten(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as rows of (metric, key, value) for CSV."""
    rows: list[dict[str, Any]] = []

    def add(metric: str, key: str, value: Any) -> None:
        rows.append({"metric": metric, "key": key, "value": value})

    for name in ("tickets_created", "tickets_solved", "sla_breached", "sla_breach_rate", "backlog"):
        add(name, "", doc[name])
    for name in (
        "first_response_minutes", "first_response_minutes_calendar",
        "resolution_minutes", "resolution_minutes_calendar",
    ):  # fmt: skip
        for k in ("median", "p90", "count"):
            add(name, k, doc[name][k])
    for name in ("first_contact_resolution", "reopened"):
        for k in ("count", "rate"):
            add(name, k, doc[name][k])
    for k in ("requested", "responses", "average", "response_rate"):
        add("csat", k, doc["csat"][k])
    for score, n in doc["csat"]["scores"].items():
        add("csat", f"score_{score}", n)
    for k, v in doc["nps"].items():
        add("nps", k, v)
    for group in ("by_channel", "by_agent", "by_priority"):
        for name, figures in doc[group].items():
            for k, v in figures.items():
                add(group, f"{name}/{k}", v)
    for item in doc["top_tags"]:
        add("top_tags", item["tag"], item["count"])
    for item in doc["backlog_by_age"]:
        add("backlog_by_age", item["age"], item["count"])
    for item in doc["volume_by_day"]:
        add("volume_by_day", f"{item['date']}/created", item["created"])
        add("volume_by_day", f"{item['date']}/solved", item["solved"])
    return rows
