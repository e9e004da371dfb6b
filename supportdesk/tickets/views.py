"""Queue views for the console: the sidebar's views with counts, saved searches, and paging.

A view is a name and a query in the query language (services/query.py). The built-in views are
the same for everyone; saved searches live in the SavedView table, per agent or shared by the
desk (agent ""). The queue pages through a view ``PAGE`` rows at a time so that a list of
100,000 tickets costs no more than the rows on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.identity import identities_of
from supportdesk.search.query import apply_query, parse
from supportdesk.store import tally
from supportdesk.store.models import Agent, Customer, Message, SavedView, Ticket
from supportdesk.tickets.read import queue_order, tags_of

PAGE = 200
AT_RISK = "2h"  # "SLA at risk": open with a deadline within this, or already past


@dataclass(frozen=True)
class View:
    key: str  # stable id: "unassigned", "channel:support", "saved:12"
    name: str  # English; the console translates built-in names by key
    query: str
    saved: bool = False
    shared: bool = False


@dataclass
class QueueRow:
    """What one line of the queue shows."""

    id: int
    channel: str
    kind: str
    customer: str
    subject: str
    status: str
    priority: str
    assignee: str
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    due_at: datetime | None = None
    sla_breached: bool = False
    message_count: int = 0
    snoozed_until: datetime | None = None


def builtin_views(desk: Desk) -> list[View]:
    views = [
        View("unassigned", "Unassigned", "is:open is:unassigned"),
        View("mine", "Mine", "is:open assignee:me"),
        View("open", "All open", "is:open"),
        View("pending", "Pending", "status:pending"),
        View("solved", "Solved", "status:solved"),
    ]
    for ch in desk.config.channel:
        views.append(View(f"channel:{ch.name}", ch.name, f"is:open channel:{ch.name}"))
    views.append(View("at-risk", "SLA at risk", f"sla:<{AT_RISK}"))
    return views


def _saved_views(session: Session, desk: Desk) -> list[View]:
    rows = session.exec(
        select(SavedView)
        .where(col(SavedView.agent).in_([desk.agent, ""]))
        .order_by(col(SavedView.position), col(SavedView.name))
    ).all()
    return [View(f"saved:{r.id}", r.name, r.query, saved=True, shared=r.agent == "") for r in rows]


def all_views(desk: Desk) -> list[View]:
    with desk.db.read() as session:
        return builtin_views(desk) + _saved_views(session, desk)


def count(desk: Desk, query: str) -> int:
    """How many tickets match (one COUNT query)."""
    with desk.db.read() as session:
        return _count(session, desk, query)


def total(desk: Desk, query: str) -> int:
    """How many tickets match: the number ``count`` gives, read from the ticket tally when the
    filter names only what the tally keeps (see ``counts``), else one COUNT query."""
    with desk.db.read() as session:
        q = parse(query)
        if not q.words:
            where = apply_query(sa.select(col(Ticket.id)), q, desk=desk, session=session)
            try:
                return tally.count_many(session.connection(), [where.whereclause])[0]
            except tally.NotTallied:
                pass
        return _count(session, desk, query)


def _count(session: Session, desk: Desk, query: str) -> int:
    stmt = apply_query(select(func.count()).select_from(Ticket), query, desk=desk, session=session)
    return int(session.exec(stmt).one())


def counts(desk: Desk, views: list[View]) -> dict[str, int | None]:
    """Each view's count; a saved view whose query no longer parses counts as None.

    A view that filters only on what the ticket tally keeps (status, channel, kind, assignee,
    priority, group, spam, snooze: every built-in view but "SLA at risk") is counted on the
    tally (store/tally.py): its own filter, the clause ``count`` uses, evaluated on a few
    hundred rows kept by triggers, plus the snoozed tickets. Any other view gets its own COUNT
    (``count``), which an index may answer ("SLA at risk": ``ix_ticket_status_due``).
    """
    out: dict[str, int | None] = {}
    with desk.db.read() as session:
        tallied: list[tuple[str, Any]] = []
        rest: list[View] = []
        for v in views:
            try:
                q = parse(v.query)
                if q.words:
                    rest.append(v)
                    continue
                where = apply_query(sa.select(col(Ticket.id)), q, desk=desk, session=session)
            except BadInput:
                out[v.key] = None
                continue
            clause = where.whereclause
            try:
                if clause is not None:
                    tally.on_tally(clause)
            except tally.NotTallied:
                rest.append(v)
                continue
            tallied.append((v.key, clause))
        if tallied:
            got = tally.count_many(session.connection(), [c for _k, c in tallied])
            out.update(zip([k for k, _c in tallied], got, strict=True))
        for v in rest:
            try:
                out[v.key] = _count(session, desk, v.query)
            except BadInput:
                out[v.key] = None
    return {v.key: out[v.key] for v in views if v.key in out}


def _row_select() -> Any:
    columns: list[Any] = [
        Ticket.id, Ticket.channel, Ticket.kind, Ticket.subject, Ticket.status,
        Ticket.priority, Ticket.created_at, Ticket.updated_at, Ticket.due_at,
        Ticket.sla_breached, Ticket.message_count, Ticket.snoozed_until,
        Customer.name, Customer.id, Agent.name,
    ]  # fmt: skip
    return (
        sa.select(*columns)
        .join(Customer, col(Customer.id) == col(Ticket.customer_id))
        .outerjoin(Agent, col(Agent.id) == col(Ticket.assignee_id))
    )


def _rows(session: Session, stmt: Any) -> list[QueueRow]:
    raw = session.execute(stmt).all()
    ids = [r[0] for r in raw]
    tags = tags_of(session, ids)
    nameless = sorted({r[13] for r in raw if not (r[12] or "").strip()})
    addresses = {
        cid: idents[0].display or idents[0].address
        for cid, idents in identities_of(session, nameless).items()
    }
    return [
        QueueRow(
            id=r[0],
            channel=r[1],
            kind=r[2],
            subject=r[3],
            status=r[4],
            priority=r[5],
            created_at=r[6],
            updated_at=r[7],
            due_at=r[8],
            sla_breached=bool(r[9]),
            message_count=r[10],
            snoozed_until=r[11],
            customer=(r[12] or "").strip() or addresses.get(r[13], ""),
            assignee=r[14] or "",
            tags=tags.get(r[0], []),
        )  # fmt: skip
        for r in raw
    ]


def page(desk: Desk, query: str, offset: int, limit: int = PAGE) -> list[QueueRow]:
    """Rows ``offset .. offset+limit`` of the view in queue order (hot first)."""
    with desk.db.read() as session:
        stmt = apply_query(_row_select(), query, desk=desk, session=session)
        stmt = stmt.order_by(*queue_order()).offset(max(offset, 0)).limit(limit)
        return _rows(session, stmt)


def ordered_ids(desk: Desk, query: str) -> list[int]:
    """Every matching ticket id in queue order: fetched once, then pages go by id."""
    with desk.db.read() as session:
        stmt = apply_query(select(Ticket.id), query, desk=desk, session=session).order_by(
            *queue_order()
        )
        return [int(i) for i in session.exec(stmt).all() if i is not None]


def rows_by_ids(desk: Desk, ids: list[int]) -> list[QueueRow]:
    """Queue rows of these tickets, in the order given (tickets gone since are left out)."""
    with desk.db.read() as session:
        if not ids:
            return []
        found = {r.id: r for r in _rows(session, _row_select().where(col(Ticket.id).in_(ids)))}
        return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class Pulse:
    """A cheap fingerprint of the desk: when it changes, the console reloads."""

    last_update: datetime | None
    last_ticket: int
    last_message: int


def pulse(desk: Desk) -> Pulse:
    """The fingerprint, in one statement of three single-aggregate subqueries: each is one index
    (or rowid) look-up. ``max(updated_at), max(id)`` in one SELECT is no min/max query to
    SQLite: it scanned the whole ``ix_ticket_updated_at`` (75 ms of CPU at 1M tickets, each
    second the console polls)."""
    with desk.db.read() as session:
        upd, tid, mid = session.execute(
            sa.select(
                sa.select(func.max(Ticket.updated_at)).scalar_subquery(),
                sa.select(func.max(Ticket.id)).scalar_subquery(),
                sa.select(func.max(Message.id)).scalar_subquery(),
            )
        ).one()
        if isinstance(upd, str):  # func.max bypasses the column type on SQLite
            upd = datetime.fromisoformat(upd)
        return Pulse(upd, int(tid or 0), int(mid or 0))


def new_tickets_since(desk: Desk, ticket_id: int, limit: int = 20) -> list[tuple[int, str]]:
    with desk.db.read() as session:
        rows = session.exec(
            select(Ticket.id, Ticket.subject)
            .where(col(Ticket.id) > ticket_id)
            .order_by(col(Ticket.id))
            .limit(limit)
        ).all()
        return [(int(i or 0), s) for i, s in rows]


def save_view(desk: Desk, name: str, query: str, *, shared: bool = False) -> View:
    """Save a search under a name (replacing this agent's view of that name)."""
    with desk.db.write() as session:
        name = name.strip()
        if not name:
            raise BadInput("a saved view needs a name")
        if len(name) > 60:
            raise BadInput("a saved view name is at most 60 characters")
        parse(query)  # a bad query is refused now, not when the view is opened
        owner = "" if shared else desk.agent
        row = session.exec(
            select(SavedView).where(SavedView.agent == owner, SavedView.name == name)
        ).first()
        before: dict[str, Any] | None = None
        if row is None:
            top = session.exec(select(func.max(SavedView.position))).one()
            row = SavedView(agent=owner, name=name, query=query, position=int(top or 0) + 1)
        else:
            before = {"query": row.query}
            row.query = query
        session.add(row)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(f"a view named {name!r} was just saved by someone else") from None
        events.record(session, "view_saved", agent=desk.agent, before=before,
                      after={"name": name, "query": query, "shared": shared})  # fmt: skip
        return View(f"saved:{row.id}", row.name, row.query, saved=True, shared=shared)


def delete_view(desk: Desk, name: str) -> None:
    with desk.db.write() as session:
        row = session.exec(
            select(SavedView)
            .where(SavedView.name == name, col(SavedView.agent).in_([desk.agent, ""]))
            .order_by(sa.desc(SavedView.agent))
        ).first()
        if row is None:
            raise NotFound(f"there is no saved view named {name!r}")
        session.delete(row)
        events.record(session, "view_deleted", agent=desk.agent,
                      before={"name": row.name, "query": row.query})  # fmt: skip


@dataclass(frozen=True)
class Article:
    id: int
    title: str
    body: str
    tags: str
    suggested: bool = False


def kb_choices(desk: Desk, ticket_id: int | None, limit: int = 500) -> list[Article]:
    """Knowledge-base articles for the composer: suggestions for the ticket first
    (``replies.kb.suggest_for_ticket``), then the rest by title."""
    with desk.db.read() as session:
        from supportdesk.store.models import KbArticle

        suggested: list[int] = []
        if ticket_id is not None:
            from supportdesk.replies.kb import suggest_for_ticket

            try:
                suggested = [
                    int(hit["id"])
                    for hit in suggest_for_ticket(session, desk, ticket_id)
                    if hit.get("kind") == "kb"
                ]
            except BadInput:
                suggested = []
        rows = list(
            session.exec(select(KbArticle).order_by(col(KbArticle.title)).limit(limit)).all()
        )
        by_id = {r.id: r for r in rows}
        for sid in suggested:
            if sid not in by_id:
                art = session.get(KbArticle, sid)
                if art is not None:
                    by_id[sid] = art
        out = [Article(sid, by_id[sid].title, by_id[sid].body, by_id[sid].tags, True)
               for sid in dict.fromkeys(suggested) if sid in by_id]  # fmt: skip
        seen = {a.id for a in out}
        out += [Article(r.id or 0, r.title, r.body, r.tags) for r in rows if r.id not in seen]
        return out
