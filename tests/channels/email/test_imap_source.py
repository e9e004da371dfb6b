"""ImapSource against a real Dovecot: UID cursors, batches, flags, IDLE and failures."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from supportdesk.channels.base import ChannelError
from supportdesk.channels.email.imap import FolderCursor, ImapSettings, ImapSource, is_loopback_host
from tests.peers.dovecot import ImapAccount

pytestmark = pytest.mark.peers


def raw_mail(n: int, subject: str = "Printer broken") -> bytes:
    return (
        f"From: Customer {n} <c{n}@example.com>\r\n"
        f"To: support@acme.test\r\n"
        f"Subject: {subject} {n}\r\n"
        f"Message-ID: <m{n}.{time.monotonic_ns()}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0300\r\n"
        f"\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


def fetch_all(
    account: ImapAccount, cursor: FolderCursor | None, folder: str = "INBOX", batch: int = 200
) -> list[tuple[list[tuple[int, bytes]], FolderCursor]]:
    with ImapSource(account.imap_settings()) as source:
        return list(source.fetch_new(folder, cursor, batch=batch))


def test_first_fetch_returns_everything_in_uid_order_with_cursor(
    imap_account: ImapAccount,
) -> None:
    raws = [raw_mail(i) for i in range(5)]
    uids = [imap_account.append("INBOX", raw) for raw in raws]

    batches = fetch_all(imap_account, None)

    assert len(batches) == 1
    messages, cursor = batches[0]
    assert [uid for uid, _ in messages] == sorted(uids)
    assert [raw for _, raw in messages] == raws  # the exact bytes, in UID order
    assert cursor == FolderCursor("INBOX", imap_account.uidvalidity("INBOX"), max(uids))


def test_refetch_with_cursor_yields_only_new_mail(imap_account: ImapAccount) -> None:
    imap_account.append_many("INBOX", [raw_mail(i) for i in range(3)])
    [(_, cursor)] = fetch_all(imap_account, None)

    assert fetch_all(imap_account, cursor) == []

    new = [imap_account.append("INBOX", raw_mail(10 + i)) for i in range(2)]
    [(messages, cursor2)] = fetch_all(imap_account, cursor)
    assert [uid for uid, _ in messages] == new
    assert cursor2.last_uid == new[-1]
    assert cursor2.uidvalidity == cursor.uidvalidity


def test_fetch_leaves_flags_untouched(imap_account: ImapAccount) -> None:
    imap_account.append("INBOX", raw_mail(1))
    flagged = imap_account.append("INBOX", raw_mail(2), flags=["\\Flagged"])
    before = imap_account.flags("INBOX")
    assert before[flagged] == {"\\Flagged"}

    fetch_all(imap_account, None)

    after = imap_account.flags("INBOX")
    assert after == before
    assert all("\\Seen" not in flags for flags in after.values())


def test_uidvalidity_change_rereads_the_folder_from_the_start(imap_account: ImapAccount) -> None:
    uids = imap_account.append_many("INBOX", [raw_mail(i) for i in range(4)])
    [(_, cursor)] = fetch_all(imap_account, None)
    assert fetch_all(imap_account, cursor) == []

    new_validity = imap_account.reset_uidvalidity("INBOX")

    [(messages, cursor2)] = fetch_all(imap_account, cursor)
    assert new_validity != cursor.uidvalidity
    assert [uid for uid, _ in messages] == uids
    assert cursor2 == FolderCursor("INBOX", new_validity, uids[-1])
    assert fetch_all(imap_account, cursor2) == []


def test_batches_of_200_and_resume_after_the_first_commit(imap_account: ImapAccount) -> None:
    uids = imap_account.append_many("INBOX", [raw_mail(i) for i in range(450)])

    batches = fetch_all(imap_account, None, batch=200)

    assert [len(messages) for messages, _ in batches] == [200, 200, 50]
    for messages, cursor in batches:
        assert cursor.last_uid == messages[-1][0]  # the cursor belongs to exactly this batch
    assert [uid for messages, _ in batches for uid, _ in messages] == uids

    # A crash after committing only the first batch: the next run resumes after it.
    first_cursor = batches[0][1]
    rest = fetch_all(imap_account, first_cursor, batch=200)
    assert [uid for messages, _ in rest for uid, _ in messages] == uids[200:]


def test_uid_range_quirk_does_not_repeat_the_highest_message(imap_account: ImapAccount) -> None:
    uids = imap_account.append_many("INBOX", [raw_mail(i) for i in range(5)])
    imap_account.expunge("INBOX", [uids[-1]])
    cursor = FolderCursor("INBOX", imap_account.uidvalidity("INBOX"), uids[-2])

    # The server answers "UID 5:*" with UID 4 (its highest); the source must drop it.
    assert fetch_all(imap_account, cursor) == []


def test_other_folder_and_missing_folder(imap_account: ImapAccount) -> None:
    uid = imap_account.append("Support/Russian", raw_mail(1, "Принтер"))
    [(messages, cursor)] = fetch_all(imap_account, None, folder="Support/Russian")
    assert [u for u, _ in messages] == [uid]
    assert cursor.folder == "Support/Russian"

    with pytest.raises(ChannelError, match=r"folder 'Nope' cannot be opened"):
        fetch_all(imap_account, None, folder="Nope")


def test_refused_login_is_one_sentence_without_the_password(imap_account: ImapAccount) -> None:
    settings = imap_account.imap_settings(password="Wr0ng-s3cret-Pass")
    with pytest.raises(ChannelError) as caught:
        ImapSource(settings).connect()
    text = str(caught.value)
    assert text.startswith(
        f"IMAP login refused for {imap_account.username} at 127.0.0.1:{imap_account.port}"
    )
    assert "Wr0ng-s3cret-Pass" not in text
    assert "\n" not in text


def test_non_ascii_password_logs_in(dovecot_server: object) -> None:
    from tests.peers.dovecot import DovecotServer

    assert isinstance(dovecot_server, DovecotServer)
    account = dovecot_server.add_user(password="пароль-Секрет")
    account.append("INBOX", raw_mail(1))
    assert len(fetch_all(account, None)) == 1


def test_server_down_and_back(imap_account: ImapAccount) -> None:
    imap_account.append("INBOX", raw_mail(1))
    source = ImapSource(imap_account.imap_settings())
    source.connect()
    imap_account.stop()
    try:
        with pytest.raises(ChannelError, match="closed the connection|refused the connection"):
            list(source.fetch_new("INBOX", None))
        assert not source.connected
        with pytest.raises(ChannelError, match=r"refused the connection"):
            source.connect()
    finally:
        imap_account.start()
    # The same source reconnects by itself on the next call.
    [(messages, _)] = list(source.fetch_new("INBOX", None))
    assert len(messages) == 1
    source.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        yield listener.getsockname()[1]


def test_silent_server_times_out(silent_server: int) -> None:
    settings = ImapSettings("127.0.0.1", silent_server, "none", "u", "p", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ChannelError, match=r"did not answer within 0.3 s"):
        ImapSource(settings).connect()
    assert time.monotonic() - started < 3


def test_tls_on_a_plain_port_is_a_clear_error(imap_account: ImapAccount) -> None:
    settings = imap_account.imap_settings(security="ssl")
    with pytest.raises(ChannelError, match=r"^TLS with IMAP server 127.0.0.1:\d+ failed"):
        ImapSource(settings).connect()


def test_implicit_tls_and_starttls(dovecot_server: object, imap_account: ImapAccount) -> None:
    from tests.peers.dovecot import DovecotServer

    assert isinstance(dovecot_server, DovecotServer)
    context = dovecot_server.ssl_context()
    imap_account.append("INBOX", raw_mail(1))
    assert imap_account.tls_port is not None
    over_ssl = imap_account.imap_settings(
        security="ssl", port=imap_account.tls_port, ssl_context=context
    )
    over_starttls = imap_account.imap_settings(security="starttls", ssl_context=context)
    for settings in (over_ssl, over_starttls):
        with ImapSource(settings) as source:
            assert source.check() == {"INBOX": 1}

    untrusted = imap_account.imap_settings(security="ssl", port=imap_account.tls_port)
    with pytest.raises(ChannelError, match=r"TLS certificate of IMAP server .* verified"):
        ImapSource(untrusted).connect()


def test_plain_imap_is_refused_for_remote_hosts() -> None:
    with pytest.raises(ChannelError, match=r'"none" would send the password unencrypted'):
        ImapSource(ImapSettings("mail.example.com", 143, "none", "u", "p"))
    with pytest.raises(ChannelError, match=r"security must be one of"):
        ImapSource(ImapSettings("mail.example.com", 143, "tls", "u", "p"))  # type: ignore[arg-type]
    with pytest.raises(ChannelError, match=r"port must be a number"):
        ImapSource(ImapSettings("mail.example.com", 0, "ssl", "u", "p"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("128.0.0.1", False),
        ("mail.example.com", False),
        ("", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _idle_in_thread(
    source: ImapSource, timeout: float, results: list[bool | BaseException]
) -> threading.Thread:
    def run() -> None:
        try:
            results.append(source.idle_wait("INBOX", timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert source.idling.wait(5), "IDLE did not start"
    return thread


def test_idle_wait_wakes_up_on_new_mail(imap_account: ImapAccount) -> None:
    with ImapSource(imap_account.imap_settings()) as source:
        results: list[bool | BaseException] = []
        thread = _idle_in_thread(source, 20, results)
        appended_at = time.monotonic()
        imap_account.append("INBOX", raw_mail(1))  # from another connection
        thread.join(5)
        assert results == [True]
        assert time.monotonic() - appended_at < 8  # woken, not the 20 s idle timeout


def test_idle_wait_times_out_quietly(imap_account: ImapAccount) -> None:
    with ImapSource(imap_account.imap_settings()) as source:
        started = time.monotonic()
        assert source.idle_wait("INBOX", 0.6) is False
        assert 0.5 < time.monotonic() - started < 8


def test_idle_wait_is_interruptible(imap_account: ImapAccount) -> None:
    with ImapSource(imap_account.imap_settings()) as source:
        results: list[bool | BaseException] = []
        thread = _idle_in_thread(source, 60, results)
        asked = time.monotonic()
        source.interrupt()
        thread.join(5)
        assert results == [False]
        assert time.monotonic() - asked < 8  # interrupted, not the 60 s idle timeout
        # The connection is still usable afterwards.
        assert list(source.fetch_new("INBOX", None)) == []


def test_idle_wait_sees_mail_that_arrived_since_the_cursor(imap_account: ImapAccount) -> None:
    imap_account.append("INBOX", raw_mail(1))
    [(_, cursor)] = fetch_all(imap_account, None)
    imap_account.append("INBOX", raw_mail(2))
    with ImapSource(imap_account.imap_settings()) as source:
        started = time.monotonic()
        assert source.idle_wait("INBOX", 30, since=cursor) is True
        assert time.monotonic() - started < 8  # at once, not the 30 s idle timeout
        assert not source.idling.is_set()


def test_server_stop_during_idle_is_a_channel_error(imap_account: ImapAccount) -> None:
    source = ImapSource(imap_account.imap_settings())
    source.connect()
    results: list[bool | BaseException] = []
    try:
        thread = _idle_in_thread(source, 60, results)
        imap_account.stop()
        thread.join(10)
    finally:
        imap_account.start()
    assert len(results) == 1
    assert isinstance(results[0], ChannelError)
    assert "closed the connection" in str(results[0])
    assert not source.connected


def test_idle_wait_sees_mail_that_arrives_between_select_and_idle(
    imap_account: ImapAccount,
) -> None:
    """Mail appended after the cursor check but before IDLE begins: Dovecot reports it as the
    IDLE starts, often in the same packet as the "+ idling" continuation, where it sits in the
    client's read buffer and a poll of the socket never sees it."""
    imap_account.append("INBOX", raw_mail(1))
    [(_, cursor)] = fetch_all(imap_account, None)
    with ImapSource(imap_account.imap_settings()) as source:
        select = source._select

        def select_then_append(folder: str) -> dict[bytes, object]:
            info = select(folder)
            imap_account.append("INBOX", raw_mail(2))  # from another connection
            return info

        source._select = select_then_append  # type: ignore[method-assign]
        started = time.monotonic()
        assert source.idle_wait("INBOX", 20, since=cursor) is True
        assert time.monotonic() - started < 8  # woken, not the 20 s idle timeout
