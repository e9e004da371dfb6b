"""Actions that must be deliberate: cross-customer merges, scoped undo, the last lead,
escalation on the demo desk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Outbox, Ticket
from supportdesk.tickets import replying
from tests.factories import inbound_email, ingest
from tests.tickets.conftest import bad, ok


def _two_customers(desk: Any) -> tuple[int, int]:
    m = ingest(desk, inbound_email(external_id="m1@x", sender_address="m.brown@x.test",
                                   sender_name="Michael Brown", subject="Invoice 4471"))  # fmt: skip
    i = ingest(desk, inbound_email(external_id="i1@x", sender_address="isabella@y.test",
                                   sender_name="Isabella Rossi", subject="Invoice 4471 twice"))  # fmt: skip
    return m.ticket_id, i.ticket_id


def test_merging_different_customers_is_deliberate(desk: Any, cli: Callable[..., Any]) -> None:
    ok(cli("agents", "add", "alice", "--role", "lead"))
    ok(cli("agents", "add", "bob"))
    michael, isabella = _two_customers(desk)
    res = bad(cli("tickets", "merge", str(isabella), "--into", str(michael)), 5,
              "Isabella Rossi", "Michael Brown", "--different-customers")  # fmt: skip
    assert "different customers" in res.stderr
    bad(cli("tickets", "merge", str(isabella), "--into", str(michael), "--different-customers",
            agent="bob"), 4, "lead")  # fmt: skip
    ok(cli("tickets", "merge", str(isabella), "--into", str(michael), "--different-customers"))
    with desk.db.read() as s:
        t = s.get(Ticket, isabella)
        assert t is not None and t.status == "closed"
    # the reply answers Isabella's message: it goes to her, never to Michael
    ok(cli("tickets", "reply", str(michael), "--text", "Refunded."))
    with desk.db.read() as s:
        [ob] = s.exec(select(Outbox)).all()
        assert ob.to_address == "isabella@y.test"
    # Michael writes again: the next reply is his
    ingest(desk, inbound_email(external_id="m2@x", sender_address="m.brown@x.test",
                               in_reply_to=["m1@x"], text="And mine?"))  # fmt: skip
    msg = replying.reply(desk, michael, text="Yours too.")
    with desk.db.read() as s:
        ob = s.exec(select(Outbox).where(Outbox.message_id == msg.id)).one()
        assert ob.to_address == "m.brown@x.test"


def test_same_customer_merges_without_the_flag(desk: Any, cli: Callable[..., Any]) -> None:
    a = ingest(desk, inbound_email(external_id="s1@x", subject="One"))
    b = ingest(desk, inbound_email(external_id="s2@x", subject="Two"))
    ok(cli("tickets", "merge", str(b.ticket_id), "--into", str(a.ticket_id)))


def test_undo_is_scoped_to_the_acting_agent(desk: Any, cli: Callable[..., Any]) -> None:
    ok(cli("agents", "add", "alice", "--role", "lead"))
    ok(cli("agents", "add", "bob"))
    ok(cli("agents", "add", "carol"))
    t = ingest(desk, inbound_email(external_id="u1@x")).ticket_id
    ok(cli("tickets", "set", str(t), "--status", "pending", agent="bob"))
    # carol has done nothing: her undo does not touch bob's change
    bad(cli("undo", agent="carol"), 3, "carol has no action to undo")
    bad(cli("undo", "--agent", "bob", agent="carol"), 4, "lead")
    dry = ok(cli("undo", "--dry-run", agent="bob")).stdout
    assert "Would undo your action" in dry and f"#{t}" in dry
    doc = json.loads(ok(cli("undo", "--dry-run", "--json", agent="bob")).stdout)
    assert doc["dry_run"] is True and doc["agent"] == "bob" and doc["tickets"] == [t]
    with desk.db.read() as s:
        assert s.get(Ticket, t).status == "pending"  # type: ignore[union-attr]
    out = ok(cli("undo", "--agent", "bob")).stdout  # alice is a lead and names whose it was
    assert "bob's action" in out
    with desk.db.read() as s:
        assert s.get(Ticket, t).status == "new"  # type: ignore[union-attr]


def test_a_desk_always_keeps_a_lead(cli: Callable[..., Any]) -> None:
    out = ok(cli("agents", "add", "alice")).stdout  # the first agent of a new desk
    assert "lead" in out
    ok(cli("agents", "add", "bob", agent="alice"))  # alice can go on adding people
    ok(cli("agents", "edit", "bob", "--role", "lead", agent="alice"))
    ok(cli("agents", "edit", "alice", "--role", "agent", agent="bob"))
    bad(cli("agents", "edit", "bob", "--role", "agent", agent="bob"), 5, "last lead")
    bad(cli("agents", "rm", "bob", agent="bob"), 5, "last lead")
    bad(cli("agents", "edit", "bob", "--inactive", agent="bob"), 5, "last lead")
    rows = json.loads(ok(cli("agents", "list", "--json")).stdout)
    assert {r["name"]: r["role"] for r in rows} == {"alice": "agent", "bob": "lead"}


def test_escalation_works_on_the_demo_desk(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from supportdesk.cli.main import app

    home = tmp_path / "demo"
    run = CliRunner()
    res = run.invoke(app, ["--home", str(home), "demo", "--no-tui"])
    assert res.exit_code == 0, res.output
    agents = json.loads(
        run.invoke(app, ["--home", str(home), "--as", "alice", "agents", "list", "--json"]).stdout
    )
    groups = {a["group"] for a in agents if a["group"]}
    assert "second-line" in groups
    listed = json.loads(run.invoke(app, ["--home", str(home), "groups", "list", "--json"]).stdout)
    assert groups <= {g["name"] for g in listed}
    res = run.invoke(app, ["--home", str(home), "--as", "alice", "tickets", "escalate", "1",
                           "--to", "second-line"])  # fmt: skip
    assert res.exit_code == 0, res.output
