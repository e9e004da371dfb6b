"""Business hours and holidays in the desk's time zone.

``[desk.hours]`` in config.toml names the open hours per weekday (``mon-fri = "09:00-18:00"``,
``sat = "10:00-14:00"``, ``"24:00"`` meaning midnight), a country calendar from the ``holidays``
package (``holidays = "RU"``) and extra closed dates (``extra_holidays = ["2026-12-31"]``).
Without ``[desk.hours]`` the desk is open around the clock and business time is wall time.

All arithmetic on instants is done in UTC, so a daylight-saving change inside an open window
counts the hours that really passed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from supportdesk.core.errors import ConfigError
from supportdesk.core.locations import cache_dir

if TYPE_CHECKING:
    from supportdesk.core.config import Config

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_MAX_DAYS = 3700  # ten years of calendar days: the longest any clock is walked


def _day_index(name: str, spec: str) -> int:
    key = name.strip().lower()[:3]
    if key not in DAYS:
        raise ConfigError(f"desk.hours: {spec!r} is not a day or day range such as mon-fri or sat")
    return DAYS.index(key)


def parse_days(spec: str) -> list[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"`` -> weekday numbers (Monday = 0)."""
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            ia, ib = _day_index(a, spec), _day_index(b, spec)
            out.extend(range(ia, ib + 1) if ia <= ib else [*range(ia, 7), *range(0, ib + 1)])
        else:
            out.append(_day_index(part, spec))
    return out


