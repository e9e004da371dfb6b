"""The one search interface: tickets (subjects, messages, attachment names, customers), single
messages, customers and knowledge-base articles, ranked, with highlighted snippets.

``search(session, desk, "принтер status:open")`` takes the query language: free words and
"quoted phrases" are searched (stemmed, Russian and English; ``прин*`` is a prefix; ``-word``
excludes), the other terms (status:, tag:, channel: ...) filter the tickets and messages found.

Each hit is a dict::

    {"kind": "ticket"|"message"|"customer"|"kb", "id": int, "ticket_id": int|None,
     "title": str, "title_highlights": [[start, end], ...],
     "snippet": str, "highlights": [[start, end], ...], "score": float (higher is better),
     "when": ISO time, ...kind-specific fields}

Highlights are character offsets into ``title`` / ``snippet``; snippets hold no control
characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.services import query as q
from supportdesk.services.desk import BadInput, Desk
from supportdesk.services.search_index import ticket_ids_for_terms
from supportdesk.store import search as store
from supportdesk.store.models import Customer, Identity, KbArticle, Message, Ticket

KINDS = ("tickets", "messages", "customers", "kb")
DEFAULT_KINDS = ("tickets", "customers", "kb")
MAX_LIMIT = 500


@dataclass
class Plan:
    parsed: store.Parsed
    filters: q.Query

    @property
    def marks(self) -> tuple[set[str], set[str]]:
        return self.parsed.all_stems()


@dataclass
class _Hit:
    kind: str
    id: int
    score: float
    when: datetime | None


def plan(text: str) -> Plan:
    """Parse a search; BadInput with one sentence when there is nothing usable in it."""
    text = (text or "").replace("\x00", " ")
    parsed_q = q.parse(text)
    terms = [
        store.make_term(t.value, phrase=t.key == "phrase", negated=t.negated)
        for t in parsed_q.words
    ]
    parsed = store.Parsed(terms)
    try:
        store.check_size(parsed)
    except store.SearchSyntaxError as exc:
        raise BadInput(str(exc)) from None
    if not parsed.positive:
        raise BadInput(
            "nothing to search for: give at least one word of letters or digits "
            "(filters alone belong to `tickets list`)"
        )
    filters = q.Query([t for t in parsed_q.terms if t.key not in ("", "phrase")])
    return Plan(parsed, filters)


def _kinds(kinds: Sequence[str] | None, p: Plan) -> list[str]:
    if not kinds:
        chosen = list(DEFAULT_KINDS)
        if p.filters.terms:
            chosen = ["tickets"]
        return chosen
    out = []
    for k in kinds:
        k = k.strip().lower()
        k = {"ticket": "tickets", "message": "messages", "customer": "customers"}.get(k, k)
        if k not in KINDS:
            raise BadInput(f"--kind is one of {', '.join(KINDS)}, not {k!r}")
        if k not in out:
            out.append(k)
    if p.filters.terms and any(k in ("customers", "kb") for k in out):
        raise BadInput("filters such as status: apply to tickets and messages, not customers or kb")
    return out


def search(
    session: Session,
    desk: Desk | None,
    text: str,
    *,
    kinds: Sequence[str] | None = None,
    newest: bool = False,
    limit: int = 20,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Ranked hits (or newest first) for ``text``; see the module docstring for their shape."""
    if limit < 1 or limit > MAX_LIMIT:
        raise BadInput(f"the limit is between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise BadInput("the offset cannot be negative")
    p = plan(text)
    chosen = _kinds(kinds, p)
    want = offset + limit
    hits: list[_Hit] = []
    try:
        if "tickets" in chosen:
            hits += _ticket_hits(session, desk, p, want, newest)
        if "messages" in chosen:
            hits += _message_hits(session, desk, p, want, newest)
        if "customers" in chosen:
            hits += _customer_hits(session, p, want, newest)
        if "kb" in chosen:
            hits += _kb_hits(session, p, want, newest)
    except store.SearchSyntaxError as exc:
        raise BadInput(str(exc)) from None
    except sa.exc.OperationalError as exc:  # an FTS error we did not foresee: still one sentence
        raise BadInput(f"the search could not run: {exc.orig}") from None
    if newest:
        hits.sort(key=lambda h: (h.when.timestamp() if h.when else 0.0, h.id), reverse=True)
    else:
        hits.sort(key=lambda h: (h.score, -(h.when.timestamp() if h.when else 0.0)))
    page = hits[offset : offset + limit]
    return _render(session, p, page)


# --------------------------------------------------------------------------- per kind


def _filtered_tickets(desk: Desk | None, session: Session, p: Plan) -> Any:
    return q.apply_query(select(Ticket.id), p.filters, desk=desk, session=session).correlate(None)


def _ticket_hits(
    session: Session, desk: Desk | None, p: Plan, want: int, newest: bool
) -> list[_Hit]:
    cand = ticket_ids_for_terms(p.parsed.positive)
    stmt: Any
    if newest:
        stmt = select(Ticket.id, sa.literal(0.0), Ticket.updated_at).where(col(Ticket.id).in_(cand))
        order: list[Any] = [col(Ticket.updated_at).desc(), col(Ticket.id).desc()]
    else:
        h = store.ranked_docs(
            [store.KIND_TICKET, store.KIND_MESSAGE], p.parsed.positive, any_of=True
        )
        # materialized: bm25() must run in the query that does the MATCH, not in the GROUP BY
        hs = h.cte("hits").prefix_with("MATERIALIZED")
        kind = store.kind_of(hs.c.rowid)
        ref = store.ref_of(hs.c.rowid)
        of_msg = select(Message.ticket_id).where(Message.id == ref).correlate(hs).scalar_subquery()
        tid = sa.case((kind == store.KIND_TICKET, ref), else_=of_msg)
        per = (
            sa.select(tid.label("tid"), sa.func.min(hs.c.score).label("score"))
            .group_by(tid)
            .subquery()
        )
        score = sa.func.coalesce(per.c.score, 0.0)
        stmt = (
            select(Ticket.id, score, Ticket.updated_at)
            .outerjoin(per, per.c.tid == Ticket.id)
            .where(col(Ticket.id).in_(cand))
        )
        order = [score, col(Ticket.updated_at).desc()]
    for t in p.parsed.negative:
        from supportdesk.services.search_index import tickets_with_term

        stmt = stmt.where(sa.not_(col(Ticket.id).in_(tickets_with_term(t))))
    if p.filters.terms:
        stmt = stmt.where(col(Ticket.id).in_(_filtered_tickets(desk, session, p)))
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("ticket", r[0], float(r[1]), r[2]) for r in rows]


