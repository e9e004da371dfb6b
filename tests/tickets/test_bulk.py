"""Bulk triage over IDs and pipes, dry-run, and undo restoring exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Event, Journal
from tests.factories import inbound_email, ingest
from tests.tickets.conftest import bad, ok, show, shown, snapshot_all


def test_pipe_list_json_into_tag(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    listed = ok(cli("tickets", "list", "invoice", "--json"))
    ids = sorted(t["id"] for t in json.loads(listed.stdout))
    assert ids == sorted([seeded["b"], seeded["c"]])
    ok(cli("tickets", "tag", "-", "--add", "Billing", "--add", "q4", input=listed.stdout))
    for tid in ids:
        assert show(cli, tid)["tags"] == ["billing", "q4"]
    assert show(cli, seeded["a"])["tags"] == []
    # and the query language sees them
    tagged = json.loads(ok(cli("tickets", "list", "tag:billing", "--json")).stdout)
    assert sorted(t["id"] for t in tagged) == ids


def test_stdin_accepts_plain_ids_and_json_lines(
    cli: Callable[..., Any], seeded: dict[str, int]
) -> None:
    ok(cli("tickets", "tag", "-", "--add", "x", input=f"{seeded['a']}, #{seeded['b']}\n"))
    lines = "\n".join(json.dumps({"id": seeded[k], "subject": "s"}) for k in ("c", "tg"))
    ok(cli("tickets", "tag", "-", "--add", "y", input=lines))
    assert show(cli, seeded["a"])["tags"] == ["x"]
    assert show(cli, seeded["tg"])["tags"] == ["y"]


def test_malformed_stdin_is_one_sentence(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    bad(
        cli("tickets", "tag", "-", "--add", "x", input="12 banana"),
        2,
        "'banana'",
        "not a ticket ID",
    )
    bad(
        cli("tickets", "tag", "-", "--add", "x", input='[{"subject": "no id"}]'),
        2,
        'without an "id"',
    )
    bad(cli("tickets", "tag", "-", "--add", "x", input="[1, 2"), 2, "not valid JSON")
    bad(cli("tickets", "close", "-", input="   "), 2, "no ticket IDs")


def _changers(s: dict[str, int]) -> list[tuple[str, ...]]:
    a, b = str(s["a"]), str(s["b"])
    return [
        ("tickets", "assign", a, b, "--to", "me"),
        ("tickets", "tag", a, "--add", "vip"),
        ("tickets", "set", a, "--status", "pending", "--priority", "urgent"),
        ("tickets", "close", a, b),
        ("tickets", "snooze", a, "--until", "3d"),
        ("tickets", "merge", b, "--into", a, "--different-customers"),
        ("tickets", "split", "1"),
        ("tickets", "move", "1", "--to", b),
    ]


def test_dry_run_changes_nothing(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    ids = list(seeded.values())
    before = snapshot_all(cli, ids)
    with desk.db.read() as s:
        n_events = len(s.exec(select(Event)).all())
    for args in _changers(seeded):
        r = ok(cli(*args, "--dry-run", "--json"))
        doc = json.loads(r.stdout)
        assert doc["dry_run"] is True and doc["changes"], args
        human = ok(cli(*args, "--dry-run"))
        assert "Dry run" in human.stdout and "nothing was changed" in human.stdout
    assert snapshot_all(cli, ids) == before
    with desk.db.read() as s:
        assert len(s.exec(select(Event)).all()) == n_events
        assert s.exec(select(Journal)).all() == []


def test_dry_run_shows_the_change(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    doc = json.loads(
        ok(
            cli("tickets", "set", str(seeded["a"]), "--status", "solved", "--dry-run", "--json")
        ).stdout
    )
    assert {
        "target": "ticket",
        "id": seeded["a"],
        "field": "status",
        "before": "open",
        "after": "solved",
    } in doc["changes"] or {
        "target": "ticket",
        "id": seeded["a"],
        "field": "status",
        "before": "new",
        "after": "solved",
    } in doc["changes"]


def test_undo_restores_every_action_exactly(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    ids = [*seeded.values(), max(seeded.values()) + 1]  # + the ticket a split creates
    for args in _changers(seeded):
        before = shown(desk, ids)
        ok(cli(*args))
        assert shown(desk, ids) != before, args
        r = ok(cli("undo", "--json"))
        assert json.loads(r.stdout)["action"]
        assert shown(desk, ids) == before, args
    bad(cli("undo"), 3, "no action to undo")


def test_undo_is_per_agent_and_in_order(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    a = str(seeded["a"])
    ok(cli("tickets", "tag", a, "--add", "one"))
    ok(cli("tickets", "tag", a, "--add", "two"))
    ok(cli("tickets", "tag", a, "--add", "bobs", agent="bob"))
    ok(cli("undo"))  # alice's last: "two"
    assert show(cli, seeded["a"])["tags"] == ["bobs", "one"]
    ok(cli("undo"))
    assert show(cli, seeded["a"])["tags"] == ["bobs"]
    listing = json.loads(ok(cli("undo", "--list", "--json")).stdout)
    assert [x["undone_at"] is not None for x in listing] == [True, True]


def test_undo_refuses_to_clobber_a_later_change(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    a = seeded["a"]
    ok(cli("tickets", "set", str(a), "--status", "pending"))
    # the customer answers: the ticket reopens by itself
    ingest(
        desk,
        inbound_email(
            external_id="a3@x", in_reply_to=["a2@x"], subject="Re: Printer", text="Any news?"
        ),
    )
    assert show(cli, a)["status"] == "open"
    bad(cli("undo"), 5, f"ticket #{a}", "status open", "pending")
    assert show(cli, a)["status"] == "open"


def test_undo_after_unrelated_change_keeps_it(
    cli: Callable[..., Any], seeded: dict[str, int]
) -> None:
    a = str(seeded["a"])
    ok(cli("tickets", "set", a, "--priority", "high"))
    ok(cli("tickets", "tag", a, "--add", "later", agent="bob"))
    ok(cli("undo"))
    doc = show(cli, seeded["a"])
    assert doc["priority"] == "normal" and doc["tags"] == ["later"]


def test_nothing_to_change_leaves_no_journal(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    ok(cli("tickets", "tag", str(seeded["a"]), "--add", "x"))
    r = ok(cli("tickets", "tag", str(seeded["a"]), "--add", "x"))
    assert "Nothing to change" in r.stdout
    with desk.db.read() as s:
        assert len(s.exec(select(Journal)).all()) == 1


def test_events_carry_before_after_and_batch(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    ok(cli("tickets", "assign", str(seeded["a"]), "--to", "me"))
    with desk.db.read() as s:
        ev = s.exec(select(Event).where(Event.kind == "assign")).one()
        journal = s.exec(select(Journal)).one()
    data = json.loads(ev.data)
    assert ev.agent == "alice" and ev.batch == journal.batch and ev.ticket_id == seeded["a"]
    assert data["before"]["assignee_id"] is None and data["after"]["assignee_id"] is not None
