"""The one search interface: tickets (subjects, messages, attachment names, customers), single
messages, customers and knowledge-base articles, ranked, with highlighted snippets.

``search(session, desk, "принтер status:open")`` takes the query language: free words and
"quoted phrases" are searched (stemmed, Russian and English; ``прин*`` is a prefix; ``-word``
excludes), the other terms (status:, tag:, channel: ...) filter the tickets and messages found.

The search itself (its SQL in ``store.hits``, the ranking and the hits' documents in
``search.found``) is shared with the command line's quick path; this module runs it in a
session and adds the filter terms, which the query language turns into SQL here
(``search.query.ticket_cond``). See ``search.found`` for the shape of a hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from supportdesk.desk.desk import Desk
from supportdesk.search import found
from supportdesk.search.found import DEFAULT_KINDS, KINDS, MAX_LIMIT, WINDOW, Plan, plan
from supportdesk.search.query import ticket_cond
from supportdesk.store.db import session_run

__all__ = ["DEFAULT_KINDS", "KINDS", "MAX_LIMIT", "WINDOW", "Plan", "plan", "search"]


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
    """Ranked hits (or newest first) for ``text``; see ``search.found`` for their shape."""
    from supportdesk.core.errors import BadInput

    found.check_page(limit, offset)
    p = plan(text)
    dialect = session.get_bind().dialect
    cond = None
    if p.filters.terms:
        found.kinds_of(kinds, p)  # an unknown kind is told before a bad filter value
        cond = ticket_cond(p.filters, dialect, desk=desk, session=session)
    try:
        return found.search(
            session_run(session), dialect.name, p, kinds=kinds, newest=newest, limit=limit,
            offset=offset, cond=cond,
        )  # fmt: skip
    except sa.exc.OperationalError as exc:  # an FTS error we did not foresee: still one sentence
        raise BadInput(f"the search could not run: {exc.orig}") from None


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