def _message_hits(
    session: Session, desk: Desk | None, p: Plan, want: int, newest: bool
) -> list[_Hit]:
    hs = store.ranked_docs([store.KIND_MESSAGE], p.parsed.terms).subquery()
    stmt: Any = select(Message.id, hs.c.score, Message.created_at).join(
        hs, col(Message.id) == store.ref_of(hs.c.rowid)
    )
    if p.filters.terms:
        stmt = stmt.where(col(Message.ticket_id).in_(_filtered_tickets(desk, session, p)))
    order = [col(Message.created_at).desc(), col(Message.id).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("message", r[0], float(r[1]), r[2]) for r in rows]


def _customer_hits(session: Session, p: Plan, want: int, newest: bool) -> list[_Hit]:
    hs = store.ranked_docs([store.KIND_CUSTOMER], p.parsed.terms).subquery()
    stmt: Any = (
        select(Customer.id, hs.c.score, Customer.updated_at)
        .join(hs, col(Customer.id) == store.ref_of(hs.c.rowid))
        .where(col(Customer.merged_into_id).is_(None))
    )
    order = [col(Customer.updated_at).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("customer", r[0], float(r[1]), r[2]) for r in rows]


def _kb_hits(session: Session, p: Plan, want: int, newest: bool) -> list[_Hit]:
    hs = store.ranked_docs([store.KIND_KB], p.parsed.terms).subquery()
    stmt: Any = select(KbArticle.id, hs.c.score, KbArticle.updated_at).join(
        hs, col(KbArticle.id) == store.ref_of(hs.c.rowid)
    )
    order = [col(KbArticle.updated_at).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("kb", r[0], float(r[1]), r[2]) for r in rows]


def kb_article_ids(session: Session, text: str, *, limit: int = 20) -> list[int]:
    """KB article ids for a search, best first (``kb search``)."""
    return [h["id"] for h in search(session, None, text, kinds=["kb"], limit=limit)]


# --------------------------------------------------------------------------- rendering


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _mark(
    text: str, marks: tuple[set[str], set[str]], width: int = 160
) -> tuple[str, list[list[int]]]:
    snippet, spans, _n = store.highlight(text, marks[0], marks[1], width=width)
    return snippet, [[a, b] for a, b in spans]


