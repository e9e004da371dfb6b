"""A country's holiday calendar is cached per ``holidays`` release in the user's cache folder:
the same dates, and a later process answers without importing the package (building a calendar
imports every country it knows: 0.15-0.4 s of CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from supportdesk.sla import hours


def _file(country: str, year: int) -> Path:
    path = hours._calendar_file(country, year)
    assert path is not None
    return path


def test_the_cached_calendar_is_the_package_s() -> None:
    import holidays

    cache = Path(os.environ["XDG_CACHE_HOME"])
    hours._country_calendar.cache_clear()
    built = hours._country_calendar("RU", 2026)
    path = _file("RU", 2026)
    assert path.is_relative_to(cache) and path.is_file()
    assert (path.stat().st_mode & 0o777) == 0o600
    expected = set(holidays.country_holidays("RU", years=2026))
    assert expected and set(built) >= expected
    cached = hours._cached_calendar(path)
    assert cached == expected
    hours._country_calendar.cache_clear()
    assert hours._country_calendar("RU", 2026) == expected  # read back, not built


def test_a_later_process_does_not_import_holidays() -> None:
    hours._country_calendar.cache_clear()
    hours._country_calendar("RU", 2026)
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from supportdesk.sla.hours import BusinessHours\n"
        "class H:\n"
        "    always, holidays, extra_holidays = False, 'RU', []\n"
        "    def weekly(self): return {'mon-fri': '09:00-18:00'}\n"
        "b = BusinessHours.from_spec('Europe/Moscow', H())\n"
        "print(b.is_holiday(date(2026, 1, 7)), b.is_holiday(date(2026, 1, 12)),\n"
        "      'holidays' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_a_torn_or_foreign_cache_file_is_not_read() -> None:
    hours._country_calendar.cache_clear()
    hours._country_calendar("RU", 2026)
    path = _file("RU", 2026)
    whole = path.read_text(encoding="ascii")
    path.write_text(whole.removesuffix("end"), encoding="ascii")  # torn: no end marker
    assert hours._cached_calendar(path) is None
    path.write_text("2026-03-03\nend", encoding="ascii")
    assert hours._cached_calendar(path) == {date(2026, 3, 3)}
    link = path.with_name("RU-2031.txt")
    link.symlink_to(path)  # never through a link
    assert hours._cached_calendar(link) is None
    path.unlink()
    hours._country_calendar.cache_clear()
    assert date(2026, 1, 7) in hours._country_calendar("RU", 2026)  # built again
    assert path.read_text(encoding="ascii") == whole
