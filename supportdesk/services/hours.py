"""Business hours and holidays in the desk's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from supportdesk.config import Config, ConfigError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _parse_days(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.lower().split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            ia, ib = DAYS.index(a.strip()), DAYS.index(b.strip())
            out.extend(range(ia, ib + 1) if ia <= ib else [*range(ia, 7), *range(0, ib + 1)])
        else:
            out.append(DAYS.index(part))
    return out


@dataclass
class BusinessHours:
    tz: ZoneInfo
    week: dict[int, tuple[time, time]] = field(default_factory=dict)  # empty = always open
    holidays: set[date] = field(default_factory=set)
    country: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> BusinessHours:
        try:
            tz = ZoneInfo(config.desk.timezone)
        except Exception:
            raise ConfigError(f"desk.timezone {config.desk.timezone!r} is not a known time zone") from None
        hours = config.desk.hours
        if hours is None:
            return cls(tz=tz)
        week: dict[int, tuple[time, time]] = {}
        for days, span in hours.weekly().items():
            m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", span)
            try:
                idx = _parse_days(days)
            except ValueError:
                raise ConfigError(f"desk.hours: {days!r} is not a day range such as mon-fri") from None
            if not m:
                raise ConfigError(f"desk.hours: {span!r} is not a time range such as 09:00-18:00")
            start = time(int(m.group(1)), int(m.group(2)))
            end = time(23, 59, 59) if m.group(3) == "24" else time(int(m.group(3)), int(m.group(4)))
            for d in idx:
                week[d] = (start, end)
        extra = set()
        for d in hours.extra_holidays:
            try:
                extra.add(date.fromisoformat(d))
            except ValueError:
                raise ConfigError(f"desk.hours.extra_holidays: {d!r} is not a date") from None
        return cls(tz=tz, week=week, holidays=extra, country=hours.holidays)

    def _is_holiday(self, d: date) -> bool:
        if d in self.holidays:
            return True
        if self.country:
            import holidays as hol

            cal = _calendar(self.country, d.year)
            return d in cal
        return False

    def _window(self, d: date) -> tuple[datetime, datetime] | None:
        if d.weekday() not in self.week or self._is_holiday(d):
            return None
        start, end = self.week[d.weekday()]
        return (
            datetime.combine(d, start, tzinfo=self.tz),
            datetime.combine(d, end, tzinfo=self.tz),
        )

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of business time after ``start``."""
        if not self.week:
            return start + duration
        remaining = duration
        cur = start.astimezone(self.tz)
        for _ in range(3660):  # ten years of days at most
            win = self._window(cur.date())
            if win is not None:
                ws, we = win
                if cur < ws:
                    cur = ws
                if cur < we:
                    avail = we - cur
                    if remaining <= avail:
                        return (cur + remaining).astimezone(start.tzinfo)
                    remaining -= avail
            cur = datetime.combine(cur.date() + timedelta(days=1), time(0), tzinfo=self.tz)
        return start + duration

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time between two moments (zero when b <= a)."""
        if b <= a:
            return timedelta(0)
        if not self.week:
            return b - a
        total = timedelta(0)
        cur = a.astimezone(self.tz)
        end = b.astimezone(self.tz)
        while cur < end:
            win = self._window(cur.date())
            if win is not None:
                ws, we = win
                lo, hi = max(cur, ws), min(end, we)
                if hi > lo:
                    total += hi - lo
            cur = datetime.combine(cur.date() + timedelta(days=1), time(0), tzinfo=self.tz)
        return total


_CAL_CACHE: dict[tuple[str, int], object] = {}


def _calendar(country: str, year: int) -> object:
    key = (country.upper(), year)
    if key not in _CAL_CACHE:
        import holidays as hol

        try:
            _CAL_CACHE[key] = hol.country_holidays(country.upper(), years=year)
        except (KeyError, NotImplementedError):
            raise ConfigError(f"desk.hours.holidays: {country!r} is not a known country calendar") from None
    return _CAL_CACHE[key]
