"""Placing each message of an ingest batch: dedupe, edits, bounces, threading (a
conversation's open ticket, or In-Reply-To/References and the [#N] token), new tickets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import select

from supportdesk.channels.base import InboundMessage
from supportdesk.channels.email.subject import ticket_title, ticket_token
from supportdesk.desk import audit as events
from supportdesk.desk.identity import normalize_address
from supportdesk.inbound.batch import (
    IngestResult,
    _first_line_subject,
    _later,
    _Placed,
    content_signature,
    other_date,
    reply_address,
    reused_key,
)
from supportdesk.inbound.lookup import Lookups
from supportdesk.sla import priority as priority_rules
from supportdesk.store.bulk import Row
from supportdesk.store.models import (
    OPEN_STATUSES,
    Customer,
    Message,
    Outbox,
    Ticket,
)


class Placing(Lookups):
    # ---- one message -----------------------------------------------------------------------
    def place(
        self, i: int, msg: InboundMessage, raw_sha: str | None, existing: dict[str, tuple[int, int]]
    ) -> None:
        s, now = self.s, self.now
        key = msg.dedupe_key
        known = existing.get(key)
        conversation = msg.conversation_key
        if not conversation and (known is not None or key in self.seen_keys):
            sig = content_signature(msg, dated=False)
            if self.signatures.get(key, sig) != sig or other_date(self.dates.get(key), msg):
                # the same Message-ID on a different message (mailers reuse them): keep it
                key = reused_key(msg)
                known = existing.get(key)
                if known is None and key not in self.seen_keys:
                    self.reused[id(msg)] = key
            self.signatures.setdefault(key, sig)
        elif not conversation:
            self.signatures[key] = content_signature(msg, dated=False)
            self.dates[key] = msg.sent_at
        if known is not None:
            old = s.get(Message, known[0]) if msg.edited else None
            if old is not None and msg.text != old.text:
                self.results.append(self._edit(old, msg))
            else:
                self.results.append(
                    IngestResult("duplicate", known[1], known[0], reason="duplicate")
                )
            return
        if key in self.seen_keys:
            self.results.append(IngestResult("duplicate", reason="duplicate"))
            return
        self.seen_keys.add(key)
        outbound = self._from_us(msg)
        sent_at = msg.sent_at or now
        if not self.historical and sent_at > now:
            sent_at = now

        if msg.extra.get("is_start") and len((msg.text or "").split()) <= 2 and not msg.attachments:
            cust = self.customer_for(msg, outbound=False)
            self._flush_customers()
            self.results.append(
                IngestResult("ignored", customer_id=cust.id, reason="/start", is_start=True)
            )
            return

        if msg.bounce_of:
            for ref in reversed(msg.bounce_of):
                t = self.by_msgid.get(ref)
                if t is not None and t.id is not None:
                    self.results.append(self._bounce(t, ref, msg, raw_sha, sent_at))
                    return

        cust = self.customer_for(msg, outbound=outbound)
        ticket: Ticket | None = None
        reason = ""
        if not conversation:  # threading by headers and the [#N] token
            refs = list(msg.references)
            refs += [r for r in msg.in_reply_to if r not in refs]
            for ref in reversed(refs[-100:]):  # the nearest ancestor first
                t = self.by_msgid.get(ref)
                if t is not None:
                    ticket = t
                    which = "In-Reply-To" if ref in msg.in_reply_to else "References"
                    reason = f"{which} <{ref}>"
                    break
            if ticket is None:
                n = ticket_token(msg.subject)
                if n is not None:
                    cand = self._ticket(n)
                    if cand is not None and cust.id is not None and cand.customer_id == cust.id:
                        ticket, reason = cand, f"[#{n}] token in the subject"
        else:  # a messenger conversation: its open ticket on this channel
            t = self.open_chats.get((cust.id or -id(cust), msg.channel))
            if t is not None and t.status in OPEN_STATUSES + ("solved",):
                ticket, reason = t, f"open {self._title(msg)} chat"
        nps_answer = False
        if ticket is not None and not outbound and ticket.status in ("solved", "closed"):
            from supportdesk.replies import nps

            # "9" (or "10, great") answering the NPS survey sent on this ticket
            nps_answer = nps.maybe_score_reply(s, self.desk, ticket, msg.text, at=sent_at)
        if ticket is not None and ticket.status == "closed" and not nps_answer:
            reason = f"new ticket (#{ticket.id} is closed)"
            ticket = None
        created = ticket is None
        if ticket is None:
            ticket = self._new_ticket(msg, cust, sent_at, outbound)
            reason = reason or "new ticket"
        page = msg.extra.get("page") if conversation else None
        if page and isinstance(page, str):
            reason = f"{reason}; the visitor is on {page[:300]}"  # shown beside the message
        if (
            not created
            and not outbound
            and not conversation
            and reason.startswith(("In-Reply-To", "References"))
            and self._third_party(msg, cust, ticket)
        ):
            # neither the ticket's customer nor on its To/Cc: shown as such, and never the
            # person replies go to (the ticket's customer stays who it was)
            reason = f"{reason}; third party (not the customer, not on To/Cc)"
        placed = _Placed(msg, raw_sha, sent_at, outbound, cust, ticket, created, reason)
        placed.rating = nps_answer
        if (
            not outbound
            and not created
            and not nps_answer
            and ticket.csat_requested_at is not None
            and ticket.csat_score is None
        ):
            from supportdesk.replies import csat

            # "5" (or "4 thanks") answering the survey: a rating, not a reason to reopen
            placed.rating = bool(
                csat.maybe_rating_reply(s, self.desk, ticket, msg.text, at=sent_at)
            )
        self._apply_to_ticket(placed)
        seen = self._participants.get(id(ticket))
        if seen is not None and "third party" not in reason:
            seen.update(
                a.lower() for a in [*msg.to_addresses, *msg.cc_addresses, msg.sender_address]
            )
        if conversation:
            self.open_chats[(cust.id or -id(cust), msg.channel)] = ticket
        elif msg.external_id:
            self.by_msgid[msg.external_id] = ticket
        self.placed.append((i, placed))
        self.results.append(None)

    def _new_ticket(
        self, msg: InboundMessage, cust: Customer, sent_at: datetime, outbound: bool
    ) -> Ticket:
        titled = not msg.conversation_key  # the title is ticket_title(subject), as stems_of has it
        subject = ticket_title(msg.subject) if titled else _first_line_subject(msg)
        reply_to = reply_address(msg) or self._customer_key(msg)[1]
        ticket: Any = Row(
            Ticket,
            id=None,
            subject=subject[:300],
            status="new",
            channel=msg.channel,
            kind=msg.kind,
            customer_id=cust.id or 0,
            created_at=sent_at,
            updated_at=sent_at,
            reply_to_address=reply_to,
        )
        priority_rules.apply_to_new(
            self.desk, ticket, self._customer_key(msg)[1] if outbound else msg.sender_address
        )
        if self.historical and outbound:
            ticket.status = "open"
        self.clock.apply_due_times(ticket)
        self.new_tickets.append(ticket)
        if titled:
            self._titled.add(id(ticket))
        return ticket

    def _third_party(self, msg: InboundMessage, cust: Any, ticket: Ticket) -> bool:
        """The sender is not the ticket's customer (nor merged with them) and not on the To/Cc
        of any message of the ticket."""
        if cust.id is not None and ticket.customer_id:
            if cust.id == ticket.customer_id:
                return False
            if self._root(cust.id) == self._root(ticket.customer_id):
                return False
        sender = normalize_address(msg.kind, msg.sender_address)
        return sender not in self._participants_of(ticket)

    def _apply_to_ticket(self, p: _Placed) -> None:
        t = p.ticket
        t.message_count += 1
        if p.sent_at > t.updated_at:
            t.updated_at = p.sent_at
        if p.outbound:
            t.last_agent_at = _later(t.last_agent_at, p.sent_at)
            if (
                t.first_response_at is None or p.sent_at < t.first_response_at
            ) and p.sent_at >= t.created_at:
                t.first_response_at = p.sent_at
            if t.status == "new":
                t.status = "open"
        else:
            t.last_customer_at = _later(t.last_customer_at, p.sent_at)
            if not p.created and t.snoozed_until is not None and t.snoozed_until > p.sent_at:
                # the customer wrote again: a snoozed ticket comes back to the queue now
                self.events.append(
                    (
                        "woke",
                        {"agent": "system", "at": p.sent_at},
                        t,
                        None,
                        {"before": t.snoozed_until, "after": None, "why": "customer replied"},
                    )
                )
                t.snoozed_until = None
            if not p.created and not p.rating and t.status in ("pending", "solved"):
                before = t.status
                t.status = "open"
                p.reopened = True
                if before == "solved":
                    t.solved_at = None
                self.events.append(
                    (
                        "status",
                        {"agent": "system", "at": p.sent_at},
                        t,
                        None,
                        {"before": before, "after": "open", "why": "customer replied"},
                    )
                )
        self.clock.update_clocks(t, p.sent_at)

    def _edit(self, existing: Message, msg: InboundMessage) -> IngestResult:
        versions = json.loads(existing.versions or "[]")
        versions.append({"text": existing.text, "until": self.now.isoformat()})
        existing.versions = json.dumps(versions, ensure_ascii=False)
        existing.text = msg.text
        existing.edited_at = self.now
        self.s.add(existing)
        from supportdesk.search import index as search_index

        search_index.index_message(self.s, existing, None)
        events.record(
            self.s,
            "message_edited",
            agent="system",
            ticket_id=existing.ticket_id,
            message_id=existing.id,
            before=versions[-1]["text"],
            after=msg.text,
        )
        return IngestResult("updated", existing.ticket_id, existing.id, reason="edited")

    def _bounce(
        self,
        ticket: Ticket,
        matched: str,
        msg: InboundMessage,
        raw_sha: str | None,
        sent_at: datetime,
    ) -> IngestResult:
        note = Message(
            ticket_id=ticket.id or 0,
            direction="note",
            channel=msg.channel,
            kind=msg.kind,
            author="mail delivery system",
            author_address=msg.sender_address,
            dedupe_key=msg.dedupe_key,
            message_id=msg.external_id,
            subject=msg.subject,
            text=f"Delivery failed for <{matched}>: {msg.bounce_error or 'bounced'}",
            quoted_text=msg.text,
            created_at=sent_at,
            received_at=self.now,
            thread_reason=f"bounce of <{matched}>",
            raw_sha256=raw_sha,
            auto_reason=msg.auto_reason or "bounce",
            is_auto=True,
        )
        self.s.add(note)
        seen = self._participants.get(id(ticket))
        if seen is not None:
            seen.update(msg.sender_address.lower().split())
        ob = self.s.exec(select(Outbox).where(Outbox.external_message_id == matched)).first()
        if ob is not None:
            ob.state = "failed"
            ob.last_error = f"bounced: {msg.bounce_error or 'no reason given'}"[:500]
            self.s.add(ob)
        self.s.flush()
        events.record(
            self.s,
            "delivery_failed",
            agent="system",
            ticket_id=ticket.id,
            message_id=note.id,
            error=msg.bounce_error,
            of=matched,
            at=sent_at,
        )
        return IngestResult("bounce", ticket.id, note.id, reason=note.thread_reason)
