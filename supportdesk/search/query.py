"""The query language: one grammar for the console's search bar, saved views and the CLI.

    status:open channel:telegram assignee:me|none|NAME tag:billing priority:>=high
    customer:EMAIL sla:breached sla:<2h created:>2026-11-01 group:billing id:12 lang:ru
    is:open is:unassigned is:snoozed words "exact phrase" -negated

Terms AND together; ``-term`` negates; a value list ``status:new,open`` ORs. Parsed once into
a small tree, then into SQL for either backend.

Long because: one grammar (terms, operators, dates, durations) and its translation to SQL for
both backends belong together.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.desk.desk import BadInput, Desk
from supportdesk.store.models import (
    OPEN_STATUSES,
    PRIORITIES,
    PRIORITY_RANK,
    STATUSES,
    Agent,
    Identity,
    Tag,
    Ticket,
    TicketTag,
    utcnow,
)

KEYS = (
    "status", "channel", "assignee", "tag", "priority", "customer", "sla", "created",
    "updated", "group", "id", "is", "kind", "has", "due", "lang",
)  # fmt: skip


class QueryError(BadInput):
    """A query that cannot be understood; the message points at the bad term.

    ``term`` is the offending term as typed and ``start``/``end`` its character span in the
    query (-1 when unknown), so the console can underline it.
    """

    def __init__(self, message: str, *, term: str = "", start: int = -1, end: int = -1):
        super().__init__(message)
        self.term = term
        self.start = start
        self.end = end

    def pointer(self, query: str) -> str:
        """The query with a caret line under the bad term (for multi-line displays)."""
        if self.start < 0:
            return query
        width = max(self.end - self.start, 1)
        return f"{query}\n{' ' * self.start}{'^' * width}"


@dataclass
class Term:
    key: str  # "" for a free word, "phrase" for a quoted phrase
    value: str
    negated: bool = False
    raw: str = ""
    start: int = -1  # span of the term in the query text
    end: int = -1


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)

    @property
    def words(self) -> list[Term]:
        return [t for t in self.terms if t.key in ("", "phrase")]


_TOKEN = re.compile(r'\s*(-?)(?:(\w+):)?("(?:[^"\\]|\\.)*"?|\S+)')


def parse(text: str) -> Query:
    q = Query()
    text = (text or "").strip()
    pos = 0
    negate_next = False  # "NOT term" is "-term"
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        neg, key, val = m.group(1) == "-", (m.group(2) or "").lower(), m.group(3)
        raw = m.group(0).strip()
        t0, t1 = m.start(1), m.end()
        if not neg and not key and val == "NOT":
            if negate_next or pos >= len(text.rstrip()):
                raise QueryError("NOT must be followed by a term", term=raw, start=t0, end=t1)
            negate_next = True
            continue
        if negate_next:
            neg, negate_next = not neg, False
        if val.startswith('"'):
            if len(val) < 2 or not val.endswith('"'):
                raise QueryError(
                    f"the phrase {raw} is missing its closing quote", term=raw, start=t0, end=t1
                )
            val = val[1:-1].replace('\\"', '"')
            if key:
                q.terms.append(Term(key, val, neg, raw, t0, t1))
            elif val.strip():
                q.terms.append(Term("phrase", val, neg, raw, t0, t1))
            continue
        if key and key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.75)
            if close and not val.startswith("/"):
                raise QueryError(
                    f"unknown term {raw!r}: did you mean {close[0]}:?", term=raw, start=t0, end=t1
                )
            # "http://x" or "time:12" in free text: keep it as words when not a known key
            q.terms.append(Term("", f"{key}:{val}", neg, raw, t0, t1))
            continue
        if key and not val:
            raise QueryError(f"the term {raw!r} has no value", term=raw, start=t0, end=t1)
        if not key and val == "-":
            continue
        q.terms.append(Term(key, val, neg, raw, t0, t1))
    for t in q.terms:
        try:
            _validate(t)
        except QueryError as exc:
            raise QueryError(str(exc), term=t.raw, start=t.start, end=t.end) from None
    return q


_REL = re.compile(r"^(\d+)\s*(m|h|d|w)$")
MAX_MINUTES = 100 * 366 * 1440  # durations longer than a hundred years are a mistake
_CMP = re.compile(r"^(>=|<=|>|<|=)?(.*)$")


def _duration(text: str, term: Term) -> timedelta:
    m = _REL.match(text.strip().lower())
    if not m:
        raise QueryError(f"in {term.raw!r}: {text!r} is not a duration such as 30m, 2h or 3d")
    n, unit = int(m.group(1)), m.group(2)
    minutes = n * {"m": 1, "h": 60, "d": 1440, "w": 10080}[unit]
    if minutes > MAX_MINUTES:
        raise QueryError(f"in {term.raw!r}: {text!r} is longer than a hundred years")
    return (
        timedelta(minutes=n)
        if unit == "m"
        else timedelta(hours=n)
        if unit == "h"
        else (timedelta(days=n) if unit == "d" else timedelta(weeks=n))
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _validate(t: Term) -> None:
    vals = t.value.split(",") if t.key not in ("", "phrase", "customer") else [t.value]
    if t.key == "status":
        for v in vals:
            if v.lower() not in STATUSES:
                raise QueryError(f"in {t.raw!r}: status is one of {', '.join(STATUSES)}")
    elif t.key == "priority":
        op, v = _CMP.match(t.value).groups()  # type: ignore[union-attr]
        for p in v.split(",") if not op else [v]:
            if p.lower() not in PRIORITIES:
                raise QueryError(f"in {t.raw!r}: priority is one of {', '.join(PRIORITIES)}")
    elif t.key == "sla":
        v = t.value.lower()
        if v not in ("breached", "ok", "none", "paused"):
            op, rest = _CMP.match(v).groups()  # type: ignore[union-attr]
            if op not in ("<", "<="):
                raise QueryError(f"in {t.raw!r}: use sla:breached or sla:<2h")
            _duration(rest, t)
    elif t.key in ("created", "updated", "due"):
        op, rest = _CMP.match(t.value).groups()  # type: ignore[union-attr]
        _when(rest, t)
    elif t.key == "id":
        for v in vals:
            if not re.fullmatch(r"\d{1,12}(-\d{1,12})?", v):
                raise QueryError(f"in {t.raw!r}: id takes numbers such as id:12 or id:10-20")
    elif t.key == "is":
        for v in vals:
            if v.lower() not in (
                "open",
                "unassigned",
                "assigned",
                "snoozed",
                "mine",
                "closed",
                "spam",
            ):
                raise QueryError(
                    f"in {t.raw!r}: is: takes open, unassigned, assigned, mine, snoozed or closed"
                )
    elif t.key == "lang":
        for v in vals:
            if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?|none", v):
                raise QueryError(f"in {t.raw!r}: lang takes a language code such as lang:ru")
    elif t.key == "has":
        for v in vals:
            if v.lower() not in ("attachment", "attachments", "csat", "notes"):
                raise QueryError(f"in {t.raw!r}: has: takes attachment, csat or notes")


def _when(text: str, term: Term) -> datetime:
    text = text.strip()
    m = _REL.match(text.lower())
    if m:
        return utcnow() - _duration(text, term)
    if text.lower() == "today":
        d = utcnow().date()
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(
            f"in {term.raw!r}: {text!r} is not a date (2026-11-01) or an age (7d)"
        ) from None


def _cmp(column: Any, op: str | None, value: Any) -> Any:
    return {
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
    }.get(op or "=", column == value)


def _clause(t: Term, desk: Desk | None, session: Session | None) -> Any:
    key, value = t.key, t.value
    vals = [v for v in value.split(",") if v] if key not in ("customer",) else [value]
    now = utcnow()
    if key == "status":
        return col(Ticket.status).in_([v.lower() for v in vals])
    if key == "channel":
        return sa.or_(
            col(Ticket.channel).in_(vals), col(Ticket.kind).in_([v.lower() for v in vals])
        )
    if key == "kind":
        return col(Ticket.kind).in_([v.lower() for v in vals])
    if key == "group":
        if value.lower() == "none":
            return col(Ticket.group).is_(None)
        return col(Ticket.group).in_(vals)
    if key == "priority":
        op, v = _CMP.match(value).groups()  # type: ignore[union-attr]
        if op:
            return _cmp(col(Ticket.priority_rank), op, PRIORITY_RANK[v.lower()])
        return col(Ticket.priority).in_([p.lower() for p in v.split(",")])
    if key == "assignee":
        conds: list[Any] = []
        for v in vals:
            lv = v.lower()
            if lv == "none":
                conds.append(col(Ticket.assignee_id).is_(None))
            else:
                name = desk.agent if (lv == "me" and desk is not None) else v
                conds.append(
                    col(Ticket.assignee_id).in_(select(Agent.id).where(Agent.name == name))
                )
        return sa.or_(*conds)
    if key == "tag":
        sub = (
            select(TicketTag.ticket_id)
            .join(Tag, col(Tag.id) == col(TicketTag.tag_id))
            .where(col(Tag.name).in_([v.lower() for v in vals]))
        )
        return col(Ticket.id).in_(sub)
    if key == "customer":
        from supportdesk.desk.identity import normalize_email

        v = value.strip()
        like = f"%{_escape_like(v.lower())}%"  # % and _ in the value match literally
        sub = select(Identity.customer_id).where(
            sa.or_(
                col(Identity.address) == normalize_email(v),
                col(Identity.address).like(like, escape="\\"),
                col(Identity.display).ilike(like, escape="\\"),
            )
        )
        if v.isdigit() and len(v) <= 12:
            return sa.or_(col(Ticket.customer_id) == int(v), col(Ticket.customer_id).in_(sub))
        from supportdesk.store.models import Customer

        by_name = select(Customer.id).where(col(Customer.name).ilike(like, escape="\\"))
        return sa.or_(col(Ticket.customer_id).in_(sub), col(Ticket.customer_id).in_(by_name))
    if key == "sla":
        lv = value.lower()
        open_ = col(Ticket.status).in_(OPEN_STATUSES)
        if lv == "breached":
            return sa.or_(
                col(Ticket.sla_breached).is_(True), sa.and_(open_, col(Ticket.due_at) < now)
            )
        if lv == "ok":
            return sa.and_(
                col(Ticket.sla_breached).is_(False),
                sa.or_(col(Ticket.due_at).is_(None), col(Ticket.due_at) >= now),
            )
        if lv == "none":
            return col(Ticket.due_at).is_(None)
        if lv == "paused":
            return col(Ticket.status) == "pending"
        op, rest = _CMP.match(lv).groups()  # type: ignore[union-attr]
        return sa.and_(
            open_, col(Ticket.due_at).is_not(None), col(Ticket.due_at) <= now + _duration(rest, t)
        )
    if key in ("created", "updated", "due"):
        column = {"created": Ticket.created_at, "updated": Ticket.updated_at, "due": Ticket.due_at}[
            key
        ]
        op, rest = _CMP.match(value).groups()  # type: ignore[union-attr]
        when = _when(rest, t)
        if _REL.match(rest.strip().lower()):
            # created:<7d means "less than 7 days old": newer than the moment
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op or "", ">=")
        elif op is None and len(rest.strip()) == 10:
            return sa.and_(col(column) >= when, col(column) < when + timedelta(days=1))
        return _cmp(col(column), op, when)
    if key == "lang":  # the customer's language (set by hand, or guessed on a new ticket)
        from supportdesk.store.models import Customer

        langs = ["" if v.lower() == "none" else v.lower() for v in vals]
        return col(Ticket.customer_id).in_(
            select(Customer.id).where(col(Customer.language).in_(langs))
        )
    if key == "id":
        conds = []
        for v in vals:
            if "-" in v:
                a, b = v.split("-", 1)
                conds.append(col(Ticket.id).between(int(a), int(b)))
            else:
                conds.append(col(Ticket.id) == int(v))
        return sa.or_(*conds)
    if key == "is":
        conds = []
        for v in vals:
            lv = v.lower()
            if lv == "open":  # open and not snoozed (a snooze hides a ticket until its time)
                conds.append(
                    sa.and_(
                        col(Ticket.status).in_(OPEN_STATUSES),
                        sa.or_(
                            col(Ticket.snoozed_until).is_(None), col(Ticket.snoozed_until) <= now
                        ),
                    )
                )
            elif lv == "closed":
                conds.append(col(Ticket.status).in_(["solved", "closed"]))
            elif lv == "unassigned":
                conds.append(col(Ticket.assignee_id).is_(None))
            elif lv == "assigned":
                conds.append(col(Ticket.assignee_id).is_not(None))
            elif lv == "mine":
                name = desk.agent if desk else ""
                conds.append(
                    col(Ticket.assignee_id).in_(select(Agent.id).where(Agent.name == name))
                )
            elif lv == "snoozed":
                conds.append(
                    sa.and_(col(Ticket.snoozed_until).is_not(None), col(Ticket.snoozed_until) > now)
                )
            elif lv == "spam":
                conds.append(col(Ticket.spam).is_(True))
        return sa.or_(*conds)
    if key == "has":
        from supportdesk.store.models import AttachmentRow, Message

        conds = []
        for v in vals:
            lv = v.lower()
            if lv.startswith("attachment"):
                conds.append(
                    col(Ticket.id).in_(
                        select(Message.ticket_id).join(
                            AttachmentRow, col(AttachmentRow.message_id) == col(Message.id)
                        )
                    )
                )
            elif lv == "csat":
                conds.append(col(Ticket.csat_score).is_not(None))
            elif lv == "notes":
                conds.append(
                    col(Ticket.id).in_(select(Message.ticket_id).where(Message.direction == "note"))
                )
        return sa.or_(*conds)
    raise QueryError(f"unknown term {t.raw!r}")


def apply_query(
    stmt: Any, text: str | Query, *, desk: Desk | None = None, session: Session | None = None
) -> Any:
    q = parse(text) if isinstance(text, str) else text
    for t in q.terms:
        if t.key in ("", "phrase"):
            continue
        clause = _clause(t, desk, session)
        stmt = stmt.where(sa.not_(clause) if t.negated else clause)
    words = q.words
    if words:
        from supportdesk.search import index as search_index

        pos = [w for w in words if not w.negated]
        neg = [w for w in words if w.negated]
        if pos:
            stmt = stmt.where(col(Ticket.id).in_(search_index.ticket_ids_matching(pos)))
        for w in neg:
            stmt = stmt.where(sa.not_(col(Ticket.id).in_(search_index.ticket_ids_matching([w]))))
    return stmt
