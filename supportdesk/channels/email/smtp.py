"""SMTP sender: turn an OutboundMessage into a standards-clean e-mail and deliver it.

Long because: building the message (encodings, folding, threading headers)
and the delivery with its reply-code wording are one protocol and are read together.

The message is built for any server: no SMTPUTF8 (non-ASCII headers are RFC 2047 encoded,
attachment names RFC 2231, internationalized domains IDNA), bodies in quoted-printable or base64,
and threading headers (Message-ID, In-Reply-To, References) that are never mangled by folding.

Failures are :class:`~supportdesk.channels.base.SendError`: ``permanent=True`` for a 5xx
rejection of this message or recipient (retrying cannot help), ``permanent=False`` for 4xx,
server down, timeouts, TLS and login trouble (fix the channel, then the outbox retries).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import re
import secrets
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from types import TracebackType
from typing import Any

from supportdesk.channels.base import (
    Attachment,
    ChannelError,
    OutboundMessage,
    SendAborted,
    SendError,
    SendResult,
)
from supportdesk.channels.email.imap import Security, check_transport, connection_sentence, where

__all__ = [
    "SmtpSender",
    "SmtpSettings",
    "build_email",
    "envelope_address",
    "make_message_id",
]

log = logging.getLogger(__name__)

# Reply codes that are about the channel (authentication, TLS), not about this message:
# fixing the configuration and retrying will help, so they are not permanent.
_CONFIG_CODES = frozenset({530, 534, 535, 538})
_ID_HEADERS = frozenset({"references", "in-reply-to"})
_MAX_REFERENCES = 20
_MIME_TOKEN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class _MailPolicy(EmailPolicy):
    """SMTP policy (CRLF, 7-bit: everything encoded) that folds References/In-Reply-To only
    between message ids: the stock folder turns a long id into an RFC 2047 encoded word, which
    breaks threading in every client."""

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _ID_HEADERS:
            return _fold_ids(name, str(value), self.linesep)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _ID_HEADERS:
            return _fold_ids(name, str(value), self.linesep).encode("ascii")
        return super().fold_binary(name, value)


MAIL_POLICY = _MailPolicy(linesep="\r\n", cte_type="7bit", utf8=False)


def _fold_ids(name: str, value: str, linesep: str) -> str:
    lines: list[str] = []
    line = f"{name}:"
    for token in value.split():
        if len(line) + 1 + len(token) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {token}"
    lines.append(line)
    return linesep.join(lines) + linesep


@dataclass
class SmtpSettings:
    """How to reach the outgoing server. No username means no AUTH."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30  # waiting for each reply (data)
    connect_timeout: float | None = None  # opening the connection; None = ``timeout``
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        """Raise ChannelError with one sentence if these settings cannot work."""
        check_transport("SMTP", self.host, self.port, self.security)
        if self.password and not self.username:
            raise ChannelError("SMTP password is set but the username is not.")
        if not self.timeout or self.timeout <= 0:
            raise ChannelError(
                f"SMTP timeout must be a positive number of seconds, not {self.timeout!r}."
            )
        if self.connect_timeout is not None and self.connect_timeout <= 0:
            raise ChannelError(
                "SMTP connect_timeout must be a positive number of seconds, "
                f"not {self.connect_timeout!r}."
            )


def make_message_id(address: str) -> str:
    """A new globally unique Message-ID (without angle brackets) in the domain of ``address``
    (an e-mail address or a bare domain)."""
    domain = address.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        domain = ""
    if not _DOMAIN.match(domain):
        domain = "supportdesk.invalid"
    return f"{int(time.time() * 1000):x}.{secrets.token_hex(8)}@{domain}"


def _clean_id(value: str) -> str | None:
    """A message id without brackets, or None if it cannot go into a header as is."""
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if (
        not text
        or len(text) > 900
        or not text.isascii()
        or any(ch.isspace() or ch in "<>" or ord(ch) < 33 for ch in text)
    ):
        return None
    return text


