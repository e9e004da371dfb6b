"""SmtpSender against a real aiosmtpd server: delivery, headers, refusals, outages, AUTH, TLS."""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Iterator

import pytest

from supportdesk.channels.base import Attachment, ChannelError, OutboundMessage, SendError
from supportdesk.channels.email.smtp import SmtpSender, SmtpSettings
from tests.peers.smtp_sink import SmtpSink

pytestmark = pytest.mark.peers


def reply(**overrides: object) -> OutboundMessage:
    values: dict[str, object] = {
        "kind": "email",
        "to_address": "ivan@example.ru",
        "to_name": "Иван Петров",
        "subject": "Re: Не печатает принтер [#42]",
        "text": "Здравствуйте, Иван!\n\nПринтер починили, попробуйте ещё раз.\n",
        "in_reply_to": "CAF=abc123@mail.example.ru",
        "references": ["root-1@mail.example.ru", "CAF=abc123@mail.example.ru"],
    }
    values.update(overrides)
    return OutboundMessage(**values)  # type: ignore[arg-type]


def test_delivered_with_threading_headers_and_cyrillic(smtp_sink: SmtpSink) -> None:
    msg = reply()
    result = SmtpSender(smtp_sink.smtp_settings()).send(
        msg, "support@acme.test", "Служба поддержки Acme"
    )

    [mail] = smtp_sink.wait_for(1)
    assert mail.mail_from == "support@acme.test"
    assert mail.rcpt_tos == ["ivan@example.ru"]
    assert mail.raw.isascii()  # no SMTPUTF8 or 8BITMIME needed
    parsed = mail.message
    assert msg.message_id and msg.message_id.endswith("@acme.test")
    assert result.external_ids == [msg.message_id]
    assert parsed["Message-ID"] == f"<{msg.message_id}>"
    assert parsed["In-Reply-To"] == "<CAF=abc123@mail.example.ru>"
    assert parsed["References"].split() == [
        "<root-1@mail.example.ru>",
        "<CAF=abc123@mail.example.ru>",
    ]
    assert parsed["Subject"] == "Re: Не печатает принтер [#42]"
    assert parsed["From"].addresses[0].display_name == "Служба поддержки Acme"
    assert parsed["To"].addresses[0].display_name == "Иван Петров"
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == msg.text
    assert "Auto-Submitted" not in parsed
    assert "Precedence" not in parsed


def test_auto_reply_headers(smtp_sink: SmtpSink) -> None:
    SmtpSender(smtp_sink.smtp_settings()).send(
        reply(auto=True, subject="Мы получили ваше обращение [#43]"), "support@acme.test"
    )
    [mail] = smtp_sink.wait_for(1)
    parsed = mail.message
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Precedence"] == "auto_reply"


def test_attachments_html_and_inline_image_round_trip(smtp_sink: SmtpSink) -> None:
    binary = hashlib.sha256(b"seed").digest() * 400  # 12.8 kB of non-text bytes
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    msg = reply(
        html='<p>Счёт во вложении. <img src="cid:logo@acme.test"></p>',
        attachments=[
            Attachment("Счёт №5 от 1 ноября.pdf", "application/pdf", binary, size=len(binary)),
            Attachment("notes.txt", "text/plain", "строка 1\r\nline 2\r\n".encode()),
            Attachment("logo.png", "image/png", png, content_id="logo@acme.test", inline=True),
        ],
    )
    SmtpSender(smtp_sink.smtp_settings()).send(msg, "support@acme.test")

    parsed = smtp_sink.wait_for(1)[0].message
    html = parsed.get_body(("html",))
    assert html is not None and "cid:logo@acme.test" in html.get_content()
    files = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert set(files) == {"Счёт №5 от 1 ноября.pdf", "notes.txt"}
    assert files["Счёт №5 от 1 ноября.pdf"].get_content() == binary
    assert files["Счёт №5 от 1 ноября.pdf"].get_content_type() == "application/pdf"
    assert files["notes.txt"].get_payload(decode=True) == "строка 1\r\nline 2\r\n".encode()
    [logo] = [p for p in parsed.walk() if p.get("Content-ID") == "<logo@acme.test>"]
    assert logo.get_payload(decode=True) == png
    assert logo.get_content_disposition() == "inline"
    assert re.search(rb"filename\*(0\*)?=utf-8''", smtp_sink.received[0].raw)  # RFC 2231


@pytest.mark.parametrize(("code", "permanent"), [(451, False), (450, False), (550, True)])
def test_recipient_refusals(smtp_sink: SmtpSink, code: int, permanent: bool) -> None:
    smtp_sink.fail_with(code)
    with pytest.raises(SendError) as caught:
        SmtpSender(smtp_sink.smtp_settings()).send(reply(), "support@acme.test")
    assert caught.value.permanent is permanent
    assert str(caught.value).startswith(
        f"SMTP server 127.0.0.1:{smtp_sink.port} refused the recipient ivan@example.ru: {code} "
    )
    assert smtp_sink.received == []

    smtp_sink.ok()
    SmtpSender(smtp_sink.smtp_settings()).send(reply(), "support@acme.test")
    assert len(smtp_sink.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("code", "stage", "permanent"),
    [(552, "data", True), (451, "data", False), (421, "mail", False), (553, "mail", True)],
)
def test_refusals_at_other_stages(
    smtp_sink: SmtpSink, code: int, stage: str, permanent: bool
) -> None:
    smtp_sink.fail_with(code, at=stage)  # type: ignore[arg-type]
    with pytest.raises(SendError) as caught:
        SmtpSender(smtp_sink.smtp_settings()).send(reply(), "support@acme.test")
    assert caught.value.permanent is permanent
    assert f": {code} " in str(caught.value)


