"""E-mail addresses as the desk compares them. Imports nothing heavy: the command line's quick
path (``tickets show``) loads it."""

from __future__ import annotations

import re
from functools import lru_cache

_ws = re.compile(r"\s+")


@lru_cache(maxsize=65536)
def normalize_email(address: str) -> str:
    """Case-folded local part and domain, the domain in its IDNA (punycode) form."""
    address = _ws.sub("", address or "").strip("<>").strip()
    if "@" not in address:
        return address.casefold()
    local, _, domain = address.rpartition("@")
    domain = domain.rstrip(".").casefold()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        try:
            import encodings.idna  # noqa: F401

            domain = ".".join(
                part.encode("punycode").decode("ascii") if not part.isascii() else part
                for part in domain.split(".")
            )
        except UnicodeError:
            pass
    return f"{local.casefold()}@{domain}"
