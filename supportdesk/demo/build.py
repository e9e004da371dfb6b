"""The demo desk: a realistic, self-contained history in Russian and English.

``build_demo(home, size=N)`` also adds N synthetic tickets with bulk inserts, for scale tests
(100,000 in well under two minutes).

Long because: the demo desk is one scripted story (people, conversations across channels,
merges, templates, articles) that reads top to bottom.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import select

from supportdesk.channels.base import Attachment, InboundMessage
from supportdesk.core.locations import database_path
from supportdesk.demo import data as D
from supportdesk.desk.desk import Conflict, Desk, open_desk
from supportdesk.desk.identity import get_or_create_customer
from supportdesk.inbound.ingest import ingest
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.sla import clocks as sla
from supportdesk.store import search as search_store
from supportdesk.store.bulk import (
    create_indexes,
    drop_indexes,
    reset_sequences,
    secondary_indexes,
    write_rows,
)
from supportdesk.store.models import (
    PRIORITY_RANK,
    Agent,
    Customer,
    Event,
    Group,
    Identity,
    KbArticle,
    Message,
    Outbox,
    Tag,
    Template,
    Ticket,
    TicketTag,
    utcnow,
)
from supportdesk.store.stems import stem_text

MARKER = ".supportdesk-demo"

DEMO_CONFIG = """\
# The demo desk. Channels have no servers configured: nothing is fetched or sent.
[desk]
name = "Acme support"
timezone = "Europe/Moscow"

[desk.hours]
mon-fri = "09:00-18:00"
holidays = "RU"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"

[[channel]]
name = "billing"
type = "email"
address = "billing@acme.test"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "ACME_TG_TOKEN"

[sla]
first_response = "4h"
resolution = "3d"
[sla.channel.email]
first_response = "1h"
[sla.channel.telegram]
first_response = "5m"
[sla.priority.urgent]
first_response = "15m"

[[priority_rule]]
priority = "urgent"
words = ["срочно", "urgent", "502", "outage"]
"""


def check_home(home: Path) -> None:
    """Refuse a folder that is neither empty nor a demo: never someone's real desk."""
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists():
        raise Conflict(
            f"{home} is not empty and is not a demo desk; choose another folder", field="home"
        )


def prepare_home(home: Path, db_url: str | None = None) -> None:
    """An empty folder, or a previous demo (rebuilt); never someone's real desk.

    ``db_url``: the demo keeps its data in that (empty) database instead of SQLite in the
    folder; its config.toml names it, so later commands on the folder use it too."""
    check_home(home)
    if home.exists() and any(home.iterdir()):
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / MARKER).write_text(
        "This folder is a supportdesk demo; `supportdesk demo` rebuilds it.\n"
    )
    config = DEMO_CONFIG
    if db_url:
        config = config.replace("[desk]\n", f"[desk]\ndatabase_url = {json.dumps(db_url)}\n", 1)
    (home / "config.toml").write_text(config, encoding="utf-8")


def _tag(s: sa.orm.Session, ticket_id: int, names: list[str], cache: dict[str, int]) -> None:
    for n in names:
        if n not in cache:
            t = s.exec(select(Tag).where(Tag.name == n)).first()  # type: ignore[attr-defined]
            if t is None:
                t = Tag(name=n)
                s.add(t)
                s.flush()
            cache[n] = t.id or 0
        s.merge(TicketTag(ticket_id=ticket_id, tag_id=cache[n]))


def _mark_sent(s: sa.orm.Session, msg: Message) -> None:
    ob = s.exec(select(Outbox).where(Outbox.message_id == msg.id)).first()  # type: ignore[attr-defined]
    if ob is not None:
        ob.state = "sent"
        ob.attempts = 1
        ob.sent_at = msg.created_at
        s.add(ob)


