"""Dedupe keeps distinct mail: a duplicate needs the same Message-ID AND the same content."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Message
from tests.factories import inbound_email, ingest


def test_a_reused_message_id_with_other_content_is_kept_and_marked(
    desk: Any, cli: Callable[..., Any]
) -> None:
    first = ingest(desk, inbound_email(external_id="same@mailer", sender_address="a@x.test",
                                       subject="Printer", text="My printer is broken."))  # fmt: skip
    other = ingest(desk, inbound_email(external_id="same@mailer", sender_address="b@y.test",
                                       subject="Invoice", text="I was charged twice."))  # fmt: skip
    assert first.outcome == "new_ticket"
    assert other.outcome != "duplicate" and other.message_id != first.message_id
    # the very same messages again: duplicates, nothing stored twice
    assert ingest(desk, inbound_email(external_id="same@mailer", sender_address="a@x.test",
                                      subject="Printer", text="My printer is broken.")
                  ).outcome == "duplicate"  # fmt: skip
    assert ingest(desk, inbound_email(external_id="same@mailer", sender_address="b@y.test",
                                      subject="Invoice", text="I was charged twice.")
                  ).outcome == "duplicate"  # fmt: skip
    with desk.db.read() as s:
        rows = s.exec(select(Message).where(Message.message_id == "same@mailer")).all()
        assert len(rows) == 2
    doc = json.loads(cli("tickets", "show", str(other.ticket_id), "--json").stdout)
    assert "reused Message-ID <same@mailer>" in doc["messages"][0]["thread_reason"]


def test_reused_ids_in_one_batch_and_a_plain_resend(desk: Any) -> None:
    from supportdesk.inbound.ingest import ingest_many

    msgs = [
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="one"),
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="two"),
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="one"),
    ]
    with desk.db.write() as s:
        results = ingest_many(s, desk, msgs, historical=True)
    assert [r.outcome == "duplicate" for r in results] == [False, False, True]


def test_the_parser_processes_signatures_are_the_ones_ingest_works_out(tmp_path: Any) -> None:
    """prep.py works the content signatures out ahead; ingest must get the same ones (a copy
    is a duplicate, a reused Message-ID is kept) whichever side computed them."""
    from email.message import EmailMessage

    from supportdesk.channels.files import RawItem
    from supportdesk.inbound.prep import prepare_chunk
    from supportdesk.inbound.signatures import content_signature, reused_key, work_out

    m = EmailMessage()
    m["From"] = "Анна <anna@example.ru>"
    m["To"] = "support@acme.test"
    m["Message-ID"] = "<x1@mailer>"
    m["Date"] = "Fri, 20 Nov 2026 13:00:00 +0300"
    m["Subject"] = "Не работает   принтер"
    m.set_content("Здравствуйте!\n\n  Принтер не печатает.\n> quoted\n")
    m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="счёт.pdf")
    [prepared] = prepare_chunk(str(tmp_path), [RawItem("x1", data=bytes(m))], pack=False)
    msg = prepared.msg
    assert msg is not None and msg.signatures is not None
    ahead = msg.signatures
    msg.signatures = None  # ingest on its own
    assert work_out(msg) == ahead
    assert content_signature(msg, dated=False) == ahead[0]
    assert content_signature(msg) == ahead[1] != ahead[0]
    assert reused_key(msg) == f"x1@mailer#sig:{ahead[1]}"


def test_a_reused_message_id_imported_twice_is_a_duplicate_the_second_time(
    desk: Any, tmp_path: Any
) -> None:
    """The import path (signatures from the parser processes) finds the message it kept under
    its reused key, and the plain one under its Message-ID."""
    from supportdesk.channels.files import iter_raw_refs
    from supportdesk.inbound.importing import import_items

    folder = tmp_path / "mail"
    folder.mkdir()
    for i in range(70):  # more than prep.SMALL: packs and parser processes, as a real import
        n = "same" if i < 2 else f"m{i}"
        body = f"Message {i}: the printer is broken again." if i else "Another question."
        (folder / f"{i:03}.eml").write_bytes(
            f"From: c{i}@x.test\r\nTo: support@acme.test\r\nMessage-ID: <{n}@mailer>\r\n"
            f"Date: Fri, 20 Nov 2026 10:{i % 60:02}:00 +0000\r\nSubject: Q {i}\r\n\r\n{body}\r\n".encode()
        )
    first = import_items(desk, iter_raw_refs([folder]), channel="email", workers=2)
    assert first.imported == 70 and first.duplicates == 0
    again = import_items(desk, iter_raw_refs([folder]), channel="email", workers=2)
    assert again.imported == 0 and again.duplicates == 70
    with desk.db.read() as s:
        rows = s.exec(select(Message).where(Message.message_id == "same@mailer")).all()
    assert len(rows) == 2
    assert sum("#sig:" in (r.dedupe_key or "") for r in rows) == 1
