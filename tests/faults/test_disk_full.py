"""A full disk while an attachment is stored: the message is kept, the attachment row says it was
not stored, and the raw ledger still holds every byte (nothing lost).

Two ways to fill the disk: a real 64 KiB tmpfs mounted on the home's attachments/ folder (as
root, where ``mount`` is allowed), and ENOSPC injected into the storage layer's writes (always).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supportdesk.store import files, ledger
from tests.factories import raw_email
from tests.peers.util import peer_unavailable

pytestmark = pytest.mark.fault

SMALL = b"small attachment " * 50  # ~850 bytes: fits
BIG = os.urandom(200_000)  # does not fit in 64 KiB


def _mail(msgid: str) -> bytes:
    return raw_email(
        msgid=msgid,
        frm="Ольга <olga@example.ru>",
        subject="Скан договора",
        body="Пересылаю договор и скан.",
        attachments=[
            ("note.txt", SMALL, "text/plain"),
            ("scan.bin", BIG, "application/octet-stream"),
        ],
    )


def _import_and_check(home: Path, cli: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    eml = tmp_path / "in.eml"
    raw = _mail("disk-full@example.ru")
    eml.write_bytes(raw)
    res = cli("import", str(eml), "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    listing = json.loads(cli("tickets", "list", "--json").stdout)
    assert len(listing) == 1  # the message is not lost
    doc = json.loads(cli("tickets", "show", str(listing[0]["id"]), "--json").stdout)
    [msg] = doc["messages"]
    assert msg["text"].startswith("Пересылаю договор")
    atts = {a["filename"]: a for a in msg["attachments"]}
    assert set(atts) == {"note.txt", "scan.bin"}
    assert atts["note.txt"]["stored"] is True
    assert atts["scan.bin"]["stored"] is False
    assert atts["scan.bin"]["size"] == len(BIG)
    assert "not stored" in atts["scan.bin"]["note"]
    assert "No space left on device" in atts["scan.bin"]["note"]
    # no half-written file under a final name, no temporary left behind
    names = [p.name for p in (home / "attachments").rglob("*") if p.is_file()]
    assert len(names) == 1 and names[0].endswith("note.txt")
    # the raw ledger kept the whole message: the attachment can be recovered from it
    ledger = [p for p in (home / "raw").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert [p.read_bytes() for p in ledger] == [raw]
    # a second import of the same mail is a duplicate, not a second message
    again = cli("import", str(eml), "--workers", "1")
    assert again.exit_code == 0
    assert len(json.loads(cli("tickets", "list", "--json").stdout)) == 1
    return doc


@contextlib.contextmanager
def _tiny_tmpfs(path: Path, size: str = "64k") -> Iterator[None]:
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        peer_unavailable("mounting a size-limited tmpfs needs root (the injected variant runs)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        peer_unavailable(f"mount is not allowed here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_tmpfs_under_attachments(home: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    cli("init")
    with _tiny_tmpfs(home / "attachments"):
        _import_and_check(home, cli, tmp_path)


class _DiskFullOs:
    """``os`` for the storage module, with a disk that has ``free`` bytes left under
    attachments/ (the other folders are not limited)."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.paths: dict[int, Path] = {}
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
        # files are opened relative to folder descriptors: name the folder to know the tree
        base = Path(os.readlink(f"/proc/self/fd/{dir_fd}")) if dir_fd is not None else Path()
        self.paths[fd] = base / path
        return fd

    def write(self, fd: int, data: Any) -> int:
        if "attachments" in self.paths.get(fd, Path()).parts:
            if len(data) > self.free:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.free -= len(data)
        return os.write(fd, data)


def test_enospc_injected_at_the_storage_layer(
    home: Path, cli: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _DiskFullOs(free=64 * 1024)
    monkeypatch.setattr(files, "os", fake)
    _import_and_check(home, cli, tmp_path)
    assert fake.refused == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_full_disk_under_the_raw_ledger_stops_the_import_cleanly(
    home: Path,
    cli: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    """A bulk import on a full disk stops with one sentence; what it stored is whole, and the
    same import after the disk is freed adds the rest, each message once.

    With one parser process the chunks reach the disk in order, so the first ones are stored
    before the disk fills. With two, the second chunk can fill the disk before the first is
    written (a loaded machine did that once): then nothing is stored, which is also whole."""
    from supportdesk.inbound import importing
    from supportdesk.inbound import prep as import_prep
    from tests.inbound.test_packs import COUNT, _maildir, _shas

    monkeypatch.setattr(import_prep, "CHUNK", 25)  # small steps, so the disk fills midway
    monkeypatch.setattr(importing, "BATCH", 25)
    cli("init")
    box = _maildir(tmp_path / "Maildir")  # about 90 KB of mail
    with _tiny_tmpfs(home / "raw" / "packs", size="128k"):
        res = cli("import", str(box), "--json", "--workers", workers)
        assert res.exit_code == 1
        assert "Traceback" not in res.output
        assert "cannot store raw messages" in res.output
        assert "No space left on device" in res.output or "full" in res.output
        stored = _shas(home)
        assert (0 if workers == "2" else 1) <= len(stored) < COUNT, res.output
        for sha in stored:  # nothing in the database without its bytes in the ledger
            assert ledger.read_raw(home, sha)
    # the tmpfs (and what it held) is gone: start over on a real disk with the same database
    again = cli("import", str(box), "--json", "--workers", "2")
    assert again.exit_code == 0, again.output
    assert len(_shas(home)) == COUNT
    assert len(set(_shas(home))) == COUNT
