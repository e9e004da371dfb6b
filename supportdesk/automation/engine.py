"""The rule engine: triggers, conditions, loop protection, and the replay behind ``rules test``.

Event-driven triggers follow the audit log with a cursor (``automation.cursor`` in Meta): a
``created`` event is ``ticket.created``, ``message_in`` is ``message.in``, ``sla_breached`` is
``sla.breached`` and any undoable change of a ticket's fields or tags is ``ticket.updated``. The
worker runs after the ingest transaction has committed (never inside it), so rules cost intake
nothing; the same pass also queues agents' notifications for those events.

Each firing of a rule on a ticket is its own write transaction and journal batch, whose agent is
``rule:NAME``: the changes are audited and ``supportdesk undo --as rule:NAME`` (or ``rules undo
NAME``) reverts them. The event cursor moves in the same transaction, so a firing happens once.

Loop protection: a rule never reacts to an event its own actions wrote, and a ticket gets at most
``PER_TICKET_CAP`` rule firings in 24 hours (two rules undoing each other stop there, with a
``rules_capped`` event saying so).

Timed triggers (``sla.due_in``, ``pending.for``, ``schedule``) run on the runner's timer tick;
each fires once per ticket and deadline (or pending spell, or schedule slot).

Long because: the event-driven and the timed triggers, the once-per-key bookkeeping, loop
protection and the replay behind `rules test` share one firing path; apart, each would need the
others' internals.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from supportdesk.actions.journal import drop_batch_if_empty, new_batch
from supportdesk.automation import notify, routing, spam
from supportdesk.automation import settings as agent_settings
from supportdesk.automation.actions import run_actions
from supportdesk.automation.rules import Rule, RuleSet, current_rules, load_rules
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.search.query import apply_query
from supportdesk.store.models import Agent, Event, Message, Meta, Ticket, utcnow

log = logging.getLogger(__name__)

CURSOR = "automation.cursor"
PER_TICKET_CAP = 10  # rule firings per ticket in 24 hours
CAP_WINDOW = timedelta(hours=24)
EVENT_TRIGGERS = {"created": "ticket.created", "message_in": "message.in"}
_MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9][A-Za-z0-9_.-]{0,63})")


@dataclass
class Report:
    events: int = 0
    fired: list[tuple[str, int, list[str]]] = field(default_factory=list)  # rule, ticket, lines
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    capped: list[int] = field(default_factory=list)
    notifications: int = 0


# ---------------------------------------------------------------- cursor


def _get_meta(s: Session, key: str) -> str | None:
    row = s.get(Meta, key)
    return row.value if row is not None else None


def _set_meta(s: Session, key: str, value: str) -> None:
    row = s.get(Meta, key) or Meta(key=key)
    row.value = value
    s.add(row)


def _last_event_id(s: Session) -> int:
    return int(s.exec(select(func.max(Event.id))).one() or 0)


# ---------------------------------------------------------------- conditions


def restrict(stmt: Any, rule: Rule, desk: Desk, s: Session) -> Any:
    """``stmt`` (over Ticket) narrowed to the rule's ``if`` (any one of a list)."""
    conds = rule.conditions
    if len(conds) == 1:
        return apply_query(stmt, conds[0], desk=desk, session=s)
    subs = [apply_query(select(Ticket.id), c, desk=desk, session=s) for c in conds]
    return stmt.where(sa.or_(*[col(Ticket.id).in_(q) for q in subs]))


def matching(s: Session, desk: Desk, rule: Rule, ids: list[int]) -> set[int]:
    """The tickets among ``ids`` that satisfy the rule's ``if`` (spam only when it asks)."""
    out: set[int] = set()
    ids = sorted(set(ids))
    for i in range(0, len(ids), 500):
        stmt = select(Ticket.id).where(col(Ticket.id).in_(ids[i : i + 500]))
        if "is:spam" not in rule.condition:
            stmt = stmt.where(col(Ticket.spam).is_(False))
        stmt = stmt.where(
            (col(Ticket.reply_to_address).is_(None))
            | (~col(Ticket.reply_to_address).startswith("merged:"))
        )
        stmt = restrict(stmt, rule, desk, s)
        out.update(int(x) for x in s.exec(stmt).all())
    return out


def _fired_count(s: Session, tid: int, now: datetime) -> int:
    return int(
        s.exec(
            select(func.count())
            .select_from(Event)
            .where(
                Event.kind == "rule_fired",
                Event.ticket_id == tid,
                col(Event.created_at) >= now - CAP_WINDOW,
            )
        ).one()
    )


