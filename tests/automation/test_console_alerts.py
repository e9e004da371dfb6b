"""The console's own alerts: which new tickets ring, and the OSC 9/777 sequence."""

from __future__ import annotations

from typing import Any

from supportdesk.automation import notify
from supportdesk.tickets import views
from tests.factories import inbound_email, ingest


def test_desktop_notification_strips_what_would_end_the_sequence() -> None:
    seq = notify.desktop_notification("Acme; support", "New ticket #5: \x1b]0;pwned\x07 hi\nthere")
    assert seq == (
        "\x1b]9;Acme, support: New ticket #5: ]0;pwned hi there\x07"
        "\x1b]777;notify;Acme, support;New ticket #5: ]0;pwned hi there\x07"
    )
    assert seq.count("\x07") == 2 and seq.count("\x1b") == 2


def test_new_tickets_ring_only_for_my_views_when_i_have_some(desk: Any) -> None:
    a = ingest(desk, inbound_email(subject="Refund", text="refund", sender_address="a@x.test"))
    b = ingest(desk, inbound_email(subject="Printer", text="printer", sender_address="b@x.test"))
    new = [(a.ticket_id, "Refund"), (b.ticket_id, "Printer")]
    assert notify.in_my_views(desk, new) == new  # no views of my own: everything rings
    views.save_view(desk, "refunds", "is:open refund")
    assert notify.in_my_views(desk, new) == [(a.ticket_id, "Refund")]
