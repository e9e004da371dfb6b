"""The desk-side sink for push channels: website messages enter the one pipeline."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from supportdesk.channels.base import InboundMessage, OutboundMessage
from supportdesk.inbound.push import DeskSink
from supportdesk.store.files import raw_path
from supportdesk.store.models import Identity, KbArticle, Message, Outbox, Ticket


def web_msg(vid: str, cid: str, text: str, **extra: Any) -> InboundMessage:
    raw = json.dumps({"visitor": vid, "cid": cid, "text": text}).encode()
    return InboundMessage(
        kind="web",  # type: ignore[arg-type]
        external_id=f"web:{vid}:{cid}",
        sender_address=vid,
        text=text,
        raw=raw,
        sent_at=datetime.now(UTC),
        extra={"conversation": vid, **extra},
        channel="site",
    )


async def test_chat_messages_thread_into_one_ticket_and_dedupe(desk: Any) -> None:
    sink = DeskSink(desk)
    first = await sink([web_msg("vAAAA", "c-000001", "Hello, my order is late")])
    assert first[0].outcome == "new_ticket" and first[0].ticket_id
    again = await sink([web_msg("vAAAA", "c-000001", "Hello, my order is late")])
    assert again[0].outcome == "duplicate" and again[0].ticket_id == first[0].ticket_id
    more = await asyncio.gather(
        *(sink([web_msg("vAAAA", f"c-00010{i}", f"more {i}")]) for i in range(5))
    )
    assert {r[0].ticket_id for r in more} == {first[0].ticket_id}
    with desk.db.read() as s:
        t = s.get(Ticket, first[0].ticket_id)
        assert t is not None and t.kind == "web" and t.channel == "site"
        assert t.reply_to_address == "vAAAA" and t.subject == "Hello, my order is late"
        msgs = s.exec(
            select(Message).where(Message.ticket_id == t.id, Message.direction == "in")
        ).all()
        assert len(msgs) == 6
        assert all(raw_path(desk.home, m.raw_sha256 or "").exists() for m in msgs)  # in the ledger
    lines = await sink.conversation("site", "vAAAA")
    assert [ln.id for ln in lines][:1] == ["web:vAAAA:c-000001"]
    assert await sink.conversation("site", "vOTHER") == []


async def test_reply_has_one_id_for_push_and_history(desk: Any) -> None:
    from supportdesk.outbound import outbox

    sink = DeskSink(desk)
    [st] = await sink([web_msg("vBBBB", "c-000002", "question")])
    with desk.db.write() as s:
        t = s.get(Ticket, st.ticket_id)
        assert t is not None
        reply = outbox.queue_outbound(s, desk, t, "answer <b>", agent="alice")
        rid = reply.message_id
    assert rid and rid.startswith("web-out:")
    with desk.db.read() as s:
        row = s.exec(select(Outbox).where(Outbox.message_id == reply.id)).one()
        assert row.external_message_id == rid and row.to_address == "vBBBB"
    lines = await sink.conversation("site", "vBBBB")
    # the agent's answer (notes never appear; a chat gets no e-mail-style acknowledgement)
    assert [ln.text for ln in lines if ln.direction == "out"][-1] == "answer <b>"
    assert lines[-1].id == rid


async def test_email_left_in_the_widget_links_the_customer_and_mail_fallback(desk: Any) -> None:
    sink = DeskSink(desk)
    [st] = await sink([web_msg("vCCCC", "c-000003", "hi", email="Ann@Example.test")])
    with desk.db.read() as s:
        ids = s.exec(
            select(Identity).where(Identity.address.in_(["vCCCC", "ann@example.test"]))
        ).all()  # type: ignore[attr-defined]
        assert {i.kind for i in ids} == {"web", "email"} and len({i.customer_id for i in ids}) == 1
    with desk.db.write() as s:
        from supportdesk.outbound import outbox

        t = s.get(Ticket, st.ticket_id)
        assert t is not None
        reply = outbox.queue_outbound(s, desk, t, "the answer", agent="alice")
    out = OutboundMessage(
        kind="web", to_address="vCCCC", text="the answer", message_id=reply.message_id or ""
    )  # type: ignore[arg-type]
    assert await sink.forward_by_email("site", "vCCCC", out) == "ann@example.test"
    with desk.db.read() as s:
        mail = s.exec(select(Outbox).where(Outbox.kind == "email")).one()
        assert mail.channel == "support" and mail.to_address == "ann@example.test"
        assert (
            mail.message_id == reply.id
            and f"[#{st.ticket_id}]" in json.loads(mail.payload)["subject"]
        )
    assert await sink.forward_by_email("site", "vNOMAIL", out) is None


async def test_a_known_email_customer_gets_the_web_chat(desk: Any) -> None:
    from tests.factories import inbound_email, ingest

    res = ingest(desk, inbound_email(sender_address="bob@example.test", sender_name="Bob"))
    with desk.db.read() as s:
        bob = s.get(Ticket, res.ticket_id)
        assert bob is not None
    [st] = await sink_call(
        desk, web_msg("vDDDD", "c-000004", "it's Bob again", email="bob@example.test")
    )
    with desk.db.read() as s:
        t = s.get(Ticket, st.ticket_id)
        assert t is not None and t.customer_id == bob.customer_id


async def sink_call(desk: Any, msg: InboundMessage) -> Any:
    return await DeskSink(desk)([msg])


async def test_contact_form_message_lives_on_the_mail_channel_and_is_acknowledged(
    desk: Any,
) -> None:
    sink = DeskSink(desk)
    form = InboundMessage(
        kind="email",
        external_id="webform:abcdefgh",
        sender_address="carol@example.test",
        sender_name="Carol",
        subject="Invoice",
        text="Where is my invoice?",
        raw=b"name=Carol&...",
        channel="site",
    )
    [st] = await sink([form])
    assert st.outcome == "new_ticket"
    with desk.db.read() as s:
        t = s.get(Ticket, st.ticket_id)
        assert t is not None and t.channel == "support" and t.kind == "email"
        ack = s.exec(select(Outbox).where(Outbox.ticket_id == t.id)).one()
        assert ack.to_address == "carol@example.test" and json.loads(ack.payload)["auto"] is True
    assert (await sink([form]))[0].outcome == "duplicate"  # a double submit


async def test_public_kb_suggestions_only(desk: Any) -> None:
    from supportdesk.replies import kb

    kb.add_article(
        desk,
        title="Reset your password",
        body="Open settings and choose Reset password.",
        public=True,
    )
    kb.add_article(desk, title="Password internals", body="Internal password notes.", public=False)
    kb.add_article(
        desk,
        title="Сброс пароля",
        body="Откройте настройки и нажмите «Сбросить пароль».",
        public=True,
    )
    sink = DeskSink(desk)
    found = await sink.suggest("I forgot my password")
    assert [a.title for a in found] == ["Reset your password"]
    ru = await sink.suggest("забыл пароль")
    assert [a.title for a in ru] == ["Сброс пароля"]
    with desk.db.read() as s:
        assert len(s.exec(select(KbArticle)).all()) == 3


async def test_availability_follows_agents_at_work(desk: Any) -> None:
    from supportdesk.people import presence

    sink = DeskSink(desk)
    av = await sink.availability("site")
    assert av.online is False and av.first_response.total_seconds() == 4 * 3600
    presence.heartbeat(desk, 1)
    assert (await sink.availability("site")).online is True


async def test_acknowledgement_lists_articles_when_nobody_is_online(desk: Any) -> None:
    from supportdesk.people import presence
    from supportdesk.replies import kb

    kb.add_article(
        desk, title="Printer offline fix", body="Restart the printer spooler.", public=True
    )
    kb.add_article(desk, title="Printer internals", body="Spooler notes.", public=False)
    sink = DeskSink(desk)

    async def ack_text(sender: str, subject: str) -> str:
        mail = InboundMessage(
            kind="email",
            external_id=f"webform:{sender}",
            sender_address=sender,
            subject=subject,
            text="It says offline since this morning.",
            channel="site",
        )
        [st] = await sink([mail])
        with desk.db.read() as s:
            row = s.exec(select(Outbox).where(Outbox.ticket_id == st.ticket_id)).one()
            msg = s.get(Message, row.message_id)
            assert msg is not None
            return msg.text

    text = await ack_text("pat@example.test", "My printer is offline")
    assert "these articles may already answer it" in text and "- Printer offline fix" in text
    assert "internals" not in text
    presence.heartbeat(desk, 1)  # an agent at the console: a person answers, no article list
    assert "articles" not in await ack_text("quinn@example.test", "Printer offline again")
