"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

Usage in a test::

    def test_x(smtp_sink):
        sender = SmtpSender(smtp_sink.smtp_settings())
        sender.send(msg, "support@acme.test")
        [mail] = smtp_sink.wait_for(1)            # waits on a condition, no sleeps
        mail.message["Subject"]                   # parsed with email.policy.default

    smtp_sink.fail_with(451)                      # RCPT answered 451 until ok()
    smtp_sink.fail_with(552, at="data")           # or at MAIL / DATA
    smtp_sink.stop(); smtp_sink.start()           # down and back up on the same port
    smtp_sink.require_auth("user", "pass")        # MAIL needs AUTH with these credentials
    smtp_sink.slow(0.3, at="rcpt")                # answer RCPT (or MAIL/DATA) 0.3 s late
    smtp_sink.blackhole()                         # accept TCP, never say a word (until ok())
    smtp_sink.on("data", fn)                      # fn() in the sink's thread at each DATA

AUTH (PLAIN, LOGIN) is always offered on the plain loopback connection; without
``require_auth`` any credentials are accepted. With ``openssl`` installed the sink also offers
STARTTLS with a throw-away certificate (``smtp_sink.ssl_context()`` trusts it).
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import pytest

from supportdesk.channels.email.smtp import SmtpSettings
from tests.peers.util import (
    free_port,
    peer_unavailable,
    self_signed_certificate,
    wait_for_port,
    wait_for_port_closed,
)

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

    HAVE_AIOSMTPD = True
except ImportError:  # pragma: no cover - the dev dependencies are missing
    HAVE_AIOSMTPD = False

__all__ = ["ReceivedMail", "SmtpSink", "smtp_sink"]

Stage = Literal["mail", "rcpt", "data"]

_TEXTS = {
    421: "4.3.2 Service not available, closing channel",
    450: "4.2.1 Mailbox busy, try again later",
    451: "4.7.1 Greylisted, please try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 No such user here",
    552: "5.3.4 Message too big",
    553: "5.1.3 Bad recipient address syntax",
    554: "5.7.1 Message rejected as spam",
}


