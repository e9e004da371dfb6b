"""Writing an ingest batch: customers, tickets, messages, attachments and events in a few
bulk statements (store/bulk.py), then the search index; and the batch's results."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from supportdesk.channels.base import InboundMessage
from supportdesk.inbound.batch import IngestResult, Outcome, address_list
from supportdesk.inbound.placing import Placing
from supportdesk.store import slamark
from supportdesk.store.bulk import Row, allocate_ids, insert_rows, write_rows
from supportdesk.store.files import StorageError, sha256_hex, store_attachment
from supportdesk.store.models import (
    AttachmentRow,
    Customer,
    Event,
    Message,
    Ticket,
)

# json.dumps(data, ensure_ascii=False, default=str), without making an encoder per event
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


class Batch(Placing):
    def write(self) -> None:
        s = self.s
        self._flush_customers()
        conn = s.connection()
        for _i, p in self.placed:
            if p.created and not p.ticket.customer_id:
                p.ticket.customer_id = p.customer.id or 0
        # ids first, so a new ticket is inserted once with its final counters
        early = allocate_ids(conn, Ticket, self.new_tickets, self.seqs(conn))
        if not early:
            insert_rows(conn, Ticket, self.new_tickets, self.seqs(conn))  # type: ignore[arg-type]
        rows: list[Row] = []
        for _i, p in self.placed:
            m, t = p.msg, p.ticket
            p.message = Row(  # type: ignore[assignment]
                Message,
                id=None,
                ticket_id=t.id or 0,
                direction="out" if p.outbound else "in",
                channel=m.channel,
                kind=m.kind,
                author=m.sender_name or m.sender_address,
                author_address=m.sender_address,
                customer_id=None if p.outbound else p.customer.id,
                dedupe_key=self.reused.get(id(m), m.dedupe_key),
                message_id=m.external_id,
                in_reply_to=(m.in_reply_to[-1] if m.in_reply_to else None),
                references=" ".join(m.references[-50:]),
                subject=m.subject[:998],
                text=m.text,
                quoted_text=m.quoted_text,
                html=m.html,
                created_at=p.sent_at,
                received_at=self.now,
                thread_reason=(
                    f"{p.reason}; reused Message-ID <{m.external_id}>"
                    if id(m) in self.reused
                    else p.reason
                ),
                raw_sha256=p.raw_sha256,
                auto_reason=m.auto_reason,
                to_addresses=address_list(m.to_addresses),
                cc_addresses=address_list(m.cc_addresses),
            )
            rows.append(p.message)  # type: ignore[arg-type]
        if early:
            early = allocate_ids(conn, Message, rows, self.seqs(conn))
        if not early:
            insert_rows(conn, Message, rows, self.seqs(conn))
        for _i, p in self.placed:
            assert p.message is not None
            mid = p.message.id or 0
            if p.ticket.last_message_id is None or mid > p.ticket.last_message_id:
                p.ticket.last_message_id = mid
        if early:
            write_rows(conn, Ticket, self.new_tickets)
            write_rows(conn, Message, rows)
        for _i, p in self.placed:
            if p.msg.attachments:
                p.att_names = self._store_attachments(p.message, p.msg)
        created_seen: set[int] = set()
        events_rows: list[dict[str, Any]] = []
        for _i, p in self.placed:
            t, stored = p.ticket, p.message
            assert stored is not None and t.id is not None
            if p.created and t.id not in created_seen:
                created_seen.add(t.id)
                events_rows.append(
                    self._event_row(
                        "created",
                        "system",
                        p.sent_at,
                        t.id,
                        p.customer.id,
                        None,
                        {"channel": p.msg.channel, "subject": t.subject},
                    )
                )
            if p.outbound:
                events_rows.append(
                    self._event_row(
                        "reply",
                        p.msg.sender_name or "agent",
                        p.sent_at,
                        t.id,
                        None,
                        stored.id,
                        {"imported": True},
                    )
                )
            elif not self.historical:
                events_rows.append(
                    self._event_row(
                        "message_in",
                        "system",
                        p.sent_at,
                        t.id,
                        p.customer.id,
                        stored.id,
                        # what the parser cut to bound the message's cost, if anything
                        {"reason": p.reason, "cut": p.msg.extra["parse_notes"]}
                        if p.msg.extra.get("parse_notes")
                        else {"reason": p.reason},
                    )
                )
        if self.historical and self.placed:
            # imported history: one audit record for the batch, not one per message (each
            # message keeps its own thread_reason; new tickets still get "created")
            events_rows.append(
                self._event_row(
                    "imported",
                    "system",
                    self.now,
                    None,
                    None,
                    None,
                    {
                        "messages": len(self.placed),
                        "new_tickets": len(created_seen),
                        "first_message_id": self.placed[0][1].message.id,  # type: ignore[union-attr]
                        "last_message_id": self.placed[-1][1].message.id,  # type: ignore[union-attr]
                    },
                )
            )
        for kind, meta, t, mid, data in self.events:
            events_rows.append(
                self._event_row(kind, meta["agent"], meta["at"], t.id, None, mid, data)
            )
        write_rows(conn, Event, events_rows)
        new_ids = {id(t) for t in self.new_tickets}
        if not early and self.new_tickets:
            # inserted before their messages: write the counters they got since
            tbl = Ticket.__table__  # type: ignore[attr-defined]
            cols: tuple[str, ...] = ("message_count", "last_message_id", "updated_at", "status")
            cols += ("first_response_at", "last_agent_at", "last_customer_at", "due_at")
            conn.execute(
                sa.update(tbl)
                .where(tbl.c.id == sa.bindparam("b_id"))
                .values({k: sa.bindparam(k) for k in cols}),
                [{"b_id": t.id, **{k: getattr(t, k) for k in cols}} for t in self.new_tickets],
            )
        for _i, p in self.placed:
            if id(p.ticket) not in new_ids:
                s.add(p.ticket)
        if self.renamed:  # existing customers ingest named (they are not tracked objects)
            tbl = Customer.__table__  # type: ignore[attr-defined]
            conn.execute(
                sa.update(tbl)
                .where(tbl.c.id == sa.bindparam("b_id"))
                .values(name=sa.bindparam("b_name"), updated_at=sa.bindparam("b_at")),
                [{"b_id": c.id, "b_name": c.name, "b_at": self.now} for c in self.renamed.values()],
            )
        s.flush()
        # new tickets dated in the past (an import, a late message): the next SLA pass is full
        slamark.note_rows(s, (t.updated_at for t in self.new_tickets))
        self._index()

    def _event_row(
        self,
        kind: str,
        agent: str,
        at: datetime,
        ticket_id: int | None,
        customer_id: int | None,
        message_id: int | None,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id,
            "customer_id": customer_id,
            "message_id": message_id,
            "agent": agent,
            "kind": kind,
            "data": _JSON.encode(data),
            "batch": None,
            "created_at": at,
        }

    def _store_attachments(self, message: Any, msg: InboundMessage) -> list[str]:
        names = []
        for i, att in enumerate(msg.attachments):
            row = AttachmentRow(
                message_id=message.id,
                filename=(att.filename or "attachment").replace("\x00", ""),
                size=att.size or (len(att.data) if att.data is not None else 0),
                content_type=att.content_type or "application/octet-stream",
                note=att.note,
                inline=att.inline,
            )
            if att.data is not None:
                row.sha256 = sha256_hex(att.data)
                try:
                    row.stored_path = store_attachment(
                        self.desk.home, message.id or 0, i, att.filename, att.data
                    )
                except StorageError as exc:
                    row.note = (
                        f"not stored: {exc.strerror or exc}"  # never lose the message over a file
                    )
            self.s.add(row)
            names.append(row.filename)
        return names

    def _index(self) -> None:
        """Index the new messages and tickets, the new customers, and customers ingest renamed."""
        from supportdesk.store import search as store

        conn = self.s.connection()
        if not store.available(conn):
            return
        docs: list[Any] = []
        for i, p in self.placed:
            m = p.message
            assert m is not None
            st = self.stems.get(i)
            docs.append(
                store.Doc(
                    store.KIND_MESSAGE,
                    m.id or 0,
                    title=m.subject or "",
                    body=m.text or "",
                    extra=" ".join(p.att_names),
                    stemmed=(st[0], st[1], None) if st is not None else None,
                )
            )
            if p.created:
                t = p.ticket
                title = st[2] if st is not None and id(t) in self._titled else None
                docs.append(
                    store.Doc(
                        store.KIND_TICKET, t.id or 0, title=t.subject, stemmed=(title, "", "")
                    )
                )
        # texts the parser processes stemmed already (a new customer's document, prep.stems_of):
        # used only for exactly the same text
        hints: dict[str, str] = {}
        if self.all_new_customers:
            for st in self.stems.values():
                if len(st) == 7:
                    hints[st[3]] = st[4]
                    hints[st[5]] = st[6]
        for c, ident in self.all_new_customers:
            title = f"{c.name} {c.company}"
            extra = f"{ident.address} {ident.display}"
            docs.append(
                store.Doc(
                    store.KIND_CUSTOMER,
                    c.id or 0,
                    title=title,
                    body=c.notes or "",
                    extra=extra,
                    stemmed=(hints.get(title), None, hints.get(extra)),
                )
            )
        store.upsert(conn, docs, new=True)  # new rows: new keys (COPY on PostgreSQL)
        if self.renamed:
            from supportdesk.search import index as search_index

            for cid in self.renamed:
                search_index.index_customer(self.s, cid)

    def finish(self) -> list[IngestResult]:
        out: list[IngestResult] = []
        placed = dict(self.placed)
        for i, r in enumerate(self.results):
            if r is not None:
                out.append(r)
                continue
            p = placed[i]
            assert p.message is not None
            needs_ack = False
            if p.created and not self.historical and not p.outbound:
                from supportdesk.inbound.ack import ack_allowed

                needs_ack = ack_allowed(self.s, self.desk, p.msg, p.msg.sender_address)
            outcome: Outcome = (
                "outbound" if p.outbound else ("new_ticket" if p.created else "joined")
            )
            reason = p.reason + (" (reopened)" if p.reopened else "")
            out.append(
                IngestResult(outcome, p.ticket.id, p.message.id, p.customer.id, reason, needs_ack)
            )
        return out
