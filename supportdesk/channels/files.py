"""Read raw messages from local files: .eml files, mbox files and Maildir folders.

Used by ``supportdesk import``. Kinds are told apart by content, not only by name:

- a file that starts with a ``From `` line is an mbox (one or more messages; ``>From `` lines
  are unquoted the mboxrd way, which also undoes mboxo quoting of single ``>From``);
- any other file given by name is one message;
- a directory with ``cur/`` or ``new/`` is a Maildir: every file in ``cur/`` and ``new/`` is a
  message, and Maildir++ sub-folders (``.Sent``, ``.Archive.2024``...) are walked too;
- any other directory is walked recursively; files in it that look like mail (a header line or
  an mbox ``From `` line first) are read, other files (indexes, READMEs) are skipped: they come
  as a :class:`RawItem` with ``skipped`` set, so the import can count and name them.

A file that cannot be read becomes a :class:`RawItem` with ``error`` set, so one bad file never
stops an import. A path that does not exist raises :class:`FileNotFoundError` up front.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "FileRef",
    "RawItem",
    "count_raw_messages",
    "iter_raw_messages",
    "iter_raw_refs",
    "read_ref",
]

_SNIFF = 4096
_HEADER_START_RE = re.compile(rb"^[\x21-\x39\x3b-\x7e]{1,76}[ \t]*:")
_MBOXRD_FROM_RE = re.compile(rb"^>(>*From )", re.MULTILINE)
# "From sender@example.com Mon Jun  2 10:00:00 2025": a separator even without a blank line
# before it (some exporters leave it out).
_ENVELOPE_RE = re.compile(
    rb"^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    rb"|Nov|Dec) +\d{1,2} \d{1,2}:\d{2}"
)
_OBS_FROM_HEADER_RE = re.compile(rb"From[ \t]*:")


def _is_mbox_start(data: bytes) -> bool:
    """A "From " envelope line (not an obsolete-syntax "From  : x" header)."""
    return data.startswith(b"From ") and not _OBS_FROM_HEADER_RE.match(data)


_MAILDIR_SKIP = frozenset({"tmp", "cur", "new"})


@dataclass
class RawItem:
    """One raw message (``data``) or the reason it could not be read (``error``).

    ``source`` names where it came from: ``"path/to/file.eml"``, ``"box.mbox#17"`` (1-based
    position in the mbox) or ``"Maildir/cur/1700000000.M1P2.host:2,S"``.
    """

    source: str
    data: bytes | None = None
    error: str | None = None
    skipped: str | None = None  # why a file found in a folder was not read as mail


@dataclass
class FileRef:
    """A Maildir message not read yet: a parser process reads it (see :func:`read_ref`).

    ``size`` is what the folder listing said, for the importer's memory budget.
    """

    path: str
    size: int = 0


def read_ref(ref: FileRef) -> list[RawItem]:
    """The message (or, for an mbox sitting in a Maildir, the messages) of one file."""
    try:
        with open(ref.path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        return [RawItem(ref.path, error=f"could not read the folder {Path(ref.path)}.")]
    except OSError as exc:
        return [_read_error(Path(ref.path), exc)]
    if _is_mbox_start(data):
        return list(_iter_mbox(io.BytesIO(data), ref.path))
    return [RawItem(ref.path, data=data)]


def iter_raw_refs(paths: Iterable[Path | str]) -> Iterator[RawItem | FileRef]:
    """Like :func:`iter_raw_messages`, but Maildir messages come as :class:`FileRef` for a
    parser process to read, so the importing process never touches their bytes.

    Raises :class:`FileNotFoundError` before yielding anything if a path does not exist.
    """
    checked = _check_paths(paths)
    return _iter_refs(checked)


def _iter_refs(paths: list[Path]) -> Iterator[RawItem | FileRef]:
    for path in paths:
        if not path.is_dir():
            yield from _iter_file(path, explicit=True)
            continue
        for name, in_maildir in _walk(path):
            if in_maildir:  # the bulk of a big import: no Path object per message (5 µs each)
                try:
                    size = os.stat(name).st_size
                except OSError:
                    size = 0
                yield FileRef(name, size)
            elif os.path.isdir(name):
                yield RawItem(name, error=f"could not read the folder {name}.")
            else:
                yield from _iter_file(Path(name), explicit=False)


def _check_paths(paths: Iterable[Path | str]) -> list[Path]:
    checked: list[Path] = []
    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"{path} does not exist.")
        checked.append(path)
    return checked


def iter_raw_messages(paths: Iterable[Path | str]) -> Iterator[RawItem]:
    """Yield every raw message found under ``paths`` (files and folders, in the given order).

    Raises :class:`FileNotFoundError` before yielding anything if a path does not exist.
    """
    checked = _check_paths(paths)
    return _iter_checked(checked)


def _iter_checked(paths: list[Path]) -> Iterator[RawItem]:
    for path in paths:
        if path.is_dir():
            yield from _iter_dir(path)
        else:
            yield from _iter_file(path, explicit=True)


def count_raw_messages(paths: Iterable[Path | str]) -> int:
    """A quick count of the messages under ``paths`` for a progress bar.

    Exact for .eml files and Maildirs; for an mbox it counts ``From `` lines after a blank
    line, which is what :func:`iter_raw_messages` splits on. Unreadable files count as one.
    """
    total = 0
    for path in _check_paths(paths):
        if path.is_dir():
            for file_path, in_maildir in _walk_dir(path):
                total += _count_file(file_path, explicit=in_maildir)
        else:
            total += _count_file(path, explicit=True)
    return total


# --------------------------------------------------------------------------------------------


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _walk_dir(root: Path) -> Iterator[tuple[Path, bool]]:
    """``(file, is_maildir_message)`` for every candidate file under ``root``, sorted, no recursion."""
    for name, in_maildir in _walk(root):
        yield Path(name), in_maildir


def _walk(root: Path) -> Iterator[tuple[str, bool]]:
    """``_walk_dir`` with the paths as strings."""
    stack: list[Path] = [root]
    seen: set[tuple[int, int]] = set()
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # symlink loops
            continue
        seen.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            yield str(folder), False  # reported as unreadable by the reader
            continue
        maildir = _is_maildir(folder)
        subdirs: list[Path] = []
        if maildir:
            for sub in ("cur", "new"):
                box = folder / sub
                try:
                    files = sorted(os.scandir(box), key=lambda e: e.name)
                except OSError:
                    continue
                for entry in files:
                    if not entry.name.startswith(".") and not _is_dir(entry):
                        yield entry.path, True
        for entry in entries:
            if _is_dir(entry):
                if maildir and entry.name in _MAILDIR_SKIP:
                    continue
                subdirs.append(Path(entry.path))
            elif not maildir:
                yield entry.path, False
        stack.extend(reversed(subdirs))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _iter_dir(root: Path) -> Iterator[RawItem]:
    for file_path, in_maildir in _walk_dir(root):
        if file_path.is_dir():
            yield RawItem(str(file_path), error=f"could not read the folder {file_path}.")
            continue
        yield from _iter_file(file_path, explicit=in_maildir)


def _read_error(path: Path, exc: OSError) -> RawItem:
    reason = exc.strerror or type(exc).__name__
    return RawItem(str(path), error=f"could not read {path}: {reason}.")


def _looks_like_mail(head: bytes) -> bool:
    first = head.lstrip(b"\r\n")
    return bool(_HEADER_START_RE.match(first))


def _iter_file(path: Path, *, explicit: bool) -> Iterator[RawItem]:
    """Messages in one file. ``explicit``: the user named it (or it sits in a Maildir)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF)
            if _is_mbox_start(head):
                fh.seek(0)
                yield from _iter_mbox(fh, str(path))
                return
            if not explicit and not _looks_like_mail(head):
                # not mail (an index file, a README, an Outlook .msg): named in the summary
                why = "a binary file" if b"\x00" in head else "no mail header at the start"
                yield RawItem(str(path), skipped=why)
                return
            data = head + fh.read()
    except OSError as exc:
        yield _read_error(path, exc)
        return
    yield RawItem(str(path), data=data)


