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
from supportdesk.store.bulk import Row, in_batches, insert_rows
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
        self._msgs = msgs
        keys = list(
            {m.dedupe_key for m in msgs} | {reused_key(m) for m in msgs if not m.conversation_key}
        )
        existing: dict[str, tuple[int, int]] = {}  # dedupe key -> (message id, ticket id)
        bind = s.get_bind()
        for where in in_batches(bind, col(Message.dedupe_key), keys):
            cols: list[Any] = [
                Message.dedupe_key, Message.id, Message.ticket_id, Message.author_address,
                Message.subject, Message.text, Message.quoted_text, Message.direction,
                Message.created_at,
            ]  # fmt: skip
            rows = s.execute(sa.select(*cols).where(where)).all()
            inbound = [r[1] for r in rows if r[7] == "in"]
            files: dict[int, list[tuple[str, int]]] = {}
            att_cols: list[Any] = [
                AttachmentRow.message_id, AttachmentRow.filename, AttachmentRow.size,
            ]  # fmt: skip
            for on in in_batches(bind, col(AttachmentRow.message_id), inbound):
                for mid, name, size in s.execute(sa.select(*att_cols).where(on)).all():
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
        for where in in_batches(bind, col(Message.message_id), sorted(refs)):
            for mid, tid in s.exec(select(Message.message_id, Message.ticket_id).where(where)):
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
            for where in in_batches(bind, col(Identity.address), lst):
                for address, customer_id in s.exec(
                    select(Identity.address, Identity.customer_id).where(
                        Identity.kind == kind, where
                    )
                ).all():
                    cust_ids[(kind, address)] = customer_id
        loaded: dict[int, Any] = {}
        pending = set(cust_ids.values())
        while pending:
            batch = [i for i in pending if i not in loaded]
            pending = set()
            for where in in_batches(bind, col(Customer.id), batch):
                # the three columns ingest reads, not whole tracked objects (a tenth of the cost)
                cq = select(Customer.id, Customer.name, Customer.merged_into_id)
                for cid, cname, merged in s.exec(cq.where(where)).all():
                    loaded[cid or 0] = _Known(cid or 0, cname, merged)
                    self._merged[cid or 0] = merged
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
            for where in in_batches(bind, col(Ticket.customer_id), cids):
                q = (
                    select(Ticket)
                    .where(where)
                    .where(col(Ticket.status).in_(OPEN_STATUSES + ("solved",)))
                    .order_by(col(Ticket.id))
                )
                for t in s.exec(q).all():
                    self.tickets[t.id or 0] = t
                    self.open_chats[(t.customer_id, t.channel)] = t  # the newest wins
        return existing

    def _load_merges(self, ids: set[int]) -> None:
        """Read which customer each of ``ids`` was merged into (and so on down the chains)."""
        want = {i for i in ids if i not in self._merged}
        while want:
            found: set[int] = set()
            for where in in_batches(self.s.get_bind(), col(Customer.id), sorted(want)):
                cq = select(Customer.id, Customer.merged_into_id)
                for cid, merged in self.s.exec(cq.where(where)).all():
                    self._merged[cid or 0] = merged
                    if merged and merged not in self._merged:
                        found.add(merged)
            want = found

    def _root(self, customer_id: int) -> int:
        """The customer merges lead to (``identity.resolve_customer``'s answer, from a few
        batched reads): every existing ticket's customer is read at the first call."""
        got = self._roots.get(customer_id)
        if got is not None:
            return got
        if customer_id not in self._merged:
            self._load_merges({customer_id} | {t.customer_id for t in self.tickets.values()})
        if customer_id not in self._merged:
            raise LookupError(f"customer {customer_id} does not exist")
        cur, seen = customer_id, set()
        while True:
            nxt = self._merged.get(cur)
            if not nxt or cur in seen:
                break
            seen.add(cur)
            if nxt not in self._merged:
                self._load_merges({nxt})
            if nxt not in self._merged:  # merged into a customer that is gone: stop here
                break
            cur = nxt
        self._roots[customer_id] = cur
        return cur

    def _participants_of(self, ticket: Ticket) -> set[str]:
        """Addresses on the ticket's messages (To, Cc, authors), third parties' left out: read
        for every ticket a message of the batch may join as a third party at once, then kept
        up to date by ``place``."""
        got = self._participants.get(id(ticket))
        if got is not None:
            return got
        rows: dict[int, set[str]] = {}
        if ticket.id is not None:
            want = {ticket.id}
            for m in self._msgs:  # other tickets replies from someone else may join
                if m.conversation_key:
                    continue
                for ref in reversed([*m.references[-100:], *m.in_reply_to]):
                    t = self.by_msgid.get(ref)
                    if t is not None:
                        c = self.customers.get(self._customer_key(m))
                        if t.id is not None and (c is None or c.id != t.customer_id):
                            want.add(t.id)
                        break
            want -= {t.id for t in self.tickets.values() if id(t) in self._participants}
            cols: list[Any] = [
                Message.ticket_id, Message.to_addresses, Message.cc_addresses,
                Message.author_address, Message.thread_reason,
            ]  # fmt: skip
            for where in in_batches(self.s.get_bind(), col(Message.ticket_id), sorted(want)):
                for tid, to, cc, author, why in self.s.execute(sa.select(*cols).where(where)).all():
                    seen = rows.setdefault(tid, set())
                    if "third party" not in (why or ""):  # a third party adds no participants
                        seen.update(f"{to} {cc} {author}".lower().split())
            for tid in want:
                t = self.tickets.get(tid)
                if t is not None and t is not ticket:
                    self._participants[id(t)] = self._with_placed(t, rows.get(tid, set()))
        got = self._participants[id(ticket)] = self._with_placed(
            ticket, rows.get(ticket.id or 0, set())
        )
        return got

    def _with_placed(self, ticket: Ticket, seen: set[str]) -> set[str]:
        """``seen`` and the addresses of the batch's messages placed on ``ticket`` so far. The
        placed messages are indexed by ticket as they come (``placed`` only grows): a scan of
        the whole batch per ticket was quadratic, ~230 µs a call at 2,500 messages."""
        index = self._placed_by_ticket
        for _i, p in self.placed[self._placed_indexed :]:
            index.setdefault(id(p.ticket), []).append(p)
        self._placed_indexed = len(self.placed)
        for p in index.get(id(ticket), ()):
            if "third party" not in p.reason:
                m = p.msg
                seen.update(a.lower() for a in [*m.to_addresses, *m.cc_addresses, m.sender_address])
        return seen

    def _load_tickets(self, ids: set[int]) -> None:
        want = sorted(i for i in ids if i not in self.tickets)
        for where in in_batches(self.s.get_bind(), col(Ticket.id), want):
            for t in self.s.exec(select(Ticket).where(where)).all():
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

    def _from_us(self, m: InboundMessage) -> bool:
        """The message's sender is one of the desk's own addresses (an outbound reply);
        worked out once, with its customer key."""
        self._customer_key(m)
        return id(m) in self._ours

    def _work_out_customer_key(self, m: InboundMessage) -> tuple[str, str]:
        kind = m.kind
        addr = normalize_address(kind, m.sender_address)
        if addr in self.own:
            self._ours.add(id(m))  # our own message: the customer is whom it went to
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
        conn = self.s.connection()
        insert_rows(conn, Identity, [ident], self.seqs(conn))  # type: ignore[list-item]
        known = _Known(found.id, found.name, None)
        self.customers[(kind, addr)] = known  # type: ignore[assignment]
        return known  # type: ignore[return-value]

    def _flush_customers(self) -> None:
        if not self.new_customers:
            return
        conn = self.s.connection()
        custs = [c for c, _i in self.new_customers]
        insert_rows(conn, Customer, custs, self.seqs(conn))  # type: ignore[arg-type]
        for cust, ident in self.new_customers:
            ident.customer_id = cust.id or 0
        insert_rows(conn, Identity, [i for _c, i in self.new_customers], self.seqs(conn))  # type: ignore[misc]
        self.new_customers = []