def _capped(s: Session, tid: int, rule: Rule, now: datetime) -> bool:
    if _fired_count(s, tid, now) < PER_TICKET_CAP:
        return False
    already = s.exec(
        select(Event.id).where(
            Event.kind == "rules_capped",
            Event.ticket_id == tid,
            col(Event.created_at) >= now - CAP_WINDOW,
        )
    ).first()
    if already is None:
        events.record(
            s,
            "rules_capped",
            agent="system",
            ticket_id=tid,
            rule=rule.name,
            cap=PER_TICKET_CAP,
            reason=f"{PER_TICKET_CAP} rule firings in 24 hours; rules leave this ticket alone",
        )
    return True


# ---------------------------------------------------------------- one firing


def _fire_in(
    s: Session,
    desk: Desk,
    rule: Rule,
    tid: int,
    trigger: str,
    rep: Report,
    *,
    key: str,
    now: datetime,
    recheck: bool = True,
) -> bool:
    """Run ``rule`` on ticket ``tid`` in the caller's transaction; True when it changed something.

    The firing is a savepoint: a rule whose action fails (a missing template...) is rolled back
    alone and recorded as ``rule_failed``; the other rules of the same event still run.
    """
    rdesk = replace(desk, agent=rule.agent)
    if recheck and tid not in matching(s, desk, rule, [tid]):
        return False
    if _capped(s, tid, rule, now):
        rep.capped.append(tid)
        return False
    try:
        with s.begin_nested():
            t = s.get(Ticket, tid)
            if t is None:
                return False
            batch = new_batch(s, rdesk, f"rule {rule.name} on #{tid}")
            lines = run_actions(
                s, rdesk, t, rule.actions, batch=batch, now=now, source=f"rule {rule.name}"
            )
            if drop_batch_if_empty(s, batch):
                return False
            events.record(
                s,
                "rule_fired",
                agent=rule.agent,
                ticket_id=tid,
                rule=rule.name,
                trigger=trigger,
                key=key,
                done=lines,
                journal=batch,
            )
    except ServiceError as exc:
        s.expire_all()  # the savepoint's changes are gone: reload what the rule had touched
        rep.failed.append((rule.name, tid, str(exc)))
        log.warning("rule %s on #%s: %s", rule.name, tid, exc)
        events.record(
            s, "rule_failed", agent=rule.agent, ticket_id=tid, rule=rule.name, error=str(exc)
        )
        return False
    rep.fired.append((rule.name, tid, lines))
    return True


def _fire(
    desk: Desk,
    rule: Rule,
    tid: int,
    trigger: str,
    rep: Report,
    *,
    key: str = "",
    now: datetime | None = None,
) -> None:
    """Run ``rule`` on ticket ``tid`` in its own transaction (the timed triggers)."""
    with desk.db.write() as s:
        _fire_in(s, desk, rule, tid, trigger, rep, key=key, now=now or utcnow())


# ---------------------------------------------------------------- event-driven


def _trigger_of(ev: Event, data: dict[str, Any]) -> tuple[str, list[str]]:
    """(trigger, changed fields) for an audit event; '' when it triggers nothing."""
    if ev.ticket_id is None:
        return "", []
    if ev.kind in EVENT_TRIGGERS:
        return EVENT_TRIGGERS[ev.kind], []
    if ev.kind == "sla_breached":
        return "sla.breached", []
    how = data.get("undo")
    if how == "ticket_fields":
        return "ticket.updated", [k for k in (data.get("after") or {}) if k != "updated_at"]
    if how == "tags":
        return "ticket.updated", ["tags"]
    return "", []


