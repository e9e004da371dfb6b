"""Raw-ledger packs: the bytes of bulk-imported messages, appended to a few large files.

A bulk import writes thousands of small messages. One file per message costs two directory
updates each (about 90 µs of kernel time apiece on ext4 here, more than parsing the message);
appending them to a pack costs almost nothing. Live messages and quarantined ones still get a
file of their own (``files.store_raw``); readers look there first, then here.

Layout under ``raw/packs/``:

* ``<name>.pack``: a header line, then records of ``sha256 (32 bytes) | length (8 bytes, big
  endian) | bytes``. Self-describing: a pack can be read without its index.
* ``index.db``: SQLite, one row per stored hash: which pack, where, how long. It is a cache of
  what the packs hold: ``rebuild_index`` re-creates it from the packs alone.

Packs are appended by one process each (a name per process) and never rewritten. Each append
is synced, and so is its index entry, before the worker hands the parsed messages on: a message
the database knows is always on disk here. No SQLAlchemy: parser processes write packs before they parse.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import struct
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from supportdesk.store.files import open_folder

MAGIC = b"supportdesk raw pack 1\n"
_HEAD = struct.Struct(">32sQ")
INDEX = "index.db"
_PIECE = 8 << 20  # bytes handed to one write()
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS blob (sha TEXT PRIMARY KEY, pack TEXT NOT NULL, "
    "offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID"
)


class PackError(OSError):
    """A pack or its index could not be written or read. One sentence."""


def packs_dir(home: Path) -> Path:
    return home / "raw" / "packs"


def _connect(folder: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / INDEX, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # durable before the desk's database commits
    conn.execute(_SCHEMA)
    return conn


def prepare(home: Path, file_mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """Create the packs folder and the index (before parser processes start using them)."""
    folder = packs_dir(home)
    # made (or opened) without following a link planted anywhere below the home
    os.close(open_folder(home, folder.relative_to(home).parts, dir_mode))
    conn = _connect(folder)
    conn.close()
    for name in (INDEX, INDEX + "-wal", INDEX + "-shm"):
        try:
            os.chmod(folder / name, file_mode)
        except OSError:
            pass


class PackWriter:
    """Appends raw messages to this process's pack and records them in the index.

    ``add_many`` skips bytes the ledger holds already (in a pack or as a file of their own),
    so importing the same mail twice stores it once.
    """

    def __init__(self, home: Path, file_mode: int = 0o600) -> None:
        self.home = home
        self.folder = packs_dir(home)
        self.file_mode = file_mode
        self._conn: sqlite3.Connection | None = None
        self._fh: int | None = None
        self._name = ""
        self._size = 0

    def _index(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.folder)
        return self._conn

    def _open(self) -> int:
        if self._fh is None:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            self._name = f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}.pack"
            fd = os.open(
                self.folder / self._name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                self.file_mode,
            )
            os.fchmod(fd, self.file_mode)
            _write_all(fd, MAGIC)
            self._fh, self._size = fd, len(MAGIC)
        return self._fh

    def known(self, shas: Sequence[str]) -> set[str]:
        """Which of ``shas`` the ledger holds already."""
        have: set[str] = set()
        conn = self._index()
        for i in range(0, len(shas), 500):
            part = list(shas[i : i + 500])
            q = f"SELECT sha FROM blob WHERE sha IN ({', '.join('?' for _ in part)})"
            have.update(r[0] for r in conn.execute(q, part))
        # a file of its own (raw/ab/<sha>, or raw/ab/cd/<sha> in older homes): only the
        # fan-out folders that exist are looked in (a home filled by imports has none)
        root = str(self.home / "raw")
        try:
            fans = set(os.listdir(root))
        except OSError:
            fans = set()
        for s in shas:
            if s in have or s[:2] not in fans:
                continue
            if os.path.exists(f"{root}/{s[:2]}/{s}") or os.path.exists(
                f"{root}/{s[:2]}/{s[2:4]}/{s}"
            ):
                have.add(s)
        return have

    def add_many(self, datas: Sequence[bytes]) -> list[str]:
        """Store each of ``datas`` once; returns their sha256 hashes in order."""
        shas = [hashlib.sha256(d).hexdigest() for d in datas]
        have = self.known(shas)
        rows: list[tuple[str, str, int, int]] = []
        try:
            fd = None
            pos = self._size
            pending: list[bytes] = []  # written in pieces of about 8 MiB, not all at once
            pending_size = 0
            for sha, data in zip(shas, datas, strict=True):
                if sha in have:
                    continue
                have.add(sha)
                if fd is None:
                    fd = self._open()
                    pos = self._size
                    os.lseek(fd, pos, os.SEEK_SET)
                pending += (_HEAD.pack(bytes.fromhex(sha), len(data)), data)
                pending_size += _HEAD.size + len(data)
                rows.append((sha, self._name, pos + _HEAD.size, len(data)))
                pos += _HEAD.size + len(data)
                if pending_size >= _PIECE:
                    self._append(fd, pending)
                    pending, pending_size = [], 0
            if fd is not None:
                self._append(fd, pending)
                try:
                    os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, self._size)
                    raise
                self._size = pos
            if rows:
                conn = self._index()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR IGNORE INTO blob VALUES (?, ?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite may have rolled back already (disk full)
                        conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise PackError(
                getattr(exc, "errno", None) or 0, f"cannot store raw messages: {why}"
            ) from None
        return shas

    def _append(self, fd: int, pieces: list[bytes]) -> None:
        if not pieces:
            return
        try:
            _write_all(fd, b"".join(pieces))
        except OSError:
            os.ftruncate(fd, self._size)  # no half record left behind (disk full)
            os.lseek(fd, self._size, os.SEEK_SET)
            raise

    def close(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lookup(folder: Path, sha: str) -> tuple[str, int, int] | None:
    conn = sqlite3.connect(f"file:{folder / INDEX}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT pack, offset, length FROM blob WHERE sha = ?", (sha,)).fetchone()
    finally:
        conn.close()
    return (str(row[0]), int(row[1]), int(row[2])) if row is not None else None


def read(home: Path, sha: str) -> bytes | None:
    """The bytes stored under ``sha`` in a pack, or None when no pack has them.

    A missing or damaged index is rebuilt from the packs first (it is only a cache of them).
    """
    folder = packs_dir(home)
    if not folder.exists() or not any(folder.glob("*.pack")):
        return None
    try:
        if not (folder / INDEX).exists():
            raise sqlite3.DatabaseError("no index")
        row = _lookup(folder, sha)
    except sqlite3.DatabaseError:
        rebuild_index(home)
        row = _lookup(folder, sha)
    if row is None:
        return None
    pack, offset, length = row
    if "/" in pack or pack.startswith("."):
        return None  # the index names files in this folder only
    with open(folder / pack, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def iter_pack(path: Path) -> Iterable[tuple[str, int, int]]:
    """``(sha, offset, length)`` of each record of one pack, read from the pack itself.

    A record cut short (a crash while appending) ends the pack.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            return
        pos = len(MAGIC)
        while pos + _HEAD.size <= size:
            digest, length = _HEAD.unpack(fh.read(_HEAD.size))
            start = pos + _HEAD.size
            if start + length > size:
                return
            yield digest.hex(), start, length
            fh.seek(length, os.SEEK_CUR)
            pos = start + length


def rebuild_index(home: Path) -> int:
    """Re-create the index from the packs themselves; returns the number of records."""
    folder = packs_dir(home)
    if not folder.exists():
        return 0
    for name in (INDEX, INDEX + "-wal", INDEX + "-shm"):
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
    conn = _connect(folder)
    n = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        for pack in sorted(folder.glob("*.pack")):
            rows = [(sha, pack.name, off, ln) for sha, off, ln in iter_pack(pack)]
            conn.executemany("INSERT OR IGNORE INTO blob VALUES (?, ?, ?, ?)", rows)
            n += len(rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return n
