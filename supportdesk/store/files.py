"""Files under the home: the content-addressed raw ledger and attachments.

Writes go to a temporary file in the same folder, are fsynced and renamed into place, so a crash
or a full disk never leaves a half-written file under a final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from pathlib import Path

from supportdesk.core.locations import attachments_dir, dir_mode, file_mode, raw_dir


class StorageError(OSError):
    """A file could not be stored (disk full, permissions). One sentence."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_then_rename(
    tmp: str | Path, path: str | Path, data: bytes, mode: int, fsync: bool
) -> None:
    """Write ``data`` to ``tmp``, then rename it to ``path``: never half a file under its name.

    The mode is set past the umask, so a team's shared home stays group-readable."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_then_rename(tmp, path, data, mode, fsync=True)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StorageError(exc.errno, f"cannot store {path.name}: {exc.strerror}") from None


_HEX64 = re.compile(r"[0-9a-f]{64}")
# per home: (raw folder, file mode, folder mode, the fan-out folders known to exist)
_LEDGERS: dict[str, tuple[str, int, int, set[str]]] = {}


def _ledger(home: Path) -> tuple[str, int, int, set[str]]:
    key = str(home)
    led = _LEDGERS.get(key)
    if led is None:
        led = (str(raw_dir(home)), file_mode(home), dir_mode(home), set())
        _LEDGERS[key] = led
    return led


def store_raw(home: Path, data: bytes, *, fsync: bool = True) -> str:
    """Keep the raw bytes under raw/ab/<sha256>; returns the hash. Idempotent.

    Written to a temporary name and renamed, so a crash never leaves a partial file under its
    final name. ``fsync=False`` is for bulk imports, which sync the whole batch once before
    committing it to the database.
    """
    digest = sha256_hex(data)
    base, mode, dmode, made = _ledger(home)
    folder = f"{base}/{digest[:2]}"
    path = f"{folder}/{digest}"
    if os.path.exists(path):
        return digest
    tmp = f"{folder}/.{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        if folder not in made:
            try:
                os.mkdir(folder, dmode)
                os.chmod(folder, dmode)  # past the umask: a team's home stays group-writable
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(folder, dmode, exist_ok=True)
            made.add(folder)
        _write_then_rename(tmp, path, data, mode, fsync)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StorageError(exc.errno, f"cannot store raw message: {exc.strerror}") from None
    if fsync:
        _fsync_dir(folder)
    return digest


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def raw_path(home: Path, digest: str) -> Path:
    """Where the raw bytes of ``digest`` are (raw/ab/<sha>; earlier homes used raw/ab/cd/<sha>)."""
    if not _HEX64.fullmatch(digest):
        raise ValueError("not a sha256 digest")
    path = raw_dir(home) / digest[:2] / digest
    if not path.exists():
        old = raw_dir(home) / digest[:2] / digest[2:4] / digest
        if old.exists():
            return old
    return path


_WINDOWS_DEVICES = {
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
    *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10)),
}  # fmt: skip


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A file name safe on any file system, keeping as much of the original as possible.

    No path parts, no NUL or control characters, no leading dots, no Windows device names,
    at most 120 characters (the extension kept).
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    name = name.strip().strip(".").strip()
    if not name:
        name = fallback
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES or name.upper() in _WINDOWS_DEVICES:
        stem = "_" + stem if dot else "_" + name
        name = f"{stem}.{ext}" if dot else stem
    if len(name) > 120:
        ext = ext[:16]
        keep = 120 - len(ext) - 1
        name = f"{name[:keep]}.{ext}" if ext else name[:120]
    return name


def store_attachment(
    home: Path, message_key: int | str, index: int, filename: str, data: bytes
) -> str:
    """Save an attachment; returns its path relative to the home."""
    safe = safe_filename(filename)
    rel = Path("attachments") / str(message_key) / f"{index:02d}-{safe}"
    _atomic_write(home / rel, data, file_mode(home))
    return str(rel)


def attachment_path(home: Path, rel: str) -> Path:
    """The absolute path of a stored attachment; refuses anything outside attachments/."""
    path = (home / rel).resolve()
    base = attachments_dir(home).resolve()
    if base not in path.parents:
        raise ValueError("attachment path outside the home")
    return path