def _notifications(
    s: Session, desk: Desk, ev: Event, data: dict[str, Any], wanted: set[str]
) -> int:
    """Queue the notifications this event calls for, to agents in ``wanted``; returns how many."""
    n = 0
    if ev.ticket_id is None or not wanted:
        return 0
    if data.get("undo") == "ticket_fields" and (data.get("after") or {}).get("assignee_id"):
        agent = s.get(Agent, int(data["after"]["assignee_id"]))
        if agent is not None and agent.name != ev.agent and agent.name in wanted:
            t = s.get(Ticket, ev.ticket_id)
            notify.queue(s, agent.name, "assigned", t, agent=ev.agent, by=ev.agent)
            n += 1
    elif ev.kind == "message_in" and not str(data.get("reason", "")).startswith("new ticket"):
        t = s.get(Ticket, ev.ticket_id)
        if t is not None and t.assignee_id is not None and not t.spam:
            agent = s.get(Agent, t.assignee_id)
            if agent is not None and agent.name in wanted:
                notify.queue(s, agent.name, "answered", t, agent="system")
                n += 1
    elif ev.kind == "note" and ev.message_id is not None:
        m = s.get(Message, ev.message_id)
        if m is not None:
            names = set(_MENTION.findall(m.text or ""))
            if names:
                known = s.exec(select(Agent.name).where(col(Agent.name).in_(sorted(names)))).all()
                t = s.get(Ticket, ev.ticket_id)
                excerpt = " ".join((m.text or "").split())[:120]
                for name in known:
                    if name != ev.agent and name in wanted:
                        notify.queue(
                            s, name, "mention", t, agent=ev.agent, by=ev.agent, excerpt=excerpt
                        )
                        n += 1
    elif ev.kind == "sla_breached":
        t = s.get(Ticket, ev.ticket_id)
        if t is not None and t.assignee_id is not None:
            agent = s.get(Agent, t.assignee_id)
            if agent is not None and agent.name in wanted:
                notify.queue(
                    s, agent.name, "breached", t, agent="system", target=data.get("target", "")
                )
                n += 1
    return n


def process(desk: Desk, *, rules: RuleSet | None = None, limit: int = 1000) -> Report:
    """Evaluate the event-driven rules (and queue notifications) for events since the cursor."""
    rep = Report()
    with desk.db.read() as s:
        raw = _get_meta(s, CURSOR)
    if raw is None:  # a desk switching automation on: start from now, not from its history
        with desk.db.write() as s:
            if _get_meta(s, CURSOR) is None:
                _set_meta(s, CURSOR, str(_last_event_id(s)))
        return rep
    cursor = int(raw)
    touched: set[int] = set()
    for _round in range(20):  # rules' own events are followed up to 20 rounds per call
        with desk.db.read() as s:
            evs = s.exec(
                select(Event).where(col(Event.id) > cursor).order_by(col(Event.id)).limit(limit)
            ).all()
        if not evs:
            break
        # the rules as they are now, read after the events: a rule switched on before an event
        # was stored always sees it
        rs = rules if rules is not None else current_rules(desk.home)
        parsed = [(ev, json.loads(ev.data or "{}")) for ev in evs]
        rep.events += len(evs)
        # a ticket created by `import` (history) has no message_in event: rules leave it alone
        created = [ev.ticket_id for ev, _d in parsed if ev.kind == "created" and ev.ticket_id]
        if created:
            with desk.db.read() as s:
                live = {
                    int(x or 0)
                    for x in s.exec(
                        select(Event.ticket_id).where(
                            Event.kind == "message_in", col(Event.ticket_id).in_(created)
                        )
                    ).all()
                }
            parsed = [
                (ev, d) for ev, d in parsed if ev.kind != "created" or (ev.ticket_id or 0) in live
            ]
        # first the bookkeeping rules may look at: a new ticket's spam check and its customer's
        # language; then the agents' notifications for these events
        wanted = {n for n, p in agent_settings.load(desk.home).items() if p.notify}
        if wanted or any(ev.kind == "created" for ev, _d in parsed):
            with desk.db.write() as s:
                for ev, data in parsed:
                    if ev.kind == "created" and ev.ticket_id is not None:
                        _spam_list_check(s, desk, ev.ticket_id)
                        _guess_language(s, ev.ticket_id)
                    rep.notifications += _notifications(s, desk, ev, data, wanted)
        plan: list[tuple[Event, Rule, str]] = []
        by_rule: dict[str, set[int]] = {}
        for ev, data in parsed:
            trig, fields = _trigger_of(ev, data)
            if not trig:
                continue
            for r in rs.enabled:
                if r.when != trig or ev.agent == r.agent:
                    continue  # a rule's own actions never trigger it again
                if r.fields and not set(r.fields) & set(fields):
                    continue
                plan.append((ev, r, trig))
                by_rule.setdefault(r.name, set()).add(ev.ticket_id or 0)
        hits: dict[str, set[int]] = {}
        if by_rule:
            with desk.db.read() as s:
                hits = {
                    name: matching(s, desk, rs.rule(name), sorted(ids))
                    for name, ids in by_rule.items()
                }
        # one write transaction per event that some rule matched (each firing its own journal
        # batch); the cursor moves with it. A ticket an earlier firing changed is checked again.
        by_event: dict[int, list[tuple[Rule, str]]] = {}
        order: list[Event] = []
        for ev, r, trig in plan:
            if (ev.ticket_id or 0) in hits.get(r.name, set()):
                if (ev.id or 0) not in by_event:
                    order.append(ev)
                by_event.setdefault(ev.id or 0, []).append((r, trig))
        for ev in order:
            tid = ev.ticket_id or 0
            with desk.db.write() as s:
                _set_meta(s, CURSOR, str(ev.id))
                for r, trig in by_event[ev.id or 0]:
                    if _fire_in(
                        s, desk, r, tid, trig, rep, key=f"event:{ev.id}", now=utcnow(),
                        recheck=tid in touched,
                    ):  # fmt: skip
                        touched.add(tid)
        cursor = evs[-1].id or cursor
        with desk.db.write() as s:
            _set_meta(s, CURSOR, str(cursor))
    return rep


