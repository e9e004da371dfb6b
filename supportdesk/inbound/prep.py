"""The import's first stage, in parser processes: read, keep in the ledger, parse, stem.

Kept free of SQLAlchemy and the models on purpose: ``supportdesk import`` starts these processes
before it loads the database layer (about half a second of imports), so the parsers are well
ahead by the time the store is ready to take their output.

For each raw message a worker:

1. reads it (Maildir messages arrive as paths, so the importing process never handles their
   bytes),
2. keeps the bytes in the raw ledger *before* parsing (a bulk import appends to a pack, see
   ``store/packs.py``; a small one writes a file per message),
3. parses it (a failure is kept for the quarantine, with the bytes),
4. stems the text the search index needs.

``Preparer`` runs the workers ahead of the store within a memory budget and hands back their
results in the original order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supportdesk.channels.base import InboundMessage, ParseError
from supportdesk.channels.email.subject import ticket_title
from supportdesk.channels.files import FileRef, RawItem, read_ref
from supportdesk.core.locations import dir_mode, ensure_home, file_mode
from supportdesk.desk.addresses import normalize_email
from supportdesk.inbound import signatures
from supportdesk.store import packs
from supportdesk.store.files import store_raw
from supportdesk.store.stems import stem_text

CHUNK = 200  # messages per worker task
CHUNK_BYTES = 16 << 20  # ... or fewer, when they weigh this much
SMALL = 64  # fewer messages than this: no worker processes, a ledger file per message
AHEAD_MESSAGES = 5000  # parsed but not yet stored, at most
AHEAD_BYTES = 256 << 20  # raw bytes in flight, at most (big attachments)


@dataclass
class Prepared:
    """One raw message after the first stage."""

    source: str
    sha: str | None = None  # None: unreadable (nothing was kept)
    msg: InboundMessage | None = None
    error: str | None = None
    # subject, text, a new ticket's title; then, for e-mail, (text, stemmed) twice: the search
    # document of a new customer the sender would be (see stems_of)
    stems: tuple[str, ...] | None = None
    data: bytes | None = None  # only when parsing failed: the quarantine keeps a file of it
    skipped: str | None = None  # a file in a folder that is not mail: why

    @property
    def unreadable(self) -> bool:
        return self.sha is None


def parse(
    data: bytes, parse_one: Callable[[bytes], InboundMessage | None] | None = None
) -> tuple[InboundMessage | None, str | None]:
    """Parse one raw message (an e-mail unless ``parse_one`` says how); a failure is a reason,
    never an exception. (None, None): ``parse_one`` does not parse this raw form again."""
    from supportdesk.channels.email.parse import parse_email

    try:
        return (parse_one or parse_email)(data), None
    except ParseError as exc:
        return None, str(exc) or "the message cannot be parsed"
    except Exception as exc:  # the parser's contract is ParseError; never let one mail stop a batch
        return None, f"parser failure: {type(exc).__name__}: {exc}"


def stems_of(msg: InboundMessage, *, hints: bool = True) -> tuple[str, ...]:
    """What the index stores for the message (subject, text) and for a ticket it would open;
    for an e-mail, also the texts of the search document of a new customer its sender would
    be, each with its stems. Those are hints: the store uses them only for a document whose
    text is exactly the same (``writing.Batch._index``), so a guess that is wrong (the sender
    is one of our addresses, a customer that exists) costs nothing but the stemming here.
    ``hints=False``: not those (parsing in the storing process itself, they would only add to
    its work)."""
    subject = msg.subject[:998]
    title = "" if msg.conversation_key else ticket_title(msg.subject)
    stemmed = stem_text(subject)
    # most new tickets are titled by their subject as it is: stemmed once
    out = (stemmed, stem_text(msg.text), stemmed if title == subject else stem_text(title))
    if not hints or msg.kind != "email" or msg.conversation_key:
        return out
    # as lookup.customer_for makes a new customer and its identity for an inbound e-mail
    addr = normalize_email(msg.sender_address)
    name = msg.sender_name or ""
    doc_title = f"{name or addr.split('@')[0]} "  # "{name} {company}", no company yet
    doc_extra = f"{addr} {name}"  # "{address} {display}"
    return (*out, doc_title, stem_text(doc_title), doc_extra, stem_text(doc_extra))


def prepare_chunk(
    home: str, items: list[RawItem | FileRef], pack: bool, hints: bool = False
) -> list[Prepared]:
    """In a worker (or in-process for a small import): the whole first stage for a chunk.
    ``hints``: stem a new customer's search document ahead too (see ``stems_of``)."""
    raws: list[RawItem] = []
    for it in items:
        if isinstance(it, FileRef):
            raws.extend(read_ref(it))
        else:
            raws.append(it)
    datas = [r.data for r in raws if r.data is not None]
    shas = iter(keep_raw(Path(home), datas, pack=pack))
    out: list[Prepared] = []
    for r in raws:
        if r.skipped is not None:
            out.append(Prepared(r.source, skipped=r.skipped))
            continue
        if r.data is None:
            out.append(Prepared(r.source, error=r.error))
            continue
        sha = next(shas)
        msg, err = parse(r.data)
        if msg is None:
            out.append(Prepared(r.source, sha, error=err, data=r.data))
            continue
        msg.raw = None  # the ledger has the bytes; don't ship them back across processes
        msg.signatures = signatures.work_out(msg)  # what dedupe compares, off the store's path
        out.append(Prepared(r.source, sha, msg, stems=stems_of(msg, hints=hints)))
    return out


