"""Signed visitor tokens, CSRF tokens, rate limits, Origin checks and upload sniffing.

Nothing here trusts the browser: a visitor id is only accepted with our HMAC over it, a form is
only accepted with a CSRF token bound to the visitor and a recent time, and an upload is only
accepted when its first bytes say it is an image or a PDF (the declared type and name are data).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

VISITOR_COOKIE = "sd_visitor"
CSRF_MAX_AGE = 4 * 3600  # a form left open longer than this asks the visitor to send it again


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_secret(home: Path, configured: str | None) -> bytes:
    """The signing key: the configured secret, else ``web-secret`` in the home (made once, 0600)."""
    if configured:
        return configured.encode("utf-8")
    path = home / "web-secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Signer:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:18])

    def new_visitor(self) -> tuple[str, str]:
        """(visitor id, signed token)."""
        vid = "v" + _b64(secrets.token_bytes(12))
        return vid, self.visitor_token(vid)

    def visitor_token(self, vid: str) -> str:
        return f"{vid}.{self._mac('visitor', vid)}"

    def visitor_of(self, token: str | None) -> str | None:
        """The visitor id a token signs, or None for anything forged, truncated or foreign."""
        if not token or not isinstance(token, str) or len(token) > 100 or token.count(".") != 1:
            return None
        vid, mac = token.split(".")
        if not vid.startswith("v") or not vid[1:].replace("-", "").replace("_", "").isalnum():
            return None
        return vid if hmac.compare_digest(mac, self._mac("visitor", vid)) else None

    def csrf_token(self, vid: str, now: float | None = None) -> str:
        stamp = str(int(now if now is not None else time.time()))
        return f"{stamp}.{self._mac('csrf', f'{vid}:{stamp}')}"

    def csrf_ok(self, vid: str | None, token: str | None, now: float | None = None) -> bool:
        if not vid or not token or token.count(".") != 1 or len(token) > 80:
            return False
        stamp, mac = token.split(".")
        if not stamp.isdigit():
            return False
        age = (now if now is not None else time.time()) - int(stamp)
        if age < 0 or age > CSRF_MAX_AGE:
            return False
        return hmac.compare_digest(mac, self._mac("csrf", f"{vid}:{stamp}"))


def origin_of(url: str) -> str:
    """'https://Acme.test:443/path' -> 'https://acme.test' (scheme://host[:port], default ports dropped)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class RateLimiter:
    """A token bucket per key: ``rate`` events per ``per`` seconds, bursts up to ``rate``.

    Keys are kept in an LRU of bounded size, so a flood of new addresses cannot grow memory."""

    def __init__(self, rate: int, per: float = 60.0, max_keys: int = 20000) -> None:
        self.rate = max(rate, 1)
        self.per = per
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self.rate / self.per)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


# first bytes of the file types a visitor may upload -> the content type we record
_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
]


def sniff_upload(data: bytes) -> str | None:
    """The content type of an allowed upload (PNG, JPEG, GIF, WebP, PDF), or None."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def safe_filename(name: str, ctype: str) -> str:
    """A display name for an upload: no path, no control characters, the extension its type has."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')[:100].strip(". ")
    ext = {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "image/webp": ".webp",
        "application/pdf": ".pdf",
    }[ctype]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return (stem or "upload") + ext
