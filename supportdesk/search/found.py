"""What a search finds, shaped: the plan of a search (its words and its filter terms), the hits
of each kind merged and ranked, and each hit as a document with its highlighted title and
snippet. The SQL is ``store.hits``, run through a ``Run``: the full path (``search.search``)
in a SQLAlchemy session, the quick path of the command line (``cli.quick``) on a DB-API
connection. No SQLAlchemy, pydantic or model classes here.

Each hit is a dict::

    {"kind": "ticket"|"message"|"customer"|"kb", "id": int, "ticket_id": int|None,
     "title": str, "title_highlights": [[start, end], ...],
     "snippet": str, "highlights": [[start, end], ...], "score": float (higher is better),
     "when": ISO time, ...kind-specific fields}

Highlights are character offsets into ``title`` / ``snippet``; snippets hold no control
characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supportdesk.core.errors import BadInput
from supportdesk.search import terms as q
from supportdesk.search.highlight import count_hits, highlight
from supportdesk.store import fts, hits
from supportdesk.store.reads import Run, utc

KINDS = ("tickets", "messages", "customers", "kb")
DEFAULT_KINDS = ("tickets", "customers", "kb")
MAX_LIMIT = 500  # keep below WINDOW: a page is then always within the window
WINDOW = 2000  # matches scored per kind before looking further (see search())


@dataclass
class Plan:
    parsed: fts.Parsed
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


def check_page(limit: int, offset: int) -> None:
    if limit < 1 or limit > MAX_LIMIT:
        raise BadInput(f"the limit is between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise BadInput("the offset cannot be negative")


def plan(text: str) -> Plan:
    """Parse a search; BadInput with one sentence when there is nothing usable in it."""
    text = (text or "").replace("\x00", " ")
    parsed_q = q.parse(text)
    terms = [
        fts.make_term(t.value, phrase=t.key == "phrase", negated=t.negated) for t in parsed_q.words
    ]
    parsed = fts.Parsed(terms)
    try:
        fts.check_size(parsed)
    except fts.SearchSyntaxError as exc:
        raise BadInput(str(exc)) from None
    if not parsed.positive:
        raise BadInput(
            "nothing to search for: give at least one word of letters or digits "
            "(filters alone belong to `tickets list`)"
        )
    filters = q.Query([t for t in parsed_q.terms if t.key not in ("", "phrase")])
    return Plan(parsed, filters)


def kinds_of(kinds: Sequence[str] | None, p: Plan) -> list[str]:
    """The kinds of hits to look for (BadInput for an unknown one)."""
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
    run: Run,
    dialect: str,
    p: Plan,
    *,
    kinds: Sequence[str] | None = None,
    newest: bool = False,
    limit: int = 20,
    offset: int = 0,
    cond: hits.Cond | None = None,
) -> list[dict[str, Any]]:
    """Ranked hits (or newest first) for the plan ``p``; ``cond``: its filter terms as a
    condition on ``ticket`` (the caller's, see ``store.hits``)."""
    check_page(limit, offset)
    chosen = kinds_of(kinds, p)
    want = offset + limit
    terms = p.parsed.terms
    found: list[_Hit] = []
    try:
        # A word found in very many documents: rank the WINDOW newest matches of each kind
        # (fast; exact whenever a kind has fewer matches), and look further only when that
        # does not fill the page.
        window = WINDOW if want <= WINDOW // 2 else None
        fetchers: tuple[tuple[str, Callable[[int | None], list[hits.Hit]]], ...] = (
            ("tickets", lambda w: hits.ticket_hits(run, dialect, terms, want=want,
                                                   newest=newest, window=w, cond=cond)),
            ("messages", lambda w: hits.message_hits(run, dialect, terms, want=want,
                                                     newest=newest, window=w, cond=cond)),
            ("customers", lambda w: hits.customer_hits(run, dialect, terms, want=want,
                                                       newest=newest, window=w)),
            ("kb", lambda w: hits.kb_hits(run, dialect, terms, want=want, newest=newest,
                                          window=w)),
        )  # fmt: skip
        for kind, fetch in fetchers:
            if kind not in chosen:
                continue
            got = fetch(window)
            # a short page from a window means there is nothing further, except where rows
            # were filtered out after the window (tickets look further by themselves)
            if window is not None and len(got) < want and kind == "messages" and cond:
                got = fetch(None)
            found += [_Hit(kind[:-1] if kind != "kb" else "kb", i, sc, utc(w)) for i, sc, w in got]
    except fts.SearchSyntaxError as exc:
        raise BadInput(str(exc)) from None
    if newest:
        found.sort(key=lambda h: (h.when.timestamp() if h.when else 0.0, h.id), reverse=True)
    else:
        found.sort(key=lambda h: (h.score, -(h.when.timestamp() if h.when else 0.0)))
    return _render(run, p, found[offset : offset + limit])


# --------------------------------------------------------------------------- rendering


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _mark(
    text: str, marks: tuple[set[str], set[str]], width: int = 160
) -> tuple[str, list[list[int]]]:
    snippet, spans, _n = highlight(text, marks[0], marks[1], width=width)
    return snippet, [[a, b] for a, b in spans]


def _render(run: Run, p: Plan, page: list[_Hit]) -> list[dict[str, Any]]:
    marks = p.marks
    by_kind: dict[str, list[int]] = {}
    for h in page:
        by_kind.setdefault(h.kind, []).append(h.id)
    tickets = hits.tickets(run, by_kind.get("ticket", []))
    messages = hits.messages(run, by_kind.get("message", []))
    tickets.update(hits.tickets(run, [m[1] for m in messages.values()]))
    customers = hits.customers(run, by_kind.get("customer", []) +
                               [t[4] for t in tickets.values()])  # fmt: skip
    idents = hits.identities(run, list(customers))
    articles = hits.articles(run, by_kind.get("kb", []))
    best = _best_messages(run, p, by_kind.get("ticket", []))
    out: list[dict[str, Any]] = []
    for h in page:
        doc: dict[str, Any] = {"kind": h.kind, "id": h.id, "ticket_id": None,
                               "score": round(-h.score, 4) + 0.0, "when": _iso(h.when)}  # fmt: skip
        if h.kind == "ticket":
            tid, subject, status, channel, customer_id = tickets[h.id]
            cust = customers.get(customer_id)
            title, title_hl = _mark(subject, marks, width=300)
            msg = best.get(h.id)
            if msg is not None:
                snippet, hl = _mark(msg[3] or msg[2], marks)
                doc["message_id"] = msg[0]
            elif title_hl or cust is None:
                snippet, hl = "", []
                doc["message_id"] = None
            else:
                snippet, hl = _mark(_customer_line(cust, idents.get(cust[0] or 0, [])), marks)
                doc["message_id"] = None
            doc.update(ticket_id=tid, title=title, title_highlights=title_hl, snippet=snippet,
                       highlights=hl, status=status, channel=channel,
                       customer=cust[1] if cust else "")  # fmt: skip
        elif h.kind == "message":
            mid, ticket_id, subject, text, direction, author = messages[h.id]
            t = tickets.get(ticket_id)
            title, title_hl = _mark(subject or (t[1] if t else ""), marks, width=300)
            snippet, hl = _mark(text, marks)
            doc.update(ticket_id=ticket_id, title=title, title_highlights=title_hl,
                       snippet=snippet, highlights=hl, direction=direction, author=author,
                       status=t[2] if t else None)  # fmt: skip
        elif h.kind == "customer":
            c = customers[h.id]
            title, title_hl = _mark(c[1] or "(no name)", marks, width=300)
            ids = idents.get(h.id, [])
            snippet, hl = _mark(_customer_line(c, ids), marks, width=300)
            doc.update(
                title=title,
                title_highlights=title_hl,
                snippet=snippet,
                highlights=hl,
                identities=[{"kind": kind, "address": address} for kind, address, _d in ids],
            )
        else:
            _aid, a_title, body, slug, tags, public = articles[h.id]
            title, title_hl = _mark(a_title, marks, width=300)
            snippet, hl = _mark(body, marks)
            doc.update(
                title=title,
                title_highlights=title_hl,
                snippet=snippet,
                highlights=hl,
                slug=slug,
                tags=[x for x in tags.split(",") if x],
                public=bool(public),
            )
        out.append(doc)
    return out


def _customer_line(c: tuple[Any, ...], idents: list[tuple[str, str, str]]) -> str:
    """A customer's company, then each identity's display name (or address), then addresses."""
    parts = [c[2]] + [display or address for _k, address, display in idents]
    parts += [address for _k, address, _d in idents]
    seen: list[str] = []
    for x in parts:
        if x and x not in seen:
            seen.append(x)
    return " · ".join(seen)


def _best_messages(run: Run, p: Plan, ticket_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """The message of each ticket with the most matching words (the newest of equals), among
    its 50 newest messages: counted in Python, which beats asking the index per message."""
    if not ticket_ids:
        return {}
    exact, prefixes = p.marks
    seen: dict[int, int] = {}
    best: dict[int, tuple[int, int]] = {}
    for mid, tid, text in hits.recent_texts(run, ticket_ids):
        seen[tid] = seen.get(tid, 0) + 1
        if seen[tid] > 50:
            continue
        n = count_hits(text or "", exact, prefixes)
        if n and (tid not in best or n > best[tid][0]):
            best[tid] = (n, mid or 0)
    msgs = hits.messages(run, [mid for _n, mid in best.values()])
    return {tid: msgs[mid] for tid, (_n, mid) in best.items() if mid in msgs}
