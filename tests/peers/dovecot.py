"""A real Dovecot IMAP server on loopback as a test peer.

One Dovecot process per test session (``dovecot_server``), a fresh mailbox user per test
(``imap_account``). The config is self-contained (no /etc includes): passwd-file users, Maildir
under a ``mkdtemp`` directory (0755, so the unprivileged Dovecot users can reach it), plain IMAP
on a free port and, when ``openssl`` is available, STARTTLS on the same port plus implicit TLS on a
second port with a throw-away self-signed certificate (``server.ssl_context()`` trusts it).

Usage in a test::

    def test_x(imap_account):
        uid = imap_account.append("INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        settings = imap_account.imap_settings()     # supportdesk ImapSettings, security "none"
        assert imap_account.flags("INBOX")[uid] == frozenset()
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from supportdesk.channels.email.imap import ImapSettings
from tests.peers.util import (
    free_port,
    is_root,
    peer_unavailable,
    port_open,
    require_binary,
    self_signed_certificate,
    wait_for_port,
    wait_for_port_closed,
)

__all__ = ["DovecotServer", "ImapAccount", "dovecot_server", "imap_account"]

DOVECOT_BIN = os.environ.get("SUPPORTDESK_TEST_DOVECOT", "/usr/sbin/dovecot")
POOL_SIZE = 300  # users written ahead; more are added (and waited for) when they run out
DOVEADM_BIN = os.environ.get("SUPPORTDESK_TEST_DOVEADM", "/usr/bin/doveadm")

_CONFIG = """\
# supportdesk test peer: self-contained, nothing from /etc/dovecot
base_dir = {root}/run
state_dir = {root}/state
instance_name = supportdesk-test-{tag}
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
{ssl_block}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
  default_fields = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
