"""`supportdesk report` and `supportdesk export-tickets` on a known history."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tests.sla.helpers import build_history

PERIOD = ["--since", "2026-11-16", "--until", "2026-11-20"]


def test_report_json_has_the_documented_keys(bdesk: Any, cli: Any) -> None:
    build_history(bdesk)
    res = cli("report", *PERIOD, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for key in ("tickets_created", "tickets_solved", "first_response_minutes", "resolution_minutes",
                "sla_breach_rate", "csat", "by_channel", "by_agent", "by_priority", "top_tags"):  # fmt: skip
        assert key in doc
    for key in ("first_response_minutes_calendar", "resolution_minutes_calendar",
                "first_contact_resolution", "reopened"):  # fmt: skip
        assert key in doc
    assert doc["first_response_minutes_calendar"]["median"] == 16.5  # both within hours
    assert set(doc["by_agent"]["alice"]) >= {"first_response_median", "resolution_median"}
    assert set(doc["first_response_minutes"]) >= {"median", "p90"}
    assert set(doc["resolution_minutes"]) >= {"median", "p90"}
    assert set(doc["csat"]) >= {"responses", "average"}
    assert doc["tickets_created"] == 3 and doc["tickets_solved"] == 2
    assert doc["first_response_minutes"]["median"] == 16.5  # 30 and 3 minutes
    assert doc["csat"]["average"] == 4.5
    assert doc["period"] == {"since": "2026-11-16", "until": "2026-11-20",
                             "timezone": "Europe/Moscow",
                             "as_of": "2026-11-20T21:00:00+00:00", "business_hours": True}  # fmt: skip


def test_report_csv_and_human_output(bdesk: Any, cli: Any) -> None:
    build_history(bdesk)
    res = cli("report", *PERIOD, "--csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    got = {(r["metric"], r["key"]): r["value"] for r in rows}
    assert got[("tickets_created", "")] == "3"
    assert got[("resolution_minutes", "median")] == "155.0"
    assert got[("by_channel", "telegram/created")] == "1"
    assert got[("top_tags", "billing")] == "2"
    res = cli("report", *PERIOD)
    assert res.exit_code == 0, res.output
    assert "Tickets created" in res.stdout and "billing" in res.stdout
    assert "16.5" in res.stdout


def test_report_bad_input_is_one_sentence(cli: Any) -> None:
    res = cli("report", "--since", "yesterday")
    assert res.exit_code == 2
    assert "not a date such as 2026-11-01" in res.stderr
    assert "Traceback" not in res.output
    res = cli("report", "--since", "2026-12-01", "--until", "2026-11-01")
    assert res.exit_code == 2 and "after it ends" in res.stderr and "(--since)" in res.stderr
    assert cli("report", "--json", "--csv").exit_code == 2


def test_export_tickets_csv(bdesk: Any, cli: Any) -> None:
    ids = build_history(bdesk)
    res = cli("export-tickets", "tag:billing", "--csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [int(r["id"]) for r in rows] == [ids["t2"], ids["t1"]]
    assert rows[0]["tags"] == "billing,complaint"
    assert rows[1]["csat_comment"] == "great"
    same = cli("export-tickets", "--tag", "billing")
    assert same.stdout == res.stdout
    bot = json.loads(cli("export-tickets", "--tag", "bot", "--json").stdout)
    assert [r["id"] for r in bot] == [ids["t5"]]
    assert cli("export-tickets", "status:nonsense").exit_code == 2


def test_help_has_examples(cli: Any) -> None:
    for cmd in ("report", "export-tickets"):
        res = cli(cmd, "--help")
        assert res.exit_code == 0 and "Example: supportdesk" in res.stdout
