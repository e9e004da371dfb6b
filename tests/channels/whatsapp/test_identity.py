"""Phone numbers in E.164 and a WhatsApp number finding the customer with the same phone."""

from __future__ import annotations

from typing import Any

import pytest

from supportdesk.desk.identity import customer_with_phone, normalize_address, normalize_phone
from supportdesk.store.models import Customer, Identity


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+7 (900) 123-45-67", "+79001234567"),
        ("8 900 123 45 67", "+79001234567"),
        ("79001234567", "+79001234567"),  # a WhatsApp wa_id
        ("+1 650-253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_numbers_are_normalised_to_e164(typed: str, e164: str) -> None:
    assert normalize_phone(typed) == e164
    assert normalize_address("whatsapp", typed) == e164


def test_vk_ids_normalise() -> None:
    assert normalize_address("vk", "id501") == "501"
    assert normalize_address("vk", " 501 ") == "501"


def test_whatsapp_number_finds_the_customer_by_phone_field(desk: Any) -> None:
    with desk.db.write() as s:
        ann = Customer(name="Ann", phone="8 (900) 123-45-67")
        bob = Customer(name="Bob", phone="+7 900 765-43-21")
        s.add(ann)
        s.add(bob)
        s.flush()
        found = customer_with_phone(s, "79001234567")
        assert found is not None and found.name == "Ann"
        assert customer_with_phone(s, "79001234568") is None


def test_whatsapp_number_finds_the_customer_by_phone_identity(desk: Any) -> None:
    with desk.db.write() as s:
        cy = Customer(name="Cy")
        s.add(cy)
        s.flush()
        s.add(Identity(customer_id=cy.id or 0, kind="phone", address="+16502530000"))
        s.flush()
        found = customer_with_phone(s, "+1 (650) 253-0000")
        assert found is not None and found.id == cy.id
