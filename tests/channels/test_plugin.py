"""A channel defined outside the package (tests/plugins/echo_channel, installed through the
`supportdesk.channels` entry point) is polled, replied to and shown in the console, with
nothing in supportdesk/ knowing it."""

from __future__ import annotations

import asyncio
import json
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.store.models import Message, Quarantine, Ticket
from tests.configs import desk_config

ECHO = """
[[channel]]
name = "echo"
type = "echo"
acknowledge = false
spool = "{spool}"
"""


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    if "echo" not in {ep.name for ep in entry_points(group="supportdesk.channels")}:
        why = "the example echo channel is not installed (make .venv/.installed installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    (tmp_path / "spool" / "in").mkdir(parents=True)
    return tmp_path / "spool"


@pytest.fixture
def echo_desk(home: Path, spool: Path) -> Any:
    from supportdesk.desk.desk import open_desk

    (home / "config.toml").write_text(
        desk_config(channels=[ECHO.format(spool=spool)]), encoding="utf-8"
    )
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def _say(spool: Path, n: int, sender: str, text: str) -> None:
    body = {"id": str(n), "from": sender, "name": sender.title(), "text": text}
    (spool / "in" / f"{n:04d}.json").write_text(json.dumps(body), encoding="utf-8")


def _sent(spool: Path) -> list[dict[str, Any]]:
    out = spool / "out"
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))] if out.is_dir() else []


def test_echo_is_polled_replied_to_and_threads_by_conversation(echo_desk: Any, spool: Path) -> None:
    from supportdesk.runner.loop import Runner
    from supportdesk.tickets import replying

    _say(spool, 1, "alice", "My order 42 is late")
    _say(spool, 2, "bob", "Where is my refund?")
    (spool / "in" / "0003.json").write_text("not json", encoding="utf-8")
    rep = Runner(echo_desk).run_once()
    assert rep.ok and rep.channels[0].fetched == 3 and rep.channels[0].new_tickets == 2
    with echo_desk.db.read() as s:
        tickets = s.exec(select(Ticket).order_by(Ticket.id)).all()  # type: ignore[arg-type]
        assert [(t.channel, t.kind, t.subject) for t in tickets] == [
            ("echo", "echo", "My order 42 is late"),
            ("echo", "echo", "Where is my refund?"),
        ]
        (bad,) = s.exec(select(Quarantine)).all()
        assert bad.channel == "echo" and "JSON" in bad.error
        first = tickets[0].id
    assert first is not None

    replying.reply(echo_desk, first, text="It ships today.")
    _say(spool, 4, "alice", "Thanks!")
    rep = Runner(echo_desk).run_once()
    assert rep.outbox_sent == 1 and rep.channels[0].fetched == 1
    assert _sent(spool) == [{"to": "alice", "text": "It ships today.", "auto": False}]
    with echo_desk.db.read() as s:
        msgs = s.exec(
            select(Message).where(Message.ticket_id == first).order_by(Message.id)  # type: ignore[arg-type]
        ).all()
        assert [m.text for m in msgs] == ["My order 42 is late", "It ships today.", "Thanks!"]
        assert msgs[-1].thread_reason == "open Echo chat"

    # nothing new: the cursor was committed with the messages
    rep = Runner(echo_desk).run_once()
    assert rep.channels[0].fetched == 0


