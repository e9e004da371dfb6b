"""What the triage service does on a status change or a tag, done by hand for these tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select

from supportdesk.desk import audit as events
from supportdesk.replies import csat
from supportdesk.sla import clocks as sla
from supportdesk.store.models import Agent, Tag, Ticket, TicketTag


def set_status(desk: Any, ticket_id: int, status: str, at: datetime, agent: str = "alice") -> Any:
    """Change a status the way triage does: event, SLA clocks, survey on solve."""
    with desk.db.write() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None
        before = t.status
        t.status = status
        if status == "solved":
            t.solved_at = at
        elif status in ("new", "open", "pending"):
            t.solved_at = None
        events.record(s, "status", agent=agent, ticket_id=t.id, at=at, before=before, after=status)
        sla.update_clocks(desk.config, t, at)
        s.add(t)
        survey = csat.request_survey(s, desk, t, now=at) if status == "solved" else None
        return survey


def add_tags(desk: Any, ticket_id: int, *names: str) -> None:
    with desk.db.write() as s:
        for name in names:
            tag = s.exec(select(Tag).where(Tag.name == name)).first()
            if tag is None:
                tag = Tag(name=name)
                s.add(tag)
                s.flush()
            s.add(TicketTag(ticket_id=ticket_id, tag_id=tag.id or 0))


def assign(desk: Any, ticket_id: int, agent: str) -> None:
    with desk.db.write() as s:
        a = s.exec(select(Agent).where(Agent.name == agent)).first()
        if a is None:
            a = Agent(name=agent)
            s.add(a)
            s.flush()
        t = s.get(Ticket, ticket_id)
        assert t is not None
        t.assignee_id = a.id
        s.add(t)


def ticket(desk: Any, ticket_id: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None
        return t


def desk_reply(desk: Any, to: str, in_reply_to: str, at: datetime, agent: str) -> Any:
    """An agent's reply found in the mailbox: sent from the desk's own address."""
    from tests.factories import inbound_email, ingest

    msg = inbound_email(sender_address="support@acme.test", sender_name=agent,
                        to_addresses=[to], in_reply_to=[in_reply_to], sent_at=at,
                        subject="Re: your request", text="Here is what to do.")  # fmt: skip
    return ingest(desk, msg, historical=True)


def build_history(desk: Any) -> dict[str, int]:
    """A month of support with known timestamps (Moscow time, business hours 09-18).

    t4  anna   Tue 3 Nov 17:00, reply Thu 5 09:30 (4 Nov is a holiday), solved 10:00; opted out
    t1  ivan   Mon 16 10:00, reply 10:30, solved 15:00, rates 5 by e-mail at 16:00
    t5  tg     Wed 18 12:00, reply 12:03, solved 12:10, rates 4 with a button at 12:20
    t2  olga   Fri 20 17:30, reply Mon 23 09:45 + pending, customer Tue 24 11:00, solved 12:00
    t3  petr   Sat 21 12:00 "URGENT", reply Mon 23 10:00, still open
    t6  late   Tue 1 Dec 01:00 (30 Nov 22:00 UTC): outside November in Moscow
    """
    from supportdesk.outbound import outbox
    from supportdesk.replies import csat
    from supportdesk.store.models import Customer
    from tests.factories import inbound_email, inbound_telegram, ingest
    from tests.sla.conftest import msk

    def mail(sender: str, at: datetime, **kw: Any) -> Any:
        ext = f"{sender.split('@')[0]}-{at:%d%H%M}@mail.test"
        return ingest(desk, inbound_email(sender_address=sender, external_id=ext, sent_at=at,
                                          **kw), historical=True), ext  # fmt: skip

    ids: dict[str, int] = {}
    r4, m4 = mail("anna@x.test", msk(3, 17))
    ids["t4"] = r4.ticket_id
    with desk.db.write() as s:
        c = s.get(Customer, r4.customer_id)
        assert c is not None
        c.csat_opt_out = True
    desk_reply(desk, "anna@x.test", m4, msk(5, 9, 30), "alice")
    set_status(desk, ids["t4"], "solved", msk(5, 10), "alice")

    r1, m1 = mail("ivan@example.ru", msk(16, 10))
    ids["t1"] = r1.ticket_id
    desk_reply(desk, "ivan@example.ru", m1, msk(16, 10, 30), "alice")
    survey = set_status(desk, ids["t1"], "solved", msk(16, 15), "alice")
    ingest(desk, inbound_email(text="5 great", in_reply_to=[survey.message_id],
                               sent_at=msk(16, 16)), historical=True)  # fmt: skip

    r5 = ingest(desk, inbound_telegram(chat_id=1001, sent_at=msk(18, 12)), historical=True)
    ids["t5"] = r5.ticket_id
    with desk.db.write() as s:
        t = s.get(Ticket, ids["t5"])
        m = outbox.queue_outbound(s, desk, t, "Перезапустите бота.", agent="bob",
                                  at=msk(18, 12, 2))  # fmt: skip
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
    from supportdesk.runner import state
    from tests.factories import claim

    state.mark_sent(desk, ob.id or 0, ["tg:1001:9"], epoch=claim(desk, ob.id or 0),
                    at=msk(18, 12, 3))  # delivered  # fmt: skip
    set_status(desk, ids["t5"], "solved", msk(18, 12, 10), "bob")
    from supportdesk.channels.base import InboundMessage

    press = InboundMessage(kind="telegram", external_id="tg:1001:callback:1", sender_address="1001",
                           sent_at=msk(18, 12, 20), channel="telegram",
                           extra={"chat_id": 1001, "callback_data": f"csat:{ids['t5']}:4",
                                  "callback_query_id": "1"})  # fmt: skip
    with desk.db.write() as s:
        assert csat.handle_inbound_callback(s, desk, press)

    r2, m2 = mail("olga@x.test", msk(20, 17, 30))
    ids["t2"] = r2.ticket_id
    reply2 = desk_reply(desk, "olga@x.test", m2, msk(23, 9, 45), "bob")
    set_status(desk, ids["t2"], "pending", msk(23, 9, 45), "bob")
    with desk.db.read() as s:
        from supportdesk.store.models import Message

        reply_id = s.get(Message, reply2.message_id).message_id
    mail("olga@x.test", msk(24, 11), in_reply_to=[reply_id], text="Here are the details.")
    set_status(desk, ids["t2"], "solved", msk(24, 12), "bob")
    add_tags(desk, ids["t2"], "billing", "complaint")
    assign(desk, ids["t2"], "bob")

    r3, m3 = mail("petr@x.test", msk(21, 12), subject="URGENT: site down")
    ids["t3"] = r3.ticket_id
    desk_reply(desk, "petr@x.test", m3, msk(23, 10), "bob")

    r6, _m6 = mail("late@x.test", msk(1, 1, month=12))
    ids["t6"] = r6.ticket_id
    add_tags(desk, ids["t1"], "billing")
    add_tags(desk, ids["t5"], "bot")
    return ids