def parse_span(span: str) -> tuple[timedelta, timedelta]:
    """``"09:00-18:00"`` -> (opening, closing) as offsets from midnight."""
    m = _SPAN.fullmatch(span)
    if not m:
        raise ConfigError(f"desk.hours: {span!r} is not a time range such as 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
        raise ConfigError(f"desk.hours: {span!r} has a time that does not exist")
    start, end = timedelta(hours=h1, minutes=m1), timedelta(hours=h2, minutes=m2)
    if end <= start:
        raise ConfigError(f"desk.hours: {span!r} closes before it opens")
    return start, end


def _holidays_release() -> str | None:
    """The installed ``holidays`` distribution's dist-info folder name (its version), found
    without importing the package: None when it cannot be told (then nothing is cached)."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        if "holidays" in names:
            found = [n for n in names if n.startswith("holidays-") and n.endswith(".dist-info")]
            return found[0] if len(found) == 1 else None
    return None


def _calendar_file(country: str, year: int) -> Path | None:
    """Where a country's holidays of a year are cached for this ``holidays`` release: the
    user's cache folder (``$XDG_CACHE_HOME``, else ~/.cache), supportdesk/holidays/."""
    release = _holidays_release()
    if release is None or not re.fullmatch(r"[A-Z0-9_-]{1,16}", country):
        return None
    try:
        folder = cache_dir()
    except (RuntimeError, KeyError):  # no home folder to be found
        return None
    return folder / "holidays" / release / f"{country}-{year}.txt"


def _cached_calendar(path: Path) -> frozenset[date] | None:
    """The dates of a cache file this user wrote, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, encoding="ascii") as fh:
            if os.fstat(fh.fileno()).st_uid != os.geteuid():
                return None
            text = fh.read()
        lines = text.split("\n")
        if lines[-1] != "end":  # written whole, or not at all
            return None
        return frozenset(date.fromisoformat(line) for line in lines[:-1])
    except (OSError, ValueError):
        return None


def _store_calendar(path: Path, days: Iterable[date]) -> None:
    """Cache the dates (best effort: a folder this user cannot write just keeps computing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("".join(f"{d.isoformat()}\n" for d in sorted(days)) + "end")
        os.replace(tmp, path)
    except OSError:
        pass


@lru_cache(maxsize=64)
def _country_calendar(country: str, year: int) -> Container[date]:
    """The holidays of ``country`` (upper case) in ``year``. Building one imports every country
    the ``holidays`` package knows (0.15-0.4 s of CPU, more than a whole `report` on a small
    desk), so the dates are cached per ``holidays`` release in the user's cache folder; only
    a year's own dates are ever asked of it (``BusinessHours.is_holiday``)."""
    path = _calendar_file(country, year)
    cached = _cached_calendar(path) if path is not None else None
    if cached is not None:
        return cached
    import holidays as hol

    try:
        cal = hol.country_holidays(country, years=year)
    except NotImplementedError:
        raise ConfigError(
            f"desk.hours.holidays: {country!r} is not a known country calendar"
        ) from None
    if path is not None:
        _store_calendar(path, cal.keys())
    return cal


def check_country(country: str) -> None:
    """Raise ConfigError when the holidays package has no calendar for ``country``."""
    _country_calendar(country.strip().upper(), 2026)


@dataclass
class BusinessHours:
    tz: ZoneInfo
    week: dict[int, tuple[timedelta, timedelta]] = field(default_factory=dict)  # {} = always
    holidays: set[date] = field(default_factory=set)
    country: str | None = None

    @classmethod
    def from_config(cls, config: Config, channel: str | None = None) -> BusinessHours:
        """The desk's hours, or those of ``channel`` when it has its own ``[channel.hours]``."""
        hours = config.desk.hours
        for ch in config.channel:
            if channel is not None and ch.name == channel and ch.hours is not None:
                hours = ch.hours
        return cls.from_spec(config.desk.timezone, hours)

    @classmethod
    def from_spec(cls, timezone: str, hours: Any) -> BusinessHours:
        """The hours of an ``[desk.hours]``-like table (``core.config.HoursConfig``, or the
        quick path's ``core.quickconfig.QuickHours``: ``always``, ``holidays``,
        ``extra_holidays`` and ``weekly()``) in the zone named ``timezone``."""
        try:
            tz = ZoneInfo(timezone)
        except Exception:
            raise ConfigError(f"desk.timezone {timezone!r} is not a known time zone") from None
        if hours is None or hours.always:
            return cls(tz=tz)
        week: dict[int, tuple[timedelta, timedelta]] = {}
        for days, span in hours.weekly().items():
            window = parse_span(span)
            for weekday in parse_days(days):
                week[weekday] = window
        if not week:
            raise ConfigError(
                'desk.hours names no open days; add a line such as mon-fri = "09:00-18:00"'
            )
        extra: set[date] = set()
        for d in hours.extra_holidays:
            try:
                extra.add(date.fromisoformat(str(d)))
            except ValueError:
                raise ConfigError(
                    f"desk.hours.extra_holidays: {d!r} is not a date such as 2026-12-31"
                ) from None
        country = hours.holidays.strip().upper() if hours.holidays else None
        if country:
            check_country(country)
        return cls(tz=tz, week=week, holidays=extra, country=country)

    @property
    def always_open(self) -> bool:
        return not self.week

    def is_holiday(self, d: date) -> bool:
        if d in self.holidays:
            return True
        return bool(self.country) and d in _country_calendar(self.country or "", d.year)

    def window(self, d: date) -> tuple[datetime, datetime] | None:
        """The open window of a local date as UTC instants, or None when closed all day."""
        if self.always_open:
            start = datetime.combine(d, time(0), tzinfo=self.tz)
            return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
        span = self.week.get(d.weekday())
        if span is None or self.is_holiday(d):
            return None
        midnight = datetime.combine(d, time(0))
        opens = (midnight + span[0]).replace(tzinfo=self.tz).astimezone(UTC)
        closes = (midnight + span[1]).replace(tzinfo=self.tz).astimezone(UTC)
        return opens, closes

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        win = self.window(at.astimezone(self.tz).date())
        return win is not None and win[0] <= at.astimezone(UTC) < win[1]

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of business time has passed since ``start`` (UTC)."""
        start = start.astimezone(UTC)
        if self.always_open or duration <= timedelta(0):
            return start + max(duration, timedelta(0))
        remaining = duration
        day = self.local_date(start)
        for _ in range(_MAX_DAYS):
            win = self.window(day)
            if win is not None:
                lo = max(start, win[0])
                if lo < win[1]:
                    avail = win[1] - lo
                    if remaining <= avail:
                        return lo + remaining
                    remaining -= avail
            day += timedelta(days=1)
        raise ConfigError("desk.hours leaves no open time in the next ten years")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b`` (zero when ``b`` is not after ``a``)."""
        a, b = a.astimezone(UTC), b.astimezone(UTC)
        if b <= a:
            return timedelta(0)
        if self.always_open:
            return b - a
        total = timedelta(0)
        day, last = self.local_date(a), self.local_date(b)
        while day <= last:
            win = self.window(day)
            if win is not None:
                lo, hi = max(a, win[0]), min(b, win[1])
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total