def _render(session: Session, p: Plan, page: list[_Hit]) -> list[dict[str, Any]]:
    marks = p.marks
    by_kind: dict[str, list[int]] = {}
    for h in page:
        by_kind.setdefault(h.kind, []).append(h.id)
    tickets = _load(session, Ticket, by_kind.get("ticket", []))
    messages = _load(session, Message, by_kind.get("message", []))
    tickets.update(_load(session, Ticket, [m.ticket_id for m in messages.values()]))
    customers = _load(session, Customer, by_kind.get("customer", []) +
                      [t.customer_id for t in tickets.values()])  # fmt: skip
    idents = _identities(session, list(customers))
    articles = _load(session, KbArticle, by_kind.get("kb", []))
    best = _best_messages(session, p, by_kind.get("ticket", []))
    out: list[dict[str, Any]] = []
    for h in page:
        doc: dict[str, Any] = {"kind": h.kind, "id": h.id, "ticket_id": None,
                               "score": round(-h.score, 4) + 0.0, "when": _iso(h.when)}  # fmt: skip
        if h.kind == "ticket":
            t = tickets[h.id]
            cust = customers.get(t.customer_id)
            title, title_hl = _mark(t.subject, marks, width=300)
            msg = best.get(h.id)
            if msg is not None:
                snippet, hl = _mark(msg.text or msg.subject, marks)
                doc["message_id"] = msg.id
            elif title_hl or cust is None:
                snippet, hl = "", []
                doc["message_id"] = None
            else:
                snippet, hl = _mark(_customer_line(cust, idents.get(cust.id or 0, [])), marks)
                doc["message_id"] = None
            doc.update(ticket_id=t.id, title=title, title_highlights=title_hl, snippet=snippet,
                       highlights=hl, status=t.status, channel=t.channel,
                       customer=cust.name if cust else "")  # fmt: skip
        elif h.kind == "message":
            m = messages[h.id]
            t = tickets.get(m.ticket_id)
            title, title_hl = _mark(m.subject or (t.subject if t else ""), marks, width=300)
            snippet, hl = _mark(m.text, marks)
            doc.update(ticket_id=m.ticket_id, title=title, title_highlights=title_hl,
                       snippet=snippet, highlights=hl, direction=m.direction, author=m.author,
                       status=t.status if t else None)  # fmt: skip
        elif h.kind == "customer":
            c = customers[h.id]
            title, title_hl = _mark(c.name or "(no name)", marks, width=300)
            ids = idents.get(h.id, [])
            snippet, hl = _mark(_customer_line(c, ids), marks, width=300)
            doc.update(
                title=title,
                title_highlights=title_hl,
                snippet=snippet,
                highlights=hl,
                identities=[{"kind": i.kind, "address": i.address} for i in ids],
            )
        else:
            a = articles[h.id]
            title, title_hl = _mark(a.title, marks, width=300)
            snippet, hl = _mark(a.body, marks)
            doc.update(
                title=title,
                title_highlights=title_hl,
                snippet=snippet,
                highlights=hl,
                slug=a.slug,
                tags=[x for x in a.tags.split(",") if x],
                public=a.public,
            )
        out.append(doc)
    return out


def _customer_line(c: Customer, idents: list[Identity]) -> str:
    parts = [c.company] + [i.display or i.address for i in idents] + [i.address for i in idents]
    seen: list[str] = []
    for x in parts:
        if x and x not in seen:
            seen.append(x)
    return " · ".join(seen)


def _load(session: Session, model: Any, ids: list[int]) -> dict[int, Any]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {r.id: r for r in session.exec(select(model).where(col(model.id).in_(ids))).all()}


def _identities(session: Session, customer_ids: list[int]) -> dict[int, list[Identity]]:
    out: dict[int, list[Identity]] = {}
    if customer_ids:
        for i in session.exec(
            select(Identity)
            .where(col(Identity.customer_id).in_(customer_ids))
            .order_by(col(Identity.id))
        ).all():
            out.setdefault(i.customer_id, []).append(i)
    return out


def _best_messages(session: Session, p: Plan, ticket_ids: list[int]) -> dict[int, Message]:
    """The best-matching message of each ticket, looked up by document key (no full scan)."""
    if not ticket_ids:
        return {}
    rows = session.exec(
        select(Message.id, Message.ticket_id).where(col(Message.ticket_id).in_(ticket_ids))
    ).all()
    owner = {store.doc_key(store.KIND_MESSAGE, mid or 0): tid for mid, tid in rows}
    if not owner:
        return {}
    best: dict[int, tuple[float, int]] = {}
    keys = list(owner)
    for i in range(0, len(keys), 500):
        stmt = store.ranked_docs([store.KIND_MESSAGE], p.parsed.positive, any_of=True).where(
            store.doc.c.rowid.in_(keys[i : i + 500])
        )
        for rowid, score in session.exec(stmt).all():  # type: ignore[call-overload]
            tid = owner[rowid]
            if tid not in best or score < best[tid][0]:
                best[tid] = (float(score), rowid >> store.KIND_BITS)
    msgs = _load(session, Message, [mid for _s, mid in best.values()])
    return {tid: msgs[mid] for tid, (_s, mid) in best.items() if mid in msgs}


def rebuild_index(desk: Desk) -> int:
    """Re-create the whole index from the tables in one write transaction (after bulk loads)."""
    from supportdesk.services.search_index import rebuild

    with desk.db.write() as s:
        return rebuild(s)
