"""The inbound sink for push channels (the website): their messages enter the one pipeline.

``DeskSink(desk)`` is what the runner hands a push channel's ``serve``. A call stores messages
exactly as a fetched batch is stored (raw ledger synced first, then ingest, quarantine,
acknowledgement and audit in one write transaction) and returns only after the commit, so the
channel may tell its peer "received". Calls arriving together (500 widgets typing at once) are
written as one batch by a single writer: one transaction and one ledger sync for all of them.

It also answers the channel's few read-only questions (a visitor's conversation, public KB
articles for what they type, whether anyone is online, the promised reply time) and forwards a
reply by e-mail when a visitor has gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlmodel import col, select

from supportdesk.channels.base import (
    Article,
    Availability,
    ChatLine,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    Stored,
)
from supportdesk.channels.registry import channel_kind, configured_class
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.desk.identity import normalize_email
from supportdesk.inbound import pipeline
from supportdesk.inbound.pipeline import Summary
from supportdesk.store.models import Identity, Message, Outbox, Ticket, utcnow

log = logging.getLogger("supportdesk.inbound.push")

BATCH = 200  # messages per transaction at most


class DeskSink:
    def __init__(
        self,
        desk: Desk,
        *,
        channel: str = "",
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        wake_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.desk = desk
        self.channel = channel  # the channel whose delivery reports this sink records
        self.on_event = on_event or (lambda kind, data: None)
        self.wake_outbox = wake_outbox or (lambda: None)
        self._queue: asyncio.Queue[tuple[InboundMessage, asyncio.Future[Stored]]] | None = None
        self._writer: asyncio.Task[None] | None = None

    # ---- storing ------------------------------------------------------------------------
    async def __call__(self, messages: list[InboundMessage]) -> list[Stored]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        loop = asyncio.get_running_loop()
        futures = []
        for m in messages:
            fut: asyncio.Future[Stored] = loop.create_future()
            self._queue.put_nowait((m, fut))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                stored = await asyncio.to_thread(self.store, [m for m, _f in batch])
            except Exception as exc:
                for _m, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_m, fut), st in zip(batch, stored, strict=True):
                if not fut.done():
                    fut.set_result(st)

    def _home_channel(self, msg: InboundMessage) -> str:
        """A contact form's message is an e-mail: it lives on the desk's mail channel."""
        if msg.kind != "email":
            return msg.channel
        web = self._web_config(msg.channel)
        wanted = getattr(web, "mail_channel", None) if web is not None else None
        mail = [ch for ch in self.desk.config.channel if channel_kind(ch) == "email"]
        for ch in mail:
            if ch.name == wanted:
                return ch.name
        sending = [ch for ch in mail if getattr(ch, "smtp", None)]
        return (sending or mail)[0].name if mail else msg.channel

    def _web_config(self, name: str) -> Any:
        for ch in self.desk.config.channel:
            if ch.name == name:
                return ch
        return None

    def store(self, messages: list[InboundMessage]) -> list[Stored]:
        """Synchronously: ledger, link identities, ingest, acknowledge (a worker thread)."""
        out: dict[int, Stored] = {}
        groups: dict[str, list[InboundMessage]] = {}
        for m in messages:
            groups.setdefault(self._home_channel(m), []).append(m)
        for channel, msgs in groups.items():
            self._link_identities(msgs)
            summary = Summary()
            stored = pipeline.store(self.desk, msgs, channel=channel, summary=summary)
            for m, st in zip(msgs, stored, strict=True):
                outcome = st.outcome
                if outcome not in ("new_ticket", "duplicate", "quarantined"):
                    outcome = "joined"
                out[id(m)] = Stored(st.external_id, st.ticket_id, st.message_id, outcome)
            self._link_identities(msgs)
            if summary.acks:
                self.wake_outbox()
            for st in stored:
                if st.outcome in ("new_ticket", "joined"):
                    self.on_event("message", {"ticket_id": st.ticket_id, "outcome": st.outcome})
        return [out[id(m)] for m in messages]

    def _link_identities(self, msgs: list[InboundMessage]) -> None:
        """A visitor who left an e-mail address: their website identity and that address belong
        to one customer (so the agent sees the chat beside their mail). An address that is
        already another customer's is linked only when the visitor is new to the desk."""
        wanted = [m for m in msgs if m.kind != "email" and m.extra.get("email")]
        if not wanted:
            return
        with self.desk.db.write() as s:
            for m in wanted:
                addr = normalize_email(str(m.extra["email"]))
                own = s.exec(
                    select(Identity).where(
                        Identity.kind == m.kind, Identity.address == m.sender_address
                    )
                ).first()
                mail = s.exec(
                    select(Identity).where(Identity.kind == "email", Identity.address == addr)
                ).first()
                if own is None and mail is not None:
                    s.add(
                        Identity(
                            customer_id=mail.customer_id,
                            kind=m.kind,
                            address=m.sender_address,
                            display=m.sender_name,
                        )
                    )
                elif own is not None and mail is None:
                    s.add(
                        Identity(
                            customer_id=own.customer_id,
                            kind="email",
                            address=addr,
                            display=m.sender_name,
                        )
                    )
                s.flush()

    async def delivery(self, reports: list[DeliveryReport]) -> None:
        """The peer's delivery reports (WhatsApp statuses) on this channel's outbox rows."""
        from supportdesk.outbound import receipts

        def work() -> None:
            with self.desk.db.write() as s:
                receipts.record_delivery(s, self.desk, self.channel, reports)

        await asyncio.to_thread(work)

    # ---- read-only questions ------------------------------------------------------------
    def _conversation(self, channel: str, address: str, limit: int) -> list[ChatLine]:
        with self.desk.db.read() as s:
            ident = s.exec(
                select(Identity).where(Identity.kind == "web", Identity.address == address)
            ).first()
            if ident is None:
                return []
            ticket = s.exec(
                select(Ticket)
                .where(Ticket.customer_id == ident.customer_id, Ticket.channel == channel)
                .where(Ticket.reply_to_address == address)
                .order_by(col(Ticket.id).desc())
            ).first()
            if ticket is None:
                return []
            rows = s.exec(
                select(Message)
                .where(Message.ticket_id == ticket.id)
                .where(col(Message.direction).in_(["in", "out"]))
                .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                .limit(limit)
            ).all()
            return [
                ChatLine(
                    id=r.message_id or f"m{r.id}",
                    direction=r.direction,
                    text=r.text,
                    at=r.created_at,
                    author=r.author if r.direction == "out" else "",
                )
                for r in reversed(rows)
            ]

    async def conversation(self, channel: str, address: str, limit: int = 100) -> list[ChatLine]:
        return await asyncio.to_thread(self._conversation, channel, address, limit)

    def _suggest(self, text: str, limit: int) -> list[Article]:
        from supportdesk.replies import kb

        with self.desk.db.read() as s:
            return [
                Article(d["title"], d["slug"], d["snippet"])
                for d in kb.suggest_public(s, text, limit)
            ]

    async def suggest(self, text: str, limit: int = 3) -> list[Article]:
        return await asyncio.to_thread(self._suggest, text, limit)

    def _availability(self, channel: str) -> Availability:
        from supportdesk.sla import clocks as sla
        from supportdesk.sla.hours import BusinessHours

        now = utcnow()
        promise = sla.promised_response(self.desk.config, "web", channel)
        if not BusinessHours.from_config(self.desk.config, channel).is_open(now):
            return Availability(False, promise)
        from supportdesk.people.presence import agents_online

        with self.desk.db.read() as s:
            active = agents_online(s, now=now)
        return Availability(active, promise)

    async def availability(self, channel: str) -> Availability:
        return await asyncio.to_thread(self._availability, channel)

    def _forward(self, channel: str, address: str, msg: OutboundMessage) -> str | None:
        from supportdesk.outbound import outbox

        with self.desk.db.write() as s:
            ident = s.exec(
                select(Identity).where(Identity.kind == "web", Identity.address == address)
            ).first()
            if ident is None:
                return None
            mail = s.exec(
                select(Identity)
                .where(Identity.customer_id == ident.customer_id, Identity.kind == "email")
                .order_by(col(Identity.id).desc())
            ).first()
            ticket = s.exec(
                select(Ticket)
                .where(Ticket.channel == channel, Ticket.reply_to_address == address)
                .order_by(col(Ticket.id).desc())
            ).first()
            mail_channel = self._home_channel(
                InboundMessage(kind="email", external_id="", sender_address="", channel=channel)
            )
            if mail is None or ticket is None or mail_channel == channel:
                return None
            original = (
                s.exec(select(Message).where(Message.message_id == msg.message_id)).first()
                if msg.message_id
                else None
            )
            # the same reply (one message on the ticket) gets a second delivery, by mail
            mail_class = configured_class(self.desk.config, mail_channel, "email")
            sender = outbox.channel_address(self.desk, mail_channel)
            mid = mail_class.reply_id(sender) if mail_class is not None else ""
            token = f"[#{ticket.id}]"
            subject = ticket.subject if token in ticket.subject else f"Re: {ticket.subject} {token}"
            now = utcnow()
            s.add(
                Outbox(
                    ticket_id=ticket.id,
                    message_id=original.id if original is not None else None,
                    channel=mail_channel,
                    kind="email",
                    to_address=mail.address,
                    state="queued",
                    next_attempt_at=now,
                    external_message_id=mid,
                    payload=json.dumps(
                        {"subject": subject, "auto": False, "text": msg.text},
                        ensure_ascii=False,
                    ),
                    created_at=now,
                )
            )
            events.record(
                s,
                "forwarded",
                agent="system",
                ticket_id=ticket.id,
                message_id=original.id if original is not None else None,
                channel=mail_channel,
                to=mail.address,
                why="the visitor left the website chat",
            )
        self.wake_outbox()
        return mail.address

    async def forward_by_email(
        self, channel: str, address: str, msg: OutboundMessage
    ) -> str | None:
        return await asyncio.to_thread(self._forward, channel, address, msg)
