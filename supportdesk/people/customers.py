"""Customer records and the identity graph: edit, merge, unmerge, link and unlink identities.

A merge moves the merged customer's identities to the surviving customer and sets
``merged_into_id``; tickets stay where they are (ticket history follows merges), so an unmerge
is exact. Every change is a journal batch that ``supportdesk undo`` reverts.

Long because: merging and unmerging customers, linking and unlinking identities, and editing
records are one identity graph with one undo record format.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from supportdesk.actions.batch import ActionResult, execute
from supportdesk.actions.journal import from_to, record_fields, snapshot
from supportdesk.core.text import iso
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.identity import identities_of, normalize_address, resolve_customer
from supportdesk.desk.permissions import require_lead
from supportdesk.store import reads
from supportdesk.store.db import session_run
from supportdesk.store.models import Customer, Event, Identity, Ticket, utcnow

KINDS = ("email", "telegram", "phone", "vk", "whatsapp")  # and every installed channel's kind
EDITABLE = ("name", "company", "phone", "language", "notes")


def _installed_kind(kind: str) -> bool:
    """An address kind an installed channel speaks (a third-party channel's, the website's)."""
    from supportdesk.channels.registry import class_for_kind

    return bool(kind) and class_for_kind(kind) is not None


def parse_identity(text: str) -> tuple[str, str]:
    """``email:a@b``, ``telegram:123``, ``phone:+7...``; a bare address with @ is e-mail."""
    t = text.strip()
    kind, sep, addr = t.partition(":")
    if sep and (kind.lower() in KINDS or _installed_kind(kind.lower())):
        kind = kind.lower()
    elif "@" in t and not t.startswith("@"):
        kind, addr = "email", t
    else:
        raise BadInput(
            f"{text!r} is not an identity such as email:ann@example.com, telegram:12345 or phone:+79001234567"
        )
    addr = normalize_address(kind, addr)
    if not addr:
        raise BadInput(f"{text!r} has an empty address")
    return kind, addr


def find_customer(session: Session, ref: str, *, follow: bool = True) -> Customer:
    """A customer by id, e-mail address, ``kind:address``, phone or Telegram ``@username``."""
    r = ref.strip()
    cust: Customer | None = None
    if r.isdigit() and len(r) < 9:
        cust = session.get(Customer, int(r))
    if cust is None:
        ident = None
        if r.startswith("@") and len(r) > 1:
            ident = session.exec(
                select(Identity).where(
                    Identity.kind == "telegram", sa.func.lower(Identity.display) == r.lower()
                )
            ).first()
        else:
            candidates: list[tuple[str, str]] = []
            try:
                candidates.append(parse_identity(r))
            except BadInput:
                pass
            if r.isdigit():
                candidates.append(("telegram", r))
            if r.startswith("+"):
                candidates.append(("phone", normalize_address("phone", r)))
                candidates.append(("whatsapp", normalize_address("whatsapp", r)))
            for kind, addr in candidates:
                ident = session.exec(
                    select(Identity).where(Identity.kind == kind, Identity.address == addr)
                ).first()
                if ident is not None:
                    break
        if ident is not None:
            cust = session.get(Customer, ident.customer_id)
    if cust is None:
        raise NotFound(
            f"there is no customer {ref!r} (give an id, an e-mail address, @username or kind:address)"
        )
    return resolve_customer(session, cust.id or 0) if follow else cust


def _identities(session: Session, customer_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    return {
        cid: [{"kind": i.kind, "address": i.address, "display": i.display} for i in idents]
        for cid, idents in identities_of(session, customer_ids).items()
    }


def customer_row(
    c: Customer, identities: list[dict[str, Any]], ticket_count: int
) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "company": c.company, "phone": c.phone, "language": c.language,
        "notes": c.notes, "merged_into": c.merged_into_id, "identities": identities,
        "tickets": ticket_count, "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
    }  # fmt: skip


def list_customers(
    desk: Desk, text: str = "", *, limit: int = 100, include_merged: bool = False
) -> list[dict[str, Any]]:
    """Customers whose name, company, phone or any address contains ``text``."""
    with desk.db.read() as session:
        q = select(Customer).order_by(col(Customer.id)).limit(limit)
        if not include_merged:
            q = q.where(col(Customer.merged_into_id).is_(None))
        t = text.strip()
        if t:
            like = f"%{t.lower()}%"
            by_ident = select(Identity.customer_id).where(
                sa.or_(col(Identity.address).ilike(like), col(Identity.display).ilike(like))
            )
            q = q.where(
                sa.or_(
                    col(Customer.name).ilike(like),
                    col(Customer.company).ilike(like),
                    col(Customer.phone).ilike(like),
                    col(Customer.id).in_(by_ident),
                )
            )
        custs = list(session.exec(q).all())
        ids = [c.id or 0 for c in custs]
        idents = _identities(session, ids)
        counts: dict[int, int] = {}
        if ids:
            counts = {
                int(cid): int(n)
                for cid, n in session.exec(
                    select(Ticket.customer_id, func.count())
                    .where(col(Ticket.customer_id).in_(ids))
                    .group_by(col(Ticket.customer_id))
                ).all()
            }
        return [customer_row(c, idents.get(c.id or 0, []), counts.get(c.id or 0, 0)) for c in custs]


def show_customer(desk: Desk, ref: str) -> dict[str, Any]:
    """The customer card: fields, identities, customers merged into it, and every ticket."""
    with desk.db.read() as session:
        cust = find_customer(session, ref, follow=False)
        cid = cust.id or 0
        merged = list(session.exec(select(Customer).where(Customer.merged_into_id == cid)).all())
        tickets = history(session, cid)
        doc = customer_row(cust, _identities(session, [cid]).get(cid, []), len(tickets))
        doc["merged_customers"] = [{"id": m.id, "name": m.name} for m in merged]
        doc["history"] = [
            {
                "id": t.id,
                "channel": t.channel,
                "kind": t.kind,
                "subject": t.subject,
                "status": t.status,
                "created_at": iso(t.created_at),
                "customer_id": t.customer_id,
            }
            for t in tickets
        ]
        return doc


# ---------------------------------------------------------------- changes (journaled)


def edit(desk: Desk, ref: str, *, dry_run: bool = False, **fields: str | None) -> ActionResult:
    """Change name, company, phone, language or notes."""
    changes = {k: v for k, v in fields.items() if v is not None}
    bad = [k for k in changes if k not in EDITABLE]
    if bad:
        raise BadInput(f"{bad[0]!r} is not a customer field ({', '.join(EDITABLE)})")
    if not changes:
        raise BadInput(
            "give at least one thing to change: name, company, phone, language or notes",
            field="name",
        )

    def work(s: Session, batch: str) -> list[int]:
        cust = find_customer(s, ref, follow=False)
        snap = snapshot(cust)
        for k, v in changes.items():
            setattr(cust, k, (v or "").strip() if k != "notes" else (v or ""))
        if snapshot(cust) != snap:
            cust.updated_at = utcnow()
        s.add(cust)
        record_fields(s, desk, "customer_edit", cust, snap, batch=batch)
        return []

    return execute(desk, "customer_edit", f"edit customer {ref}", work, dry_run=dry_run)


def _move_identity(
    s: Session, desk: Desk, ident: Identity, to: int, event: str, batch: str
) -> None:
    """Give ``ident`` to customer ``to``, recorded so that undo gives it back."""
    old = ident.customer_id
    ident.customer_id = to
    s.add(ident)
    events.record(
        s,
        event,
        agent=desk.agent,
        customer_id=to,
        batch=batch,
        undo="identity_moved",
        identity=ident.id,
        identity_kind=ident.kind,
        address=ident.address,
        **from_to(old, to),
    )


def merge(desk: Desk, source: str, into: str, *, dry_run: bool = False) -> ActionResult:
    """Merge customer ``source`` into ``into``: identities move; empty fields are filled. Lead only."""

    def work(s: Session, batch: str) -> list[int]:
        require_lead(s, desk, "merging customers")
        src = find_customer(s, source, follow=False)
        dst = find_customer(s, into)
        if src.merged_into_id is not None:
            raise Conflict(
                f"customer {src.id} is already merged into customer {src.merged_into_id}"
            )
        if src.id == dst.id:
            raise BadInput("a customer cannot be merged into itself")
        snap_src, snap_dst = snapshot(src), snapshot(dst)
        moved = []
        for ident in s.exec(
            select(Identity).where(Identity.customer_id == src.id).order_by(col(Identity.id))
        ).all():
            _move_identity(s, desk, ident, dst.id or 0, "customer_merge", batch)
            moved.append(ident.id or 0)
        now = utcnow()
        for name in EDITABLE:
            if not getattr(dst, name) and getattr(src, name):
                setattr(dst, name, getattr(src, name))
        if snapshot(dst) != snap_dst:
            dst.updated_at = now
        src.merged_into_id = dst.id
        src.updated_at = now
        s.add(src)
        s.add(dst)
        s.flush()
        record_fields(s, desk, "customer_merge", dst, snap_dst, batch=batch, merged=src.id)
        record_fields(
            s, desk, "customer_merge", src, snap_src, batch=batch, into=dst.id, identities=moved
        )
        return []

    return execute(
        desk, "customer_merge", f"merge customer {source} into {into}", work, dry_run=dry_run
    )


def unmerge(desk: Desk, ref: str, *, dry_run: bool = False) -> ActionResult:
    """Separate a merged customer again: its identities go back and ``merged_into_id`` clears. Lead only."""

    def work(s: Session, batch: str) -> list[int]:
        require_lead(s, desk, "unmerging customers")
        src = find_customer(s, ref, follow=False)
        if src.merged_into_id is None:
            raise BadInput(f"customer {src.id} is not merged into anyone")
        dst = s.get(Customer, src.merged_into_id)
        if dst is None:
            raise Conflict(f"customer {src.merged_into_id} no longer exists")
        rec = _merge_record(s, src.id or 0, dst.id or 0)
        snap_src, snap_dst = snapshot(src), snapshot(dst)
        if rec is not None:
            for iid in rec["data"].get("identities", []):
                ident = s.get(Identity, iid)
                if ident is not None and ident.customer_id == dst.id:
                    _move_identity(s, desk, ident, src.id or 0, "customer_unmerge", batch)
            filled = rec.get("target_after", {})
            for name in EDITABLE:
                if name in filled and getattr(dst, name) == filled[name]:
                    setattr(dst, name, rec["target_before"].get(name, ""))
        now = utcnow()
        src.merged_into_id = None
        src.updated_at = now
        if snapshot(dst) != snap_dst:
            dst.updated_at = now
        s.add(src)
        s.add(dst)
        s.flush()
        record_fields(s, desk, "customer_unmerge", dst, snap_dst, batch=batch)
        record_fields(s, desk, "customer_unmerge", src, snap_src, batch=batch, was_in=dst.id)
        return []

    return execute(desk, "customer_unmerge", f"unmerge customer {ref}", work, dry_run=dry_run)


def _merge_record(s: Session, src: int, dst: int) -> dict[str, Any] | None:
    """The latest merge of ``src`` into ``dst``: which identities moved, which fields were filled."""
    for ev in s.exec(
        select(Event)
        .where(Event.customer_id == src, Event.kind == "customer_merge")
        .order_by(col(Event.id).desc())
    ).all():
        data = json.loads(ev.data or "{}")
        if (
            data.get("undo") == "customer_fields"
            and data.get("after", {}).get("merged_into_id") == dst
        ):
            out: dict[str, Any] = {"data": data}
            tgt = s.exec(
                select(Event).where(
                    Event.batch == ev.batch,
                    Event.customer_id == dst,
                    Event.kind == "customer_merge",
                )
            ).all()
            for t in tgt:
                td = json.loads(t.data or "{}")
                if td.get("undo") == "customer_fields":
                    out["target_before"], out["target_after"] = (
                        td.get("before", {}),
                        td.get("after", {}),
                    )
            return out
    return None


def link(desk: Desk, ref: str, identity: str, *, dry_run: bool = False) -> ActionResult:
    """Give a customer another identity; one that belongs to someone else moves over."""
    kind, addr = parse_identity(identity)

    def work(s: Session, batch: str) -> list[int]:
        cust = find_customer(s, ref)
        ident = s.exec(
            select(Identity).where(Identity.kind == kind, Identity.address == addr)
        ).first()
        if ident is None:
            ident = Identity(customer_id=cust.id or 0, kind=kind, address=addr)
            s.add(ident)
            s.flush()
            events.record(
                s,
                "identity_link",
                agent=desk.agent,
                customer_id=cust.id,
                batch=batch,
                undo="identity_created",
                identity=ident.id,
                identity_kind=kind,
                address=addr,
                customer=cust.id,
            )
        elif ident.customer_id == cust.id:
            raise BadInput(f"{kind}:{addr} already belongs to customer {cust.id}")
        else:
            old = ident.customer_id
            if (
                s.exec(
                    select(func.count()).select_from(Identity).where(Identity.customer_id == old)
                ).one()
                <= 1
            ):
                raise Conflict(
                    f"{kind}:{addr} is the only identity of customer {old}; merge the customers instead"
                )
            _move_identity(s, desk, ident, cust.id or 0, "identity_link", batch)
        return []

    return execute(
        desk, "identity_link", f"link {kind}:{addr} to customer {ref}", work, dry_run=dry_run
    )


def unlink(desk: Desk, identity: str, *, dry_run: bool = False) -> ActionResult:
    """Remove an identity from its customer (the next message from it starts a new customer)."""
    kind, addr = parse_identity(identity)

    def work(s: Session, batch: str) -> list[int]:
        ident = s.exec(
            select(Identity).where(Identity.kind == kind, Identity.address == addr)
        ).first()
        if ident is None:
            raise NotFound(f"no customer has the identity {kind}:{addr}")
        n = s.exec(
            select(func.count())
            .select_from(Identity)
            .where(Identity.customer_id == ident.customer_id)
        ).one()
        if n <= 1:
            raise Conflict(f"{kind}:{addr} is the only identity of customer {ident.customer_id}")
        events.record(
            s,
            "identity_unlink",
            agent=desk.agent,
            customer_id=ident.customer_id,
            batch=batch,
            undo="identity_deleted",
            identity_kind=kind,
            address=addr,
            display=ident.display,
            customer=ident.customer_id,
        )
        s.delete(ident)
        return []

    return execute(desk, "identity_unlink", f"unlink {kind}:{addr}", work, dry_run=dry_run)


def history(session: Session, customer_id: int, exclude: int | None = None) -> list[Any]:
    """Every ticket of the customer (and of customers merged into them), across channels, newest
    first (``store.reads.customer_history``: id, channel, kind, subject, status, created_at,
    customer_id)."""
    return list(reads.customer_history(session_run(session), customer_id, exclude))
