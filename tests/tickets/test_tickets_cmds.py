"""Status and SLA bookkeeping, snooze, replies, notes, new conversations, query errors."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.store.models import Event, Outbox, Template, Ticket
from supportdesk.tickets import snooze, triage
from tests.tickets.conftest import bad, ok, show


def _ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def test_status_keeps_solved_closed_and_sla_pause(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    a = seeded["a"]
    due_before = _ticket(desk, a).resolution_due_at
    ok(cli("tickets", "set", str(a), "--status", "pending"))
    t = _ticket(desk, a)
    assert t.status == "pending" and t.sla_paused_since is not None and t.due_at is None
    # an hour of waiting, then back to open: the resolution deadline moves by the pause
    now = t.sla_paused_since + timedelta(hours=1)
    with desk.db.write() as s:
        tt = s.get(Ticket, a)
        assert tt is not None
        triage.set_status(tt, "open", now)
        s.add(tt)
    t = _ticket(desk, a)
    assert t.sla_paused_since is None and t.sla_paused_seconds == 3600
    assert due_before is not None and t.resolution_due_at == due_before + timedelta(hours=1)
    ok(cli("tickets", "close", str(a), "--solved"))
    t = _ticket(desk, a)
    assert (
        t.status == "solved"
        and t.solved_at is not None
        and t.closed_at is None
        and t.due_at is None
    )
    ok(cli("tickets", "close", str(a)))
    t = _ticket(desk, a)
    assert t.status == "closed" and t.closed_at is not None and t.solved_at is not None
    ok(cli("tickets", "reopen", str(a)))
    t = _ticket(desk, a)
    assert (
        t.status == "open" and t.solved_at is None and t.closed_at is None and t.due_at is not None
    )


def test_priority_locks_and_retargets(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    ok(cli("tickets", "set", str(seeded["a"]), "--priority", "urgent"))
    t = _ticket(desk, seeded["a"])
    assert t.priority == "urgent" and t.priority_rank == 3 and t.priority_locked
    bad(cli("tickets", "set", str(seeded["a"]), "--priority", "asap"), 2, "priority is one of")
    bad(
        cli("tickets", "set", str(seeded["a"]), "--status", "done"), 2, "status is one of", "'done'"
    )
    bad(
        cli("tickets", "set", str(seeded["a"])),
        2,
        "a status or a priority",
        "(--status, --priority)",
    )


def test_snooze_hides_from_open_until_woken(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    a = seeded["a"]
    ok(cli("tickets", "snooze", str(a), "--until", "tomorrow"))
    open_ids = [t["id"] for t in json.loads(ok(cli("tickets", "list", "is:open", "--json")).stdout)]
    assert a not in open_ids and seeded["b"] in open_ids
    snoozed = [
        t["id"] for t in json.loads(ok(cli("tickets", "list", "is:snoozed", "--json")).stdout)
    ]
    assert snoozed == [a]
    until = _ticket(desk, a).snoozed_until
    assert until is not None
    with desk.db.write() as s:
        assert snooze.wake_snoozed(s, desk, until - timedelta(minutes=1)) == []
        assert snooze.wake_snoozed(s, desk, until + timedelta(seconds=1)) == [a]
    assert _ticket(desk, a).snoozed_until is None
    assert a in [
        t["id"] for t in json.loads(ok(cli("tickets", "list", "is:open", "--json")).stdout)
    ]
    with desk.db.read() as s:
        assert (
            s.exec(select(Event).where(Event.kind == "woke", Event.ticket_id == a)).first()
            is not None
        )
    bad(cli("tickets", "snooze", str(a), "--until", "someday"), 2, "'someday'", "2h", "(--until)")
    bad(cli("tickets", "snooze", str(a), "--until", "2001-01-01"), 2, "in the past")
    ok(cli("tickets", "snooze", str(a), "--until", "2h"))
    ok(cli("tickets", "snooze", str(a), "--wake"))
    assert _ticket(desk, a).snoozed_until is None


def test_parse_until_forms(desk: Any) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday
    assert snooze.parse_until("2h", desk, now) == now + timedelta(hours=2)
    assert snooze.parse_until("3d", desk, now) == now + timedelta(days=3)
    assert snooze.parse_until("tomorrow", desk, now) == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert snooze.parse_until("monday", desk, now) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert snooze.parse_until("2026-12-01T10:30+03:00", desk, now) == datetime(
        2026, 12, 1, 7, 30, tzinfo=UTC
    )


def test_reply_text_note_attachment_and_channel(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int], tmp_path: Path
) -> None:
    a = seeded["a"]
    f = tmp_path / "manual.txt"
    f.write_text("steps")
    ok(cli("tickets", "reply", str(a), "--text", "Please restart it", "--attach", str(f)))
    ok(cli("tickets", "note", str(a), "--text", "Customer is on the old firmware"))
    doc = show(cli, a)
    out, note = doc["messages"][-2], doc["messages"][-1]
    assert (
        out["direction"] == "out"
        and out["text"] == "Please restart it"
        and out["delivery"]["status"] == "queued"
    )
    assert out["attachments"][0]["filename"] == "manual.txt"
    assert note["direction"] == "note" and note["delivery"] is None
    assert doc["status"] == "open"
    bad(
        cli("tickets", "reply", str(a), "--text", "x", "--channel", "telegram"),
        2,
        "no telegram identity",
    )
    bad(
        cli("tickets", "reply", str(a), "--text", "x", "--channel", "fax"),
        2,
        "no channel named 'fax'",
    )
    bad(cli("tickets", "reply", "999", "--text", "x"), 3, "#999 does not exist")
    bad(cli("tickets", "reply", str(a)), 2, "--text, --template or --editor")
    bad(
        cli("tickets", "reply", str(a), "--text", "x", "--attach", str(tmp_path / "missing.pdf")),
        2,
        "missing.pdf",
    )


def _editor(tmp_path: Path, text: str) -> str:
    script = tmp_path / "fake-editor"
    script.write_text(
        f"#!{sys.executable}\nimport sys\np = sys.argv[1]\nold = open(p).read()\n"
        f"open(p, 'w').write(old + {text!r})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_reply_with_editor_starts_from_the_template(
    cli: Callable[..., Any],
    desk: Any,
    seeded: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok(cli("templates", "add", "hello", "--text", "Hello {{ customer.first_name }},"))
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "\nPlease try again."))
    ok(cli("tickets", "reply", str(seeded["a"]), "--template", "hello", "--editor"))
    msg = show(cli, seeded["a"])["messages"][-1]
    assert msg["text"] == "Hello Ivan,\nPlease try again."
    with desk.db.read() as s:
        assert s.exec(select(Template).where(Template.name == "hello")).one().usage_count == 1
    monkeypatch.delenv("EDITOR")
    monkeypatch.delenv("VISUAL", raising=False)
    bad(cli("tickets", "reply", str(seeded["a"]), "--editor"), 2, "VISUAL or EDITOR")
    monkeypatch.setenv("VISUAL", "false")
    bad(cli("tickets", "reply", str(seeded["a"]), "--editor"), 2, "exited with status 1")


def test_new_conversations(cli: Callable[..., Any], desk: Any, seeded: dict[str, int]) -> None:
    r = json.loads(
        ok(
            cli(
                "tickets",
                "new",
                "--customer",
                "Ann@Example.com",
                "--via",
                "email",
                "--subject",
                "Your order",
                "--text",
                "Hello Ann",
                "--json",
            )
        ).stdout
    )
    doc = show(cli, r["ticket"])
    assert doc["subject"] == "Your order" and doc["kind"] == "email" and doc["status"] == "open"
    assert doc["customer"]["identities"][0]["address"] == "ann@example.com"
    assert doc["messages"][0]["direction"] == "out"
    with desk.db.read() as s:
        ob = s.exec(select(Outbox).where(Outbox.ticket_id == r["ticket"])).one()
    assert (
        ob.to_address == "ann@example.com"
        and f"[#{r['ticket']}]" in json.loads(ob.payload)["subject"]
    )
    assert not json.loads(ob.payload)["subject"].startswith("Re:")
    # Telegram: only to someone who wrote to the bot
    tg = json.loads(
        ok(
            cli(
                "tickets",
                "new",
                "--customer",
                "@ivan",
                "--via",
                "telegram",
                "--text",
                "Бот снова работает",
                "--json",
            )
        ).stdout
    )
    with desk.db.read() as s:
        ob = s.exec(select(Outbox).where(Outbox.ticket_id == tg["ticket"])).one()
    assert ob.to_address == "5005" and ob.kind == "telegram"
    bad(
        cli("tickets", "new", "--customer", "petr@example.ru", "--via", "telegram", "--text", "hi"),
        2,
        "has never written to the desk on Telegram",
    )
    # phone: a logged call, nothing queued
    ph = json.loads(
        ok(
            cli(
                "tickets",
                "new",
                "--customer",
                "+7 900 123-45-67",
                "--via",
                "phone",
                "--subject",
                "Call about the printer",
                "--text",
                "Customer called, reset advised",
                "--json",
            )
        ).stdout
    )
    assert ph["queued"] is False
    doc = show(cli, ph["ticket"])
    assert doc["kind"] == "phone" and doc["messages"][0]["direction"] == "note"
    with desk.db.read() as s:
        assert s.exec(select(Outbox).where(Outbox.ticket_id == ph["ticket"])).first() is None
    bad(
        cli("tickets", "new", "--customer", "x@y.z", "--via", "fax", "--text", "t"),
        2,
        "email, telegram or phone",
    )
    bad(
        cli("tickets", "new", "--customer", "x@y.z", "--via", "email", "--text", "t"),
        2,
        "--subject",
    )
    bad(
        cli("tickets", "new", "--customer", "nobody-known", "--via", "telegram", "--text", "t"),
        3,
        "no customer",
    )


def test_bad_queries_point_at_the_term(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    bad(cli("tickets", "list", "tag:x", "status:opne"), 2, "'status:opne'", "status is one of")
    bad(cli("tickets", "list", "stauts:open"), 2, "did you mean status:")
    bad(cli("tickets", "list", "priority:>=hihg"), 2, "'priority:>=hihg'")
    from supportdesk.search.query import QueryError, parse

    with pytest.raises(QueryError) as exc:
        parse("tag:x  created:>yesterday-ish")
    assert (exc.value.start, exc.value.end) == (7, 29)
    assert exc.value.pointer("tag:x  created:>yesterday-ish").splitlines()[1] == " " * 7 + "^" * 22


def test_unknown_ticket_everywhere(cli: Callable[..., Any], seeded: dict[str, int]) -> None:
    for args in (
        ("tickets", "assign", "77", "--to", "me"),
        ("tickets", "tag", "77", "--add", "x"),
        ("tickets", "close", "77"),
        ("tickets", "reopen", "77"),
        ("tickets", "merge", "77", "--into", "1"),
        ("tickets", "escalate", "77", "--to", "x"),
        ("templates", "render", "t", "--ticket", "77"),
    ):
        r = cli(*args)
        assert r.exit_code in (3,), (args, r.exit_code, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout and r.stderr.startswith("supportdesk: ")
    bad(cli("tickets", "close", "1", "abc"), 2, "'abc' is not a ticket ID")


def test_merge_moves_messages_and_marks_the_source(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int]
) -> None:
    from supportdesk.store.merges import follow_merges

    b, c = seeded["b"], seeded["c"]
    ok(cli("tickets", "tag", str(c), "--add", "refund"))
    ok(cli("tickets", "merge", str(c), "--into", str(b)))
    src, dst = show(cli, c), show(cli, b)
    assert src["status"] == "closed" and src["messages"] == [] and src["message_count"] == 0
    assert (
        [m["text"] for m in dst["messages"]]
        and dst["message_count"] == 2
        and "refund" in dst["tags"]
    )
    with desk.db.read() as s:
        t = s.get(Ticket, c)
        assert t is not None and t.reply_to_address == f"merged:{b}"
        followed = follow_merges(s, t)
        assert followed is not None and followed.id == b
    bad(cli("tickets", "reopen", str(c)), 2, f"merged into #{b}")
    bad(cli("tickets", "merge", str(b), "--into", str(b)), 2, "into itself")


def test_split_and_move(cli: Callable[..., Any], desk: Any, seeded: dict[str, int]) -> None:
    a = seeded["a"]
    msgs = show(cli, a)["messages"]
    res = json.loads(
        ok(
            cli("tickets", "split", str(msgs[1]["id"]), "--subject", "Another problem", "--json")
        ).stdout
    )
    new_id = res["created"][0]
    new = show(cli, new_id)
    assert new["subject"] == "Another problem" and [m["id"] for m in new["messages"]] == [
        msgs[1]["id"]
    ]
    assert (
        new["customer"]["id"] == show(cli, a)["customer"]["id"]
        and show(cli, a)["message_count"] == 1
    )
    bad(cli("tickets", "split", str(msgs[0]["id"])), 2, "left empty")
    ok(cli("undo"))
    assert show(cli, a)["message_count"] == 2
    bad(cli("tickets", "show", str(new_id)), 3)
    b_msg = show(cli, seeded["b"])["messages"][0]["id"]
    bad(cli("tickets", "move", str(b_msg), "--to", str(a)), 2, "left empty")
    ok(cli("tickets", "move", str(msgs[1]["id"]), "--to", str(seeded["b"])))
    assert show(cli, seeded["b"])["message_count"] == 2
    bad(cli("tickets", "move", "9999", "--to", str(a)), 3, "message 9999 does not exist")


def test_new_from_a_template_takes_its_subject(cli: Callable[..., Any], desk: Any) -> None:
    ok(
        cli(
            "templates",
            "add",
            "welcome",
            "--subject",
            "Welcome to {{ desk.name }}",
            "--text",
            "Hello {{ customer.name }}, ticket {{ ticket.id }} is yours.",
        )
    )
    r = json.loads(
        ok(
            cli(
                "tickets",
                "new",
                "--customer",
                "zoe@example.com",
                "--via",
                "email",
                "--template",
                "welcome",
                "--json",
            )
        ).stdout
    )
    doc = show(cli, r["ticket"])
    assert doc["subject"] == "Welcome to Acme support"
    assert doc["messages"][0]["text"] == f"Hello zoe, ticket {r['ticket']} is yours."
    with desk.db.read() as s:
        assert s.exec(select(Template).where(Template.name == "welcome")).one().usage_count == 1