def build_demo(
    home: Path,
    *,
    size: int = 0,
    seed: int = 7,
    now: datetime | None = None,
    db_url: str | None = None,
) -> Desk:
    """The demo desk in ``home`` (an empty folder, or a previous demo: rebuilt), with ``size``
    synthetic tickets besides the story; opened as alice.

    It is built in a folder beside ``home`` (``.NAME.building``) and moved into place when
    complete: a build that fails, or is killed, never leaves a half-built desk that looks
    valid (the previous demo stays until the new one is whole). That lets the synthetic load
    run on SQLite without a rollback journal (``Database.unjournaled``): a failure there may
    leave the file corrupt, and the folder is thrown away."""
    check_home(home)
    building = home.with_name(f".{home.name}.building")
    building.parent.mkdir(parents=True, exist_ok=True)  # `--home` may name a new folder's child
    _clear_leftover(building)  # left by a build that was killed
    building.mkdir(mode=0o700)  # exclusive: never a folder or link someone put there
    prepare_home(building, db_url)
    try:
        _build(building, size=size, seed=seed, now=now, db_url=db_url).close()
        _sync_database(building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if home.exists():
        shutil.rmtree(home)
    building.rename(home)
    return open_desk(home, agent="alice")


def _clear_leftover(building: Path) -> None:
    """Remove the folder of a killed build; refuse anything else at that name (a link, a file,
    another user's folder: in a shared parent such as /tmp someone else could have put it there
    to have the demo, and its config.toml, built where they can write)."""
    try:
        st = building.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise Conflict(
            f"{building} is in the way and is not a build folder of yours; remove it",
            field="home",
        )
    shutil.rmtree(building)


def _sync_database(home: Path) -> None:
    """The SQLite file on disk before the folder is moved into place (the load did not sync)."""
    path = database_path(home)
    if path.exists():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _build(home: Path, *, size: int, seed: int, now: datetime | None, db_url: str | None) -> Desk:
    desk = open_desk(home, agent="alice")
    try:
        _fill(desk, size=size, seed=seed, now=now, db_url=db_url)
    except BaseException:
        desk.close()
        raise
    return desk


def _fill(desk: Desk, *, size: int, seed: int, now: datetime | None, db_url: str | None) -> None:
    if db_url:
        with desk.db.read() as s:
            used = s.exec(select(sa.func.count()).select_from(Ticket)).one()
        if used:
            raise Conflict(
                f"the database for the demo already holds {used} tickets; give it an empty one",
                field="database",
            )
    rnd = random.Random(seed)
    now = now or utcnow()
    with desk.db.write() as s:
        for group_name in dict.fromkeys(g for *_rest, g in D.AGENTS if g):
            s.add(Group(name=group_name, title=group_name.replace("-", " ").capitalize()))
        for name, display, role, group in D.AGENTS:
            s.add(
                Agent(
                    name=name,
                    display_name=display,
                    role=role,
                    group=group,
                    email=f"{name}@acme.test",
                )
            )
        for name, subject, body, tags in D.TEMPLATES:
            s.add(Template(name=name, subject=subject, body=body, tags=tags))
        for title, tags, public, lang, body in D.KB:
            slug = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")[:60]
            s.add(
                KbArticle(
                    slug=slug, title=title, body=body, tags=tags, public=public, language=lang
                )
            )
    tag_cache: dict[str, int] = {}
    agents = [a[0] for a in D.AGENTS]
    seq = 0
    statuses = ["new", "open", "open", "pending", "solved", "solved", "closed"]
    for i, (name, email, tg, lang, company) in enumerate(D.CUSTOMERS):
        if email and tg:
            # one person on two channels: the desk knows both identities (customers link)
            with desk.db.write() as s:
                cust, _ident, _new = get_or_create_customer(s, "email", email, name)
                s.add(
                    Identity(
                        customer_id=cust.id or 0,
                        kind="telegram",
                        address=str(tg[0]),
                        display=f"@{tg[1]}",
                    )
                )
        topics = [t for t in D.TOPICS if t[0] == lang] or D.TOPICS
        n_tickets = 1 + (i % 3 == 0)
        for k in range(n_tickets):
            seq += 1
            topic = topics[(i + k * 3) % len(topics)]
            _lang, subject, opening, reply, follow, tags, prio = topic  # type: ignore[misc,assignment]
            start = now - timedelta(days=rnd.uniform(0.05, 14), minutes=rnd.randint(0, 600))
            use_tg = tg is not None and (email is None or k % 2 == 1)
            if use_tg and k:
                tags, prio = [], "normal"  # type: ignore[assignment]  # a short chat question
            if use_tg:
                assert tg is not None
                chat, username = tg
                msg = InboundMessage(
                    kind="telegram",
                    external_id=f"tg:{chat}:{100 + seq}",
                    sender_address=str(chat),
                    sender_name=name,
                    text=rnd.choice(D.TELEGRAM_LINES[lang]) if k else opening,
                    sent_at=start,
                    channel="telegram",
                    conversation=str(chat),
                    extra={
                        "chat_id": chat,
                        "message_id": 100 + seq,
                        "chat_type": "private",
                        "username": username,
                    },
                )
            else:
                channel = "billing" if "billing" in tags else "support"
                msg = InboundMessage(
                    kind="email",
                    external_id=f"demo{seq}@{(email or 'x@mail.test').split('@')[1]}",
                    sender_address=email or "",
                    sender_name=name,
                    subject=subject,
                    text=opening,
                    quoted_text="",
                    sent_at=start,
                    channel=channel,
                    to_addresses=[f"{channel}@acme.test"],
                )
                if seq % 5 == 0:
                    msg.attachments = [
                        Attachment(
                            filename="screenshot.png",
                            content_type="image/png",
                            data=b"\x89PNG\r\n\x1a\n" + bytes(64),
                            size=72,
                        )
                    ]
            with desk.db.write() as s:
                res = ingest(s, desk, msg, historical=True, now=start)
                t = s.get(Ticket, res.ticket_id)
                assert t is not None and t.id is not None
                row = s.get(Customer, t.customer_id)
                if row is not None:
                    row.language, row.company, row.name = lang, company, name
                    s.add(row)
                _tag(s, t.id, list(tags), tag_cache)
                t.priority = prio
                t.priority_rank = PRIORITY_RANK[prio]
                status = statuses[(i + k) % len(statuses)] if reply else rnd.choice(["new", "open"])
                agent = agents[(i + k) % len(agents)]
                if status != "new":
                    ag = s.exec(select(Agent).where(Agent.name == agent)).first()  # type: ignore[attr-defined]
                    t.assignee_id = ag.id if ag else None
                if reply and status != "new":
                    at = start + timedelta(minutes=rnd.randint(3, 240))
                    m = queue_outbound(s, desk, t, reply, agent=agent, at=min(at, now))
                    _mark_sent(s, m)
                    if follow:
                        fm = InboundMessage(
                            kind=msg.kind,
                            external_id=(
                                f"tg:{tg[0]}:{500 + seq}" if use_tg and tg else f"demo{seq}f@x.test"
                            ),
                            sender_address=msg.sender_address,
                            sender_name=name,
                            subject="Re: " + subject,
                            text=follow,
                            in_reply_to=[m.message_id] if m.message_id else [],
                            sent_at=min(at + timedelta(minutes=rnd.randint(5, 300)), now),
                            channel=msg.channel,
                            conversation=msg.conversation,
                            extra=msg.extra,
                        )
                        ingest(s, desk, fm, historical=True, now=fm.sent_at)
                if seq % 4 == 0:
                    queue_outbound(
                        s,
                        desk,
                        t,
                        "Проверил логи — похоже на проблему с кэшем. Передаю во вторую линию."
                        if lang == "ru"
                        else "Checked the logs: looks like a cache issue. Handing over to second line.",
                        agent=agent,
                        note=True,
                        at=min(start + timedelta(minutes=30), now),
                    )
                from supportdesk.desk import audit as events

                before = t.status
                t.status = status
                if status != before and status != "new":
                    at = min(start + timedelta(hours=rnd.randint(2, 48)), now)
                    if status in ("solved", "closed"):
                        t.solved_at = at
                        events.record(
                            s,
                            "status",
                            agent=agent,
                            ticket_id=t.id,
                            at=at,
                            before=before,
                            after="solved",
                        )
                        t.csat_requested_at = at
                        events.record(
                            s, "csat_requested", agent="system", ticket_id=t.id, at=at, via=t.kind
                        )
                        if rnd.random() < 0.7:
                            t.csat_score = rnd.choice([3, 4, 5, 5, 5])
                            events.record(
                                s,
                                "csat_rated",
                                agent="system",
                                ticket_id=t.id,
                                at=at + timedelta(hours=1),
                                score=t.csat_score,
                                via=t.kind,
                            )
                    if status == "closed":
                        t.closed_at = at
                        events.record(
                            s,
                            "status",
                            agent=agent,
                            ticket_id=t.id,
                            at=at,
                            before="solved",
                            after="closed",
                        )
                    elif status == "pending":
                        events.record(
                            s,
                            "status",
                            agent=agent,
                            ticket_id=t.id,
                            at=at,
                            before=before,
                            after="pending",
                        )
                sla.refresh_due(t)
                s.add(t)
    with desk.db.write() as s:
        # the story's breaches and pauses as the runner's SLA pass records them (the real pass:
        # a few dozen tickets); the synthetic tickets are written in that state (_load)
        sla.tick(s, desk, now)
    _rebuild_search(desk)  # the story's documents; the synthetic tickets index their own
    if size > 0:
        with desk.db.unjournaled():
            add_synthetic(desk, size, seed=seed, now=now)
    desk.db.analyze(every_table=True)  # the load rebuilt the indexes (store.db.Database.analyze)


def _rebuild_search(desk: Desk) -> None:
    try:
        from supportdesk.search import search
    except ImportError:
        return
    rebuild = getattr(search, "rebuild_index", None)
    if rebuild is not None:
        rebuild(desk)


_WORDS_EN = (
    "printer invoice login password refund delivery order app crash payment card account "
    "export report api limit error update sync settings team invite discount"
).split()
_WORDS_RU = (
    "принтер счёт вход пароль возврат доставка заказ приложение ошибка оплата карта аккаунт "
    "отчёт лимит обновление синхронизация настройки команда скидка тариф"
).split()


def _draw(getrandbits: Any, words: list[str], count: int) -> list[str]:
    """``[rnd.choice(words) for _ in range(count)]``, the same draws from the same generator
    (``Random.choice`` is ``words[_randbelow(len(words))]``, by rejection over ``getrandbits``),
    without two Python calls per word: the synthetic text is 34 draws per ticket."""
    n = len(words)
    k = n.bit_length()
    out = []
    for _ in range(count):
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        out.append(words[r])
    return out


class _Attrs:
    """A row dict read through attributes, as ``sla.breached_targets`` reads a Ticket."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__ = row


class _BreachJson:
    """The ``data`` of the ``sla_breached`` event the SLA pass (``sla.clocks.tick``) records,
    as ``audit.record`` serialises it (``json.dumps`` of target, due, detected_at, priority,
    channel), from templates: one ``isoformat`` per event instead of a ``json.dumps``."""

    def __init__(self, now: datetime, priorities: list[str], channels: list[str]) -> None:
        detected = json.dumps(now.isoformat())
        self.heads = {
            t: '{"target": ' + json.dumps(t) + ', "due": "'
            for t in ("first_response", "resolution")
        }
        self.tails = {
            (p, c): f'", "detected_at": {detected}, "priority": {json.dumps(p, ensure_ascii=False)}'
            f', "channel": {json.dumps(c, ensure_ascii=False)}}}'
            for p in priorities
            for c in channels
        }

    def __call__(self, target: str, due: datetime, priority: str, channel: str) -> str:
        return self.heads[target] + due.isoformat() + self.tails[(priority, channel)]


BATCH = 20_000  # synthetic tickets (or customers) made and written at a time
# batches of tickets per write transaction: its search documents are one FTS5 segment, written
# at commit (bounded: ~100k tickets, ~9,000 leaf pages; the documents and FTS5's pending terms
# ~220 MB of memory). At a million tickets 10 segments, merged once at the end (~3 CPU-s);
# with a segment per 20,000-ticket batch the 16-way level merges during the load cost ~18 s,
# and one merge of 53 segments ~28 s (mostly system time): see docs/NOTES.md
TX_BATCHES = 5
# the tables a synthetic load writes (and whose secondary indexes it builds once at the end);
# PostgreSQL's search_doc has a GIN index, SQLite's is an FTS5 table with none of these
BULK_TABLES = (
    "customer",
    "identity",
    "ticket",
    "message",
    "search_doc",
    "event",
)  # synthetic tickets per write transaction: bounded, so the cost stays linear


def _customer_doc(cid: int, j: int) -> search_store.Doc:
    """The search document of synthetic customer ``j`` (id ``cid``), as ``_load`` writes it."""
    name = f"Клиент {j}" if j % 2 == 0 else f"Customer {j}"
    extra = f"user{cid}@synthetic.test {name}"
    if j % 3 == 0:
        extra += f" {9_000_000 + cid} @user{cid}"
    return search_store.Doc(search_store.KIND_CUSTOMER, cid, title=f"{name} ", extra=extra)


def add_synthetic(desk: Desk, n: int, *, seed: int = 7, now: datetime | None = None) -> None:
    """N synthetic tickets (with one customer message each) by bulk insert, with their search
    documents.

    Customers are written a batch of ``BATCH`` per transaction, then tickets ``TX_BATCHES``
    batches per transaction: their rows batch by batch, then the transaction's documents
    (tickets', messages' and its share of the customers') in one plain insert in key order,
    which FTS5 writes as one segment at commit. Nothing is merged while they are written
    (fewer than 16 segments up to ~1.5M tickets; beyond, the bulk policy's 16-way merges);
    at the end ``merge_all`` merges every segment into one, a bounded number of pages per
    transaction. A transaction of a million rows made SQLite spill and rewrite its cache (time
    grew faster than the size); bounded transactions keep the cost per ticket flat. The text
    is stemmed word by word from the small vocabulary, to the same indexed text as
    ``rebuild_index`` makes.

    The tickets are written as the runner's SLA pass (``sla.clocks.tick``) at ``now`` would
    leave them: pauses in step with the status, ``sla_breached`` set and one ``sla_breached``
    event per missed target (the same rows, in the same order). Left to the runner, the first
    pass over a 1M demo desk was minutes of CPU recording 1.1 million breaches.
    """
    rnd = random.Random(seed + n)
    now = now or utcnow()
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)  # as a pass reads it
    with desk.db.read() as s:
        conn = s.connection()
        base_c = (conn.execute(sa.select(sa.func.max(Customer.id))).scalar() or 0) + 1  # type: ignore[arg-type]
        base_t = (conn.execute(sa.select(sa.func.max(Ticket.id))).scalar() or 0) + 1  # type: ignore[arg-type]
        base_m = (conn.execute(sa.select(sa.func.max(Message.id))).scalar() or 0) + 1  # type: ignore[arg-type]
    n_cust = max(1, n // 3)
    with desk.db.write() as s:
        # built again at the end: inserting a million rows in random key order into a dozen
        # B-trees rewrote most of their pages at every commit (the cost grew with the size)
        indexes = secondary_indexes(s.connection(), BULK_TABLES)
        drop_indexes(s.connection(), indexes)
    try:
        with search_store.bulk_merge_policy(desk.db):
            _load(desk, n, n_cust, rnd, now, base_c, base_t, base_m)
            # the load's segments were written without merging: all of them in one merge now
            search_store.merge_all(desk.db)
    finally:
        with desk.db.write() as s:
            create_indexes(s.connection(), indexes)
            reset_sequences(s.connection(), [Customer, Identity, Ticket, Message])


def _load(
    desk: Desk,
    n: int,
    n_cust: int,
    rnd: random.Random,
    now: datetime,
    base_c: int,
    base_t: int,
    base_m: int,
) -> None:
    """The batches of ``add_synthetic``: customers, then tickets with their messages.

    As in an import (``inbound.importing``): what is alive now is frozen, and the collector
    runs once per transaction instead of whenever allocations pile up (a batch makes some
    hundred thousand dicts and strings, alive until they are written: the automatic
    collections walked them again and again)."""
    gc.freeze()
    collecting = gc.isenabled()
    gc.disable()
    try:
        _load_batches(desk, n, n_cust, rnd, now, base_c, base_t, base_m, collecting)
    finally:
        if collecting:
            gc.enable()
        gc.unfreeze()


def _load_batches(
    desk: Desk,
    n: int,
    n_cust: int,
    rnd: random.Random,
    now: datetime,
    base_c: int,
    base_t: int,
    base_m: int,
    collect: bool,
) -> None:
    statuses = ["new", "open", "open", "pending", "solved", "closed"]
    prios = ["low", "normal", "normal", "normal", "high", "urgent"]
    channels = [("support", "email"), ("billing", "email"), ("telegram", "telegram")]
    stem = {w: stem_text(w) for w in _WORDS_EN + _WORDS_RU}
    bits = rnd.getrandbits
    breach_json = _BreachJson(now, prios, [c for c, _k in channels])
    for a in range(0, n_cust, BATCH):
        custs, idents = [], []
        for j in range(a, min(a + BATCH, n_cust)):
            cid = base_c + j
            ru = j % 2 == 0
            name = f"Клиент {j}" if ru else f"Customer {j}"
            custs.append(
                {
                    "id": cid,
                    "name": name,
                    "company": "",
                    "phone": "",
                    "language": "ru" if ru else "en",
                    "notes": "",
                    "csat_opt_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            address = f"user{cid}@synthetic.test"
            idents.append(
                {
                    "customer_id": cid,
                    "kind": "email",
                    "address": address,
                    "display": name,
                    "created_at": now,
                }
            )
            if j % 3 == 0:
                idents.append(
                    {
                        "customer_id": cid,
                        "kind": "telegram",
                        "address": str(9_000_000 + cid),
                        "display": f"@user{cid}",
                        "created_at": now,
                    }
                )
        with desk.db.write() as s:
            conn = s.connection()
            write_rows(conn, Customer, custs)
            write_rows(conn, Identity, idents)
        if collect:
            gc.collect()

    def batch(a: int, docs: list[search_store.Doc]) -> tuple[list[Any], list[Any], list[Any]]:
        """Tickets ``a`` to ``a + BATCH`` with their messages and breach events; their
        documents appended to ``docs``."""
        tickets: list[Any] = []
        msgs: list[Any] = []
        breaches: list[Any] = []
        for j in range(a, min(a + BATCH, n)):
            tid, mid = base_t + j, base_m + j
            cid = base_c + (j % n_cust)
            ch, kind = channels[j % 3]
            words = _WORDS_RU if j % 2 == 0 else _WORDS_EN
            chosen = _draw(bits, words, 4)
            subject = " ".join(chosen).capitalize()
            subject_stems = " ".join([stem[w] for w in chosen])
            created = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 90))
            status = statuses[j % len(statuses)]
            prio = prios[rnd.randrange(len(prios))]
            due = created + timedelta(hours=4) if status in ("new", "open") else None
            ticket: dict[str, Any] = {
                "id": tid,
                "subject": subject,
                "status": status,
                "priority": prio,
                "priority_rank": PRIORITY_RANK[prio],
                "priority_locked": False,
                "channel": ch,
                "kind": kind,
                "customer_id": cid,
                "assignee_id": None,
                "group": None,
                "created_at": created,
                "updated_at": created,
                "first_response_due_at": due,
                "first_response_at": None,
                "resolution_due_at": created + timedelta(days=3),
                "solved_at": None,
                "due_at": due,
                "sla_paused_seconds": 0,
                # a waiting ticket's resolution clock stopped: the pass sets the pause
                # (tick's repair of a pause out of step with the status) at its ``now``
                "sla_paused_since": now if status in sla.PAUSED else None,
                "sla_breached": False,
                "message_count": 1,
                "last_message_id": mid,
                "ack_sent": False,
                "reply_to_address": f"user{cid}@synthetic.test",
                "spam": False,
                "last_customer_at": created,
            }
            missed = sla.breached_targets(cast(Any, _Attrs(ticket)), now)
            if missed:
                ticket["sla_breached"] = True
                for target in missed:
                    at = ticket[f"{target}_due_at"]
                    breaches.append(
                        {
                            "ticket_id": tid,
                            "agent": "system",
                            "kind": "sla_breached",
                            "data": breach_json(target, at, prio, ch),
                            "created_at": at,
                        }
                    )
            tickets.append(ticket)
            body = _draw(bits, words, 30)
            msgs.append(
                {
                    "id": mid,
                    "ticket_id": tid,
                    "direction": "in",
                    "channel": ch,
                    "kind": kind,
                    "author": f"Customer {cid}",
                    "author_address": f"user{cid}@synthetic.test",
                    "customer_id": cid,
                    "dedupe_key": f"syn{mid}@synthetic.test",
                    "message_id": f"syn{mid}@synthetic.test",
                    "references": "",
                    "subject": subject,
                    "text": " ".join(body),
                    "quoted_text": "",
                    "created_at": created,
                    "received_at": created,
                    "thread_reason": "new ticket",
                    "auto_reason": "",
                    "versions": "",
                    "is_auto": False,
                    "to_addresses": "",
                    "cc_addresses": "",
                    "bcc_addresses": "",
                }
            )
            docs.append(
                search_store.Doc(search_store.KIND_TICKET, tid, stemmed=(subject_stems, "", ""))
            )
            docs.append(
                search_store.Doc(
                    search_store.KIND_MESSAGE,
                    mid,
                    stemmed=(subject_stems, " ".join([stem[w] for w in body]), ""),
                )
            )
        return tickets, msgs, breaches

    span = BATCH * TX_BATCHES
    n_tx = -(-n // span)
    for t in range(n_tx):
        # this transaction's share of the customers' documents (their rows went before)
        docs = [
            _customer_doc(base_c + j, j)
            for j in range(t * n_cust // n_tx, (t + 1) * n_cust // n_tx)
        ]
        with desk.db.write() as s:
            conn = s.connection()
            for a in range(t * span, min((t + 1) * span, n), BATCH):
                tickets, msgs, breaches = batch(a, docs)
                write_rows(conn, Ticket, tickets)
                write_rows(conn, Message, msgs)
                write_rows(conn, Event, breaches)
            # one insert in key order at the end: a key lower than the one before makes FTS5
            # write its pending terms out as a segment of their own
            search_store.insert(conn, docs)
            search_store.merge_step(conn)
        if collect:
            gc.collect()
