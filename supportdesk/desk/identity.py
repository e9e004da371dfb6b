"""Customers and their identities (one customer across channels)."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from supportdesk.desk.addresses import normalize_email as normalize_email
from supportdesk.store.models import Customer, Identity, utcnow


def normalize_phone(number: str, region: str | None = None) -> str:
    """A phone number in E.164 (``+79001234567``), parsed by libphonenumber.

    Without a ``+`` the number is read in ``region`` when given, as Russian when it is an
    11-digit number with the trunk prefix 8, else as international digits (WhatsApp's
    ``wa_id`` has no ``+``). What libphonenumber cannot parse keeps only its digits and ``+``.
    """
    raw = number or ""
    digits = re.sub(r"[^\d+]", "", raw)
    if not digits:
        return ""
    if not digits.startswith("+"):
        if region is None:
            if digits.startswith("8") and len(digits) == 11:  # Russian trunk prefix
                region = "RU"
            else:
                digits = "+" + digits
    import phonenumbers  # 12 ms to import: only when a phone number is normalised

    try:
        parsed = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    if not digits.startswith("+"):
        digits = "+" + digits
    return digits


def normalize_address(kind: str, address: str) -> str:
    if kind == "email":
        return normalize_email(address)
    if kind in ("phone", "whatsapp"):
        return normalize_phone(address)
    if kind == "vk":
        value = str(address).strip().removeprefix("id")
        return value if value.isdigit() else str(address).strip()
    return str(address).strip()


def customer_with_phone(session: Session, number: str) -> Customer | None:
    """The (surviving) customer whose phone -- a ``phone`` or ``whatsapp`` identity, or the
    phone field of the record, however it was typed -- is ``number`` in E.164."""
    e164 = normalize_phone(number)
    if len(e164) < 8:
        return None
    ident = session.exec(
        select(Identity)
        .where(col(Identity.kind).in_(("phone", "whatsapp")), Identity.address == e164)
        .order_by(col(Identity.id))
    ).first()
    if ident is not None:
        return resolve_customer(session, ident.customer_id)
    tail = e164[-7:]  # narrow in SQL by the last digits, compare exactly after normalising
    pattern = "%" + "%".join(tail) + "%"
    for cust in session.exec(
        select(Customer)
        .where(col(Customer.phone).like(pattern), col(Customer.merged_into_id).is_(None))
        .order_by(col(Customer.id))
        .limit(50)
    ).all():
        if normalize_phone(cust.phone) == e164:
            return cust
    return None


def identities_of(session: Session, customer_ids: list[int]) -> dict[int, list[Identity]]:
    """The identities of each customer, oldest first (customers without any are left out)."""
    out: dict[int, list[Identity]] = {}
    if customer_ids:
        for i in session.exec(
            select(Identity)
            .where(col(Identity.customer_id).in_(customer_ids))
            .order_by(col(Identity.id))
        ).all():
            out.setdefault(i.customer_id, []).append(i)
    return out


def resolve_customer(session: Session, customer_id: int) -> Customer:
    """Follow merges to the surviving customer."""
    seen: set[int] = set()
    cust = session.get(Customer, customer_id)
    while cust is not None and cust.merged_into_id and cust.id not in seen:
        seen.add(cust.id or 0)
        nxt = session.get(Customer, cust.merged_into_id)
        if nxt is None:
            break
        cust = nxt
    if cust is None:
        raise LookupError(f"customer {customer_id} does not exist")
    return cust


def get_or_create_customer(
    session: Session, kind: str, address: str, name: str = "", display: str = ""
) -> tuple[Customer, Identity, bool]:
    """The customer behind an identity, created (with the identity) when new."""
    norm = normalize_address(kind, address)
    ident = session.exec(
        select(Identity).where(Identity.kind == kind, Identity.address == norm)
    ).first()
    if ident is not None:
        cust = resolve_customer(session, ident.customer_id)
        if name and not cust.name:
            cust.name = name
            cust.updated_at = utcnow()
            session.add(cust)
        if display and ident.display != display:
            ident.display = display
            session.add(ident)
        return cust, ident, False
    cust = Customer(name=name or (norm.split("@")[0] if kind == "email" else norm))
    session.add(cust)
    session.flush()
    assert cust.id is not None
    ident = Identity(customer_id=cust.id, kind=kind, address=norm, display=display or name)
    session.add(ident)
    session.flush()
    return cust, ident, True