async def test_echo_is_shown_in_the_queue_with_its_icon(echo_desk: Any, spool: Path) -> None:
    from supportdesk.runner.loop import Runner
    from supportdesk.ui.app import make_app
    from supportdesk.ui.widgets.ticket_list import TicketList
    from tests.ui.conftest import settle, text_of

    _say(spool, 1, "carol", "The app crashes on start")
    await asyncio.to_thread(Runner(echo_desk).run_once)
    app = make_app(echo_desk, live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert app.screen.query_one(TicketList).total == 1
        text = text_of(app)
        assert "◎ echo" in text  # the channel's own icon, from its class
        assert "The app crashes on start" in text


@pytest.fixture
def mixed_desk(home: Path, spool: Path) -> Any:
    """A desk with the e-mail channel "support" and the echo channel."""
    from supportdesk.desk.desk import open_desk
    from tests.configs import email_channel

    (home / "config.toml").write_text(
        desk_config(channels=[email_channel(), ECHO.format(spool=spool)]), encoding="utf-8"
    )
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def test_echo_is_offered_as_a_reply_route_and_answers_there(mixed_desk: Any, spool: Path) -> None:
    """The composer's routes and a reply on another channel come from the channel's class
    (its identity kind), not from a list of built-in type names."""
    from supportdesk.runner.loop import Runner
    from supportdesk.store.models import Identity, Outbox
    from supportdesk.tickets import outgoing, replying
    from supportdesk.tickets.read import show_ticket
    from supportdesk.ui.widgets.composer import reply_routes

    _say(spool, 1, "dave", "Hello from echo")
    assert Runner(mixed_desk).run_once().channels[0].new_tickets == 1
    with mixed_desk.db.write() as s:
        echo_id = s.exec(select(Identity).where(Identity.kind == "echo")).one()
        s.add(Identity(customer_id=echo_id.customer_id, kind="email", address="dave@example.com"))
    mail = outgoing.new_ticket(
        mixed_desk, customer="dave@example.com", via="email", subject="Invoice", text="Hi Dave"
    )
    doc = show_ticket(mixed_desk, mail.ticket_id)
    assert doc["kind"] == "email"
    assert [name for name, _label in reply_routes(mixed_desk, doc)] == ["support", "echo"]
    assert dict(reply_routes(mixed_desk, doc))["echo"] == "echo → Dave"

    replying.reply(mixed_desk, mail.ticket_id, text="Your invoice is attached.", channel="echo")
    with mixed_desk.db.read() as s:
        row = s.exec(select(Outbox).where(Outbox.channel == "echo")).one()
        assert (row.kind, row.to_address) == ("echo", "dave")
        assert "html" not in json.loads(row.payload)  # the echo class declares no HTML
    Runner(mixed_desk).run_once()
    assert _sent(spool)[-1] == {"to": "dave", "text": "Your invoice is attached.", "auto": False}

    # Cc needs a channel that declares it: the echo one does not
    from supportdesk.desk.desk import BadInput

    with pytest.raises(BadInput, match="Cc and Bcc need an e-mail channel; echo is echo"):
        replying.reply(
            mixed_desk, mail.ticket_id, text="x", channel="echo", cc=["boss@example.com"]
        )


def test_tickets_new_via_echo(mixed_desk: Any, spool: Path, cli: Any) -> None:
    """`tickets new --via echo` reaches a customer who wrote on the echo channel, titled by
    its first line (the class declares no subjects), and is refused for one who never did."""
    from supportdesk.runner.loop import Runner
    from supportdesk.store.models import Identity, Outbox
    from tests.tickets.conftest import bad, ok

    _say(spool, 1, "erin", "Hi there")
    Runner(mixed_desk).run_once()
    with mixed_desk.db.read() as s:
        erin = s.exec(select(Identity).where(Identity.kind == "echo")).one().customer_id
    out = ok(
        cli(
            "tickets",
            "new",
            "--customer",
            str(erin),
            "--via",
            "echo",
            "--text",
            "Your parcel left\nMore later",
            "--json",
        )  # fmt: skip
    )
    new = json.loads(out.stdout)
    with mixed_desk.db.read() as s:
        t = s.get(Ticket, new["ticket"])
        assert t is not None and (t.channel, t.kind, t.subject) == (
            "echo",
            "echo",
            "Your parcel left",
        )
        ob = s.exec(select(Outbox).where(Outbox.ticket_id == t.id)).one()
        assert (ob.kind, ob.to_address) == ("echo", "erin")
    Runner(mixed_desk).run_once()
    assert _sent(spool)[-1]["to"] == "erin"
    assert _sent(spool)[-1]["text"].startswith("Your parcel left")

    bad(
        cli("tickets", "new", "--customer", "ann@example.com", "--via", "echo", "--text", "hi"),
        3,
    )
    with mixed_desk.db.write() as s:
        from supportdesk.desk.identity import get_or_create_customer

        ann, _i, _n = get_or_create_customer(s, "email", "ann@example.com")
        ann_id = ann.id
    bad(
        cli("tickets", "new", "--customer", str(ann_id), "--via", "echo", "--text", "hi"),
        2,
        "has never written to the desk on Echo",
    )
    bad(
        cli("tickets", "new", "--customer", "x@y.z", "--via", "fax", "--text", "t"),
        2,
        "email, echo or phone",
    )


def test_an_echo_identity_can_be_linked_and_found(mixed_desk: Any, cli: Any) -> None:
    """`customers link C echo:ADDR` takes the kind an installed channel declares."""
    from supportdesk.desk.identity import get_or_create_customer
    from tests.tickets.conftest import bad, ok

    with mixed_desk.db.write() as s:
        get_or_create_customer(s, "email", "gina@example.com", "Gina")
    ok(cli("customers", "link", "gina@example.com", "echo:gina"))
    shown = ok(cli("customers", "show", "echo:gina", "--json")).stdout
    assert '"gina@example.com"' in shown and '"echo"' in shown
    bad(cli("customers", "link", "gina@example.com", "fax:123"), 2, "is not an identity")
