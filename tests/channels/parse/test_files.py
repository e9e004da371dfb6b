"""iter_raw_messages / count_raw_messages over .eml files, mbox files and Maildirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportdesk.channels.email.parse import parse_email
from supportdesk.channels.files import RawItem, count_raw_messages, iter_raw_messages
from tests.peers.util import require_corpus


def mail(n: int, body: bytes = b"hello\n") -> bytes:
    return (
        b"From: user%d@example.com\nSubject: message %d\nMessage-ID: <m%d@example.com>\n\n"
        % (n, n, n)
        + body
    )


def test_single_eml_file(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(mail(1))
    items = list(iter_raw_messages([path]))
    assert items == [RawItem(source=str(path), data=mail(1), error=None)]
    assert count_raw_messages([path]) == 1


def test_explicit_file_without_extension_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "message"
    path.write_bytes(mail(2))
    [item] = iter_raw_messages([str(path)])
    assert item.data == mail(2)


def test_mbox_with_several_messages_and_from_quoting(tmp_path: Path) -> None:
    box = tmp_path / "archive"  # no extension: detected by the leading "From " line
    box.write_bytes(
        b"From user1@example.com Mon Jun  2 10:00:00 2025\n"
        + mail(1, b"line\n>From the quoted start\n>>From deeper\nFrom inside, not a separator\n")
        + b"\n"
        b"From user2@example.com Mon Jun  2 10:01:00 2025\n" + mail(2) + b"\n"
        b"From user3@example.com Mon Jun  2 10:02:00 2025\n" + mail(3)
    )
    items = list(iter_raw_messages([box]))
    assert [i.source for i in items] == [f"{box}#1", f"{box}#2", f"{box}#3"]
    assert all(i.error is None for i in items)
    first = items[0].data
    assert first is not None
    assert b"\nFrom the quoted start\n>From deeper\nFrom inside, not a separator\n" in first
    assert not first.startswith(b"From ")
    assert items[1].data == mail(2)
    assert items[2].data == mail(3)
    assert [parse_email(i.data).external_id for i in items if i.data] == [
        "m1@example.com",
        "m2@example.com",
        "m3@example.com",
    ]
    assert count_raw_messages([box]) == 3


def test_eml_that_starts_with_an_envelope_line_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "saved.eml"
    path.write_bytes(b"From user1@example.com Mon Jun  2 10:00:00 2025\r\n" + mail(1))
    [item] = iter_raw_messages([path])
    assert item.source == f"{path}#1"
    assert item.data == mail(1)
    assert count_raw_messages([path]) == 1


def test_large_mbox_count_is_right_across_chunks(tmp_path: Path) -> None:
    box = tmp_path / "big.mbox"
    padding = b"x" * 70 + b"\n"
    with box.open("wb") as fh:
        for n in range(300):
            fh.write(b"From sender Mon Jun  2 10:00:00 2025\n" + mail(n, padding * 60) + b"\n")
    assert box.stat().st_size > 1 << 20
    assert count_raw_messages([box]) == 300
    assert sum(1 for _ in iter_raw_messages([box])) == 300


def _maildir(root: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)


def test_maildir_with_cur_new_and_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    _maildir(root)
    (root / "cur" / "1700000000.M1P1.host:2,S").write_bytes(mail(1))
    (root / "new" / "1700000001.M2P1.host").write_bytes(mail(2))
    (root / "tmp" / "1700000002.M3P1.host").write_bytes(mail(3))  # being delivered: skipped
    (root / "dovecot-uidlist").write_bytes(b"3 V1 N4\n")
    (root / "dovecot.index").write_bytes(b"\x00\x01binary")
    sent = root / ".Sent"
    _maildir(sent)
    (sent / "cur" / "1700000003.M4P1.host:2,S").write_bytes(mail(4))
    items = list(iter_raw_messages([root]))
    assert [Path(i.source).relative_to(root).as_posix() for i in items] == [
        "cur/1700000000.M1P1.host:2,S",
        "new/1700000001.M2P1.host",
        ".Sent/cur/1700000003.M4P1.host:2,S",
    ]
    assert [i.data for i in items] == [mail(1), mail(2), mail(4)]
    assert count_raw_messages([root]) == 3


def test_directory_of_eml_files_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "1.eml").write_bytes(mail(1))
    (tmp_path / "a" / "b" / "2.eml").write_bytes(mail(2))
    (tmp_path / "a" / "b" / "box.mbox").write_bytes(b"From x Mon Jun  2 10:00:00 2025\n" + mail(3))
    (tmp_path / "README.txt").write_bytes(b"This folder holds exported mail.\n")
    (tmp_path / "a" / "noext").write_bytes(b"Received: from x\r\n" + mail(4))
    (tmp_path / "a" / "outlook.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00")
    items = list(iter_raw_messages([tmp_path]))
    names = sorted(Path(i.source.split("#")[0]).name for i in items if i.skipped is None)
    assert names == ["1.eml", "2.eml", "box.mbox", "noext"]
    skipped = {Path(i.source).name: i.skipped for i in items if i.skipped is not None}
    assert skipped == {"README.txt": "no mail header at the start", "outlook.msg": "a binary file"}
    assert count_raw_messages([tmp_path]) == 4


def test_missing_path_raises_before_anything_is_read(tmp_path: Path) -> None:
    good = tmp_path / "one.eml"
    good.write_bytes(mail(1))
    missing = tmp_path / "nope.mbox"
    with pytest.raises(FileNotFoundError, match="nope.mbox does not exist"):
        iter_raw_messages([good, missing])
    with pytest.raises(FileNotFoundError):
        count_raw_messages([missing])


def test_unreadable_file_becomes_an_error_item(tmp_path: Path) -> None:
    (tmp_path / "ok.eml").write_bytes(mail(1))
    (tmp_path / "broken.eml").symlink_to(tmp_path / "gone.eml")
    items = list(iter_raw_messages([tmp_path]))
    by_name = {Path(i.source).name: i for i in items}
    assert by_name["ok.eml"].data == mail(1)
    broken = by_name["broken.eml"]
    assert broken.data is None
    assert broken.error is not None and "could not read" in broken.error
    explicit = list(iter_raw_messages([tmp_path / "broken.eml"]))
    assert explicit[0].error is not None


def test_corpus_folder_imports_every_message_file() -> None:
    corpus = require_corpus()
    items = [i for i in iter_raw_messages([corpus]) if i.skipped is None]
    names = {Path(i.source).name for i in items}
    assert "LICENSE" not in names and "README.md" not in names
    assert "plain_emails_basic_email.eml" in names
    assert all(i.error is None for i in items)
    assert count_raw_messages([corpus]) == len(items)


def test_obsolete_from_header_is_not_an_mbox_envelope(tmp_path: Path) -> None:
    raw = b"From  : John Doe <jdoe@machine.example>\r\nSubject: obs\r\n\r\nhello\r\n"
    path = tmp_path / "obs.eml"
    path.write_bytes(raw)
    [item] = iter_raw_messages([path])
    assert item.source == str(path)
    assert item.data == raw
    assert item.data is not None and parse_email(item.data).sender_address == "jdoe@machine.example"
