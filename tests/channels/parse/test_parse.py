"""parse_email: headers, charsets, bodies, attachments, auto-replies and bounces."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from supportdesk.channels.base import ParseError
from supportdesk.channels.email.parse import MAX_DEPTH, decode_bytes, parse_email

SUBJECT_RU = "Не работает принтер в бухгалтерии"
BODY_RU = "Здравствуйте!\nУ нас снова не печатает принтер, помогите пожалуйста.\nСпасибо, Иван"


def make(headers: Sequence[tuple[str, bytes | str]], body: bytes | str = b"Hello\r\n") -> bytes:
    """A raw message from header pairs (bytes values are kept as they are) and a body."""
    lines = []
    for name, value in headers:
        raw_value = value if isinstance(value, bytes) else value.encode("ascii")
        lines.append(name.encode("ascii") + b": " + raw_value)
    raw_body = body if isinstance(body, bytes) else body.encode("ascii")
    return b"\r\n".join(lines) + b"\r\n\r\n" + raw_body


BASIC = [
    ("From", "Ivan Petrov <Ivan.Petrov@Example.RU>"),
    ("To", "Support <support@acme.test>, other@acme.test"),
    ("Cc", '"Doe, Jane" <jane@example.com>'),
    ("Subject", "Printer"),
    ("Date", "Mon, 2 Jun 2025 10:00:00 +0300"),
    ("Message-ID", "<Abc.123@Example.RU>"),
]


def b_word(text: str, charset: str) -> str:
    codec = charset.replace("-", "_")
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?="


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------


def test_basic_fields() -> None:
    raw = make(BASIC, "Hello,\r\nit is broken.\r\n")
    msg = parse_email(raw)
    assert msg.kind == "email"
    assert msg.external_id == "Abc.123@Example.RU"
    assert msg.sender_address == "ivan.petrov@example.ru"
    assert msg.sender_name == "Ivan Petrov"
    assert msg.to_addresses == ["support@acme.test", "other@acme.test"]
    assert msg.cc_addresses == ["jane@example.com"]
    assert msg.subject == "Printer"
    assert msg.text == "Hello,\nit is broken."
    assert msg.quoted_text == ""
    assert msg.sent_at == datetime(2025, 6, 2, 10, 0, tzinfo=timezone(timedelta(hours=3)))
    assert msg.raw == raw
    assert msg.auto_reason == ""
    assert msg.attachments == []


@pytest.mark.parametrize("charset", ["utf-8", "koi8-r", "windows-1251"])
def test_cyrillic_encoded_word_subject_and_name(charset: str) -> None:
    raw = make(
        [
            ("From", f"{b_word('Иван Петров', charset)} <ivan@example.ru>"),
            ("Subject", b_word(SUBJECT_RU, charset)),
        ]
    )
    msg = parse_email(raw)
    assert msg.subject == SUBJECT_RU
    assert msg.sender_name == "Иван Петров"


def test_encoded_words_split_inside_a_multibyte_character() -> None:
    data = "Привет".encode()
    first, second = data[:3], data[3:]  # splits the second Cyrillic letter in half
    subject = (
        f"=?UTF-8?B?{base64.b64encode(first).decode()}?=\r\n"
        f" =?UTF-8?B?{base64.b64encode(second).decode()}?="
    )
    msg = parse_email(make([("From", "a@b.example"), ("Subject", subject)]))
    assert msg.subject == "Привет"


def test_q_encoded_koi8_subject_mixed_with_plain_text() -> None:
    q = "".join(f"={b:02X}" for b in "Счёт".encode("koi8_r"))
    msg = parse_email(make([("From", "a@b.example"), ("Subject", f"Re: =?KOI8-R?Q?{q}?= 42")]))
    assert msg.subject == "Re: Счёт 42"


@pytest.mark.parametrize("codec", ["cp1251", "koi8_r"])
def test_raw_8bit_cyrillic_headers_and_body(codec: str) -> None:
    raw = make(
        [
            ("From", "Иван Петров".encode(codec) + b" <ivan@example.ru>"),
            ("Subject", SUBJECT_RU.encode(codec)),
        ],
        BODY_RU.encode(codec),
    )
    msg = parse_email(raw)
    assert msg.sender_name == "Иван Петров"
    assert msg.subject == SUBJECT_RU
    assert msg.text == BODY_RU


def test_raw_8bit_headers_follow_the_declared_body_charset() -> None:
    raw = make(
        [
            ("From", "Ян".encode("koi8_r") + b" <yan@example.ru>"),
            ("Subject", "Да".encode("koi8_r")),
            ("Content-Type", "text/plain; charset=koi8-r"),
        ],
        "Да, всё так.".encode("koi8_r"),
    )
    msg = parse_email(raw)
    assert (msg.sender_name, msg.subject, msg.text) == ("Ян", "Да", "Да, всё так.")


def test_raw_utf8_headers() -> None:
    raw = make([("From", "Jöhn Døe <john@example.com>".encode()), ("Subject", "Grüße 😀".encode())])
    msg = parse_email(raw)
    assert msg.sender_name == "Jöhn Døe"
    assert msg.subject == "Grüße 😀"


def test_folded_headers_are_unfolded() -> None:
    msg = parse_email(make([("From", "a@b.example"), ("Subject", "a long\r\n\tsubject\r\n  line")]))
    assert msg.subject == "a long subject line"


def test_message_id_keeps_case_and_strips_brackets_and_space() -> None:
    msg = parse_email(make([("From", "a@b.example"), ("Message-ID", "  <XyZ@Host.Example>  ")]))
    assert msg.external_id == "XyZ@Host.Example"


@pytest.mark.parametrize("message_id", [None, "", "<>"])
def test_missing_message_id_gives_stable_sha256(message_id: str | None) -> None:
    headers = [("From", "a@b.example"), ("Subject", "no id")]
    if message_id is not None:
        headers.append(("Message-ID", message_id))
    raw = make(headers)
    first = parse_email(raw)
    assert first.external_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert parse_email(raw).external_id == first.external_id
    assert parse_email(raw + b"more\r\n").external_id != first.external_id


def test_in_reply_to_and_references_drop_junk() -> None:
    raw = make(
        [
            ("From", "a@b.example"),
            ("In-Reply-To", "<one@x.example> (comment)"),
            ("References", "<zero@x.example>\r\n <one@x.example> <> junk <two@x.example>"),
        ]
    )
    msg = parse_email(raw)
    assert msg.in_reply_to == ["one@x.example"]
    assert msg.references == ["zero@x.example", "one@x.example", "two@x.example"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 2 Jun 2025 10:00:00 +0000", datetime(2025, 6, 2, 10, 0, tzinfo=UTC)),
        ("Mon, 2 Jun 2025 10:00:00", datetime(2025, 6, 2, 10, 0, tzinfo=UTC)),
        ("Mon, 2 Jun 2025 10:00:00 -0000", datetime(2025, 6, 2, 10, 0, tzinfo=UTC)),
        ("yesterday at noon", None),
        ("Mon, 99 Foo 2025 99:99:99 +9999", None),
        ("", None),
    ],
)
def test_dates(value: str, expected: datetime | None) -> None:
    msg = parse_email(make([("From", "a@b.example"), ("Date", value)]))
    assert msg.sent_at == expected
    if msg.sent_at is not None:
        assert msg.sent_at.tzinfo is not None


def test_sender_falls_back_to_sender_header_then_fails() -> None:
    msg = parse_email(make([("From", "undisclosed"), ("Sender", "Bot <bot@x.example>")]))
    assert msg.sender_address == "bot@x.example"
    msg = parse_email(make([("Return-Path", "<bounce@x.example>"), ("Subject", "x")]))
    assert msg.sender_address == "bounce@x.example"
    with pytest.raises(ParseError, match="no sender address"):
        parse_email(make([("From", "nobody at all"), ("Subject", "x")]))


def test_from_with_two_bare_addresses_takes_the_first() -> None:
    msg = parse_email(make([("From", "tim@x.example concierge@x.example")]))
    assert msg.sender_address == "tim@x.example"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"just some text without headers"])
def test_empty_or_headerless_input_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_email(raw)


def test_non_bytes_input_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_email("From: a@b.example\r\n\r\nx")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Bodies and charsets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["windows-1252", "us-ascii", "iso-8859-1", None, "x-unknown"])
@pytest.mark.parametrize("codec", ["cp1251", "koi8_r"])
def test_mislabelled_cyrillic_body_is_repaired(label: str | None, codec: str) -> None:
    ctype = f"text/plain; charset={label}" if label else "text/plain"
    raw = make([("From", "a@b.example"), ("Content-Type", ctype)], BODY_RU.encode(codec))
    assert parse_email(raw).text == BODY_RU


@pytest.mark.parametrize("cte", ["8bit", "quoted-printable", "base64"])
def test_koi8_r_body_declared(cte: str) -> None:
    data = BODY_RU.encode("koi8_r")
    if cte == "base64":
        data = base64.encodebytes(data)
    elif cte == "quoted-printable":
        import quopri

        data = quopri.encodestring(data)
    raw = make(
        [
            ("From", "a@b.example"),
            ("Content-Type", 'text/plain; charset="koi8-r"'),
            ("Content-Transfer-Encoding", cte),
        ],
        data,
    )
    assert parse_email(raw).text == BODY_RU


def test_koi8_body_labelled_cp1251_is_swapped() -> None:
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "text/plain; charset=windows-1251")],
        BODY_RU.encode("koi8_r"),
    )
    assert parse_email(raw).text == BODY_RU


def test_western_latin1_body_stays_latin1() -> None:
    text = "Größe und Maße: café, crème brûlée, Formação."
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "text/plain; charset=iso-8859-1")],
        text.encode("latin-1"),
    )
    assert parse_email(raw).text == text


def test_utf8_body_labelled_us_ascii() -> None:
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "text/plain; charset=us-ascii")],
        "Café ☕ и чай".encode(),
    )
    assert parse_email(raw).text == "Café ☕ и чай"


@pytest.mark.parametrize(
    ("charset", "codec", "text"),
    [
        ("ISO-2022-JP", "iso2022_jp", "すみません。"),
        ("Shift_JIS", "cp932", "あいうえお①"),  # ① exists only in the cp932 superset
        ("ks_c_5601-1987", "cp949", "똠방각하"),  # 똠 is outside plain euc-kr
        ("gb2312", "gb18030", "你好，世界"),
        ("big5", "big5hkscs", "你好"),
    ],
)
def test_asian_charsets(charset: str, codec: str, text: str) -> None:
    raw = make(
        [("From", "a@b.example"), ("Content-Type", f"text/plain; charset={charset}")],
        text.encode(codec),
    )
    assert parse_email(raw).text == text


def test_line_endings_and_nul_normalized_escapes_kept() -> None:
    raw = make([("From", "a@b.example")], b"one\r\ntwo\rthree\x00!\n\x1b[31mred\x1b[0m")
    assert parse_email(raw).text == "one\ntwo\nthree!\n\x1b[31mred\x1b[0m"


def test_html_only_is_converted_without_script_or_style() -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>T</title></head><body>"
        "<script>alert('x')</script><p>Hello <b>world</b></p><ul><li>one</li><li>two</li></ul>"
        "<SCRIPT type='text/javascript'>var secret = 1;</SCRIPT></body></html>"
    )
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "text/html; charset=utf-8")], html.encode()
    )
    msg = parse_email(raw)
    assert "Hello world" in msg.text
    assert "one" in msg.text and "two" in msg.text
    for hidden in ("alert", "color", "secret", "<p>"):
        assert hidden not in msg.text
    assert msg.html == html


def test_alternative_prefers_plain_and_keeps_html() -> None:
    body = (
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain version\r\n"
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html version</p>\r\n--B--\r\n"
    )
    raw = make(
        [("From", "a@b.example"), ("Content-Type", 'multipart/alternative; boundary="B"')], body
    )
    msg = parse_email(raw)
    assert msg.text == "plain version"
    assert msg.html == "<p>html version</p>"


def test_alternative_with_empty_plain_uses_html() -> None:
    body = (
        b"--B\r\nContent-Type: text/plain\r\n\r\n\r\n"
        b"--B\r\nContent-Type: text/html\r\n\r\n<p>only here</p>\r\n--B--\r\n"
    )
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "multipart/alternative; boundary=B")], body
    )
    assert parse_email(raw).text == "only here"


def test_deep_nesting_5000_levels_no_recursion_error() -> None:
    depth = 5000
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    raw = (
        b"From: a@b.example\r\nSubject: deep\r\n"
        + opening
        + b"Content-Type: text/plain\r\n\r\nhello deep\r\n"
        + closing
    )
    started = time.perf_counter()
    msg = parse_email(raw)
    assert time.perf_counter() - started < 5
    assert msg.subject == "deep"
    assert f"deeper than {MAX_DEPTH} levels" in msg.extra["parse_notes"][0]


def test_shallow_nesting_is_read_completely() -> None:
    depth = 50
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    raw = b"From: a@b.example\r\n" + opening + b"Content-Type: text/plain\r\n\r\nfound" + closing
    msg = parse_email(raw)
    assert msg.text == "found"
    assert "parse_notes" not in msg.extra


def test_many_parts_are_capped() -> None:
    body = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\np%d\r\n" % i for i in range(3000))
    raw = make([("From", "a@b.example"), ("Content-Type", "multipart/mixed; boundary=B")], body)
    msg = parse_email(raw + b"--B--\r\n")
    assert msg.text.startswith("p0\n\np1")
    assert any("MIME parts" in note for note in msg.extra["parse_notes"])


def test_multipart_without_boundary_shows_its_body() -> None:
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "multipart/mixed; boundary=NOPE")],
        "just text",
    )
    assert parse_email(raw).text == "just text"


def test_missing_closing_boundary_keeps_last_part() -> None:
    body = b"--B\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--B\r\n\r\nsecond, never closed"
    raw = make([("From", "a@b.example"), ("Content-Type", "multipart/mixed; boundary=B")], body)
    assert parse_email(raw).text == "first\n\nsecond, never closed"


# ---------------------------------------------------------------------------------------------
# Attachments
# ---------------------------------------------------------------------------------------------


def _with_attachment(part_headers: bytes, data: bytes = b"PDFDATA") -> bytes:
    body = (
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
        b"--B\r\n"
        + part_headers
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data)
        + b"--B--\r\n"
    )
    return make([("From", "a@b.example"), ("Content-Type", "multipart/mixed; boundary=B")], body)


def test_rfc2231_cyrillic_filename() -> None:
    raw = _with_attachment(
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82%20%E2%84%96%201.pdf"
    )
    msg = parse_email(raw)
    assert msg.text == "see attached"
    [att] = msg.attachments
    assert att.filename == "Счёт № 1.pdf"
    assert att.content_type == "application/pdf"
    assert att.data == b"PDFDATA" and att.size == 7
    assert att.inline is False


def test_rfc2231_continuations_in_koi8() -> None:
    quoted = "".join(f"%{b:02X}" for b in "Договор".encode("koi8_r"))
    raw = _with_attachment(
        b"Content-Type: application/msword\r\nContent-Disposition: attachment;\r\n"
        b" filename*0*=koi8-r''" + quoted[:12].encode() + b";\r\n"
        b" filename*1*=" + quoted[12:].encode() + b";\r\n filename*2=.doc"
    )
    assert parse_email(raw).attachments[0].filename == "Договор.doc"


def test_encoded_word_filename_and_raw_utf8_name() -> None:
    raw = _with_attachment(
        b'Content-Type: image/png; name="' + b_word("фото.png", "utf-8").encode() + b'"'
    )
    assert parse_email(raw).attachments[0].filename == "фото.png"
    raw = _with_attachment(
        b'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="'
        + "отчёт.csv".encode()
        + b'"'
    )
    assert parse_email(raw).attachments[0].filename == "отчёт.csv"


@pytest.mark.parametrize("name", ["../../etc/passwd", "CON", "..\\..\\boot.ini", "a/b/c.txt"])
def test_path_like_filenames_are_kept_as_data(name: str) -> None:
    raw = _with_attachment(
        b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="'
        + name.encode()
        + b'"'
    )
    assert parse_email(raw).attachments[0].filename == name


def test_nul_is_stripped_from_filenames() -> None:
    raw = _with_attachment(
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''evil%00.txt"
    )
    assert parse_email(raw).attachments[0].filename == "evil.txt"


def test_inline_image_in_related_with_content_id() -> None:
    body = (
        b"--R\r\nContent-Type: text/html\r\n\r\n<p>logo: <img src='cid:logo1'></p>\r\n"
        b"--R\r\nContent-Type: image/png\r\nContent-ID: <logo1>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"\x89PNG..")
        + b"--R--\r\n"
    )
    raw = make([("From", "a@b.example"), ("Content-Type", "multipart/related; boundary=R")], body)
    msg = parse_email(raw)
    [img] = msg.attachments
    assert img.inline is True
    assert img.content_id == "logo1"
    assert img.content_type == "image/png"
    assert img.filename.endswith(".png")
    assert img.data == b"\x89PNG.."
    assert msg.text.startswith("logo:")


def test_nested_message_is_named_after_its_subject() -> None:
    inner = make([("From", "old@x.example"), ("Subject", b_word("Старое письмо", "utf-8"))], "old")
    body = (
        b"--B\r\nContent-Type: text/plain\r\n\r\nforwarding\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--B--\r\n"
    )
    raw = make([("From", "a@b.example"), ("Content-Type", "multipart/mixed; boundary=B")], body)
    msg = parse_email(raw)
    [att] = msg.attachments
    assert att.filename == "Старое письмо.eml"
    assert att.content_type == "message/rfc822"
    assert att.data == inner
    assert msg.text == "forwarding"


def test_uuencoded_attachment() -> None:
    import binascii

    payload = b"hello uuencode world"
    uu = b"begin 644 hello.txt\r\n" + binascii.b2a_uu(payload) + b"`\r\nend\r\n"
    raw = _with_attachment(b"Content-Type: text/plain; name=hello.txt")
    raw = raw.replace(
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: x-uuencode"
    )
    raw = raw.replace(base64.encodebytes(b"PDFDATA"), uu)
    assert parse_email(raw).attachments[0].data == payload


# ---------------------------------------------------------------------------------------------
# Quoted history
# ---------------------------------------------------------------------------------------------


def test_english_reply_history_is_split() -> None:
    body = (
        "Thanks, that fixed it!\r\n\r\nOn Mon, Jun 2, 2025 at 10:00 AM Support "
        "<support@acme.test> wrote:\r\n> Please restart the router.\r\n"
    )
    msg = parse_email(make(BASIC, body.encode()))
    assert msg.text == "Thanks, that fixed it!"
    assert msg.quoted_text.startswith("On Mon, Jun 2, 2025")
    assert msg.quoted_text.endswith("> Please restart the router.")


def test_russian_reply_history_is_split() -> None:
    body = (
        "Спасибо, всё заработало.\n\n02.06.2025 10:00, Поддержка пишет:\n> Перезагрузите роутер.\n"
    )
    raw = make(
        [("From", "a@b.example"), ("Content-Type", "text/plain; charset=utf-8")], body.encode()
    )
    msg = parse_email(raw)
    assert msg.text == "Спасибо, всё заработало."
    assert msg.quoted_text == "02.06.2025 10:00, Поддержка пишет:\n> Перезагрузите роутер."


# ---------------------------------------------------------------------------------------------
# Auto-replies, lists and bounces
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Auto-Submitted", "auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted", "auto-generated; owner-email=x@y", "Auto-Submitted: auto-generated"),
        ("Precedence", "bulk", "Precedence: bulk"),
        ("Precedence", "Junk", "Precedence: junk"),
        ("Precedence", "auto_reply", "Precedence: auto_reply"),
        ("X-Autoreply", "yes", "X-Autoreply"),
        ("X-Autorespond", "Out of office", "X-Autorespond"),
        ("List-Id", "<users.lists.example>", "mailing list"),
        ("List-Unsubscribe", "<mailto:leave@lists.example>", "mailing list"),
        ("Return-Path", "<>", "Return-Path: <>"),
    ],
)
def test_auto_detection(header: str, value: str, reason: str) -> None:
    msg = parse_email(make([*BASIC, (header, value)]))
    assert msg.auto_reason.startswith(reason)
    assert msg.bounce_of == []


def test_person_mail_is_not_auto() -> None:
    msg = parse_email(make([*BASIC, ("Auto-Submitted", "no"), ("Precedence", "normal")]))
    assert msg.auto_reason == ""


def test_plain_mailer_daemon_bounce_uses_in_reply_to() -> None:
    raw = make(
        [
            ("From", "MAILER-DAEMON@mx.example"),
            ("In-Reply-To", "<our-reply-1@acme.test>"),
            ("Subject", "failure notice"),
        ],
        b"Hi. This is the qmail-send program.\r\n<x@y.example>:\r\n"
        b"Remote host said: 550 5.1.1 No such user\r\n",
    )
    msg = parse_email(raw)
    assert msg.auto_reason == "bounce"
    assert msg.bounce_of == ["our-reply-1@acme.test"]
    assert msg.bounce_error == "550 5.1.1 No such user"


def test_multipart_report_bounce_with_returned_headers() -> None:
    body = (
        b"--R\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        b"--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: support@acme.test\r\nMessage-ID: <ticket-7.1@acme.test>\r\nSubject: x\r\n"
        b"--R--\r\n"
    )
    raw = make(
        [
            ("From", "Mail Delivery System <mailer@mx.example>"),
            ("Content-Type", "multipart/report; report-type=delivery-status; boundary=R"),
        ],
        body,
    )
    msg = parse_email(raw)
    assert msg.auto_reason == "bounce"
    assert msg.bounce_of == ["ticket-7.1@acme.test"]
    assert msg.bounce_error == "5.1.1; smtp; 550 5.1.1 User unknown"
    assert msg.text == "Delivery failed."


def test_read_receipt_report_is_auto_not_bounce() -> None:
    body = (
        b"--R\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n"
        b"--R\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n--R--\r\n"
    )
    raw = make(
        [
            ("From", "a@b.example"),
            ("Content-Type", "multipart/report; report-type=disposition-notification; boundary=R"),
        ],
        body,
    )
    msg = parse_email(raw)
    assert msg.auto_reason == "report: disposition-notification"
    assert msg.bounce_of == []


# ---------------------------------------------------------------------------------------------
# decode_bytes directly
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["Тест", "Ошибка", "Да", "Счёт"])
@pytest.mark.parametrize("codec", ["cp1251", "koi8_r"])
def test_short_cyrillic_words_without_label(word: str, codec: str) -> None:
    assert decode_bytes(word.encode(codec), None) == word
    assert decode_bytes(word.encode(codec), "us-ascii") == word


def test_decode_bytes_never_raises_on_garbage_labels() -> None:
    for label in ["base64", "rot13", "zlib", "no-such-charset", "utf-8*ru", "\x00", "x" * 500]:
        assert isinstance(decode_bytes(b"abc\xff\xfe", label), str)


def test_leading_blank_lines_and_bom_are_ignored() -> None:
    raw = b"\r\n\r\n\xef\xbb\xbfFrom: a@b.example\r\nSubject: hi\r\n\r\nbody"
    msg = parse_email(raw)
    assert (msg.sender_address, msg.subject, msg.text) == ("a@b.example", "hi", "body")
    assert msg.raw == raw


def test_headers_only_message_without_blank_line() -> None:
    msg = parse_email(b"From: a@b.example\r\nSubject: only headers")
    assert msg.subject == "only headers"
    assert msg.text == ""


PATHOLOGICAL = {
    "from-without-at": b"From: " + b"a" * 200_000 + b"\r\n\r\nx",
    "from-bangs": b"From: " + b"a!" * 100_000 + b" b@c.example\r\n\r\nx",
    "references-junk": b"From: a@b.example\r\nReferences: " + b"<a!" * 60_000 + b"\r\n\r\nx",
    "encoded-word-junk": b"From: a@b.example\r\nSubject: " + b"=?utf-8?q?" * 50_000 + b"\r\n\r\n",
    "quote-lines": b"From: a@b.example\r\n\r\n" + b">\n" * 100_000,
    "unclosed-scripts": b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n"
    + b"<script>" * 50_000,
    "deep-html": b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n"
    + b"<div>" * 50_000
    + b"deep text"
    + b"</div>" * 50_000,
    "empty-boundaries": b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\n" * 50_000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_is_fast(name: str) -> None:
    started = time.perf_counter()
    try:
        parse_email(PATHOLOGICAL[name])
    except ParseError:
        pass
    assert time.perf_counter() - started < 3


def test_html_that_lxml_cannot_nest_still_gives_text() -> None:
    assert parse_email(PATHOLOGICAL["deep-html"]).text == "deep text"


def test_old_mac_line_endings() -> None:
    msg = parse_email(b"From: a@b.example\rSubject: mac\r\rbody\rline")
    assert (msg.subject, msg.text) == ("mac", "body\nline")
