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

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import BindTyping
from sqlmodel import Session, col, select

from supportdesk.desk.desk import Desk
from supportdesk.search import terms as _terms
from supportdesk.store.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    Agent,
    Identity,
    Tag,
    Ticket,
    TicketTag,
    utcnow,
)

# the terms are parsed and checked in search.terms (no SQLAlchemy); reached through here too
KEYS = _terms.KEYS
MAX_MINUTES = _terms.MAX_MINUTES
Query = _terms.Query
QueryError = _terms.QueryError
Term = _terms.Term
parse = _terms.parse
_CMP = _terms._CMP
_REL = _terms._REL
_duration = _terms._duration
_validate = _terms._validate
_when = _terms._when


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
            stmt = stmt.where(search_index.tickets_matching(pos))
        for w in neg:
            stmt = stmt.where(sa.not_(search_index.tickets_matching([w])))
    return stmt


def ticket_cond(
    filters: Query, dialect: Any, *, desk: Desk | None = None, session: Session | None = None
) -> tuple[str, dict[str, Any]]:
    """The filter terms of ``filters`` (not its words) as SQL text on the row ``ticket``, with
    its parameters (``:name``, values as the column types store them), for ``store.hits``'s
    queries in ``dialect`` (a SQLAlchemy dialect)."""
    where = apply_query(select(Ticket.id), Query([t for t in filters.terms if t.key not in ("", "phrase")]),
                        desk=desk, session=session).whereclause  # fmt: skip
    if where is None:
        return "1 = 1", {}
    named = type(dialect)(paramstyle="named")
    named.bind_typing = BindTyping.NONE  # ":name::VARCHAR" is no parameter for text()
    compiled = where.compile(dialect=named, compile_kwargs={"render_postcompile": True})
    params: dict[str, Any] = {}
    for name, value in compiled.construct_params().items():
        bind = compiled.binds.get(name)
        if bind is None:  # one value of an IN list: "status_1_2" of "status_1"
            bind = compiled.binds.get(name.rsplit("_", 1)[0])
        if bind is not None:
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                value = process(value)
        params[name] = value
    return f"({compiled.string})", params