# no brute-force penalty: tests log in with wrong passwords on purpose
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@dataclass
class DovecotServer:
    """One Dovecot instance under ``root``; survives stop()/start() with its mail and users."""

    root: Path
    port: int
    tls_port: int | None
    cert: Path | None
    binary: str = DOVECOT_BIN
    host: str = "127.0.0.1"
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _pool: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @classmethod
    def create(cls, binary: str = DOVECOT_BIN) -> DovecotServer:
        root = Path(tempfile.mkdtemp(prefix="supportdesk-dovecot-"))
        root.chmod(0o755)
        (root / "run").mkdir()
        (root / "state").mkdir()
        mail = root / "mail"
        mail.mkdir()
        if is_root():
            nobody = pwd.getpwnam("nobody")
            os.chown(mail, nobody.pw_uid, nobody.pw_gid)
            mail_uid, mail_gid = nobody.pw_uid, nobody.pw_gid
            login_user, internal_user = "dovenull", "dovecot"
        else:
            mail_uid, mail_gid = os.getuid(), os.getgid()
            login_user = internal_user = getpass.getuser()
        passwd = root / "passwd"
        passwd.write_text("")
        passwd.chmod(0o644)
        pair = self_signed_certificate(root)
        port = free_port()
        tls_port = free_port() if pair else None
        if pair:
            cert, key = pair
            ssl_block = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        else:
            cert = None
            ssl_block = "ssl = no"
        config = _CONFIG.format(
            root=root,
            tag=f"{os.getpid()}-{secrets.token_hex(3)}",
            host="127.0.0.1",
            ssl_block=ssl_block,
            login_user=login_user,
            internal_user=internal_user,
            mail_uid=mail_uid,
            mail_gid=mail_gid,
            port=port,
            tls_port=tls_port or 0,
        )
        (root / "dovecot.conf").write_text(config)
        server = cls(root=root, port=port, tls_port=tls_port, cert=cert, binary=binary)
        server._fill_pool(POOL_SIZE)
        return server

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start Dovecot (no-op if running) and wait until its listeners accept connections."""
        if self.running:
            return
        log = open(self.root / "dovecot.stderr", "ab")  # noqa: SIM115 - handed to Popen
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends every child
            )
        finally:
            log.close()
        try:
            for port in (self.port, self.tls_port):
                if port is not None:
                    wait_for_port(self.host, port, timeout)
        except TimeoutError:
            code = self._proc.poll()
            self.stop()
            pytest.fail(
                f"Dovecot did not start (exit code {code}); log:\n{self.log_tail()}",
                pytrace=False,
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Dovecot and every process it started, and wait until the port is closed.

        SIGTERM goes to the whole process group (the master alone leaves open sessions
        running, and takes a second or more); whatever still runs after half a second gets
        SIGKILL. Maildir is crash-safe, so nothing is lost either way.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
        wait_for_port_closed(self.host, self.port, timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("dovecot.stderr", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        if self.cert is None:
            peer_unavailable("the Dovecot peer has no TLS certificate (openssl is not installed)")
        return ssl.create_default_context(cafile=str(self.cert))

    def _entry(self, username: str, password: str) -> str:
        if ":" in username or ":" in password or "\n" in username + password:
            raise ValueError("test user names and passwords cannot contain ':' or newlines")
        # user:password:uid:gid:gecos:home:shell:extra fields
        return f"{username}:{{PLAIN}}{password}::::::nodelay=y\n"

    def _fill_pool(self, count: int) -> None:
        """Write ``count`` spare users. Dovecot looks at a changed passwd-file at most once a
        second, so users written before they are needed are usable at once."""
        lines = []
        for _ in range(count):
            username = f"user{next(self._counter)}@desk.test"
            password = secrets.token_urlsafe(12)
            self._pool.append((username, password))
            lines.append(self._entry(username, password))
        with open(self.root / "passwd", "a") as passwd:
            passwd.write("".join(lines))

    def add_user(self, username: str | None = None, password: str | None = None) -> ImapAccount:
        """A new, empty mailbox user (from the pre-written pool unless a name or password is
        given; then it waits until Dovecot has re-read the passwd-file)."""
        with self._lock:
            if username is None and password is None:
                if not self._pool:
                    self._fill_pool(POOL_SIZE)
                    fresh = True
                else:
                    fresh = False
                username, password = self._pool.pop(0)
            else:
                username = username or f"user{next(self._counter)}@desk.test"
                password = password or secrets.token_urlsafe(12)
                with open(self.root / "passwd", "a") as passwd:
                    passwd.write(self._entry(username, password))
                fresh = True
        account = ImapAccount(server=self, username=username, password=password)
        if fresh and self.running:
            account.wait_until_usable()
        return account

    def doveadm(self, *args: str) -> str:
        """Run doveadm against this instance (as root it switches to the mail user itself)."""
        doveadm = require_binary(DOVEADM_BIN, "dovecot-core")
        result = subprocess.run(
            [doveadm, "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)(?::(\d+))?")


def _login(imap: IMAPClient, username: str, password: str) -> None:
    if (username + password).isascii():
        imap.login(username, password)
    else:  # LOGIN is ASCII-only
        imap.plain_login(username, password)


def _as_bytes(response: Any) -> bytes:
    """imapclient answers APPEND with bytes and MULTIAPPEND with (typ, [bytes...])."""
    if isinstance(response, bytes):
        return response
    if isinstance(response, tuple | list):
        return b" ".join(_as_bytes(part) for part in response)
    if isinstance(response, str):
        return response.encode()
    return b""


@dataclass
class ImapAccount:
    """A mailbox user on the session's Dovecot, with helpers that act as that user."""

    server: DovecotServer
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int | None:
        return self.server.tls_port

    def imap_settings(self, **overrides: Any) -> ImapSettings:
        """Connector settings for this account (plain IMAP on loopback unless overridden)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password": self.password,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ImapSettings(**values)

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A logged-in imapclient connection as this user (plain IMAP on loopback)."""
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            _login(imap, self.username, self.password)
            yield imap
        finally:
            try:
                imap.logout()
            except Exception:  # noqa: BLE001 - best effort on a connection we are done with
                imap.shutdown()

    def wait_until_usable(self, timeout: float = 5.0) -> None:
        """Wait until Dovecot accepts this user's login (after a passwd-file change)."""
        deadline = time.monotonic() + timeout
        while True:
            imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
            try:
                _login(imap, self.username, self.password)
                imap.logout()
                return
            except LoginError:
                imap.shutdown()
                if time.monotonic() > deadline:
                    raise
            # a refused login already waited ~0.5 s in Dovecot: no extra sleep needed

    def create_folder(self, folder: str) -> None:
        with self.client() as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str | bytes] = (),
        when: datetime | None = None,
    ) -> int:
        """APPEND one message (creating the folder if needed); returns its UID."""
        with self.client() as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)
            response = imap.append(folder, raw, flags=tuple(flags), msg_time=when)
        match = _APPENDUID.search(_as_bytes(response))
        if match is None:
            raise RuntimeError(f"APPEND gave no APPENDUID: {response!r}")
        return int(match.group(1))

    def append_many(self, folder: str, raws: Iterable[bytes]) -> list[int]:
        """APPEND many messages in one MULTIAPPEND command; returns their UIDs in order."""
        messages = list(raws)
        if not messages:
            return []
        with self.client() as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)
            response = imap.multiappend(folder, messages)
        match = _APPENDUID.search(_as_bytes(response))
        if match is None:
            raise RuntimeError(f"MULTIAPPEND gave no APPENDUID: {response!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last - first + 1 != len(messages):
            raise RuntimeError(f"MULTIAPPEND UIDs {first}:{last} for {len(messages)} messages")
        return list(range(first, last + 1))

    def uids(self, folder: str) -> list[int]:
        with self.client() as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in imap.search("ALL"))

    def flags(self, folder: str) -> dict[int, frozenset[str]]:
        """Every message's flags by UID, without the per-session \\Recent (read-only: looking
        does not change them)."""
        with self.client() as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            if not uids:
                return {}
            response = imap.fetch(uids, ["FLAGS"])
        result: dict[int, frozenset[str]] = {}
        for uid, data in response.items():
            names = {
                flag.decode() if isinstance(flag, bytes) else str(flag) for flag in data[b"FLAGS"]
            }
            result[int(uid)] = frozenset(names - {"\\Recent"})
        return result

    def set_flags(self, folder: str, uids: list[int], flags: Iterable[str]) -> None:
        with self.client() as imap:
            imap.select_folder(folder)
            imap.add_flags(uids, list(flags))

    def expunge(self, folder: str, uids: list[int]) -> None:
        with self.client() as imap:
            imap.select_folder(folder)
            imap.delete_messages(uids)
            imap.uid_expunge(uids)

    def uidvalidity(self, folder: str) -> int:
        with self.client() as imap:
            status = imap.folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def reset_uidvalidity(self, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY (as after a server migration); returns it.

        The messages stay; every client must treat their UIDs as new.
        """
        old = self.uidvalidity(folder)
        new = old + 1 if old < 0xFFFFFFFF - 1 else 1
        self.server.doveadm(
            "mailbox", "update", "-u", self.username, "--uid-validity", str(new), folder
        )
        if self.uidvalidity(folder) != new:
            raise RuntimeError(f"doveadm did not change UIDVALIDITY of {folder}")
        return new

    def stop(self) -> None:
        """Stop the whole server (restart tests); the next ``imap_account`` restarts it."""
        self.server.stop()

    def start(self) -> None:
        self.server.start()


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """The session's Dovecot; skips loudly (fails under CI=true) when it cannot run."""
    binary = require_binary(DOVECOT_BIN, "dovecot-imapd")
    if is_root():
        for user in ("dovenull", "dovecot"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                peer_unavailable(f"system user {user!r} (from the dovecot package) is missing")
    server = DovecotServer.create(binary)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def imap_account(dovecot_server: DovecotServer) -> ImapAccount:
    """A fresh, empty mailbox user on the (running) session Dovecot."""
    if not dovecot_server.running or not port_open(dovecot_server.host, dovecot_server.port):
        dovecot_server.stop()
        dovecot_server.start()
    return dovecot_server.add_user()
