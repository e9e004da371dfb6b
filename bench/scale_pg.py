"""A PostgreSQL desk of millions of synthetic tickets generated server-side (bench only).

``generate(home, url, size)`` migrates an empty database, drops the bulk tables' secondary
indexes, fills customers, identities, tickets, messages and their search documents with
``INSERT ... SELECT generate_series`` (the text from 1,000 pre-drawn subjects and bodies of the
demo's vocabulary, stemmed in Python once), builds the indexes again and analyzes. The home's
config.toml names the database, so ``supportdesk --home HOME ...`` reads it.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from supportdesk.demo import build
from supportdesk.store import search as store
from supportdesk.store.bulk import create_indexes, drop_indexes, secondary_indexes
from supportdesk.store.db import open_database
from supportdesk.store.stems import stem_text

PHRASES = 1000


STEPS = ("customers", "identities", "tickets", "messages", "ticket docs", "message docs",
         "customer docs")  # fmt: skip


def _progress(t0: float, what: str) -> None:
    """One line on stderr per finished step: a 10M desk takes long, and a run that is stopped
    early still tells how far it got and at what rate."""
    print(f"scale_pg: {time.perf_counter() - t0:8.1f} s  {what}", file=sys.stderr, flush=True)


def generate(home: Path, url: str, size: int) -> None:
    t0 = time.perf_counter()
    build.prepare_home(home, url)
    db = open_database(home, url)
    rnd = random.Random(7)
    phrases = []
    for i in range(PHRASES):
        words = build._WORDS_RU if i % 2 == 0 else build._WORDS_EN
        subj = [rnd.choice(words) for _ in range(4)]
        body = [rnd.choice(words) for _ in range(30)]
        subject = " ".join(subj).capitalize()
        phrases.append((i, subject, " ".join(body), stem_text(subject), stem_text(" ".join(body))))
    n_cust = max(1, size // 3)
    ru, en = stem_text("Клиент"), stem_text("Customer")
    synth = stem_text("synthetic.test")  # an address's words after its user part
    k_t, k_m, k_c = (store.doc_key(k, 0) for k in (store.KIND_TICKET, store.KIND_MESSAGE,
                                                    store.KIND_CUSTOMER))  # fmt: skip
    try:
        with db.write_engine.begin() as conn:
            indexes = secondary_indexes(conn, build.BULK_TABLES)
            drop_indexes(conn, indexes)
            conn.execute(sa.text(
                "CREATE TEMP TABLE phrase (i int PRIMARY KEY, subject text, body text, "
                "subject_stems text, body_stems text)"))  # fmt: skip
            conn.execute(sa.text("INSERT INTO phrase VALUES (:i, :s, :b, :ss, :bs)"),
                         [dict(zip(("i", "s", "b", "ss", "bs"), p, strict=True))
                          for p in phrases])  # fmt: skip
            steps = [
                f"""INSERT INTO customer (id, name, company, phone, language, notes, csat_opt_out,
                    created_at, updated_at)
                SELECT g, CASE WHEN g % 2 = 1 THEN 'Клиент ' ELSE 'Customer ' END || (g - 1), '',
                    '', CASE WHEN g % 2 = 1 THEN 'ru' ELSE 'en' END, '', false, now(), now()
                FROM generate_series(1, {n_cust}) g""",
                """INSERT INTO identity (customer_id, kind, address, display, created_at)
                SELECT id, 'email', 'user' || id || '@synthetic.test', name, now() FROM customer
                UNION ALL SELECT id, 'telegram', (9000000 + id)::text, '@user' || id, now()
                FROM customer WHERE (id - 1) % 3 = 0""",
                f"""INSERT INTO ticket (id, subject, status, priority, priority_rank,
                    priority_locked, channel, kind, customer_id, created_at, updated_at,
                    first_response_due_at, resolution_due_at, due_at, sla_paused_seconds,
                    sla_breached, message_count, last_message_id, ack_sent, reply_to_address,
                    spam, last_customer_at)
                SELECT g, p.subject, st, pr, (ARRAY[0,1,1,1,2,3])[1 + h % 6], false,
                    (ARRAY['support','billing','telegram'])[1 + g % 3],
                    (ARRAY['email','email','telegram'])[1 + g % 3], 1 + g % {n_cust}, c, c,
                    CASE WHEN st IN ('new','open') THEN c + interval '4 hours' END,
                    c + interval '3 days',
                    CASE WHEN st IN ('new','open') THEN c + interval '4 hours' END,
                    0, false, 1, g, false, 'user' || (1 + g % {n_cust}) || '@synthetic.test',
                    false, c
                FROM (SELECT g, (hashint8(g) & 2147483647) AS h,
                        (ARRAY['new','open','open','pending','solved','closed'])[1 + g % 6] AS st,
                        (ARRAY['low','normal','normal','normal','high','urgent'])
                            [1 + (hashint8(g) & 2147483647) % 6] AS pr,
                        now() at time zone 'utc' - make_interval(
                            mins => 1 + ((hashint8(-g) & 2147483647) % 129600)::int) AS c
                      FROM generate_series(1, {size}) g) x
                JOIN phrase p ON p.i = x.h % {PHRASES}""",
                f"""INSERT INTO message (id, ticket_id, direction, channel, kind, author,
                    author_address, customer_id, dedupe_key, message_id, "references", subject,
                    text, quoted_text, created_at, received_at, thread_reason, auto_reason,
                    versions, is_auto, to_addresses, cc_addresses, bcc_addresses)
                SELECT t.id, t.id, 'in', t.channel, t.kind, 'Customer ' || t.customer_id,
                    t.reply_to_address, t.customer_id, 'syn' || t.id || '@synthetic.test',
                    'syn' || t.id || '@synthetic.test', '', t.subject, p.body, '',
                    t.created_at, t.created_at, 'new ticket', '', '', false, '', '', ''
                FROM ticket t JOIN phrase p ON p.i = (hashint8(t.id) & 2147483647) % {PHRASES}""",
                f"""INSERT INTO search_doc (rowid, title, body, extra)
                SELECT {k_t} + t.id, p.subject_stems, '', '' FROM ticket t
                JOIN phrase p ON p.i = (hashint8(t.id) & 2147483647) % {PHRASES}""",
                f"""INSERT INTO search_doc (rowid, title, body, extra)
                SELECT {k_m} + t.id, p.subject_stems, p.body_stems, '' FROM ticket t
                JOIN phrase p ON p.i = (hashint8(t.id) & 2147483647) % {PHRASES}""",
                f"""INSERT INTO search_doc (rowid, title, body, extra)
                SELECT {k_c} + c.id, n.stems, '', 'user' || c.id || ' {synth} ' || n.stems
                    || CASE WHEN (c.id - 1) % 3 = 0
                    THEN ' ' || (9000000 + c.id) || ' user' || c.id ELSE '' END
                FROM (SELECT id, CASE WHEN id % 2 = 1 THEN '{ru}' ELSE '{en}' END
                      || ' ' || (id - 1) AS stems FROM customer) n JOIN customer c ON c.id = n.id""",
            ]
            for name, sql in zip(STEPS, steps, strict=True):
                conn.execute(sa.text(sql))
                _progress(t0, f"{name} of {size:,} tickets inserted")
        _progress(t0, "committed")
        with db.write_engine.begin() as conn:
            for name, create in indexes:
                create_indexes(conn, [(name, create)])
                _progress(t0, f"index {name} built")
            for table in ("customer", "identity", "ticket", "message"):
                conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}) + 1, false)"))  # fmt: skip
        # VACUUM too, as the demo does (store.db.Database.analyze): the report's period counts
        # are index-only scans, which read the table for every entry until the visibility map
        # is set
        with db.write_engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("VACUUM (ANALYZE)")
            )
        _progress(t0, "vacuumed and analyzed: done")
    finally:
        db.dispose()