def _one_line(text: str) -> str:
    """Header text on one line: CR, LF, tabs and other controls become single spaces."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text or "")
    return " ".join(cleaned.split())


def envelope_address(address: str, role: str = "recipient") -> str:
    """``address`` as the SMTP envelope needs it (IDNA domain); SendError(permanent) if it
    is not a usable address."""
    text = (address or "").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in local
        or any(ch.isspace() or ch in '<>,;"\\' or not ch.isprintable() for ch in text)
    ):
        raise SendError(
            f"The {role} address {address!r} is not a valid e-mail address.", permanent=True
        )
    if not local.isascii():
        raise SendError(
            f"The {role} address {address!r} has a non-ASCII local part, which needs SMTPUTF8; "
            f"it cannot be sent through a plain SMTP server.",
            permanent=True,
        )
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    if not _DOMAIN.match(ascii_domain):
        raise SendError(f"The {role} address {address!r} has an invalid domain.", permanent=True)
    return f"{local}@{ascii_domain}"


def _header_address(name: str, address: str, role: str) -> Address:
    addr_spec = envelope_address(address, role)
    try:
        return Address(display_name=_one_line(name), addr_spec=addr_spec)
    except Exception as exc:  # HeaderParseError, ValueError, IndexError from the parser
        raise SendError(
            f"The {role} address {address!r} is not a valid e-mail address ({exc}).",
            permanent=True,
        ) from exc


def _mime_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = (content_type or "").split(";")[0].strip().lower().partition("/")
    if not _MIME_TOKEN.match(maintype or "-") or not _MIME_TOKEN.match(subtype or "-"):
        return "application", "octet-stream"
    if maintype in {"multipart", "message"}:  # would need 7bit/8bit bodies; send as a file
        return "application", "octet-stream"
    return maintype, subtype


def _attachment_data(attachment: Attachment) -> bytes:
    if attachment.data is None:
        raise SendError(
            f"Attachment {attachment.filename!r} has no data to send"
            + (f" ({attachment.note})." if attachment.note else "."),
            permanent=True,
        )
    return bytes(attachment.data)


def build_email(
    msg: OutboundMessage,
    from_address: str,
    from_name: str = "",
    domain_hint: str | None = None,
) -> bytes:
    """The RFC 5322 bytes (CRLF) for ``msg``; sets ``msg.message_id`` if it was empty.

    Raises SendError(permanent=True) when the message cannot be built (bad address, attachment
    without data, malformed Message-ID).
    """
    if msg.message_id:
        message_id = _clean_id(msg.message_id)
        if message_id is None:
            raise SendError(f"Message-ID {msg.message_id!r} is not valid.", permanent=True)
    else:
        message_id = make_message_id(domain_hint or from_address)
    msg.message_id = message_id

    em = EmailMessage(policy=MAIL_POLICY)
    em["Message-ID"] = f"<{message_id}>"
    em["Date"] = email.utils.formatdate(localtime=True)
    em["From"] = _header_address(from_name, from_address, "sender")
    em["To"] = _header_address(msg.to_name, msg.to_address, "recipient")
    cc = [a for a in dict.fromkeys(msg.cc) if a]
    if cc:
        em["Cc"] = [_header_address("", a, "Cc") for a in cc]
    em["Subject"] = _one_line(msg.subject)

    parent = _clean_id(msg.in_reply_to) if msg.in_reply_to else None
    references: list[str] = []
    for ref in msg.references:
        clean = _clean_id(ref)
        if clean and clean not in references:
            references.append(clean)
    if parent and parent not in references:
        references.append(parent)
    if len(references) > _MAX_REFERENCES:  # keep the thread root and the most recent ones
        references = references[:1] + references[-(_MAX_REFERENCES - 1) :]
    if parent:
        em["In-Reply-To"] = f"<{parent}>"
    if references:
        em["References"] = " ".join(f"<{ref}>" for ref in references)
    if msg.auto:
        em["Auto-Submitted"] = "auto-replied"
        em["X-Auto-Response-Suppress"] = "All"
        em["Precedence"] = "auto_reply"

    text = msg.text or ""
    em.set_content(text if text.endswith("\n") else text + "\n")
    related = [a for a in msg.attachments if a.inline and a.content_id and msg.html]
    if msg.html:
        em.add_alternative(msg.html, subtype="html")
        html_part = em.get_body(("html",))
        for attachment in related:
            maintype, subtype = _mime_type(attachment.content_type)
            assert html_part is not None and attachment.content_id is not None
            html_part.add_related(
                _attachment_data(attachment),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{attachment.content_id.strip().strip('<>')}>",
                filename=_one_line(attachment.filename) or None,
                disposition="inline",
            )
    for attachment in msg.attachments:
        if attachment in related:
            continue
        maintype, subtype = _mime_type(attachment.content_type)
        extra: dict[str, Any] = {}
        if attachment.content_id:
            extra["cid"] = f"<{attachment.content_id.strip().strip('<>')}>"
        em.add_attachment(
            _attachment_data(attachment),
            maintype=maintype,
            subtype=subtype,
            filename=_one_line(attachment.filename) or "attachment",
            disposition="inline" if attachment.inline else "attachment",
            **extra,
        )
    return em.as_bytes(policy=MAIL_POLICY)


class SmtpSender:
    """Delivers OutboundMessages. ``send`` opens one connection per call; inside ``with`` the
    connection is kept and reused (and reopened if the server dropped it)."""

    def __init__(self, settings: SmtpSettings, *, domain_hint: str | None = None) -> None:
        settings.validate()
        self.settings = settings
        self.domain_hint = domain_hint
        self._conn: smtplib.SMTP | None = None
        self._context: ssl.SSLContext | None = None
        self._reuse = False

    @property
    def where(self) -> str:
        return where(self.settings.host, self.settings.port)

    def __enter__(self) -> SmtpSender:
        self._reuse = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._reuse = False
        self.close()

    def close(self) -> None:
        """Say QUIT and close the kept connection, if any; never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except Exception:  # noqa: BLE001 - the server may be gone already
            conn.close()

    def check(self) -> None:
        """Connect, secure and log in, then quit: SendError if the channel cannot work."""
        conn = self._open()
        try:
            conn.quit()
        except Exception:  # noqa: BLE001
            conn.close()

    def send(self, msg: OutboundMessage, from_address: str, from_name: str = "") -> SendResult:
        """Deliver ``msg`` to ``msg.to_address``; returns its Message-ID as the external id."""
        if msg.kind != "email":
            raise SendError(f"The SMTP sender cannot deliver a {msg.kind} message.", permanent=True)
        sender = envelope_address(from_address, "sender")
        recipient = envelope_address(msg.to_address, "recipient")
        others = [envelope_address(a, "Cc") for a in msg.cc if a]
        others += [envelope_address(a, "Bcc") for a in msg.bcc if a]
        recipients = list(dict.fromkeys([recipient, *others]))
        raw = build_email(msg, from_address, from_name, self.domain_hint)
        conn = self._connection()
        try:
            self._transmit(conn, sender, recipients, raw, msg.fence)
        except SendError as exc:
            if isinstance(exc, SendAborted) or exc.maybe_delivered:
                self._discard(conn)  # the connection is in the middle of DATA or broken
            elif not self._reuse or not _alive(conn):
                self._discard(conn)
            raise
        if not self._reuse:
            self._discard(conn, polite=True)
        log.info("SMTP %s accepted <%s> for %s", self.where, msg.message_id, ", ".join(recipients))
        return SendResult(external_ids=[msg.message_id], detail=f"accepted by {self.where}")

    # -- internals --------------------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        if not self._reuse:
            return self._open()
        if self._conn is not None and not _alive(self._conn):
            self._discard(self._conn)
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _discard(self, conn: smtplib.SMTP, polite: bool = False) -> None:
        if conn is self._conn:
            self._conn = None
        try:
            if polite:
                conn.quit()
            else:
                conn.close()
        except Exception:  # noqa: BLE001
            conn.close()

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        # building a default TLS context costs ~50 ms: only when TLS is used, once per sender
        context = None
        if s.security in ("ssl", "starttls"):
            if self._context is None:
                self._context = s.ssl_context or ssl.create_default_context()
            context = self._context
        conn: smtplib.SMTP | None = None
        connect = s.connect_timeout or s.timeout
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=connect, context=context)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=connect)
            if conn.sock is not None:
                conn.sock.settimeout(s.timeout)  # the greeting and every reply: the data timeout
            conn.timeout = s.timeout
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise SendError(
                        f'SMTP server {self.where} does not offer STARTTLS; use security "ssl" '
                        f"(usually port 465) or ask the provider."
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                self._login(conn)
        except SendError as exc:
            if conn is not None:
                conn.close()
            exc.connection = True
            raise
        except Exception as exc:
            if conn is not None:
                conn.close()
            raise self._error(exc, "connecting") from exc
        return conn

    def _login(self, conn: smtplib.SMTP) -> None:
        s = self.settings
        assert s.username is not None
        password = s.password or ""
        if not conn.has_extn("auth"):
            raise SendError(
                f"SMTP server {self.where} does not offer AUTH, but a username is configured."
            )
        try:
            if (s.username + password).isascii():
                conn.login(s.username, password)
            else:  # smtplib encodes credentials as ASCII; AUTH PLAIN is UTF-8 (RFC 4616)
                token = base64.b64encode(f"\0{s.username}\0{password}".encode()).decode("ascii")
                code, reply = conn.docmd("AUTH", f"PLAIN {token}")
                if code != 235:
                    raise smtplib.SMTPAuthenticationError(code, reply)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                self._scrub(
                    f"SMTP login refused for {s.username} at {self.where}: "
                    f"{exc.smtp_code} {_reply_text(exc.smtp_error)}".rstrip(". ")
                    + "."
                )
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise SendError(
                f"SMTP server {self.where} offers no login method that supports "
                f"(PLAIN, LOGIN or CRAM-MD5)."
            ) from None

    def _transmit(
        self,
        conn: smtplib.SMTP,
        sender: str,
        recipients: list[str],
        raw: bytes,
        fence: Any = None,
    ) -> None:
        """MAIL, RCPT, DATA and the message, then ``fence()`` right before the final ``.``: a
        server never delivers a message whose DATA did not end, so an aborted send (the runner
        lost its lease) delivers nothing. A lost answer after the final ``.`` is the one window
        in which the server may have the message: that SendError says ``maybe_delivered``."""
        ended = False
        try:
            opts = [f"size={len(raw)}"] if conn.does_esmtp and conn.has_extn("size") else []
            code, reply = conn.mail(sender, opts)
            if code != 250:
                _rset(conn)
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused: dict[str, tuple[int, bytes]] = {}
            for recipient in recipients:
                code, reply = conn.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            if len(refused) == len(recipients):  # nobody to deliver to
                _rset(conn)
                raise smtplib.SMTPRecipientsRefused(refused)
            for rcpt, (code, reply) in refused.items():  # the others get it: no retry
                log.warning("SMTP %s refused %s: %s %s", self.where, rcpt, code, _reply_text(reply))
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                _rset(conn)
                raise smtplib.SMTPDataError(code, reply)
            body = re.sub(rb"(?m)^\.", b"..", raw)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            conn.send(body)
            if fence is not None:
                fence()  # SendAborted: the DATA never ends, the server discards it
            ended = True
            conn.send(b".\r\n")
            code, reply = conn.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except SendError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            recipient, (code, reply) = next(iter(exc.recipients.items()), (recipients[0], (0, b"")))
            raise self._rejected(code, reply, f"refused the recipient {recipient}") from None
        except smtplib.SMTPSenderRefused as exc:
            raise self._rejected(
                exc.smtp_code, exc.smtp_error, f"refused the sender {sender}"
            ) from None
        except smtplib.SMTPDataError as exc:
            raise self._rejected(exc.smtp_code, exc.smtp_error, "rejected the message") from None
        except smtplib.SMTPResponseException as exc:
            raise self._rejected(exc.smtp_code, exc.smtp_error, "refused the message") from None
        except Exception as exc:
            error = self._error(
                exc, "waiting for the answer to the message" if ended else "sending"
            )
            error.maybe_delivered = ended
            raise error from exc

    def _rejected(self, code: int, reply: bytes | str, what: str) -> SendError:
        permanent = 500 <= code < 600 and code not in _CONFIG_CODES
        text = _reply_text(reply)
        sentence = f"SMTP server {self.where} {what}: {code} {text}".rstrip(". ") + "."
        return SendError(self._scrub(sentence), permanent=permanent)

    def _scrub(self, text: str) -> str:
        password = self.settings.password
        if password and password in text:
            text = text.replace(password, "********")
        return text

    def _error(self, exc: BaseException, doing: str) -> SendError:
        s, place = self.settings, self.where
        if isinstance(exc, SendError):
            return exc
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, TimeoutError
        ):  # smtplib reports a read timeout as "Connection unexpectedly closed: timed out"
            exc = exc.__context__
        known = connection_sentence(
            "SMTP",
            s.host,
            place,
            s.timeout,
            exc,
            doing,
            '"ssl" is usually port 465, "starttls" port 587',
        )
        if known is not None:
            sentence = known
        elif isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | EOFError):
            sentence = f"SMTP server {place} closed the connection while {doing}"
        elif isinstance(exc, smtplib.SMTPResponseException):
            sentence = f"SMTP server {place} answered {exc.smtp_code} {_reply_text(exc.smtp_error)} while {doing}"
        elif isinstance(exc, OSError):
            sentence = f"SMTP server {place} cannot be reached: {exc.strerror or exc}"
        else:
            sentence = f"SMTP error with {place} while {doing}: {type(exc).__name__}: {exc}"
        return SendError(self._scrub(sentence.rstrip(". ") + "."), permanent=False, connection=True)


def _rset(conn: smtplib.SMTP) -> None:
    try:
        conn.rset()
    except Exception:  # noqa: BLE001 - the refusal is what matters
        pass


def _alive(conn: smtplib.SMTP) -> bool:
    try:
        return conn.noop()[0] == 250
    except Exception:  # noqa: BLE001 - any failure means "reconnect"
        return False


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())