@dataclass
class ReceivedMail:
    """One accepted message: the envelope and the exact bytes of DATA."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    auth_login: str | None = None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """An aiosmtpd server on a fixed loopback port that records or refuses mail on command."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    received: list[ReceivedMail] = field(default_factory=list)
    _failure: tuple[int, str, Stage] | None = field(default=None, repr=False)
    _credentials: tuple[str, str] | None = field(default=None, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _controller: Any = field(default=None, repr=False)
    _certdir: Path | None = field(default=None, repr=False)
    _cert: Path | None = field(default=None, repr=False)
    _tls: ssl.SSLContext | None = field(default=None, repr=False)
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)
    _delay: tuple[float, Stage] | None = field(default=None, repr=False)
    _hole: Any = field(default=None, repr=False)
    _hooks: dict[str, Callable[[], None]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._certdir = Path(tempfile.mkdtemp(prefix="supportdesk-smtp-"))
        pair = self_signed_certificate(self._certdir)
        if pair is not None:
            self._cert, key = pair
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(str(self._cert), str(key))

    # -- control ----------------------------------------------------------------------------

    def smtp_settings(self, **overrides: Any) -> SmtpSettings:
        """Connector settings for this sink (plain SMTP on loopback unless overridden)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": None,
            "password": None,
            "timeout": 5.0,
        }
        values.update(overrides)
        return SmtpSettings(**values)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the sink's STARTTLS certificate."""
        if self._cert is None:
            peer_unavailable("the SMTP sink has no TLS certificate (openssl is not installed)")
        return ssl.create_default_context(cafile=str(self._cert))

    def fail_with(self, code: int, at: Stage = "rcpt", text: str | None = None) -> None:
        """Answer ``code`` at MAIL, RCPT (default) or DATA until :meth:`ok`."""
        if not 400 <= code < 600:
            raise ValueError("fail_with() takes a 4xx or 5xx reply code")
        self._failure = (code, text or _TEXTS.get(code, "Refused by the test sink"), at)

    def ok(self) -> None:
        """Accept mail again (no refusals, no delay, no blackhole)."""
        self._failure = None
        self._delay = None
        if self._hole is not None:
            hole, self._hole = self._hole, None
            hole.close()
            self.start()

    def slow(self, seconds: float, at: Stage = "rcpt") -> None:
        """Answer MAIL, RCPT (default) or DATA ``seconds`` late, until :meth:`ok`."""
        self._delay = (seconds, at)

    def blackhole(self) -> None:
        """Replace the server by a listener on the same port that accepts connections and
        never answers (no greeting, nothing), until :meth:`ok`: a hung mail server."""
        self.stop()
        self._hole = _Blackhole(self.host, self.port)

    def on(self, stage: Stage, fn: Callable[[], None] | None) -> None:
        """Call ``fn()`` (in the sink's thread, before answering) every time a client reaches
        MAIL, RCPT or DATA (after the final ``.``); None removes it."""
        if fn is None:
            self._hooks.pop(stage, None)
        else:
            self._hooks[stage] = fn

    def require_auth(self, username: str, password: str) -> None:
        """Refuse MAIL (530) until the client logged in with exactly these credentials."""
        self._credentials = (username, password)

    def allow_anonymous(self) -> None:
        self._credentials = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen on :attr:`port` (the same port after a stop); no-op if running."""
        if self._controller is not None:
            return
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS": intended, this is loopback-only.
            warnings.simplefilter("ignore")
            controller = Controller(
                _Handler(self),
                hostname=self.host,
                port=self.port,
                ready_timeout=10.0,
                authenticator=self._authenticate,
                auth_require_tls=False,
                tls_context=self._tls,
                require_starttls=False,
            )
            controller.start()
        self._controller = controller
        wait_for_port(self.host, self.port, 5.0)

    def stop(self) -> None:
        """Close the port: clients now get "connection refused"."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            wait_for_port_closed(self.host, self.port, 5.0)

    def cleanup(self) -> None:
        if self._hole is not None:
            self._hole.close()
            self._hole = None
        self.stop()
        if self._certdir is not None:
            shutil.rmtree(self._certdir, ignore_errors=True)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived (on a condition, no sleeping);
        returns them all. AssertionError after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"SMTP sink got {len(self.received)} message(s), expected {count} "
                    f"within {timeout:g} s"
                )
            return list(self.received)

    # -- aiosmtpd callbacks (run in the controller's thread) ---------------------------------

    def _record(self, mail: ReceivedMail) -> None:
        with self._cond:
            self.received.append(mail)
            self._cond.notify_all()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        good = self._credentials is None or self._credentials == (login, password)
        self.auth_attempts.append((login, good))
        return AuthResult(success=good, handled=False, auth_data=login if good else None)

    async def _maybe_wait(self, stage: Stage) -> None:
        hook = self._hooks.get(stage)
        if hook is not None:
            hook()
        delay = self._delay
        if delay is not None and delay[1] == stage:
            import asyncio

            await asyncio.sleep(delay[0])

    def _failure_at(self, stage: Stage) -> str | None:
        failure = self._failure
        if failure is not None and failure[2] == stage:
            return f"{failure[0]} {failure[1]}"
        return None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.sink._credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        await self.sink._maybe_wait("mail")
        refusal = self.sink._failure_at("mail")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        await self.sink._maybe_wait("rcpt")
        refusal = self.sink._failure_at("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self.sink._maybe_wait("data")
        refusal = self.sink._failure_at("data")
        if refusal:
            return refusal
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.sink._record(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                raw=bytes(raw),
                auth_login=login,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class _Blackhole:
    """A TCP listener that accepts every connection and never sends a byte."""

    def __init__(self, host: str, port: int) -> None:
        import socket

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self._conns: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                continue
            self._conns.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A running SMTP sink on a free loopback port, fresh for each test."""
    if not HAVE_AIOSMTPD:
        peer_unavailable("aiosmtpd is not installed (pip install -e '.[dev]')")
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.cleanup()
