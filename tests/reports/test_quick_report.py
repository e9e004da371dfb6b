"""`report` on the command line's quick path (cli/quick.py, runner/quick.py) prints exactly what
the full typer path prints, loads none of the heavy modules, and steps aside whenever it cannot
be sure (a bad date or period, hours the quick config does not read as the validation did).

The desk is the bounded report's varied desk (tests/reports/test_bounded.py: seeded tickets
without events, live history, reopens, a merge, spam, CSAT, late deliveries) in Moscow business
hours with Russian holidays, and a channel with its own hours. In the postgres run the desk's
config names its PostgreSQL database, so the quick path runs over libpq.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supportdesk.cli.quick import parse
from tests.conftest import TEST_BACKEND
from tests.reports.test_bounded import _varied_desk
from tests.sla.conftest import BUSINESS_CONFIG

TELEGRAM = 'token_env = "TEST_TG_TOKEN"\n'
# the telegram channel keeps its own hours (BusinessHours.from_config(config, "telegram"))
OWN_HOURS = TELEGRAM + 'hours = { mon-sat = "08:00-20:00", extra_holidays = ["2026-11-18"] }\n'
PERIODS = [
    ["--since", "2026-11-01", "--until", "2026-11-30"],
    ["--since=2026-11-16", "--until=2026-11-20"],
    ["--until", "2026-11-12"],  # 30 days up to it
    ["--since", "2026-10-01", "--until", "2026-10-31"],
    ["--since", "2025-01-01", "--until", "2025-01-31"],  # before anything
]


def _env(**more: str) -> dict[str, str]:
    """The environment without the postgres run's SUPPORTDESK_DB (which turns the quick path
    off): the desk's config names its database there."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUPPORTDESK_DB", "SUPPORTDESK_QUICK")}
    return {**env, **more}


def _config(text: str, request: pytest.FixtureRequest) -> str:
    """The config's text, naming the test's PostgreSQL database in the postgres run."""
    if TEST_BACKEND != "postgres":
        return text
    url = request.getfixturevalue("pg_url")
    assert "\n[desk]\n" in text, text[:40]
    return text.replace("\n[desk]\n", f'\n[desk]\ndatabase_url = "{url}"\n', 1)


def _run(home: Path, *args: str, quick: bool) -> tuple[int, str, str]:
    env = _env(COLUMNS="100", TZ="UTC")
    if not quick:
        env["SUPPORTDESK_QUICK"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def varied(bdesk: Any, request: pytest.FixtureRequest) -> Path:
    _varied_desk(bdesk)
    text = _config(BUSINESS_CONFIG.replace(TELEGRAM, OWN_HOURS), request)
    assert OWN_HOURS in text
    (bdesk.home / "config.toml").write_text(text, encoding="utf-8")
    # the full validation stamps the config the quick path reads (core/quickconfig.py)
    code, _out, err = _run(bdesk.home, "status", quick=False)
    assert code == 0, err
    return Path(bdesk.home)


def _quick_code(home: Path, *argv: str) -> Any:
    """What ``cli.quick.quick`` answers, in a fresh interpreter: 0 when it printed the report,
    None when it left the command to the full path; and the heavy modules it loaded."""
    code = (
        "import json, sys\n"
        "from supportdesk.cli.quick import quick\n"
        "got = quick(['--home', sys.argv[1], *sys.argv[2:]])\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer', 'alembic',\n"
        "         'supportdesk.store.models', 'supportdesk.core.config')\n"
        "print(json.dumps([got, sorted(m for m in heavy if m in sys.modules)]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(home), *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=_env(TZ="UTC"),
    )
    assert done.returncode == 0, done.stderr
    import json

    return json.loads(done.stderr.strip().splitlines()[-1])


def test_quick_report_prints_what_the_full_path_prints(varied: Path) -> None:
    for period in PERIODS:
        for out in (["--json"], ["--csv"], []):
            full = _run(varied, "report", *period, *out, quick=False)
            quick = _run(varied, "report", *period, *out, quick=True)
            assert full[0] == 0, full[2]
            assert quick == full, (period, out)
    # the document is the varied one (not an empty desk's)
    code, out, _err = _run(varied, "report", *PERIODS[0], "--json", quick=True)
    assert code == 0 and '"tickets_solved": 0' not in out and '"reopened"' in out


def test_quick_report_loads_no_heavy_module(varied: Path) -> None:
    for argv in (["report", "--json", *PERIODS[0]], ["report", "--csv", *PERIODS[1]],
                 ["report", *PERIODS[2]]):  # fmt: skip
        assert _quick_code(varied, *argv) == [0, []], argv


def test_what_the_quick_path_does_not_take(varied: Path) -> None:
    # the full path's own messages: bad dates, both outputs, unknown options, a reversed period
    for argv in (
        ["report", "--since", "yesterday"],
        ["report", "--json", "--csv"],
        ["report", "--json", "--json"],
        ["report", "--days", "7"],
        ["report", "--help"],
    ):
        assert parse(argv) is None, argv
    assert parse(["report", "--since", " 2026-11-01 ", "--json"]) == (
        "report",
        {},
        {"--since": " 2026-11-01 ", "--json": ""},
    )
    assert (
        _quick_code(varied, "report", "--since", "2026-12-01", "--until", "2026-11-01")[0] is None
    )
    code, out, err = _run(varied, "report", "--since", "2026-12-01", "--until", "2026-11-01",
                          quick=True)  # fmt: skip
    assert code == 2 and out == "" and "after it ends" in err and "Traceback" not in err
    code, _out, err = _run(varied, "report", "--since", "2026-13-01", quick=True)
    assert code == 2 and "not a date such as 2026-11-01" in err


def test_hours_the_quick_config_does_not_read_take_the_full_path(varied: Path) -> None:
    # the validation reads "yes" as true (pydantic's lax bool); the quick config does not guess
    text = (varied / "config.toml").read_text(encoding="utf-8")
    (varied / "config.toml").write_text(
        text.replace(OWN_HOURS, TELEGRAM + 'hours = { always = "yes" }\n'), encoding="utf-8"
    )
    full = _run(varied, "report", *PERIODS[0], "--json", quick=False)  # stamps the new text
    assert full[0] == 0, full[2]
    assert _quick_code(varied, "report", *PERIODS[0], "--json")[0] is None
    assert _run(varied, "report", *PERIODS[0], "--json", quick=True) == full
