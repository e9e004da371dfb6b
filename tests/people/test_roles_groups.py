"""Agents, roles and refusals; groups, escalation and shift hand-over."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from supportdesk.inbound.ingest import ingest as ingest_in
from tests.factories import inbound_email
from tests.tickets.conftest import bad, ok, show, shown


def _team(cli: Callable[..., Any]) -> None:
    ok(
        cli(
            "agents",
            "add",
            "alice",
            "--role",
            "lead",
            "--display-name",
            "Alice A.",
            "--group",
            "first-line",
        )
    )
    ok(cli("agents", "add", "bob", "--role", "agent", "--group", "first-line"))
    ok(cli("agents", "add", "carol", "--group", "second-line", "--email", "carol@acme.test"))


def test_agents_add_and_list(cli: Callable[..., Any]) -> None:
    _team(cli)
    rows = json.loads(ok(cli("agents", "list", "--json")).stdout)
    assert [(r["name"], r["role"], r["group"]) for r in rows] == [
        ("alice", "lead", "first-line"),
        ("bob", "agent", "first-line"),
        ("carol", "agent", "second-line"),
    ]
    csv = ok(cli("agents", "list", "--csv")).stdout.splitlines()
    assert csv[0].startswith("name,display_name,role") and len(csv) == 4
    assert "Alice A." in ok(cli("agents", "list")).stdout
    bad(cli("agents", "add", "bob"), 5, "already exists")
    bad(cli("agents", "add", "dave", "--role", "boss"), 2, "agent or lead")
    bad(cli("agents", "add", "dave", agent="bob"), 4, "lead role", "bob")
    ok(cli("agents", "edit", "bob", "--role", "lead"))
    assert json.loads(ok(cli("agents", "list", "--json")).stdout)[1]["role"] == "lead"
    ok(cli("agents", "rm", "carol"))
    assert [r["name"] for r in json.loads(ok(cli("agents", "list", "--json")).stdout)] == [
        "alice",
        "bob",
    ]
    assert len(json.loads(ok(cli("agents", "list", "--all", "--json")).stdout)) == 3


def test_first_run_user_is_lead_then_plain_agents_are_refused(
    cli: Callable[..., Any], seeded: dict[str, int]
) -> None:
    a, b = str(seeded["a"]), str(seeded["b"])
    # an empty desk: the acting user may merge
    ok(cli("tickets", "merge", b, "--into", a, "--dry-run", "--different-customers"))
    _team(cli)
    bad(
        cli("tickets", "merge", b, "--into", a, agent="bob"),
        4,
        "merging tickets needs the lead role",
    )
    bad(cli("tickets", "merge", b, "--into", a, agent="stranger"), 4, "lead role")
    bad(
        cli("customers", "merge", "petr@example.ru", "--into", "ivan@example.ru", agent="bob"),
        4,
        "lead role",
    )
    bad(cli("customers", "unmerge", "1", agent="bob"), 4, "lead role")
    bad(cli("agents", "rm", "carol", agent="bob"), 4, "lead role")
    ok(cli("tickets", "merge", b, "--into", a, "--different-customers"))  # alice is a lead
    assert show(cli, seeded["b"])["status"] == "closed"


def test_bulk_over_fifty_needs_a_lead(cli: Callable[..., Any], desk: Any) -> None:
    with desk.db.write() as s:
        ids = [
            ingest_in(
                s,
                desk,
                inbound_email(
                    external_id=f"bulk{i}@x",
                    subject=f"Case {i}",
                    sender_address=f"c{i}@example.com",
                ),
            ).ticket_id
            for i in range(51)
        ]
    _team(cli)
    stdin = "\n".join(map(str, ids))
    bad(
        cli("tickets", "tag", "-", "--add", "x", input=stdin, agent="bob"),
        4,
        "over 51 tickets",
        "lead role",
    )
    ok(cli("tickets", "tag", "-", "--add", "x", input="\n".join(map(str, ids[:50])), agent="bob"))
    ok(cli("tickets", "tag", "-", "--add", "y", input=stdin))  # alice, a lead


def test_unknown_agent_is_not_found(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    _team(cli)
    bad(
        cli("tickets", "assign", str(seeded["a"]), "--to", "zed"),
        3,
        "no agent named 'zed'",
        "alice",
    )
    ok(cli("tickets", "assign", str(seeded["a"]), "--to", "bob"))
    assert show(cli, seeded["a"])["assignee"] == "bob"
    ok(cli("tickets", "assign", str(seeded["a"]), "--to", "none"))
    assert show(cli, seeded["a"])["assignee"] is None


def test_groups_escalate_and_query(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    _team(cli)
    ok(cli("groups", "add", "billing", "--title", "Billing team"))
    groups = json.loads(ok(cli("groups", "list", "--json")).stdout)
    assert [g["name"] for g in groups] == ["billing", "first-line", "second-line"]
    a = seeded["a"]
    ok(cli("tickets", "assign", str(a), "--to", "bob"))
    before = shown(desk, [a])
    ok(cli("tickets", "escalate", str(a), "--to", "second-line", "--note", "Needs the DB team"))
    doc = show(cli, a)
    assert doc["group"] == "second-line" and doc["assignee"] is None  # bob is first line
    note = doc["messages"][-1]
    assert (
        note["direction"] == "note"
        and "Escalated to second-line" in note["text"]
        and "Needs the DB team" in note["text"]
    )
    listed = json.loads(ok(cli("tickets", "list", "group:second-line", "--json")).stdout)
    assert [t["id"] for t in listed] == [a]
    assert a not in [
        t["id"] for t in json.loads(ok(cli("tickets", "list", "group:none", "--json")).stdout)
    ]
    bad(cli("tickets", "escalate", str(a), "--to", "third-line"), 3, "no group named 'third-line'")
    ok(cli("undo"))
    assert shown(desk, [a]) == before  # the note is gone too
    bad(cli("groups", "rm", "second-line", agent="bob"), 4, "lead role")
    bad(cli("groups", "rm", "second-line"), 5, "still has")
    ok(cli("groups", "rm", "billing"))


def test_handover_moves_open_tickets_with_a_note(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    _team(cli)
    a, b, c = seeded["a"], seeded["b"], seeded["c"]
    ok(cli("tickets", "assign", str(a), str(b), str(c), "--to", "bob"))
    ok(cli("tickets", "close", str(c)))
    before = shown(desk, [a, b, c])
    dry = json.loads(
        ok(
            cli("tickets", "handover", "--from", "bob", "--to", "carol", "--dry-run", "--json")
        ).stdout
    )
    assert dry["tickets"] == [a, b] and shown(desk, [a, b, c]) == before
    ok(cli("tickets", "handover", "--from", "bob", "--to", "carol", "--note", "Vendor call at 10"))
    for tid in (a, b):
        doc = show(cli, tid)
        assert doc["assignee"] == "carol"
        assert "Handed over from bob to carol" in doc["messages"][-1]["text"]
        assert "Vendor call at 10" in doc["messages"][-1]["text"]
    assert show(cli, c)["assignee"] == "bob"  # closed tickets stay
    bad(
        cli("tickets", "handover", "--from", "nobody", "--to", "carol"),
        3,
        "no agent named 'nobody'",
    )
    ok(cli("undo"))
    assert shown(desk, [a, b, c]) == before
