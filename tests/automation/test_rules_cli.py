"""Rule files and the `rules`, `spam` and `tickets macro` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from supportdesk.store.models import Message, Ticket
from tests.automation.conftest import write_rules
from tests.factories import inbound_email, ingest

ROUTE = """
# billing questions go to the billing line
[[rule]]
name = "route-billing"
when = "ticket.created"
if = "refund"
then = [
  { action = "group", group = "billing" },
  { action = "assign", to = "least-loaded", group = "billing" },
  { action = "tag", add = ["billing"] },
]
"""


def _at(day: int, h: int, m: int) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=UTC)


def test_rules_test_replays_history_exactly_and_changes_nothing(team: Any, cli: Any) -> None:
    write_rules(team.home, ROUTE)
    old = ingest(
        team,
        inbound_email(
            subject="Refund long ago",
            text="refund",
            sent_at=_at(10, 9, 0),
            sender_address="o@x.test",
        ),
    )
    a = ingest(
        team,
        inbound_email(
            subject="Refund please",
            text="a refund",
            sent_at=_at(20, 10, 0),
            sender_address="a@x.test",
        ),
    )
    ingest(
        team,
        inbound_email(
            subject="Printer", text="broken", sent_at=_at(21, 15, 30), sender_address="b@x.test"
        ),
    )
    c = ingest(
        team,
        inbound_email(
            subject="Refund for order 7",
            text="refund",
            sent_at=_at(24, 9, 5),
            sender_address="c@x.test",
        ),
    )
    r = cli("rules", "test", "route-billing", "--since", "7d", "--until", "2026-11-25T00:00:00Z")
    assert r.exit_code == 0, r.output
    assert r.output == (
        "rule route-billing: when ticket.created, if refund\n"
        "replayed 2026-11-18 00:00 .. 2026-11-25 00:00 (UTC)\n"
        f"2026-11-20 10:00  #{a.ticket_id}  Refund please  -> group billing; assign bob (least "
        "loaded in billing (0 open)); tag +billing\n"
        f"2026-11-24 09:05  #{c.ticket_id}  Refund for order 7  -> group billing; assign carol "
        "(least loaded in billing (0 open)); tag +billing\n"
        "2 of 3 trigger(s) on 3 ticket(s) matched; nothing was changed.\n"
    )
    with team.db.read() as s:
        for tid in (old.ticket_id, a.ticket_id, c.ticket_id):
            t = s.get(Ticket, tid)
            assert t is not None and t.group is None and t.assignee_id is None
    r = cli("rules", "test", "route-billing", "--since", "7d", "--until", "2026-11-25", "--json")
    doc = json.loads(r.output)
    assert [w["ticket"] for w in doc["would"]] == [a.ticket_id, c.ticket_id]
    assert doc["would"][0]["at"] == "2026-11-20T10:00:00+00:00" and doc["occurrences"] == 3


def test_list_show_and_check(team: Any, cli: Any) -> None:
    write_rules(team.home, ROUTE)
    r = cli("rules", "list", "--json")
    assert r.exit_code == 0
    [rule] = json.loads(r.output)
    assert rule["name"] == "route-billing" and rule["line"] == 3 and rule["enabled"] is True
    r = cli("rules", "show", "route-billing")
    assert "when ticket.created" in r.output and "then assign least-loaded in billing" in r.output
    assert cli("rules", "check").output.strip() == "1 rule(s) and 0 macro(s) are valid."
    r = cli("rules", "show", "nope")
    assert r.exit_code == 3 and "there is no rule named 'nope' (rules: route-billing)" in r.output


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\nthen = [{ action = "tag" add = 1 }]\n',
            4,
            "not valid TOML",
        ),
        (
            '\n[[rule]]\nname = "a"\nwhen = "ticket.born"\nthen = []\n',
            4,
            "when is one of ticket.created",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\nif = "stauts:open"\nthen = [{ action = "close" }]\n',
            4,
            "did you mean status:?",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\n\nthen = [{ action = "explode" }]\n',
            5,
            "'explode' is not one of assign",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\nthen = [{ action = "status", status = "gone" }]\n',
            4,
            "status is one of new",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\nthen = [{ action = "assign" }]\n',
            4,
            "the assign action needs to = ...",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "sla.due_in"\nthen = [{ action = "close" }]\n',
            1,
            'sla.due_in needs within = "30m"',
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "pending.for"\nfor = "soon"\nthen = [{ action = "close" }]\n',
            4,
            "is not a duration",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\nthen = [{ action = "close" }]\n[[rule]]\nname = "a"\nwhen = "ticket.created"\nthen = [{ action = "close" }]\n',
            5,
            "rule 'a' is already defined",
        ),
        (
            '[[rule]]\nname = "a b"\nwhen = "ticket.created"\nthen = [{ action = "close" }]\n',
            1,
            "needs a name of letters",
        ),
        (
            '[[rule]]\nname = "a"\nwhen = "ticket.created"\ncolour = "red"\nthen = [{ action = "close" }]\n',
            4,
            "unknown key 'colour'",
        ),
    ],
)
def test_bad_rule_files_name_the_file_and_line(
    cli: Any, home: Any, text: str, line: int, says: str
) -> None:
    path = write_rules(home, text, "bad.toml")
    r = cli("rules", "check")
    assert r.exit_code == 2, r.output
    assert f"{path}:{line}: " in r.output and says in r.output
    assert "Traceback" not in r.output


def test_macro_preview_then_run_then_undo(team: Any, cli: Any) -> None:
    write_rules(
        team.home,
        """
        [[macro]]
        name = "refund-done"
        key = "f5"
        then = [{ action = "reply", template = "refund-done" }, { action = "status", status = "pending" },
                { action = "tag", add = ["refunded"] }]
        """,
        "macros.toml",
    )
    tid = ingest(team, inbound_email(subject="Refund", text="refund")).ticket_id
    r = cli("tickets", "macro", str(tid), "refund-done", "--preview")
    assert r.exit_code == 0, r.output
    assert f"Your refund for #{tid} is on its way." in r.output
    assert "would status pending" in r.output and "Dry run" in r.output
    with team.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.status == "new" and t.message_count == 1
    r = cli("tickets", "macro", str(tid), "refund-done", "--json")
    doc = json.loads(r.output)
    assert doc["done"] == ["reply (template refund-done)", "status pending", "tag +refunded"]
    with team.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.status == "pending"
        assert s.get(Message, t.last_message_id).text == f"Your refund for #{tid} is on its way."
    assert cli("undo").exit_code == 0
    with team.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None and t.status == "new"


def test_spam_mark_leaves_queue_and_metrics_and_undo_restores(team: Any, cli: Any) -> None:
    a = ingest(
        team,
        inbound_email(
            subject="Buy now",
            text="cheap",
            sender_address="bot@spam.example",
            sent_at=datetime.now(UTC),
        ),
    ).ticket_id
    b = ingest(
        team,
        inbound_email(
            subject="Real",
            text="question",
            sender_address="r@ok.example",
            sent_at=datetime.now(UTC),
        ),
    ).ticket_id
    before = json.loads(cli("report", "--json").output)
    r = cli("spam", "mark", str(a), "--domain")
    assert r.exit_code == 0, r.output
    queue = [t["id"] for t in json.loads(cli("tickets", "list", "is:open", "--json").output)]
    assert a not in queue and b in queue
    after = json.loads(cli("report", "--json").output)
    assert after["tickets_created"] == before["tickets_created"] - 1
    listed = json.loads(cli("spam", "list", "--json").output)
    assert [e["entry"] for e in listed] == ["@spam.example"]
    # a new mail from the domain gets no acknowledgement
    res = ingest(
        team, inbound_email(subject="Again", text="x", sender_address="other@spam.example")
    )
    assert not res.needs_ack
    assert cli("undo").exit_code == 0
    queue = [t["id"] for t in json.loads(cli("tickets", "list", "is:open", "--json").output)]
    assert a in queue
    assert cli("spam", "rm", "@spam.example").exit_code == 0
    assert json.loads(cli("spam", "list", "--json").output) == []
    r = cli("spam", "add", "not an address")
    assert r.exit_code == 2 and "is not an e-mail address or @domain" in r.output


def test_agents_edit_notify_keeps_urls_out_of_the_database(team: Any, cli: Any) -> None:
    r = cli("agents", "edit", "bob", "--notify", "telegram:5550001", "--notify",
            "ntfy://user:secret@ntfy.example/acme-bob", "--quiet", "22:00-08:00")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "secret" not in r.output and "ntfy://ntfy.example/..." in r.output
    path = team.home / "agents.toml"
    assert "secret" in path.read_text() and (path.stat().st_mode & 0o777) == 0o600
    r = cli("agents", "edit", "bob", "--notify", "carrier-pigeon")
    assert r.exit_code == 2 and "is not telegram:CHAT, email:ADDR or an apprise URL" in r.output
    r = cli("agents", "edit", "bob", "--quiet", "late")
    assert r.exit_code == 2 and "quiet: 'late' is not a span" in r.output
    r = cli("agents", "edit", "bob", "--notify", "email:bob@acme.test", agent="carol")
    assert r.exit_code == 4


def test_rules_test_for_timed_and_message_triggers(team: Any, cli: Any) -> None:
    from datetime import timedelta

    from supportdesk.tickets import triage
    from tests.factories import inbound_telegram

    write_rules(
        team.home,
        """
        [[rule]]
        name = "close-pending"
        when = "pending.for"
        for = "3d"
        then = [{ action = "close", solved = true }]

        [[rule]]
        name = "urgent-words"
        when = "message.in"
        if = "urgent"
        then = [{ action = "priority", priority = "urgent" }]
        """,
    )
    p = ingest(team, inbound_email(subject="Waiting", text="q", sent_at=_at(15, 9, 0))).ticket_id
    triage.set_fields(team, [p], status="pending")
    with team.db.write() as s:
        t = s.get(Ticket, p)
        assert t is not None
        t.sla_paused_since = _at(18, 12, 0)
        s.add(t)
    m = ingest(team, inbound_telegram(chat_id=31, text="this is urgent", sent_at=_at(22, 8, 30)))
    r = cli("rules", "test", "close-pending", "--since", "7d", "--until", "2026-11-25", "--json")
    doc = json.loads(r.output)
    assert [(w["ticket"], w["at"], w["actions"]) for w in doc["would"]] == [
        (p, (_at(18, 12, 0) + timedelta(days=3)).isoformat(), ["status solved"])
    ]
    r = cli("rules", "test", "urgent-words", "--since", "7d", "--until", "2026-11-25", "--json")
    doc = json.loads(r.output)
    assert [(w["ticket"], w["at"], w["actions"]) for w in doc["would"]] == [
        (m.ticket_id, "2026-11-22T08:30:00+00:00", ["priority urgent"])
    ]
    with team.db.read() as s:
        assert s.get(Ticket, p).status == "pending"  # type: ignore[union-attr]
