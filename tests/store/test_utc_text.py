"""``sqlite_utc_text`` gives the text SQLAlchemy's SQLite dialect stores for a UTCDateTime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.store.reads import sqlite_utc_text

_zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=3)), timezone(-timedelta(hours=9, minutes=30))]
)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), _zones)
def test_same_text_as_isoformat(value: datetime, zone: timezone | None) -> None:
    value = value.replace(tzinfo=zone)
    naive = value.astimezone(UTC).replace(tzinfo=None) if zone is not None else value
    assert sqlite_utc_text(value) == naive.isoformat(" ", "microseconds")


def test_none() -> None:
    assert sqlite_utc_text(None) is None


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    _zones,
    _zones,
)
def test_equal_times_have_equal_text(
    value: datetime, zone: timezone | None, other: timezone | None
) -> None:
    """What bulk writes' time cache (kept across tables and calls) relies on."""
    a = value.replace(tzinfo=zone)
    b = a.astimezone(other) if zone is not None and other is not None else a
    if a == b:
        assert sqlite_utc_text(a) == sqlite_utc_text(b)
