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

Long because: ranked and newest-first search over four kinds of documents, with snippets, is one
interface over one index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.identity import identities_of
from supportdesk.search import query as q
from supportdesk.search.highlight import count_hits, highlight
from supportdesk.search.index import ticket_ids_for_terms, tickets_with_term
from supportdesk.store import search as store
from supportdesk.store.models import Customer, Identity, KbArticle, Message, Ticket

KINDS = ("tickets", "messages", "customers", "kb")
DEFAULT_KINDS = ("tickets", "customers", "kb")
MAX_LIMIT = 500  # keep below WINDOW: a page is then always within the window
WINDOW = 2000  # matches scored per kind before looking further (see search())


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
            raise BadInput(
                f"the kind of result is one of {', '.join(KINDS)}, not {k!r}", field="kind"
            )
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
        # A word found in very many documents: rank the WINDOW newest matches of each kind
        # (fast; exact whenever a kind has fewer matches), and look further only when that
        # does not fill the page.
        window = WINDOW if want <= WINDOW // 2 else None
        for kind, fetch in (
            ("tickets", lambda w: _ticket_hits(session, desk, p, want, newest, w)),
            ("messages", lambda w: _message_hits(session, desk, p, want, newest, w)),
            ("customers", lambda w: _customer_hits(session, p, want, newest, w)),
            ("kb", lambda w: _kb_hits(session, p, want, newest, w)),
        ):
            if kind not in chosen:
                continue
            got = fetch(window)
            # a short page from a window means there is nothing further, except where rows
            # were filtered out after the window (tickets look further by themselves)
            if window is not None and len(got) < want and kind == "messages" and p.filters.terms:
                got = fetch(None)
            hits += got
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


def _hits_cte(kinds: list[int], terms: Sequence[store.Term], window: int | None) -> Any:
    """Matching documents with their scores, as a materialized CTE (bm25 must run in the query
    that does the MATCH). With a window, only the ``window`` newest matches of each kind are
    scored: the index walks each kind's rowid range backwards and stops there."""
    if window is None:
        return store.ranked_docs(kinds, terms).cte("hits").prefix_with("MATERIALIZED")
    parts = [
        store.ranked_docs([k], terms).order_by(store.doc.c.rowid.desc()).limit(window).subquery()
        for k in kinds
    ]
    if len(parts) == 1:
        stmt: Any = sa.select(parts[0].c.rowid, parts[0].c.score)
    else:
        stmt = sa.union_all(*(sa.select(x.c.rowid, x.c.score) for x in parts))
    return stmt.cte("hits").prefix_with("MATERIALIZED")


def _ticket_hits(
    session: Session, desk: Desk | None, p: Plan, want: int, newest: bool, window: int | None
) -> list[_Hit]:
    """Tickets with a subject or message holding every word (ranked by their best document),
    then tickets matching across documents or by their customer (newest first)."""
    hs = _hits_cte([store.KIND_TICKET, store.KIND_MESSAGE], p.parsed.terms, window)
    kind = store.kind_of(hs.c.rowid)
    ref = store.ref_of(hs.c.rowid)
    of_msg = select(Message.ticket_id).where(Message.id == ref).correlate(hs).scalar_subquery()
    tid = sa.case((kind == store.KIND_TICKET, ref), else_=of_msg)
    per = (
        sa.select(tid.label("tid"), sa.func.min(hs.c.score).label("score")).group_by(tid).subquery()
    )
    stmt: Any = select(Ticket.id, per.c.score, Ticket.updated_at).join(
        per, per.c.tid == col(Ticket.id)
    )
    stmt = _ticket_filters(session, desk, p, stmt)
    order = (
        [col(Ticket.updated_at).desc(), col(Ticket.id).desc()]
        if newest
        else [per.c.score, col(Ticket.updated_at).desc()]
    )
    rows = list(session.exec(stmt.order_by(*order).limit(want)).all())
    if len(rows) < want:
        # words spread over subject, messages and customer; or beyond the window
        found = {r[0] for r in rows}
        more: Any = select(Ticket.id, sa.literal(0.0), Ticket.updated_at).where(
            col(Ticket.id).in_(ticket_ids_for_terms(p.parsed.positive))
        )
        more = _ticket_filters(session, desk, p, more)
        more = more.order_by(col(Ticket.updated_at).desc(), col(Ticket.id).desc())
        for r in session.exec(more.limit(want + len(found))).all():
            if r[0] not in found and len(rows) < want:
                rows.append(r)
    return [_Hit("ticket", r[0], float(r[1]), r[2]) for r in rows]


