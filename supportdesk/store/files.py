"""Files under the home: the content-addressed raw ledger and attachments.

Writes go to a temporary file in the same folder, are fsynced and renamed into place, so a crash
or a full disk never leaves a half-written file under a final name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import unicodedata
from pathlib import Path

from supportdesk.core.locations import attachments_dir, dir_mode, file_mode, raw_dir


class StorageError(OSError):
    """A file could not be stored (disk full, permissions). One sentence."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_folder(home: Path | str, parts: tuple[str, ...] | list[str], dmode: int) -> int:
    """A descriptor of home/part/part..., each part opened (or made) relative to the one above
    with ``O_NOFOLLOW``: a symbolic link planted anywhere below the home is refused, never
    followed. The caller closes the descriptor."""
    try:
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:  # the home itself is the owner's choice: made private
        os.makedirs(home, 0o700, exist_ok=True)
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = ""
    try:
        for part in parts:
            where = f"{where}/{part}" if where else part
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, dmode, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.fchmod(nxt, dmode)  # past the umask
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise StorageError(
                        exc.errno,
                        f"{where} in the home is a symbolic link or not a folder; "
                        "refusing to follow it",
                    ) from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_new(dir_fd: int, name: str, data: bytes, mode: int, fsync: bool) -> None:
    """Write ``data`` to ``name`` in the folder ``dir_fd``: first to a new file with a random
    name (``O_EXCL|O_NOFOLLOW``), then renamed into place, so a crash never leaves half a file
    under its name and a planted link is replaced, never written through. The mode is set past
    the umask."""
    tmp = f".{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, _NEW_FILE, mode, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def _store_under(
    home: Path, parts: tuple[str, ...], name: str, data: bytes, mode: int, dmode: int, fsync: bool
) -> None:
    dfd = open_folder(home, parts, dmode)
    try:
        write_new(dfd, name, data, mode, fsync)
        if fsync:
            os.fsync(dfd)
    finally:
        os.close(dfd)


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
    base, mode, dmode, _made = _ledger(home)
    if os.path.exists(f"{base}/{digest[:2]}/{digest}"):
        return digest
    try:
        _store_under(home, ("raw", digest[:2]), digest, data, mode, dmode, fsync)
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot store raw message: {exc.strerror}") from None
    return digest


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
    key = safe_filename(str(message_key))
    name = f"{index:02d}-{safe}"
    try:
        _store_under(
            home, ("attachments", key), name, data, file_mode(home), dir_mode(home), fsync=True
        )
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot store {name}: {exc.strerror}") from None
    return f"attachments/{key}/{name}"


class SaveRefused(StorageError):
    """A copy was not written (it would be a dotfile or replace a file). One sentence."""


def save_copy(src: Path, dest: Path, *, pick_free_name: bool = False) -> Path:
    """Copy a stored attachment to ``dest``: never as a dotfile, never over an existing file
    (with ``pick_free_name``, "name (2).ext" and so on instead), never through a link; 0600.

    Returns where it was written."""
    if dest.name.startswith(".") or not dest.name:
        raise SaveRefused(errno.EINVAL, f"{dest.name or dest} would be a hidden file; not saved")
    stem, dot, ext = dest.name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = dest.name, "", ""
    candidates = [dest] + (
        [dest.with_name(f"{stem} ({n}){dot}{ext}") for n in range(2, 100)] if pick_free_name else []
    )
    with open(src, "rb") as fh:
        data = fh.read()
    for path in candidates:
        try:
            fd = os.open(path, _NEW_FILE, 0o600)
        except FileExistsError:
            continue
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path
    raise SaveRefused(errno.EEXIST, f"{dest} already exists; it was not replaced")


def attachment_path(home: Path, rel: str) -> Path:
    """The absolute path of a stored attachment; refuses anything outside attachments/."""
    path = (home / rel).resolve()
    base = attachments_dir(home).resolve()
    if base not in path.parents:
        raise ValueError("attachment path outside the home")
    return path
