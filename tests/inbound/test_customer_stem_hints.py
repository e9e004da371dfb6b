"""A new customer's search document is the same whether the import's parser processes stemmed
its text ahead (``prep.stems_of`` hints) or the store stems it; a wrong guess is not used."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from supportdesk.inbound.ingest import ingest_many
from supportdesk.inbound.prep import stems_of
from supportdesk.store.fts import KIND_CUSTOMER, TABLE, doc_key
from supportdesk.store.stems import stem_text
from tests.factories import inbound_email


def _customer_docs(desk: Any) -> dict[str, tuple[str, str]]:
    with desk.db.read() as s:
        conn = s.connection()
        rows = conn.execute(sa.text("SELECT c.id, c.name FROM customer c")).all()
        out = {}
        for cid, name in rows:
            got = conn.execute(
                sa.text(f"SELECT title, extra FROM {TABLE} WHERE rowid = :k"),
                {"k": doc_key(KIND_CUSTOMER, cid)},
            ).one()
            out[name] = (got[0], got[1])
        return out


def test_hinted_and_unhinted_documents_are_the_same(desk: Any) -> None:
    msgs = [
        inbound_email(sender_address="Olga.K@Example.RU", sender_name="Ольга Ёлкина"),
        inbound_email(sender_address="anon@example.com", sender_name=""),  # named by the address
        # from our own address: the customer is the recipient, the hint is about the sender
        inbound_email(
            sender_address="support@acme.test", sender_name="Desk", to_addresses=["kim@x.test"]
        ),
    ]
    stems = [stems_of(m) for m in msgs]
    assert all(len(st) == 7 for st in stems)
    with desk.db.write() as s:
        ingest_many(s, desk, msgs, historical=True, stems=stems)
    docs = _customer_docs(desk)
    assert set(docs) == {"Ольга Ёлкина", "anon", "kim"}
    for name, (title, extra) in docs.items():
        with desk.db.read() as s:
            address = (
                s.connection()
                .execute(
                    sa.text(
                        "SELECT i.address, i.display FROM identity i JOIN customer c "
                        "ON c.id = i.customer_id WHERE c.name = :n"
                    ),
                    {"n": name},
                )
                .one()
            )
        assert title == stem_text(f"{name} ")
        assert extra == stem_text(f"{address[0]} {address[1]}")
