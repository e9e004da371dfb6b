"""build_email and make_message_id: standards-clean bytes for any SMTP server (no network)."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.channels.base import OutboundMessage, SendError
from supportdesk.channels.email.smtp import build_email, envelope_address, make_message_id


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def out(**overrides: object) -> OutboundMessage:
    values: dict[str, object] = {"kind": "email", "to_address": "c@example.com", "text": "hi"}
    values.update(overrides)
    return OutboundMessage(**values)  # type: ignore[arg-type]


def test_message_id_is_generated_and_set_back() -> None:
    msg = out()
    raw = build_email(msg, "support@Acme.Test")
    assert re.fullmatch(r"[0-9a-f]+\.[0-9a-f]{16}@acme\.test", msg.message_id)
    assert parse(raw)["Message-ID"] == f"<{msg.message_id}>"

    hinted = out()
    build_email(hinted, "support@acme.test", domain_hint="mail.acme.test")
    assert hinted.message_id.endswith("@mail.acme.test")


def test_given_message_id_is_kept_without_brackets() -> None:
    msg = out(message_id="<fixed.1@acme.test>")
    raw = build_email(msg, "support@acme.test")
    assert msg.message_id == "fixed.1@acme.test"
    assert parse(raw)["Message-ID"] == "<fixed.1@acme.test>"
    with pytest.raises(SendError, match="Message-ID") as caught:
        build_email(out(message_id="two words@x"), "support@acme.test")
    assert caught.value.permanent is True


def test_make_message_id() -> None:
    ids = {make_message_id("support@acme.test") for _ in range(2000)}
    assert len(ids) == 2000
    assert make_message_id("acme.test").endswith("@acme.test")
    assert make_message_id("support@почта.рф").endswith("@xn--80a1acny.xn--p1ai")
    assert make_message_id("").endswith("@supportdesk.invalid")
    assert make_message_id("x@bad domain!").endswith("@supportdesk.invalid")
    assert all("<" not in i and ">" not in i for i in ids)


def test_long_references_fold_between_ids_and_never_get_encoded() -> None:
    long_id = "CAHx" + "y" * 120 + "=Q@mail.gmail.example.com"
    refs = [f"ref{i}.{'z' * 30}@lists.example.org" for i in range(30)] + [long_id]
    msg = out(in_reply_to=f"<{long_id}>", references=refs)
    raw = build_email(msg, "support@acme.test")

    assert b"=?" not in raw.split(b"\r\n\r\n")[0]  # no RFC 2047 in any header
    parsed = parse(raw)
    assert parsed["In-Reply-To"] == f"<{long_id}>"
    sent = [r.strip("<>") for r in parsed["References"].split()]
    assert len(sent) == 20  # the root and the 19 most recent
    assert sent[0] == refs[0]
    assert sent[-1] == long_id
    assert sent[1:] == refs[-19:]


def test_parent_is_added_to_references() -> None:
    parsed = parse(build_email(out(in_reply_to="p@x", references=["r@x"]), "support@acme.test"))
    assert parsed["References"].split() == ["<r@x>", "<p@x>"]
    parsed = parse(build_email(out(in_reply_to="p@x"), "support@acme.test"))
    assert parsed["References"] == "<p@x>"
    parsed = parse(build_email(out(), "support@acme.test"))
    assert "References" not in parsed and "In-Reply-To" not in parsed


def test_header_injection_is_flattened() -> None:
    msg = out(subject="Hello\r\nBcc: victim@example.com", to_name="Eve\nCc: x@example.com")
    parsed = parse(build_email(msg, "support@acme.test"))
    assert parsed["Subject"] == "Hello Bcc: victim@example.com"
    assert "Bcc" not in parsed and "Cc" not in parsed
    assert parsed["To"].addresses[0].addr_spec == "c@example.com"


def test_wire_format_is_ascii_crlf_and_short_lines() -> None:
    msg = out(
        subject="Очень " * 40,
        text=("Длинная строка без переносов " * 300) + "\nи ещё\n",
        html="<p>" + "ж" * 5000 + "</p>",
    )
    raw = build_email(msg, "support@acme.test", "Поддержка")
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78 + 2
    parsed = parse(raw)
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == msg.text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("a@example.com", "a@example.com"),
        (" <a@example.com> ", "a@example.com"),
        ("a@пример.рф", "a@xn--e1afmkfd.xn--p1ai"),
    ],
)
def test_envelope_address(address: str, expected: str) -> None:
    assert envelope_address(address) == expected


@pytest.mark.parametrize("address", ["", "a", "a@", "@b.c", "a b@c.d", "a@b@c", "a@-x-.com"])
def test_envelope_address_rejects(address: str) -> None:
    with pytest.raises(SendError) as caught:
        envelope_address(address)
    assert caught.value.permanent is True


header_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=120,
)
body_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\n\t"),
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(subject=header_text, name=header_text, text=body_text)
def test_any_unicode_round_trips(subject: str, name: str, text: str) -> None:
    msg = out(subject=subject, to_name=name, text=text)
    raw = build_email(msg, "support@acme.test", name)
    assert raw.isascii()
    parsed = parse(raw)
    printable = "".join(ch if ch.isprintable() else " " for ch in subject)
    assert parsed["Subject"] == " ".join(printable.split())
    plain = parsed.get_body(("plain",))
    assert plain is not None
    expected = text if text.endswith("\n") else text + "\n"
    assert plain.get_content().replace("\r\n", "\n") == expected
