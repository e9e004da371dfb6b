"""Every file of the shared real-world corpus either parses or raises ParseError."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportdesk.channels.base import InboundMessage, ParseError
from supportdesk.channels.email.parse import parse_email
from tests.peers.util import corpus_dir, require_corpus

CORPUS = corpus_dir()
SKIP_NAMES = {"LICENSE", "README.md"}


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)


FILES = _corpus_files()


def test_corpus_is_present() -> None:
    require_corpus()
    assert len(FILES) > 100


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_message_parses_or_is_quarantined(path: Path) -> None:
    raw = path.read_bytes()
    try:
        msg = parse_email(raw)
    except ParseError as exc:
        reason = str(exc)
        assert reason and "\n" not in reason
        return
    assert isinstance(msg, InboundMessage)
    assert msg.kind == "email"
    assert msg.raw == raw
    assert msg.external_id
    assert "@" in msg.sender_address
    assert msg.sender_address == msg.sender_address.lower()
    assert "\r" not in msg.text and "\x00" not in msg.text
    assert "\r" not in msg.subject and "\n" not in msg.subject
    for att in msg.attachments:
        assert att.filename and "\x00" not in att.filename
        assert att.data is not None and att.size == len(att.data)


def _corpus(name: str) -> bytes:
    path = CORPUS / "mail-gem" / name
    if not path.exists():
        pytest.fail(f"corpus file {path} is missing")
    return path.read_bytes()


def test_corpus_japanese_iso_2022_jp() -> None:
    msg = parse_email(_corpus("multi_charset_japanese_iso_2022.eml"))
    assert msg.subject == "まみむめも"
    assert msg.text == "すみません。"


def test_corpus_japanese_shift_jis_body() -> None:
    msg = parse_email(_corpus("multi_charset_japanese_shift_jis.eml"))
    assert msg.text.startswith("あいうえお")
    assert "このメールはテスト用のメールです。" in msg.text


def test_corpus_japanese_base64_utf8_with_signature() -> None:
    msg = parse_email(_corpus("multi_charset_japanese.eml"))
    assert msg.text == "かきくえこ"
    assert msg.quoted_text.startswith("-- \nhttp://lindsaar.net/")


def test_corpus_japanese_long_attachment_name() -> None:
    msg = parse_email(_corpus("multi_charset_japanese_attachment_long_name.eml"))
    assert [a.filename for a in msg.attachments] == ["かきくけこ" * 5 + ".txt"]


def test_corpus_korean_ks_c_5601_is_cp949() -> None:
    msg = parse_email(_corpus("multi_charset_ks_c_5601-1987.eml"))
    assert msg.text == "스티해"


@pytest.mark.parametrize(
    ("name", "bounce_of", "error_part"),
    [
        (
            "multipart_report_emails_report_422.eml",
            ["15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au"],
            "452 4.2.2",
        ),
        (
            "multipart_report_emails_report_530.eml",
            ["200712232303.lBNN3jDq002941@mail12.rrrr.com.au"],
            "5.3.0",
        ),
        (
            "multipart_report_emails_multi_address_bounce1.eml",
            ["118707422.15521266992174819.JavaMail.root@lvmail01"],
            "5.1.1",
        ),
    ],
)
def test_corpus_bounces(name: str, bounce_of: list[str], error_part: str) -> None:
    msg = parse_email(_corpus(name))
    assert msg.auto_reason == "bounce"
    assert msg.bounce_of == bounce_of
    assert error_part in msg.bounce_error
    assert len(msg.bounce_error) <= 300


def test_corpus_nested_message_is_an_eml_attachment() -> None:
    msg = parse_email(_corpus("attachment_emails_attachment_message_rfc822.eml"))
    [att] = msg.attachments
    assert att.content_type == "message/rfc822"
    assert att.filename.endswith(".eml")
    assert att.data is not None and b"Subject:" in att.data


def test_corpus_invalid_reference_is_dropped() -> None:
    msg = parse_email(_corpus("error_emails_multiple_references_with_one_invalid.eml"))
    assert msg.references == ["foo@bar.net", "baz@bar.net"]


def test_corpus_latin1_subject_is_not_taken_for_cyrillic() -> None:
    msg = parse_email(_corpus("error_emails_invalid_subject_characters.eml"))
    assert msg.subject.startswith("Formação FrenetikPolis")


def test_corpus_outlook_msg_file_is_a_parse_error() -> None:
    path = CORPUS / "mail-parser" / "mail_outlook_1"
    with pytest.raises(ParseError):
        parse_email(path.read_bytes())
