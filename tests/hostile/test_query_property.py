"""Property tests over the query language and search: any text gives results or one clear
QueryError/BadInput — never another exception, never SQL trouble — when compiled to SQL and run
against a small desk (the same path as `tickets list QUERY`, saved views and console search)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supportdesk.desk.desk import BadInput
from supportdesk.search.query import KEYS, QueryError, parse
from supportdesk.tickets.read import list_tickets
from tests.factories import inbound_email, ingest

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["open", "me", "none", ">=high", "<2h", ">2026-11-01", "breached", "email",
                     "telegram", "-1", "99999999999999999999", "1e9", "*", "%", "_", "'", '"',
                     "\\", "2026-13-45", ">=", "<", "NaN", "прин*", "ё", "\x00", "/x/", "a:b:c"]),
)  # fmt: skip
TERM = st.one_of(
    st.builds(lambda k, v, neg: f"{'-' if neg else ''}{k}:{v}", st.sampled_from(KEYS), VALUES,
              st.booleans()),
    st.builds(lambda w: f'"{w}"', st.text(max_size=15)),
    st.text(max_size=15),
    st.sampled_from(["AND", "OR", "NOT", "(", ")", "*", "^", "NEAR(a b)", '"', "-", "--", ":",
                     "status:", "-\"x\"", "принтер*", "a*b", "'; DROP TABLE ticket; --"]),
)  # fmt: skip
QUERIES = st.one_of(st.text(max_size=80), st.lists(TERM, max_size=6).map(" ".join))


@pytest.fixture
def small_desk(desk: Any) -> Iterator[Any]:
    ingest(desk, inbound_email(subject="Не работает принтер", text="Принтер не печатает"))
    ingest(desk, inbound_email(subject="Invoice question", sender_address="bob@example.com",
                               text="Where is my invoice?"))  # fmt: skip
    yield desk


def _run(desk: Any, text: str) -> None:
    try:
        parse(text)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
    try:
        with desk.db.read() as s:
            rows = list_tickets(s, desk, text, limit=20)
        assert all(r.id is not None for r in rows)
    except BadInput as exc:  # QueryError is a BadInput
        assert str(exc)


@SETTINGS
@given(text=QUERIES)
@example(text='"a\nb')
def test_any_query_lists_or_explains(small_desk: Any, text: str) -> None:
    _run(small_desk, text)


@SETTINGS
@given(text=QUERIES)
@example(text='"a\nb')  # an unclosed phrase with a line break: the message is one line
def test_any_search_finds_or_explains(small_desk: Any, text: str) -> None:
    from supportdesk.search.search import search

    try:
        with small_desk.db.read() as s:
            hits = search(s, small_desk, text, limit=10)
        assert isinstance(hits, list)
    except BadInput as exc:
        assert str(exc) and "\n" not in str(exc)


def test_known_words_still_find_their_tickets(small_desk: Any) -> None:
    """The property tests above would pass on a query engine that finds nothing: not this one."""
    with small_desk.db.read() as s:
        assert [t.subject for t in list_tickets(s, small_desk, "принтера")] == [
            "Не работает принтер"
        ]
        assert [t.subject for t in list_tickets(s, small_desk, "invoice -status:closed")] == [
            "Invoice question"
        ]
