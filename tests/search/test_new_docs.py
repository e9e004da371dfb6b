"""Documents an ingest batch writes as new (``upsert(..., new=True)``: one COPY on PostgreSQL)
still replace a document whose key exists, and a batch with one such key loses none of the rest.
"""

from __future__ import annotations

from typing import Any

from supportdesk.store import search as store
from supportdesk.store.stems import stem_text


def _docs(desk: Any) -> dict[int, tuple[str, str]]:
    with desk.db.read() as s:
        rows = s.connection().exec_driver_sql(f"SELECT rowid, title, body FROM {store.TABLE}")
        return {int(r[0]): (r[1], r[2]) for r in rows}


def _batch(first: int, n: int, word: str) -> list[store.Doc]:
    return [
        store.Doc(store.KIND_KB, first + i, title=f"{word} {first + i}", body=f"{word} body")
        for i in range(n)
    ]


def test_new_documents_are_written_and_an_existing_key_is_replaced(desk: Any) -> None:
    with desk.db.write() as s:
        store.upsert(s.connection(), _batch(900_000, 20, "first"), new=True)
    got = _docs(desk)
    assert all(got[store.doc_key(store.KIND_KB, 900_000 + i)][0] == f"first {900_000 + i}"
               for i in range(20))  # fmt: skip
    # a batch where one key exists already (its first) and the others are new
    with desk.db.write() as s:
        store.upsert(s.connection(), _batch(900_019, 30, "second"), new=True)
    got = _docs(desk)
    for i in range(19):
        assert got[store.doc_key(store.KIND_KB, 900_000 + i)][0] == f"first {900_000 + i}"
    for i in range(19, 49):
        assert got[store.doc_key(store.KIND_KB, 900_000 + i)] == (
            f"second {900_000 + i}",
            stem_text("second body"),
        )
    assert len([k for k in got if store.ref_from_key(k) >= 900_000]) == 49
    # the transaction the COPY failed in goes on: later writes in it are kept
    with desk.db.write() as s:
        store.upsert(s.connection(), _batch(900_040, 10, "third"), new=True)
        store.upsert(s.connection(), _batch(910_000, 10, "fourth"), new=True)
    got = _docs(desk)
    assert got[store.doc_key(store.KIND_KB, 900_045)][0] == "third 900045"
    assert got[store.doc_key(store.KIND_KB, 910_009)][0] == "fourth 910009"
