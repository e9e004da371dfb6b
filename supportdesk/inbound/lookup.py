"""Look-ups for a whole ingest batch (known Message-IDs, identities, tickets, open
conversations) in a handful of queries, and the batch's customers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from supportdesk.channels.base import InboundMessage
from supportdesk.channels.email.subject import ticket_token
from supportdesk.channels.registry import channel_class
from supportdesk.core.config import ConfigError
from supportdesk.desk.identity import customer_with_phone, normalize_address
from supportdesk.inbound.batch import (
    PLACEHOLDER_NAMES,
    BatchState,
    _Known,
    reused_key,
    signature,
)
from supportdesk.store.bulk import Row, chunks, insert_rows
from supportdesk.store.merges import follow_merges, merged_into
from supportdesk.store.models import (
    OPEN_STATUSES,
    AttachmentRow,
    Customer,
    Identity,
    Message,
    Ticket,
)

# identity kinds whose addresses are phone numbers: a new one joins the customer with that phone
PHONE_KINDS = frozenset({"whatsapp"})


class Lookups(BatchState):
    # ---- look-ups for the whole batch ------------------------------------------------------
    def prefetch(self, msgs: Sequence[InboundMessage]) -> dict[str, tuple[int, int]]:
        s = self.s
        keys = list(
            {m.dedupe_key for m in msgs} | {reused_key(m) for m in msgs if not m.conversation_key}
        )
        existing: dict[str, tuple[int, int]] = {}  # dedupe key -> (message id, ticket id)
        for chunk in chunks(keys):
            cols: list[Any] = [
                Message.dedupe_key, Message.id, Message.ticket_id, Message.author_address,
                Message.subject, Message.text, Message.quoted_text, Message.direction,
                Message.created_at,
            ]  # fmt: skip
            rows = s.execute(sa.select(*cols).where(col(Message.dedupe_key).in_(chunk))).all()
            inbound = [r[1] for r in rows if r[7] == "in"]
            files: dict[int, list[tuple[str, int]]] = {}
            att_cols: list[Any] = [
                AttachmentRow.message_id, AttachmentRow.filename, AttachmentRow.size,
            ]  # fmt: skip
            for mid, name, size in s.execute(
                sa.select(*att_cols).where(col(AttachmentRow.message_id).in_(inbound))
            ).all() if inbound else []:  # fmt: skip
                files.setdefault(mid or 0, []).append((name, size))
            for dkey, pk, tid, author, subject, text, quoted, direction, created in rows:
                existing[dkey or ""] = (pk or 0, tid)
                if direction == "in":  # our own replies come back as sent: always the same
                    self.signatures[dkey or ""] = signature(
                        author, subject, text, quoted, None, files.get(pk or 0, [])
                    )
                    self.dates[dkey or ""] = created
        refs: set[str] = set()
        for m in msgs:
            if not m.conversation_key:
                refs.update(i for i in m.references[-100:] if i)
                refs.update(i for i in m.in_reply_to if i)
                refs.update(i for i in m.bounce_of if i)
        ticket_ids: set[int] = set()
        known: dict[str, int] = {}
        for chunk in chunks(sorted(refs)):
            for mid, tid in s.exec(
                select(Message.message_id, Message.ticket_id).where(
                    col(Message.message_id).in_(chunk)
                )
            ).all():
                if mid:
                    known[mid] = tid
                    ticket_ids.add(tid)
        for m in msgs:
            n = None if m.conversation_key else ticket_token(m.subject)
            if n is not None:
                ticket_ids.add(n)
        self._load_tickets(ticket_ids)
        for mid, tid in known.items():
            t = self._ticket(tid)
            if t is not None:
                self.by_msgid[mid] = t
        addrs: set[tuple[str, str]] = set()
        for m in msgs:
            kind, addr = self._customer_key(m)
            addrs.add((kind, addr))
        by_kind: dict[str, list[str]] = {}
        for kind, addr in addrs:
            by_kind.setdefault(kind, []).append(addr)
        cust_ids: dict[tuple[str, str], int] = {}
        for kind, lst in by_kind.items():
            for chunk in chunks(lst):
                for address, customer_id in s.exec(
                    select(Identity.address, Identity.customer_id).where(
                        Identity.kind == kind, col(Identity.address).in_(chunk)
                    )
                ).all():
                    cust_ids[(kind, address)] = customer_id
        loaded: dict[int, Any] = {}
        pending = set(cust_ids.values())
        while pending:
            batch = [i for i in pending if i not in loaded]
            pending = set()
            for chunk in chunks(batch):
                # the three columns ingest reads, not whole tracked objects (a tenth of the cost)
                cq = select(Customer.id, Customer.name, Customer.merged_into_id)
                for cid, cname, merged in s.exec(cq.where(col(Customer.id).in_(chunk))).all():
                    loaded[cid or 0] = _Known(cid or 0, cname, merged)
                    if merged and merged not in loaded:
                        pending.add(merged)
        for key, cid in cust_ids.items():
            c: Any = loaded.get(cid)
            seen: set[int] = set()
            while c is not None and c.merged_into_id and c.id not in seen:
                seen.add(c.id or 0)
                c = loaded.get(c.merged_into_id, c)
                if c.id in seen:
                    break
            if c is not None:
                self.customers[key] = c
        tg = [
            (c.id, m.channel)
            for m in msgs
            if m.conversation_key
            for c in [self.customers.get(self._customer_key(m))]
            if c is not None
        ]
        if tg:
            cids = sorted({cid for cid, _ch in tg if cid})
            for chunk in chunks(cids):
                q = (
                    select(Ticket)
                    .where(col(Ticket.customer_id).in_(chunk))
                    .where(col(Ticket.status).in_(OPEN_STATUSES + ("solved",)))
                    .order_by(col(Ticket.id))
                )
                for t in s.exec(q).all():
                    self.tickets[t.id or 0] = t
                    self.open_chats[(t.customer_id, t.channel)] = t  # the newest wins
        return existing

    def _load_tickets(self, ids: set[int]) -> None:
        want = sorted(i for i in ids if i not in self.tickets)
        for chunk in chunks(want):
            for t in self.s.exec(select(Ticket).where(col(Ticket.id).in_(chunk))).all():
                self.tickets[t.id or 0] = t

    def _ticket(self, tid: int) -> Ticket | None:
        t = self.tickets.get(tid)
        if t is None:
            t = self.s.get(Ticket, tid)
            if t is not None:
                self.tickets[tid] = t
        if t is not None and t.status == "closed" and merged_into(t) is not None:
            t = follow_merges(self.s, t)
            if t is not None:
                self.tickets[t.id or 0] = t
        return t

    def _title(self, msg: InboundMessage) -> str:
        """The title of the message's channel type, for thread reasons ("open Telegram chat")."""
        got = self._titles.get(msg.channel)
        if got is None:
            types = {c.name: c.type for c in self.desk.config.channel}
            try:
                got = channel_class(types.get(msg.channel, msg.kind)).title
            except ConfigError:
                got = msg.kind
            self._titles[msg.channel] = got
        return got

    def _customer_key(self, m: InboundMessage) -> tuple[str, str]:
        """(kind, normalized address) of the customer a message is about (worked out once)."""
        key = self._keys.get(id(m))
        if key is None:
            key = self._keys[id(m)] = self._work_out_customer_key(m)
        return key

    def _work_out_customer_key(self, m: InboundMessage) -> tuple[str, str]:
        kind = m.kind
        addr = normalize_address(kind, m.sender_address)
        if addr in self.own:  # our own message: the customer is whom it went to
            others = [
                a
                for a in (m.to_addresses + m.cc_addresses)
                if normalize_address(kind, a) not in self.own
            ]
            return kind, normalize_address(kind, others[0]) if others else addr
        return kind, addr

    def customer_for(self, m: InboundMessage, *, outbound: bool) -> Customer:
        key = self._customer_key(m)
        name = "" if outbound else (m.sender_name or "")
        display = ""
        if m.extra.get("username"):  # a messenger handle
            display = "@" + str(m.extra["username"])
        cust = self.customers.get(key)
        if cust is not None:
            placeholder = PLACEHOLDER_NAMES.get(key[0], "")
            if name and cust.name in ("", placeholder) and isinstance(cust, _Known):
                cust.name = name  # written by write(), with the search index
                self.renamed[int(cust.id)] = cust
            return cust
        kind, addr = key
        if kind in PHONE_KINDS and not outbound:
            linked = self._customer_by_phone(kind, addr, display or name)
            if linked is not None:
                return linked
        row = Row(
            Customer,
            id=None,
            name=name or PLACEHOLDER_NAMES.get(kind) or addr.split("@")[0],
            created_at=self.now,
            updated_at=self.now,
        )
        ident = Row(
            Identity,
            id=None,
            customer_id=0,
            kind=kind,
            address=addr,
            display=display or name,
            created_at=self.now,
        )
        self.customers[key] = row  # type: ignore[assignment]
        self.new_customers.append((row, ident))  # type: ignore[arg-type]
        self.all_new_customers.append((row, ident))  # type: ignore[arg-type]
        return row  # type: ignore[return-value]

    def _customer_by_phone(self, kind: str, addr: str, display: str) -> Customer | None:
        """A new phone-number identity (WhatsApp) joins the customer whose phone it is."""
        found = customer_with_phone(self.s, addr)
        if found is None or found.id is None:
            return None
        ident = Row(
            Identity,
            id=None,
            customer_id=found.id,
            kind=kind,
            address=addr,
            display=display,
            created_at=self.now,
        )
        insert_rows(self.s.connection(), Identity, [ident])  # type: ignore[list-item]
        known = _Known(found.id, found.name, None)
        self.customers[(kind, addr)] = known  # type: ignore[assignment]
        return known  # type: ignore[return-value]

    def _flush_customers(self) -> None:
        if not self.new_customers:
            return
        conn = self.s.connection()
        custs = [c for c, _i in self.new_customers]
        insert_rows(conn, Customer, custs)  # type: ignore[arg-type]
        for cust, ident in self.new_customers:
            ident.customer_id = cust.id or 0
        insert_rows(conn, Identity, [i for _c, i in self.new_customers])  # type: ignore[misc]
        self.new_customers = []
