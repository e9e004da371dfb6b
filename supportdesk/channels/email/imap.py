"""IMAP source: fetch new mail by UID without touching it, and wait for more with IDLE.

Long because: one connection class (connect, fetch, IDLE, interrupt) and
the error wording for each way a server or a socket fails, kept beside the calls that meet them.

Nothing on the server changes: folders are selected read-only and bodies fetched with
``BODY.PEEK[]``, so no message gets ``\\Seen``. Progress is a :class:`FolderCursor`
(folder, UIDVALIDITY, last UID) that the caller stores in the same transaction as the messages
of the batch it came with::

    with ImapSource(settings) as source:
        for folder in settings.folders:
            for batch, cursor in source.fetch_new(folder, saved_cursor(folder)):
                store(batch, cursor)            # one transaction: messages + cursor
        source.idle_wait("INBOX", timeout=300)  # True when something arrived

Every failure (server down, timeout, login refused, TLS trouble, missing folder) is a
:class:`~supportdesk.channels.base.ChannelError` with one sentence that never contains the
password. After one, the connection is dropped; the next call reconnects.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import LoginError

from supportdesk.channels.base import ChannelError

__all__ = [
    "FolderCursor",
    "ImapSettings",
    "ImapSource",
    "Security",
    "check_transport",
    "is_loopback_host",
]

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
SECURITY_CHOICES: tuple[str, ...] = ("ssl", "starttls", "none")

MAX_IDLE_SECONDS = 9 * 60  # servers may drop an IDLE after 30 min; RFC 2177 says re-IDLE < 29
IDLE_POLL_SECONDS = 0.5  # how often a waiting IDLE looks at interrupt()
DEFAULT_BATCH = 200


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); no DNS lookups."""
    name = host.strip().rstrip(".").lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def where(host: str, port: int) -> str:
    """``host:port`` as people write it (``[::1]:143`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connection_sentence(
    protocol: str,
    host: str,
    place: str,
    timeout: float,
    exc: BaseException,
    doing: str,
    tls_ports: str,
) -> str | None:
    """One sentence for a failure to reach or secure a mail server (None: not such a failure).

    ``tls_ports`` is the usual-ports hint, e.g. ``'"ssl" is usually port 993, "starttls" port 143'``.
    """
    if isinstance(exc, socket.gaierror):
        return f"{protocol} server name {host!r} could not be resolved"
    if isinstance(exc, ConnectionRefusedError):
        return f"{protocol} server {place} refused the connection (is it running on that port?)"
    if isinstance(exc, TimeoutError):
        return f"{protocol} server {place} did not answer within {timeout:g} s while {doing}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate of {protocol} server {place} could not be verified "
            f"({exc.verify_message or exc.reason})"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS with {protocol} server {place} failed ({exc.reason or exc}); check the port and "
            f"the security setting ({tls_ports})"
        )
    return None


def check_transport(protocol: str, host: str, port: int, security: str) -> None:
    """Raise ChannelError unless host, port and security make a usable, safe combination.

    ``security="none"`` sends the password in clear text, so it is refused for anything but a
    loopback host.
    """
    if not isinstance(host, str) or not host.strip():
        raise ChannelError(f"{protocol} host is not set.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ChannelError(f"{protocol} port must be a number from 1 to 65535, not {port!r}.")
    if security not in SECURITY_CHOICES:
        raise ChannelError(
            f"{protocol} security must be one of ssl, starttls or none, not {security!r}."
        )
    if security == "none" and not is_loopback_host(host):
        raise ChannelError(
            f'{protocol} security "none" would send the password unencrypted, so it is only '
            f"allowed for a loopback host (127.0.0.1, ::1, localhost), not {host}; "
            f'use "ssl" or "starttls".'
        )


@dataclass
class ImapSettings:
    """How to reach one mailbox. ``ssl_context`` (optional) replaces the default verification,
    e.g. to trust a company CA; it is never needed for public servers."""

    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    folders: list[str] = field(default_factory=lambda: ["INBOX"])
    timeout: float = 30  # waiting for each answer (data)
    connect_timeout: float | None = None  # opening the connection; None = ``timeout``
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        """Raise ChannelError with one sentence if these settings cannot work."""
        check_transport("IMAP", self.host, self.port, self.security)
        if not self.username:
            raise ChannelError(f"IMAP username for {where(self.host, self.port)} is not set.")
        if not self.folders or not all(isinstance(f, str) and f for f in self.folders):
            raise ChannelError("IMAP folders must be a non-empty list of folder names.")
        if not self.timeout or self.timeout <= 0:
            raise ChannelError(
                f"IMAP timeout must be a positive number of seconds, not {self.timeout!r}."
            )


@dataclass(frozen=True)
class FolderCursor:
    """How far a folder has been read: every UID <= ``last_uid`` under ``uidvalidity``."""

    folder: str
    uidvalidity: int
    last_uid: int


class ImapSource:
    """One IMAP connection (a context manager) that reads folders without changing them."""

    def __init__(self, settings: ImapSettings) -> None:
        settings.validate()
        self.settings = settings
        self._client: IMAPClient | None = None
        self._interrupt = threading.Event()
        #: set while an IDLE command is waiting on the server (diagnostics and tests)
        self.idling = threading.Event()

    # -- connection -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return where(self.settings.host, self.settings.port)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def __enter__(self) -> ImapSource:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, secure the connection as configured and log in (no-op if connected)."""
        if self._client is not None:
            return
        s = self.settings
        context = s.ssl_context or ssl.create_default_context()
        implicit_tls = s.security == "ssl"
        try:
            client = IMAPClient(
                s.host,
                port=s.port,
                use_uid=True,
                ssl=implicit_tls,
                ssl_context=context if implicit_tls else None,
                timeout=SocketTimeout(connect=s.connect_timeout or s.timeout, read=s.timeout),
            )
        except Exception as exc:
            raise self._error(exc, "connecting") from exc
        try:
            if s.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise ChannelError(
                        f'IMAP server {self.where} does not offer STARTTLS; use security "ssl" '
                        f"(usually port 993) or ask the provider."
                    )
                client.starttls(context)
            self._login(client)
        except ChannelError:
            _shutdown(client)
            raise
        except Exception as exc:
            _shutdown(client)
            raise self._error(exc, "logging in") from exc
        self._client = client
        log.debug("IMAP connected to %s as %s", self.where, s.username)

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        try:
            if (s.username + s.password).isascii():
                client.login(s.username, s.password)
            else:  # LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8
                client.plain_login(s.username, s.password)
        except imaplib.IMAP4.abort:  # the connection broke: not a refusal
            raise
        except (LoginError, imaplib.IMAP4.error) as exc:
            reason = _text(exc)
            raise ChannelError(
                self._scrub(
                    f"IMAP login refused for {s.username} at {self.where}"
                    + (f": {reason}" if reason else ".")
                )
            ) from None

    def close(self) -> None:
        """Log out and close; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            _shutdown(client)

    def interrupt(self) -> None:
        """Make a running (or the next) :meth:`idle_wait` return False soon. Thread-safe."""
        self._interrupt.set()

    # -- reading ----------------------------------------------------------------------------

    def check(self) -> dict[str, int]:
        """Connect, log in and examine every configured folder; returns message counts."""
        counts: dict[str, int] = {}
        for folder in self.settings.folders:
            info = self._select(folder)
            counts[folder] = int(info.get(b"EXISTS", 0))
        return counts

    def fetch_new(
        self, folder: str, cursor: FolderCursor | None, batch: int = DEFAULT_BATCH
    ) -> Iterator[tuple[list[tuple[int, bytes]], FolderCursor]]:
        """Yield ``(messages, cursor)`` batches of messages newer than ``cursor``, by UID.

        ``messages`` is a non-empty list of ``(uid, raw bytes)`` in UID order; ``cursor`` is the
        position to store together with exactly that batch. When the folder's UIDVALIDITY is
        not the cursor's (the server renumbered the folder), everything is read again from the
        start: the caller dedupes by Message-ID. Flags are left alone (read-only, BODY.PEEK).
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        info = self._select(folder)
        uidvalidity = _int(info.get(b"UIDVALIDITY"))
        if uidvalidity is None:
            raise ChannelError(
                f"IMAP server {self.where} reported no UIDVALIDITY for folder {folder!r}."
            )
        last = 0
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            last = max(cursor.last_uid, 0)
        elif cursor is not None:
            log.info(
                "IMAP %s %r: UIDVALIDITY changed from %s to %s; reading the folder again",
                self.where,
                folder,
                cursor.uidvalidity,
                uidvalidity,
            )
        exists = _int(info.get(b"EXISTS"))
        uidnext = _int(info.get(b"UIDNEXT"))
        if exists == 0 or (uidnext is not None and uidnext <= last + 1):
            return
        client = self._need_client()
        try:
            found = client.search(["UID", f"{last + 1}:*"])
        except Exception as exc:
            raise self._error(exc, f"searching folder {folder!r}") from exc
        # "UID N:*" always matches the highest UID, even when it is below N.
        uids = sorted({int(uid) for uid in found if int(uid) > last})
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            try:
                response = client.fetch(chunk, ["BODY.PEEK[]"])
            except Exception as exc:
                raise self._error(exc, f"fetching from folder {folder!r}") from exc
            messages: list[tuple[int, bytes]] = []
            for uid in chunk:
                data = response.get(uid)
                raw = data.get(b"BODY[]") if data else None
                if isinstance(raw, bytes | bytearray):
                    messages.append((uid, bytes(raw)))
                elif data is None:
                    log.info(
                        "IMAP %s %r: UID %s vanished before it was fetched", self.where, folder, uid
                    )
                else:
                    log.warning("IMAP %s %r: UID %s came without a body", self.where, folder, uid)
            if messages:
                yield messages, FolderCursor(folder, uidvalidity, chunk[-1])

    def idle_wait(self, folder: str, timeout: float, since: FolderCursor | None = None) -> bool:
        """Wait up to ``timeout`` seconds for new mail in ``folder``; True if some arrived.

        Uses IDLE (re-issued at most every 9 minutes), or NOOP polling when the server has no
        IDLE. With ``since``, returns True at once if the folder already holds mail newer than
        that cursor (closing the gap between the last fetch and the start of IDLE). Returns
        False early after :meth:`interrupt`. The UID fetch stays the source of truth: a True
        here only means "fetch now".
        """
        if self._interrupt.is_set():
            self._interrupt.clear()
            return False
        info = self._select(folder)
        if since is not None:
            uidvalidity = _int(info.get(b"UIDVALIDITY"))
            uidnext = _int(info.get(b"UIDNEXT"))
            if uidvalidity != since.uidvalidity or (
                uidnext is not None and uidnext > since.last_uid + 1
            ):
                return True
        client = self._need_client()
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            if not client.has_capability("IDLE"):
                return self._poll_wait(client, deadline)
            while time.monotonic() < deadline:
                if self._idle_once(client, min(deadline, time.monotonic() + MAX_IDLE_SECONDS)):
                    return True
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    return False
            return False
        except ChannelError:
            self._drop()
            raise
        except Exception as exc:
            raise self._error(exc, f"waiting for mail in folder {folder!r}") from exc

    # -- internals --------------------------------------------------------------------------

    def _idle_once(self, client: IMAPClient, until: float) -> bool:
        """One IDLE command until ``until`` (monotonic), new mail, or interrupt()."""
        client.idle()
        self.idling.set()
        try:
            arrived = _buffered_new_mail(client)
            suspicious = 0
            while not arrived and not self._interrupt.is_set():
                left = until - time.monotonic()
                if left <= 0:
                    break
                wait = min(IDLE_POLL_SECONDS, left)
                started = time.monotonic()
                responses = client.idle_check(timeout=wait)
                arrived = _has_new_mail(responses)
                # imapclient swallows EOF inside idle_check and returns []: a closed socket
                # shows up as an early, empty return that repeats.
                if not responses and time.monotonic() - started < wait / 2:
                    suspicious += 1
                    if _at_eof(client.socket(), suspicious):
                        raise imaplib.IMAP4.abort("socket error: EOF")
                else:
                    suspicious = 0
        finally:
            self.idling.clear()
        _text_part, responses = client.idle_done()
        return arrived or _has_new_mail(responses)

    def _poll_wait(self, client: IMAPClient, deadline: float) -> bool:
        while True:
            _text_part, responses = client.noop()
            if _has_new_mail(responses):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._interrupt.wait(min(5.0, left)):
                self._interrupt.clear()
                return False

    def _need_client(self) -> IMAPClient:
        if self._client is None:
            self.connect()
        assert self._client is not None
        return self._client

    def _select(self, folder: str) -> dict[bytes, Any]:
        client = self._need_client()
        try:
            info: dict[bytes, Any] = client.select_folder(folder, readonly=True)
        except imaplib.IMAP4.abort as exc:
            raise self._error(exc, f"opening folder {folder!r}") from exc
        except imaplib.IMAP4.error as exc:
            reason = _text(exc)
            raise ChannelError(
                f"IMAP folder {folder!r} cannot be opened on {self.where}"
                + (f": {reason}" if reason else ".")
            ) from exc
        except Exception as exc:
            raise self._error(exc, f"opening folder {folder!r}") from exc
        return info

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _shutdown(client)

    def _scrub(self, text: str) -> str:
        password = self.settings.password
        if password and password in text:
            text = text.replace(password, "********")
        return text

    def _error(self, exc: BaseException, doing: str) -> ChannelError:
        """Turn a low-level failure into one sentence; drops the (now useless) connection."""
        self._drop()
        s, place = self.settings, self.where
        if isinstance(exc, ChannelError):
            return exc
        known = connection_sentence(
            "IMAP",
            s.host,
            place,
            s.timeout,
            exc,
            doing,
            '"ssl" is usually port 993, "starttls" port 143',
        )
        if known is not None:
            sentence = known
        elif isinstance(exc, imaplib.IMAP4.abort | ConnectionError | EOFError):
            sentence = f"IMAP server {place} closed the connection while {doing}"
        elif isinstance(exc, OSError):
            sentence = f"IMAP server {place} cannot be reached: {exc.strerror or exc}"
        elif isinstance(exc, imaplib.IMAP4.error):
            sentence = f"IMAP server {place} refused {doing}: {_text(exc)}"
        else:
            sentence = f"IMAP error with {place} while {doing}: {type(exc).__name__}: {exc}"
        return ChannelError(self._scrub(sentence.rstrip(".") + "."))


