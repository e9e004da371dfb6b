"""The raw ledger as readers see it: a message's bytes from a file of its own, else from a bulk-import
pack (files.py writes single files, packs.py writes packs)."""

from __future__ import annotations

from pathlib import Path

from supportdesk.store import packs
from supportdesk.store.files import raw_path


def read_raw(home: Path, digest: str) -> bytes:
    """The raw bytes stored under ``digest``: a file of its own, else a bulk-import pack."""
    path = raw_path(home, digest)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        data = packs.read(home, digest)
        if data is None:
            raise
        return data