def _unquote_from(lines: list[bytes]) -> bytes:
    data = b"".join(lines)
    if b">From " in data:
        data = _MBOXRD_FROM_RE.sub(rb"\1", data)
    return data


def _finish(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " separator belongs to the mbox format.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return _unquote_from(lines)


def _iter_mbox(fh: Iterable[bytes], name: str) -> Iterator[RawItem]:
    index = 0
    current: list[bytes] | None = None
    previous_blank = True
    try:
        for line in fh:
            if _is_mbox_start(line) and (previous_blank or _ENVELOPE_RE.match(line)):
                if current is not None:
                    index += 1
                    yield RawItem(f"{name}#{index}", data=_finish(current))
                current = []
                previous_blank = False
                continue  # the envelope line is not part of the message
            previous_blank = line in (b"\n", b"\r\n")
            if current is not None:
                current.append(line)
    except OSError as exc:
        index += 1
        yield RawItem(f"{name}#{index}", error=f"could not read {name}: {exc.strerror or exc}.")
        return
    if current is not None:
        index += 1
        yield RawItem(f"{name}#{index}", data=_finish(current))


def _count_file(path: Path, *, explicit: bool) -> int:
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF)
            if _is_mbox_start(head):
                return 1 + _count_separators(head, fh)
            if not explicit and not _looks_like_mail(head):
                return 0
            return 1
    except OSError:
        return 1


_SEPARATOR_RE = re.compile(rb"\n\r?\nFrom ")


def _count_separators(head: bytes, fh: BinaryIO) -> int:
    """Count blank-line + ``From `` separators, reading the rest of ``fh`` in big chunks."""
    count = 0
    chunk = head
    skip = 0  # matches ending inside the carried-over overlap were counted already
    while True:
        count += sum(1 for m in _SEPARATOR_RE.finditer(chunk) if m.end() > skip)
        nxt = fh.read(1 << 20)
        if not nxt:
            return count
        overlap = chunk[-7:]
        chunk = overlap + nxt
        skip = len(overlap)
