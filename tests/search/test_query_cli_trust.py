"""The query language never ends in an internal error; negation works on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import inbound_email, ingest


def _ids(res: Any) -> list[int]:
    assert res.exit_code == 0, (res.exit_code, res.stdout, res.stderr)
    return sorted(t["id"] for t in json.loads(res.stdout))


@pytest.mark.parametrize(
    "term", ["sla:<99999999999999h", "created:>99999999999d", "updated:<999999999999w"]
)
def test_huge_durations_are_a_clear_error(cli: Callable[..., Any], term: str) -> None:
    res = cli("tickets", "list", term, "--json")
    assert res.exit_code == 2, (res.exit_code, res.stderr)
    assert "hundred years" in res.stderr and "internal error" not in res.stderr
    assert res.stderr.count("\n") == 1


def test_like_wildcards_match_literally(desk: Any, cli: Callable[..., Any]) -> None:
    ingest(desk, inbound_email(external_id="w1@x", sender_address="ann@x.test", sender_name="Ann"))
    ingest(desk, inbound_email(external_id="w2@x", sender_address="under_score@x.test",
                               sender_name="Pct 100% Ltd"))  # fmt: skip
    assert len(_ids(cli("tickets", "list", "customer:%", "--json"))) == 1  # only "100%"
    assert len(_ids(cli("tickets", "list", "customer:_", "--json"))) == 1  # only "under_score"


def test_negated_terms_on_the_command_line(desk: Any, cli: Callable[..., Any]) -> None:
    a = ingest(desk, inbound_email(external_id="n1@x", subject="Printer")).ticket_id
    b = ingest(desk, inbound_email(external_id="n2@x", sender_address="b@x.test",
                                   subject="Invoice")).ticket_id  # fmt: skip
    assert cli("tickets", "set", str(b), "--status", "pending").exit_code == 0
    assert _ids(cli("tickets", "list", "-status:pending", "--json")) == [a]
    assert _ids(cli("tickets", "list", "NOT", "status:pending", "--json")) == [a]
    assert _ids(cli("tickets", "list", "NOT status:pending", "--json")) == [a]
    assert _ids(cli("tickets", "list", "--json", "-n", "5", "-status:new")) == [b]
    res = cli("tickets", "list", "status:open", "NOT", "--json")
    assert res.exit_code == 2 and "NOT must be followed" in res.stderr
