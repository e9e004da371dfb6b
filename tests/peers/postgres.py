"""A real PostgreSQL server on loopback as a test peer.

One private cluster per test session (per xdist worker): ``initdb`` + ``pg_ctl`` in a ``mkdtemp``
directory on a free loopback port, run as the ``postgres`` OS user when the tests run as root
(initdb refuses root). Durability is switched off (``fsync=off``): the cluster is thrown away.

* ``postgres_server`` (session): the running server; ``server.url(dbname)`` builds a
  ``postgresql+psycopg://`` URL, ``server.admin()`` an autocommit connection to ``postgres``.
* ``pg_url`` (function): a fresh database, copied from a template that already holds the
  supportdesk schema at the head migration (``CREATE DATABASE ... TEMPLATE``: a few ms), dropped
  after the test.

Where the server binaries are missing they are installed with apt-get when running as root;
otherwise the tests skip loudly (and fail under ``CI=true``), as DESIGN.md asks of test peers.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.peers.util import free_port, is_root, peer_unavailable, require_binary, wait_until

__all__ = ["PostgresServer", "pg_url", "postgres_server", "find_bindir"]

TEMPLATE_DB = "sd_template"
USER = "postgres"


def find_bindir() -> str:
    """The newest installed PostgreSQL's bin directory (installing the package when root)."""
    env = os.environ.get("SUPPORTDESK_TEST_PG_BINDIR")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        require_binary("/usr/lib/postgresql/15/bin/postgres", "postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        peer_unavailable("the postgresql package installed no server binary")
    return str(Path(found[-1]).parent)


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: str
    host: str = "127.0.0.1"
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={USER} dbname={dbname}"

    def admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            tpl = f" TEMPLATE {template}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{tpl}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        _run_pg([f"{self.bindir}/pg_ctl", "-D", str(self.root / "data"), "-m", "immediate",
                 "-w", "stop"], check=False)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def _run_pg(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    kw: dict[str, Any] = {}
    if is_root():
        kw["user"] = USER
        kw["group"] = pwd.getpwnam(USER).pw_gid
        kw["extra_groups"] = []
    return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/", **kw)


def start_server(parent: str | None = None, options: str = "") -> PostgresServer:
    """``parent``: where its data directory goes (default: the temp folder); ``options``: more
    server settings (``-c name=value ...``), e.g. a bigger cache for the benchmarks."""
    bindir = find_bindir()
    if is_root():
        try:
            pwd.getpwnam(USER)
        except KeyError:
            peer_unavailable("there is no 'postgres' OS user to run the test cluster as")
    root = Path(tempfile.mkdtemp(prefix="sd-pg-", dir=parent))
    os.chmod(root, 0o755)
    if is_root():
        ent = pwd.getpwnam(USER)
        os.chown(root, ent.pw_uid, ent.pw_gid)
    data = root / "data"
    res = _run_pg(
        [f"{bindir}/initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
         "--locale=C.UTF-8", "--no-sync"],
        check=False,
    )  # fmt: skip
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        peer_unavailable(f"initdb failed: {res.stderr.strip()[-300:]}")
    last = ""
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = free_port()
        opts = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            f"-c shared_buffers=32MB {options}"
        )
        res = _run_pg(
            [f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
             "-t", "30", "start"],
            check=False,
        )  # fmt: skip
        if res.returncode == 0:
            server = PostgresServer(root=root, port=port, bindir=bindir)
            wait_until(_accepts(server), 10, what="PostgreSQL to accept connections")
            return server
        try:
            last = (root / "log").read_text(errors="replace")[-300:]
        except OSError:
            last = res.stderr[-300:]
    shutil.rmtree(root, ignore_errors=True)
    peer_unavailable(f"PostgreSQL did not start: {last.strip()}")


def _accepts(server: PostgresServer) -> Any:
    def check() -> bool:
        try:
            server.admin().close()
            return True
        except Exception:
            return False

    return check


def make_template(server: PostgresServer) -> None:
    """A database holding the schema at the head migration, to copy for each test."""
    from supportdesk.store.db import Database
    from supportdesk.store.migrate import upgrade_if_needed

    with server.admin() as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    db = Database(server.url(TEMPLATE_DB))
    try:
        upgrade_if_needed(db)
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_server()
    try:
        make_template(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with the supportdesk schema; its URL."""
    name = postgres_server.create_database(TEMPLATE_DB)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def pg_empty_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database (no tables); its URL."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
