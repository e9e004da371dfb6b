"""The e-mail channel end to end: real Dovecot in, real aiosmtpd out, through the runner."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Message, Outbox, Ticket
from tests.factories import raw_email
from tests.runner.helpers import setup_email_home

pytestmark = pytest.mark.peers


@pytest.fixture
def edesk(home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def _count(desk: Any, model: Any) -> int:
    with desk.db.read() as s:
        return len(s.exec(select(model)).all())


def test_first_poll_repoll_and_flags(edesk: Any, imap_account: Any, smtp_sink: Any) -> None:
    for i in range(3):
        imap_account.append("INBOX", raw_email(msgid=f"in{i}@example.ru", subject=f"Вопрос {i}"))
    rep = Runner(edesk).run_once()
    assert rep.ok and rep.channels[0].fetched == 3 and rep.channels[0].new_tickets == 3
    assert _count(edesk, Ticket) == 3
    # acknowledgements went out, one per new ticket
    acks = smtp_sink.wait_for(3, timeout=10)
    assert all(m.message["Auto-Submitted"] == "auto-replied" for m in acks)
    # a second poll adds nothing
    rep2 = Runner(edesk).run_once()
    assert rep2.channels[0].fetched == 0 and _count(edesk, Ticket) == 3
    # nothing marked read on the server
    assert all("\\Seen" not in f for f in imap_account.flags("INBOX").values())


def test_uidvalidity_reset_adds_no_duplicates(edesk: Any, imap_account: Any) -> None:
    imap_account.append("INBOX", raw_email(msgid="u1@example.ru"))
    imap_account.append("INBOX", raw_email(msgid="u2@example.ru", frm="olga@example.ru"))
    Runner(edesk).run_once()
    before = _count(edesk, Message)
    imap_account.reset_uidvalidity("INBOX")
    rep = Runner(edesk).run_once()
    assert rep.ok
    with edesk.db.read() as s:
        inbound = s.exec(select(Message).where(Message.direction == "in")).all()
    assert len(inbound) == 2
    assert _count(edesk, Message) == before


def test_reply_threading_and_customer_answer(edesk: Any, imap_account: Any, smtp_sink: Any) -> None:
    imap_account.append(
        "INBOX", raw_email(msgid="q1@example.ru", subject="Принтер не печатает", references=None)
    )
    Runner(edesk).run_once()
    smtp_sink.wait_for(1)  # the acknowledgement
    with edesk.db.write() as s:
        t = s.exec(select(Ticket)).one()
        queue_outbound(s, edesk, t, "Перезапустите службу печати.", agent="alice")
    Runner(edesk).run_once()
    mails = smtp_sink.wait_for(2)
    reply = mails[-1].message
    assert reply["In-Reply-To"] == "<q1@example.ru>"
    assert "<q1@example.ru>" in reply["References"]
    assert f"[#{t.id}]" in str(reply["Subject"]) and "Принтер" in str(reply["Subject"])
    assert mails[-1].rcpt_tos == ["ivan@example.ru"]
    assert str(reply["From"]).endswith("<support@acme.test>")
    # the customer answers our reply: same ticket, via In-Reply-To
    our_id = reply["Message-ID"].strip("<>")
    imap_account.append(
        "INBOX",
        raw_email(
            msgid="q2@example.ru",
            subject=f"Re: {reply['Subject']}",
            in_reply_to=our_id,
            body="Не помогло.",
        ),
    )
    Runner(edesk).run_once()
    with edesk.db.read() as s:
        msgs = s.exec(select(Message).where(Message.ticket_id == t.id).order_by(Message.id)).all()
        assert [m.direction for m in msgs][-1] == "in" and msgs[
            -1
        ].thread_reason == f"In-Reply-To <{our_id}>"
        assert len(s.exec(select(Ticket)).all()) == 1


def test_smtp_down_then_up_delivers_exactly_once(
    edesk: Any, imap_account: Any, smtp_sink: Any
) -> None:
    with edesk.db.write() as s:
        from supportdesk.inbound.ingest import ingest
        from tests.factories import inbound_email

        r = ingest(s, edesk, inbound_email(external_id="x1@example.ru"), historical=True)
        t = s.get(Ticket, r.ticket_id)
        queue_outbound(s, edesk, t, "Answer", agent="alice")
    smtp_sink.stop()
    rep = Runner(edesk).run_once()
    assert rep.outbox_retrying == 1 and rep.outbox_sent == 0
    with edesk.db.read() as s:
        ob = s.exec(select(Outbox)).one()
        assert ob.state == "queued" and ob.last_error and ob.attempts == 1
    smtp_sink.start()
    with edesk.db.write() as s:  # don't wait for the backoff in a test
        ob = s.exec(select(Outbox)).one()
        ob.next_attempt_at = None
        s.add(ob)
    rep = Runner(edesk).run_once()
    assert rep.outbox_sent == 1
    rep = Runner(edesk).run_once()
    assert rep.outbox_sent == 0
    assert len(smtp_sink.received) == 1
    with edesk.db.read() as s:
        assert s.exec(select(Outbox)).one().state == "sent"


def test_permanent_smtp_failure_is_visible(edesk: Any, smtp_sink: Any) -> None:
    from supportdesk.inbound.ingest import ingest
    from tests.factories import inbound_email

    with edesk.db.write() as s:
        r = ingest(s, edesk, inbound_email(external_id="x2@example.ru"), historical=True)
        queue_outbound(s, edesk, s.get(Ticket, r.ticket_id), "Answer", agent="alice")
    smtp_sink.fail_with(550)
    rep = Runner(edesk).run_once()
    assert rep.outbox_failed == 1
    with edesk.db.read() as s:
        ob = s.exec(select(Outbox)).one()
        assert ob.state == "failed" and "550" in ob.last_error


def test_refused_login_is_reported(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "wrong-password")
    res = cli("poll", "--once")
    assert res.exit_code == 1
    assert "support: error" in res.output and "wrong-password" not in res.output
    st = cli("status", "--json")
    import json

    doc = json.loads(st.stdout)
    ch = doc["channels"][0]
    assert ch["state"] == "error" and ch["last_error"] and "wrong-password" not in st.stdout


def test_no_ack_to_auto_reply_and_list_mail(edesk: Any, imap_account: Any, smtp_sink: Any) -> None:
    imap_account.append(
        "INBOX", raw_email(msgid="auto@example.ru", headers={"Auto-Submitted": "auto-replied"})
    )
    imap_account.append(
        "INBOX",
        raw_email(msgid="list@example.ru", frm="news@list.test", headers={"Precedence": "bulk"}),
    )
    imap_account.append("INBOX", raw_email(msgid="person@example.ru", frm="person@example.ru"))
    rep = Runner(edesk).run_once()
    assert rep.channels[0].new_tickets == 3
    mails = smtp_sink.wait_for(1)
    assert [m.rcpt_tos for m in mails] == [["person@example.ru"]]
    with edesk.db.read() as s:
        assert len(s.exec(select(Outbox)).all()) == 1


def test_ack_rate_limit_prevents_loops(edesk: Any, imap_account: Any, smtp_sink: Any) -> None:
    for i in range(6):
        imap_account.append(
            "INBOX",
            raw_email(msgid=f"loop{i}@example.ru", subject=f"loop {i}", frm="robot@example.ru"),
        )
    Runner(edesk).run_once()
    with edesk.db.read() as s:
        assert len(s.exec(select(Outbox)).all()) == 3  # ack_limit_per_hour default


def test_bounce_of_our_reply_attaches_to_ticket(
    edesk: Any, imap_account: Any, smtp_sink: Any
) -> None:
    from supportdesk.inbound.ingest import ingest
    from tests.factories import inbound_email

    with edesk.db.write() as s:
        r = ingest(
            s,
            edesk,
            inbound_email(external_id="b1@example.ru", sender_address="gone@example.ru"),
            historical=True,
        )
        m = queue_outbound(s, edesk, s.get(Ticket, r.ticket_id), "Answer", agent="alice")
        our_id = m.message_id
    Runner(edesk).run_once()
    bounce = (
        "From: MAILER-DAEMON@mx.example.ru\r\nTo: support@acme.test\r\nSubject: Undelivered Mail\r\n"
        "Message-ID: <bounce1@mx.example.ru>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.ru\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.ru\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{our_id}>\r\nSubject: x\r\n--B--\r\n"
    ).encode()
    imap_account.append("INBOX", bounce)
    rep = Runner(edesk).run_once()
    assert rep.channels[0].new_tickets == 0
    with edesk.db.read() as s:
        assert len(s.exec(select(Ticket)).all()) == 1
        note = s.exec(select(Message).where(Message.direction == "note")).one()
        assert note.ticket_id == r.ticket_id and "Delivery failed" in note.text
        ob = s.exec(select(Outbox)).one()
        assert ob.state == "failed" and "bounced" in ob.last_error


def test_message_ids_of_received_mail_parse(smtp_sink: Any) -> None:
    assert message_from_bytes(b"Subject: x\r\n\r\n")["Subject"] == "x"


def test_raw_mail_is_kept_before_parsing_in_a_pack_or_a_file(edesk: Any, imap_account: Any) -> None:
    import hashlib

    from supportdesk.store import packs
    from supportdesk.store.files import raw_path
    from supportdesk.store.ledger import read_raw

    for i in range(20):  # a backlog: one pack
        imap_account.append("INBOX", raw_email(msgid=f"bl{i}@example.ru", subject=f"Счёт {i}"))
    Runner(edesk).run_once()
    imap_account.append("INBOX", raw_email(msgid="live@example.ru", subject="Живое письмо"))
    Runner(edesk).run_once()  # a live arrival: a file of its own
    with edesk.db.read() as s:
        rows = s.exec(select(Message).where(Message.direction == "in")).all()
    assert len(rows) == 21
    for m in rows:
        assert m.raw_sha256 and hashlib.sha256(read_raw(edesk.home, m.raw_sha256)).hexdigest() == (
            m.raw_sha256
        )
    loose = {m.message_id for m in rows if raw_path(edesk.home, m.raw_sha256 or "").exists()}
    assert loose == {"live@example.ru"}
    assert list(packs.packs_dir(edesk.home).glob("*.pack"))
