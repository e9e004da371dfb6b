"""Business hours: weekends, holidays, spans, time zones and daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from supportdesk.core.config import Config, ConfigError
from supportdesk.sla.hours import BusinessHours, parse_days
from tests.sla.conftest import msk


def _hours(**hours: object) -> BusinessHours:
    cfg = Config.model_validate({"desk": {"timezone": "Europe/Moscow", "hours": hours}})
    return BusinessHours.from_config(cfg)


def test_parse_days_ranges_and_wraparound() -> None:
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("sat, sun") == [5, 6]
    assert parse_days("fri-mon") == [4, 5, 6, 0]
    with pytest.raises(ConfigError, match="mon-fri"):
        parse_days("weekdays")


def test_add_skips_the_evening_and_the_weekend() -> None:
    h = _hours(**{"mon-fri": "09:00-18:00"})
    # Friday 17:30 + 1 h of business time = Monday 09:30 (Moscow)
    assert h.add(msk(20, 17, 30), timedelta(hours=1)) == msk(23, 9, 30)
    # Saturday noon: the clock starts on Monday at 09:00
    assert h.add(msk(21, 12), timedelta(hours=1)) == msk(23, 10)
    # inside the window: plain addition
    assert h.add(msk(16, 10), timedelta(minutes=30)) == msk(16, 10, 30)


def test_between_counts_only_open_time() -> None:
    h = _hours(**{"mon-fri": "09:00-18:00"})
    assert h.between(msk(20, 17, 30), msk(23, 9, 45)) == timedelta(minutes=75)
    assert h.between(msk(21, 10), msk(22, 20)) == timedelta(0)  # a weekend
    assert h.between(msk(23, 10), msk(23, 9)) == timedelta(0)  # backwards
    assert h.between(msk(16, 0), msk(21, 0)) == timedelta(hours=45)  # a whole week


def test_country_holiday_and_extra_dates_are_closed() -> None:
    # 4 November 2026 (a Wednesday) is Unity Day in Russia
    h = _hours(**{"mon-fri": "09:00-18:00", "holidays": "RU"})
    assert h.is_holiday(msk(4, 12).date())
    assert h.between(msk(3, 17), msk(5, 9, 30)) == timedelta(minutes=90)
    assert h.add(msk(3, 17), timedelta(hours=2)) == msk(5, 10)
    extra = _hours(**{"mon-fri": "09:00-18:00", "extra_holidays": ["2026-11-17"]})
    assert extra.window(msk(17, 12).date()) is None
    assert extra.between(msk(16, 17), msk(18, 10)) == timedelta(hours=2)


def test_always_open_without_hours() -> None:
    h = BusinessHours.from_config(Config.model_validate({"desk": {"timezone": "UTC"}}))
    assert h.always_open
    a = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert h.add(a, timedelta(hours=5)) == a + timedelta(hours=5)
    assert h.between(a, a + timedelta(days=2)) == timedelta(days=2)


def test_daylight_saving_day_has_25_hours() -> None:
    cfg = Config.model_validate(
        {"desk": {"timezone": "Europe/Berlin", "hours": {"mon-sun": "00:00-24:00"}}}
    )
    h = BusinessHours.from_config(cfg)
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 25, 0, 0, tzinfo=berlin)  # clocks go back at 03:00
    end = datetime(2026, 10, 26, 0, 0, tzinfo=berlin)
    assert h.between(start, end) == timedelta(hours=25)
    assert h.add(start, timedelta(hours=25)) == end.astimezone(UTC)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon-fri": "9-18"}, "not a time range"),
        ({"mon-fri": "18:00-09:00"}, "closes before it opens"),
        ({"mon-fri": "09:00-25:00"}, "does not exist"),
        ({"someday": "09:00-18:00"}, "not a day"),
        ({"mon-fri": "09:00-18:00", "holidays": "XX"}, "not a known country calendar"),
        ({"mon-fri": "09:00-18:00", "extra_holidays": ["31.12.2026"]}, "not a date"),
        ({"holidays": "RU"}, "names no open days"),
    ],
)
def test_bad_hours_give_one_clear_sentence(hours: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _hours(**hours)


def test_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match="not a known time zone"):
        BusinessHours.from_config(Config.model_validate({"desk": {"timezone": "Mars/Olympus"}}))