def test_sink_down_is_temporary_and_recovers(smtp_sink: SmtpSink) -> None:
    sender = SmtpSender(smtp_sink.smtp_settings())
    smtp_sink.stop()
    with pytest.raises(SendError) as caught:
        sender.send(reply(), "support@acme.test")
    assert caught.value.permanent is False
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{smtp_sink.port} refused the connection "
        f"(is it running on that port?)."
    )
    smtp_sink.start()
    sender.send(reply(), "support@acme.test")
    assert len(smtp_sink.wait_for(1)) == 1


def test_kept_connection_is_reused_and_reopened(smtp_sink: SmtpSink) -> None:
    with SmtpSender(smtp_sink.smtp_settings()) as sender:
        sender.send(reply(subject="one"), "support@acme.test")
        sender.send(reply(subject="two"), "support@acme.test")
        smtp_sink.stop()  # drops the kept connection
        smtp_sink.start()
        sender.send(reply(subject="three"), "support@acme.test")
    subjects = [m.message["Subject"] for m in smtp_sink.wait_for(3)]
    assert subjects == ["one", "two", "three"]


def test_auth_refused_then_accepted(smtp_sink: SmtpSink) -> None:
    smtp_sink.require_auth("support@acme.test", "Секретный-пароль")
    anonymous = SmtpSender(smtp_sink.smtp_settings())
    with pytest.raises(SendError, match=r"530") as caught:
        anonymous.send(reply(), "support@acme.test")
    assert caught.value.permanent is False  # a channel problem, not this message's

    wrong = SmtpSender(
        smtp_sink.smtp_settings(username="support@acme.test", password="not-the-Password-42")
    )
    with pytest.raises(SendError) as caught:
        wrong.send(reply(), "support@acme.test")
    text = str(caught.value)
    assert text.startswith(
        f"SMTP login refused for support@acme.test at 127.0.0.1:{smtp_sink.port}"
    )
    assert "not-the-Password-42" not in text
    assert caught.value.permanent is False

    right = SmtpSender(
        smtp_sink.smtp_settings(username="support@acme.test", password="Секретный-пароль")
    )
    right.send(reply(), "support@acme.test")
    [mail] = smtp_sink.wait_for(1)
    assert mail.auth_login == "support@acme.test"


def test_starttls(smtp_sink: SmtpSink) -> None:
    trusted = smtp_sink.smtp_settings(security="starttls", ssl_context=smtp_sink.ssl_context())
    SmtpSender(trusted).send(reply(), "support@acme.test")
    assert len(smtp_sink.wait_for(1)) == 1

    untrusted = smtp_sink.smtp_settings(security="starttls")
    with pytest.raises(SendError, match=r"TLS certificate of SMTP server .* verified") as caught:
        SmtpSender(untrusted).send(reply(), "support@acme.test")
    assert caught.value.permanent is False


def test_implicit_tls_against_a_plain_server(smtp_sink: SmtpSink) -> None:
    with pytest.raises(SendError, match=r"^TLS with SMTP server|closed the connection"):
        SmtpSender(smtp_sink.smtp_settings(security="ssl")).send(reply(), "support@acme.test")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        yield listener.getsockname()[1]


def test_silent_server_times_out(silent_server: int) -> None:
    settings = SmtpSettings("127.0.0.1", silent_server, "none", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SendError, match=r"did not answer within 0.3 s") as caught:
        SmtpSender(settings).send(reply(), "support@acme.test")
    assert caught.value.permanent is False
    assert time.monotonic() - started < 3


def test_bad_input_fails_permanently_without_connecting(smtp_sink: SmtpSink) -> None:
    sender = SmtpSender(smtp_sink.smtp_settings())
    cases = [
        (reply(to_address="not-an-address"), "not a valid e-mail address"),
        (reply(to_address="иван@example.ru"), "non-ASCII local part"),
        (reply(attachments=[Attachment("big.iso", data=None, note="too large")]), "no data"),
        (reply(kind="telegram"), "cannot deliver a telegram message"),
    ]
    for msg, reason in cases:
        with pytest.raises(SendError, match=reason) as caught:
            sender.send(msg, "support@acme.test")
        assert caught.value.permanent is True
    assert smtp_sink.received == []


def test_idn_recipient_is_sent_as_punycode(smtp_sink: SmtpSink) -> None:
    SmtpSender(smtp_sink.smtp_settings()).send(
        reply(to_address="info@пример.рф"), "support@acme.test"
    )
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ["info@xn--e1afmkfd.xn--p1ai"]
    assert mail.message["To"].addresses[0].domain == "xn--e1afmkfd.xn--p1ai"


def test_plain_smtp_is_refused_for_remote_hosts() -> None:
    with pytest.raises(ChannelError, match=r'"none" would send the password unencrypted'):
        SmtpSender(SmtpSettings("smtp.example.com", 25, "none"))
    SmtpSender(SmtpSettings("::1", 25, "none"))  # loopback is fine; nothing connects yet