def _ticket_filters(session: Session, desk: Desk | None, p: Plan, stmt: Any) -> Any:
    for t in p.parsed.negative:
        stmt = stmt.where(sa.not_(col(Ticket.id).in_(tickets_with_term(t))))
    if p.filters.terms:
        stmt = q.apply_query(stmt, p.filters, desk=desk, session=session)
    return stmt


def _message_hits(
    session: Session, desk: Desk | None, p: Plan, want: int, newest: bool, window: int | None
) -> list[_Hit]:
    hs = _hits_cte([store.KIND_MESSAGE], p.parsed.terms, window)
    stmt: Any = select(Message.id, hs.c.score, Message.created_at).join(
        hs, col(Message.id) == store.ref_of(hs.c.rowid)
    )
    if p.filters.terms:
        stmt = stmt.join(Ticket, col(Ticket.id) == col(Message.ticket_id))
        stmt = q.apply_query(stmt, p.filters, desk=desk, session=session)
    order = [col(Message.created_at).desc(), col(Message.id).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("message", r[0], float(r[1]), r[2]) for r in rows]


def _customer_hits(
    session: Session, p: Plan, want: int, newest: bool, window: int | None
) -> list[_Hit]:
    hs = _hits_cte([store.KIND_CUSTOMER], p.parsed.terms, window)
    stmt: Any = (
        select(Customer.id, hs.c.score, Customer.updated_at)
        .join(hs, col(Customer.id) == store.ref_of(hs.c.rowid))
        .where(col(Customer.merged_into_id).is_(None))
    )
    order = [col(Customer.updated_at).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("customer", r[0], float(r[1]), r[2]) for r in rows]


def _kb_hits(session: Session, p: Plan, want: int, newest: bool, window: int | None) -> list[_Hit]:
    hs = _hits_cte([store.KIND_KB], p.parsed.terms, window)
    stmt: Any = select(KbArticle.id, hs.c.score, KbArticle.updated_at).join(
        hs, col(KbArticle.id) == store.ref_of(hs.c.rowid)
    )
    order = [col(KbArticle.updated_at).desc()] if newest else [hs.c.score]
    rows = session.exec(stmt.order_by(*order).limit(want)).all()
    return [_Hit("kb", r[0], float(r[1]), r[2]) for r in rows]


# --------------------------------------------------------------------------- rendering


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _mark(
    text: str, marks: tuple[set[str], set[str]], width: int = 160
) -> tuple[str, list[list[int]]]:
    snippet, spans, _n = highlight(text, marks[0], marks[1], width=width)
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
    idents = identities_of(session, list(customers))
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


def _best_messages(session: Session, p: Plan, ticket_ids: list[int]) -> dict[int, Message]:
    """The message of each ticket with the most matching words (the newest of equals), among
    its 50 newest messages: counted in Python, which beats asking the index per message."""
    if not ticket_ids:
        return {}
    exact, prefixes = p.marks
    rows = session.exec(
        select(Message.id, Message.ticket_id, Message.text)
        .where(col(Message.ticket_id).in_(ticket_ids))
        .order_by(col(Message.id).desc())
    ).all()
    seen: dict[int, int] = {}
    best: dict[int, tuple[int, int]] = {}
    for mid, tid, text in rows:
        seen[tid] = seen.get(tid, 0) + 1
        if seen[tid] > 50:
            continue
        n = count_hits(text or "", exact, prefixes)
        if n and (tid not in best or n > best[tid][0]):
            best[tid] = (n, mid or 0)
    msgs = _load(session, Message, [mid for _n, mid in best.values()])
    return {tid: msgs[mid] for tid, (_n, mid) in best.items() if mid in msgs}


def rebuild_index(desk: Desk) -> int:
    """Re-create the whole index from the tables in one write transaction (after bulk loads)."""
    from supportdesk.search.index import rebuild

    with desk.db.write() as s:
        return rebuild(s)


def search_desk(
    desk: Desk,
    text: str,
    *,
    kinds: Sequence[str] | None = None,
    newest: bool = False,
    limit: int = 20,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """``search`` in a read transaction of its own (the CLI and the console call this)."""
    with desk.db.read() as session:
        return search(session, desk, text, kinds=kinds, newest=newest, limit=limit, offset=offset)
