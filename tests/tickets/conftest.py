"""Helpers for the triage tests: a small seeded desk and CLI shortcuts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import inbound_email, inbound_telegram, ingest


@pytest.fixture
def seeded(desk: Any) -> dict[str, int]:
    """Three e-mail tickets (two customers) and one Telegram ticket."""
    a = ingest(desk, inbound_email(external_id="a1@x", subject="Printer does not work"))
    ingest(
        desk,
        inbound_email(
            external_id="a2@x", in_reply_to=["a1@x"], subject="Re: Printer", text="Still broken"
        ),
    )
    b = ingest(
        desk,
        inbound_email(
            external_id="b1@x",
            sender_address="petr@example.ru",
            sender_name="Petr",
            subject="Invoice question",
        ),
    )
    c = ingest(
        desk,
        inbound_email(
            external_id="c1@x",
            sender_address="petr@example.ru",
            sender_name="Petr",
            subject="Second invoice",
        ),
    )
    t = ingest(desk, inbound_telegram(chat_id=5005, text="Бот не отвечает"))
    return {"a": a.ticket_id, "b": b.ticket_id, "c": c.ticket_id, "tg": t.ticket_id}


def ok(result: Any) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def bad(result: Any, code: int, *needles: str) -> Any:
    """A clean refusal: the exit code, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err + result.stdout
    assert err.startswith("supportdesk: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, (n, err)
    return result


def show(cli: Callable[..., Any], tid: int) -> dict[str, Any]:
    return json.loads(ok(cli("tickets", "show", str(tid), "--json")).stdout)


def snapshot_all(cli: Callable[..., Any], ids: list[int]) -> dict[int, dict[str, Any]]:
    return {i: show(cli, i) for i in ids}


def shown(desk: Any, ids: list[int]) -> dict[int, Any]:
    """What `tickets show --json` prints for each ticket (the service behind it, without a process)."""
    from supportdesk.desk.desk import NotFound
    from supportdesk.tickets.read import show_ticket

    out: dict[int, Any] = {}
    for i in ids:
        try:
            out[i] = json.loads(json.dumps(show_ticket(desk, i), default=str))
        except NotFound:
            out[i] = None
    return out