def _looks_russian(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return (
        bool(letters) and sum(1 for c in letters if "\u0400" <= c <= "\u04ff") / len(letters) > 0.3
    )


def _guess_language(s: Session, tid: int) -> None:
    """A customer without a language gets the one their first message is written in (ru or en),
    so ``lang:ru`` can route them; a language set by hand is never changed."""
    from supportdesk.store.models import Customer

    t = s.get(Ticket, tid)
    if t is None:
        return
    c = s.get(Customer, t.customer_id)
    if c is None or c.language:
        return
    first = s.exec(
        select(Message.text)
        .where(Message.ticket_id == tid, Message.direction == "in")
        .order_by(col(Message.id))
        .limit(1)
    ).first()
    c.language = "ru" if _looks_russian(f"{t.subject} {first or ''}") else "en"
    s.add(c)


def _spam_list_check(s: Session, desk: Desk, tid: int) -> None:
    t = s.get(Ticket, tid)
    if t is None or t.spam:
        return
    addr = spam.sender_of(s, t)
    if addr and spam.is_spam_address(s, addr):
        sdesk = replace(desk, agent="spam-list")
        batch = new_batch(s, sdesk, f"spam list: {addr} on #{tid}")
        spam.mark_ticket(s, sdesk, t, batch, utcnow())


# ---------------------------------------------------------------- timed


def _keys_fired(s: Session, rule: Rule, ids: list[int]) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for i in range(0, len(ids), 500):
        rows = s.exec(
            select(Event.ticket_id, Event.data).where(
                Event.kind == "rule_fired",
                Event.agent == rule.agent,
                col(Event.ticket_id).in_(ids[i : i + 500]),
            )
        ).all()
        for tid, data in rows:
            key = json.loads(data or "{}").get("key", "")
            out.add((int(tid or 0), str(key)))
    return out


def timed_due(s: Session, desk: Desk, rule: Rule, now: datetime) -> list[tuple[int, str]]:
    """(ticket, key) pairs the timed rule should fire on now and has not fired on yet."""
    q = select(Ticket.id, Ticket.due_at, Ticket.sla_paused_since)
    if rule.when == "sla.due_in" and rule.within is not None:
        q = q.where(
            col(Ticket.status).in_(("new", "open")),
            col(Ticket.due_at).is_not(None),
            col(Ticket.due_at) > now,
            col(Ticket.due_at) <= now + rule.within,
        )
    elif rule.when == "pending.for" and rule.pending_for is not None:
        q = q.where(
            Ticket.status == "pending",
            col(Ticket.sla_paused_since).is_not(None),
            col(Ticket.sla_paused_since) <= now - rule.pending_for,
        )
    else:
        return []
    q = restrict(q.where(col(Ticket.spam).is_(False)), rule, desk, s)
    rows = s.exec(q.order_by(col(Ticket.id)).limit(2000)).all()
    pairs = []
    for tid, due, paused in rows:
        key = (
            f"due:{due.isoformat()}"
            if rule.when == "sla.due_in"
            else f"pending:{paused.isoformat()}"
        )
        pairs.append((int(tid), key))
    done = _keys_fired(s, rule, [p[0] for p in pairs])
    return [p for p in pairs if p not in done]


def tick(desk: Desk, now: datetime | None = None, *, rules: RuleSet | None = None) -> Report:
    """The timer's share: event-driven rules, timed rules, SLA-due notices, off-shift returns,
    then delivery of the notifications queued so far."""
    now = now or utcnow()
    rep = process(desk, rules=rules)
    rs = rules if rules is not None else current_rules(desk.home)
    for rule in rs.enabled:
        if rule.when in ("sla.due_in", "pending.for"):
            with desk.db.read() as s:
                todo = timed_due(s, desk, rule, now)
            for tid, key in todo:
                _fire(desk, rule, tid, rule.trigger_text(), rep, key=key, now=now)
        elif rule.when == "schedule" and rule.every is not None:
            mkey = f"automation.schedule.{rule.name}"
            with desk.db.read() as s:
                last = _get_meta(s, mkey)
            if last and now - datetime.fromisoformat(last) < rule.every:
                continue
            with desk.db.write() as s:
                _set_meta(s, mkey, now.isoformat())
            with desk.db.read() as s:
                q = restrict(select(Ticket.id).where(col(Ticket.spam).is_(False)), rule, desk, s)
                ids = [int(x) for x in s.exec(q.order_by(col(Ticket.id)).limit(1000)).all()]
            for tid in ids:
                _fire(
                    desk,
                    rule,
                    tid,
                    rule.trigger_text(),
                    rep,
                    key=f"schedule:{now.isoformat()}",
                    now=now,
                )
    _sla_due_notices(desk, now)
    _off_shift(desk, now)
    rep.notifications += len(notify.deliver(desk))
    return rep


def _sla_due_notices(desk: Desk, now: datetime) -> None:
    prefs = agent_settings.load(desk.home)
    wanted = {n: p for n, p in prefs.items() if p.wants("sla_due") and p.notify}
    if not wanted:
        return
    with desk.db.write() as s:
        agents = s.exec(select(Agent).where(col(Agent.name).in_(sorted(wanted)))).all()
        for a in agents:
            st = wanted[a.name]
            rows = s.exec(
                select(Ticket).where(
                    Ticket.assignee_id == a.id,
                    col(Ticket.status).in_(("new", "open")),
                    col(Ticket.spam).is_(False),
                    col(Ticket.due_at).is_not(None),
                    col(Ticket.due_at) > now,
                    col(Ticket.due_at) <= now + timedelta(minutes=st.sla_minutes),
                )
            ).all()
            if not rows:
                continue
            sent = {
                (tid, json.loads(d or "{}").get("due"))
                for tid, d in s.exec(
                    select(Event.ticket_id, Event.data).where(
                        Event.kind == "notify",
                        col(Event.ticket_id).in_([t.id for t in rows]),
                        col(Event.data).like('%"event": "sla_due"%'),
                    )
                ).all()
            }
            for t in rows:
                due = t.due_at.isoformat() if t.due_at else ""
                if (t.id, due) in sent:
                    continue
                left = max(int((t.due_at - now).total_seconds() // 60), 0) if t.due_at else 0
                notify.queue(s, a.name, "sla_due", t, agent="system", due=due, minutes=left)


def _off_shift(desk: Desk, now: datetime) -> None:
    prefs = agent_settings.load(desk.home)
    if not any(p.shift for p in prefs.values()):
        return
    rdesk = replace(desk, agent="routing")
    with desk.db.write() as s:

        def batch_for(name: str) -> str:
            return new_batch(s, rdesk, f"{name} went off shift: tickets back to the group")

        routing.return_off_shift(s, rdesk, now, batch_for)


# ---------------------------------------------------------------- rules test


class _Rollback(Exception):
    pass


@dataclass
class SimLine:
    at: datetime
    ticket: int
    subject: str
    trigger: str
    lines: list[str]
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "ticket": self.ticket,
            "subject": self.subject,
            "trigger": self.trigger,
            "actions": self.lines,
            "error": self.error,
        }


@dataclass
class Simulation:
    rule: Rule
    start: datetime
    end: datetime
    occurrences: int = 0
    tickets: int = 0
    lines: list[SimLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "trigger": self.rule.trigger_text(),
            "if": self.rule.condition,
            "since": self.start.isoformat(),
            "until": self.end.isoformat(),
            "occurrences": self.occurrences,
            "tickets": self.tickets,
            "matched": len(self.lines),
            "would": [x.as_dict() for x in self.lines],
        }


def _occurrences(
    s: Session, rule: Rule, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """(moment, ticket) pairs at which the trigger would have fired in [start, end]."""
    out: list[tuple[datetime, int]] = []
    if rule.when in ("ticket.created", "message.in", "sla.breached", "ticket.updated"):
        kinds = {
            "ticket.created": ["created"],
            "message.in": ["message_in"],
            "sla.breached": ["sla_breached"],
        }.get(rule.when)
        q = select(Event).where(
            col(Event.ticket_id).is_not(None),
            col(Event.created_at) >= start,
            col(Event.created_at) <= end,
        )
        if kinds:
            q = q.where(col(Event.kind).in_(kinds))
        else:
            q = q.where(Event.agent != rule.agent, col(Event.data).like('%"undo": "%'))
        for ev in s.exec(q.order_by(col(Event.created_at), col(Event.id))).all():
            data = json.loads(ev.data or "{}")
            trig, fields = _trigger_of(ev, data)
            if trig != rule.when:
                continue
            if rule.fields and not set(rule.fields) & set(fields):
                continue
            out.append((ev.created_at, int(ev.ticket_id or 0)))
    elif rule.when == "sla.due_in" and rule.within is not None:
        due_rows: Any = s.exec(
            select(Ticket.id, Ticket.due_at).where(
                col(Ticket.due_at).is_not(None),
                col(Ticket.due_at) >= start + rule.within,
                col(Ticket.due_at) <= end + rule.within,
            )
        ).all()
        out = [(due - rule.within, int(tid)) for tid, due in due_rows]
    elif rule.when == "pending.for" and rule.pending_for is not None:
        pend_rows: Any = s.exec(
            select(Ticket.id, Ticket.sla_paused_since).where(
                Ticket.status == "pending",
                col(Ticket.sla_paused_since).is_not(None),
                col(Ticket.sla_paused_since) >= start - rule.pending_for,
                col(Ticket.sla_paused_since) <= end - rule.pending_for,
            )
        ).all()
        out = [(p + rule.pending_for, int(tid)) for tid, p in pend_rows]
    elif rule.when == "schedule":
        ids: Any = s.exec(select(Ticket.id).order_by(col(Ticket.id)).limit(1000)).all()
        out = [(end, int(tid)) for tid in ids]
    out.sort()
    return out


def simulate(desk: Desk, name: str, since: timedelta, *, now: datetime | None = None) -> Simulation:
    """What ``name`` would have done over the last ``since``, ticket by ticket; changes nothing.

    The actions run for real inside one transaction that is rolled back, so the preview is
    exactly what the rule's code does (round-robin turns, loads, templates included). The
    condition is checked against each ticket as it is now (plus the earlier simulated actions).
    """
    rule = load_rules(desk.home).rule(name)
    end = now or utcnow()
    sim = Simulation(rule, end - since, end)
    rdesk = replace(desk, agent=rule.agent)
    try:
        with desk.db.write() as s:
            occ = _occurrences(s, rule, sim.start, end)
            sim.occurrences = len(occ)
            sim.tickets = len({t for _a, t in occ})
            batch = new_batch(s, rdesk, f"rules test {rule.name}")
            for at, tid in occ:
                if tid not in matching(s, desk, rule, [tid]):
                    continue
                t = s.get(Ticket, tid)
                if t is None:
                    continue
                line = SimLine(at, tid, t.subject, rule.trigger_text(), [])
                try:
                    with s.begin_nested():
                        line.lines = run_actions(
                            s, rdesk, t, rule.actions, batch=batch, now=at, source="rules test"
                        )
                except ServiceError as exc:
                    line.error = str(exc)
                sim.lines.append(line)
            raise _Rollback
    except _Rollback:
        pass
    return sim


def render_simulation(sim: Simulation, tz: str = "UTC") -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz or "UTC")

    def fmt(d: datetime) -> str:
        return d.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    out = [
        f"rule {sim.rule.name}: when {sim.rule.trigger_text()}"
        + (f", if {sim.rule.condition}" if sim.rule.condition else ""),
        f"replayed {fmt(sim.start)} .. {fmt(sim.end)} ({tz or 'UTC'})",
    ]
    for x in sim.lines:
        what = "; ".join(x.lines) if x.lines else "nothing to change"
        if x.error:
            what = f"fails: {x.error}"
        out.append(f"{fmt(x.at)}  #{x.ticket}  {x.subject[:40]}  -> {what}")
    out.append(
        f"{len(sim.lines)} of {sim.occurrences} trigger(s) on {sim.tickets} ticket(s) matched; "
        "nothing was changed."
    )
    return "\n".join(out)