def _die_with_parent(parent: int) -> None:
    """A parser process ends when the import that started it ends, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere (or if that fails) a daemon thread
    watches for the parent to change. Either way, a parent already gone by now ends us at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_init(parent: int) -> None:
    """Parsers yield the CPU to the process that stores their output (it is the bottleneck),
    and die with it."""
    _die_with_parent(parent)
    try:
        os.nice(15)
    except (AttributeError, OSError):
        pass


def _weight(it: RawItem | FileRef) -> int:
    if isinstance(it, FileRef):
        return it.size
    return len(it.data or b"")


class Preparer:
    """Runs the first stage ahead of the store; iterate for lists of ``Prepared`` in order.

    ``start()`` may be called early (before the database layer is loaded): the workers are
    forked then, light, and begin at once. Use as a context manager, or call ``close()``.
    """

    def __init__(self, home: Path, items: Iterable[RawItem | FileRef], *, workers: int = 2):
        self.home = home
        self.items = iter(items)
        self.workers = max(1, workers)
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque[tuple[Future[list[Prepared]] | list[Prepared], int, int]] = deque()
        self.ahead_msgs = 0
        self.ahead_bytes = 0
        self.first: list[RawItem | FileRef] = []
        self.started = False
        self.exhausted = False
        self.use_packs = False

    def start(self) -> Preparer:
        if self.started:
            return self
        self.started = True
        ensure_home(self.home)  # private (0700) when it is new: it is about to hold mail
        for it in self.items:
            self.first.append(it)
            if len(self.first) >= SMALL:
                break
        else:
            self.exhausted = True
        if self.first and not self.exhausted:
            self.use_packs = True  # a bulk import: one pack instead of a file per message
            packs.prepare(self.home, file_mode(self.home), dir_mode(self.home))
        if self.use_packs and self.workers > 1:
            # fork is cheapest and, this early, safe (no threads yet); otherwise the default
            ctx = None
            if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
                ctx = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        self._fill()
        return self

    def _next_chunk(self) -> list[RawItem | FileRef]:
        """Up to CHUNK messages, or fewer that weigh CHUNK_BYTES (mail with big attachments)."""
        chunk: list[RawItem | FileRef] = []
        weight = 0
        while self.first and len(chunk) < CHUNK and weight < CHUNK_BYTES:
            chunk.append(self.first.pop(0))
            weight += _weight(chunk[-1])
        if not self.exhausted and len(chunk) < CHUNK and weight < CHUNK_BYTES:
            for it in self.items:
                chunk.append(it)
                weight += _weight(it)
                if len(chunk) >= CHUNK or weight >= CHUNK_BYTES:
                    break
            else:
                self.exhausted = True
        return chunk

    def _fill(self) -> None:
        while self.ahead_msgs < AHEAD_MESSAGES and (
            self.ahead_bytes < AHEAD_BYTES or not self.pending
        ):
            chunk = self._next_chunk()
            if not chunk:
                return
            weight = sum(_weight(it) for it in chunk)
            home = str(self.home)
            job: Future[list[Prepared]] | list[Prepared]
            if self.pool is None:
                job = prepare_chunk(home, chunk, self.use_packs)
            else:
                job = self.pool.submit(prepare_chunk, home, chunk, True, True)
            self.pending.append((job, len(chunk), weight))
            self.ahead_msgs += len(chunk)
            self.ahead_bytes += weight
            if self.pool is None:
                return  # in-process: one chunk at a time

    def __iter__(self) -> Iterator[list[Prepared]]:
        self.start()
        while self.pending:
            job, n, weight = self.pending.popleft()
            result = job if isinstance(job, list) else job.result()
            self.ahead_msgs -= n
            self.ahead_bytes -= weight
            self._fill()
            yield result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        self.pending.clear()

    def __enter__(self) -> Preparer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


# each thread (the runner's) or parser process appends to a pack of its own
_THREAD_WRITERS = threading.local()
KEEP_IN_PACK = 16  # from this many messages at once, a pack; fewer: a synced file each


def keep_raw(home: Path, datas: list[bytes], *, pack: bool | None = None) -> list[str]:
    """Keep raw messages in the ledger, synced, before anything parses them; their hashes.

    A live message or a few get a file each (fsynced); a bigger batch (an IMAP folder's
    backlog, a bulk import's chunk) is appended to this thread's pack. ``pack`` decides
    instead of the batch's size. Nothing here syncs the whole machine.
    """
    if not (len(datas) >= KEEP_IN_PACK if pack is None else pack):
        return [store_raw(home, d, fsync=True) for d in datas]
    writers: dict[str, packs.PackWriter] | None = getattr(_THREAD_WRITERS, "writers", None)
    if writers is None:
        writers = _THREAD_WRITERS.writers = {}
    writer = writers.get(str(home))
    if writer is None:
        packs.prepare(home, file_mode(home), dir_mode(home))
        writer = writers[str(home)] = packs.PackWriter(home, file_mode(home))
    try:
        return writer.add_many(datas)
    except packs.PackError:
        # the next batch starts a new pack: this one's file may sit on a disk that filled up
        # or went away (the runner lives on after a failed batch, and retries it)
        writers.pop(str(home), None)
        writer.close()
        raise