def _has_new_mail(responses: list[Any]) -> bool:
    for response in responses:
        if isinstance(response, tuple) and len(response) >= 2:
            if response[1] in (b"EXISTS", b"RECENT"):
                return True
            if response[0] == b"BYE":
                raise imaplib.IMAP4.abort("server said BYE")
    return False


def _buffered_new_mail(client: IMAPClient) -> bool:
    """Whether the start of IDLE left news of new mail in imaplib's read buffer.

    As IDLE begins Dovecot syncs the mailbox and writes "+ idling" and any "* N EXISTS" in
    one go. imaplib reads the continuation through a buffered file, so the EXISTS line can sit
    in that buffer, where :meth:`IMAPClient.idle_check`'s poll of the socket never sees it:
    mail appended between the cursor check and IDLE waited for the next packet (the server's
    keep-alive, minutes away) or the end of the wait. Peeking never blocks here: the socket is
    non-blocking for the call, and a non-empty buffer is returned without reading the socket.
    """
    file = getattr(getattr(client, "_imap", None), "file", None)
    peek = getattr(file, "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        pending: bytes = peek() or b""
    except (OSError, ValueError):
        return False
    finally:
        sock.settimeout(timeout)
    return any(
        line.split()[2:3] in ([b"EXISTS"], [b"RECENT"])
        for line in pending.split(b"\r\n")
        if line.startswith(b"* ")
    )


def _at_eof(sock: socket.socket, streak: int) -> bool:
    """Whether a socket that woke IDLE up without a response has been closed by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    if isinstance(sock, ssl.SSLSocket):  # no peeking through TLS: trust a repeated pattern
        return streak >= 3
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _int(value: Any) -> int | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(exc: BaseException) -> str:
    """The server's words from an imaplib/imapclient error, as text."""
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        arg = arg.decode("utf-8", "replace")
    text = str(arg).strip()
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split())


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - closing a socket that may already be closed
        pass
