"""A team on one host, for real: Unix users, a venv they can run, a peer-auth PostgreSQL.

``team_host`` (session) does, as root, what README's "A team on one host" section tells an
admin to do on a fresh Debian host:

* Unix users ``sdagent`` (agent), ``sdlead`` (lead), ``sdrunner`` (the runner), ``sdtemp`` and
  ``sdoutsider`` (no part of the desk), made with ``useradd -M``; the group ``sdteam`` holds
  the first three (for the SQLite trusted-mode tests);
* a venv built from Debian's ``/usr/bin/python3`` (the default python3 here lives under /root,
  which other users cannot enter: FACTS.md) with this checkout installed, readable by everyone;
* a socket-only PostgreSQL cluster made with ``initdb --auth-local=peer`` as the ``postgres``
  user: each OS user logs in as the database role of the same name, with no password.

``team_host.run(user, *args)`` runs ``supportdesk ARGS`` as that user with ``runuser``;
``team_host.psql(user, sql)`` runs psql as that user. Without root the tests skip with one
line (and fail under ``CI=true``, as every test peer does).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.peers.util import is_root, peer_unavailable, require_binary, wait_until

ROOT = Path(__file__).resolve().parents[2]
USERS = {"sdagent": True, "sdlead": True, "sdrunner": True, "sdoutsider": False, "sdtemp": False}
GROUP = "sdteam"
SYSTEM_PYTHON = "/usr/bin/python3"
LOCK = Path(tempfile.gettempdir()) / "supportdesk-team-host.lock"


def _sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def _must(cmd: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    res = _sh(cmd, **kw)
    if res.returncode != 0:
        peer_unavailable(f"{what} failed: {(res.stderr or res.stdout).strip()[-400:]}")
    return res


def make_users() -> None:
    """useradd -M for each test user (kept between runs: other sessions may be using them)."""
    _must(["groupadd", "-f", GROUP], "groupadd")
    for name, member in USERS.items():
        try:
            pwd.getpwnam(name)
        except KeyError:
            cmd = ["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name]
            _must(cmd, f"useradd {name}")
        if member:
            _must(["usermod", "-a", "-G", GROUP, name], f"usermod {name}")


def _source_stamp() -> str:
    h = hashlib.sha256()
    for path in sorted([ROOT / "pyproject.toml", *ROOT.glob("supportdesk/**/*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def make_venv() -> tuple[Path, Path]:
    """A venv other users can run, from Debian's python3, and this checkout installed beside it.

    The venv holds the dependencies (made once per pyproject.toml, then only read); the project
    goes to a folder of its own per version of the sources (``pip install --target``, a few
    seconds), so two checkouts testing at once never change each other's install."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        peer_unavailable(f"{SYSTEM_PYTHON} (Debian's python3) is missing")
    deps = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = Path("/var/tmp") / f"supportdesk-team-venv-{deps}"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    if not (venv / ".deps-ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        _must([SYSTEM_PYTHON, "-m", "venv", str(venv)], "python3 -m venv (python3-venv)")
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        _must([*pip, "install", "hatchling>=1.25", *project["dependencies"]], "pip install (deps)")
        _sh(["chmod", "-R", "a+rX", str(venv)])
        (venv / ".deps-ok").write_text("ok\n")
    site = Path("/var/tmp") / f"supportdesk-team-src-{deps}-{_source_stamp()}"
    if not (site / ".ok").exists():
        tmp = Path(tempfile.mkdtemp(prefix=site.name + ".", dir="/var/tmp"))
        _must(
            [*pip, "install", "--no-deps", "--no-build-isolation", "--target", str(tmp), str(ROOT)],
            "pip install (the project)",
            cwd="/",
        )
        _sh(["chmod", "-R", "a+rX", str(tmp)])
        os.chmod(tmp, 0o755)
        (tmp / ".ok").write_text("ok\n")
        try:
            tmp.rename(site)
        except OSError:  # made meanwhile by another run
            shutil.rmtree(tmp, ignore_errors=True)
    _prune_old_sites(site)
    return venv, site


def _prune_old_sites(keep: Path) -> None:
    """One install is left per version of the sources tested: remove ours untouched for a day
    (a run that still uses one is minutes old)."""
    cutoff = time.time() - 86_400
    for old in Path("/var/tmp").glob("supportdesk-team-src-*"):
        try:
            st = old.lstat()
        except OSError:
            continue
        if old != keep and st.st_uid == os.getuid() and st.st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        require_binary("/usr/lib/postgresql/15/bin/postgres", "postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        peer_unavailable("the postgresql package installed no server binary")
    return str(Path(found[-1]).parent)


@dataclass
class TeamHost:
    root: Path
    venv: Path
    site: Path
    bindir: str
    socket_dir: Path
    homes: dict[str, Path] = field(default_factory=dict)

    @property
    def supportdesk(self) -> str:
        return str(self.site / "bin" / "supportdesk")

    def url(self, db: str) -> str:
        return f"postgresql:///{db}?host={self.socket_dir}"

    def env(self, user: str, extra: dict[str, str] | None = None) -> list[str]:
        home = self.homes.get(user, Path("/nonexistent"))
        base = {
            "PATH": f"{self.site}/bin:{self.venv}/bin:/usr/bin:/bin",
            "PYTHONPATH": str(self.site),
            "HOME": str(home),
            "USER": user,
            "LOGNAME": user,
            "LANG": "C.UTF-8",
            "XDG_DATA_HOME": f"{home}/.local/share",
            "XDG_CONFIG_HOME": f"{home}/.config",
            "XDG_DOWNLOAD_DIR": f"{home}/Downloads",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        base.update(extra or {})
        return ["env", "-i", *(f"{k}={v}" for k, v in base.items())]

    def sh(
        self,
        user: str,
        *cmd: str,
        input: str | None = None,  # noqa: A002
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:  # noqa: A002
        """Run CMD as ``user`` (a login of its own: runuser sets its uid and groups)."""
        return subprocess.run(
            ["runuser", "-u", user, "--", *self.env(user, env), *cmd],
            capture_output=True, text=True, input=input, timeout=timeout, check=False, cwd="/",
        )  # fmt: skip

    def run(
        self,
        user: str,
        *args: str,
        input: str | None = None,  # noqa: A002
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:  # noqa: A002
        return self.sh(user, self.supportdesk, *args, input=input, env=env, timeout=timeout)

    def psql(self, user: str, db: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self.sh(
            user, f"{self.bindir}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
            "-h", str(self.socket_dir), "-d", db, "-c", sql,
        )  # fmt: skip

    def admin_sql(self, db: str, sql: str) -> str:
        res = self.psql("postgres", db, sql)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def stop(self) -> None:
        self.sh("postgres", f"{self.bindir}/pg_ctl", "-D", str(self.root / "pg" / "data"),
                "-m", "immediate", "-w", "stop")  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def start_team_host() -> TeamHost:
    if not is_root():
        peer_unavailable(
            "the team-host security tests create Unix users and run a peer-auth PostgreSQL, "
            "which needs root"
        )
    if shutil.which("runuser") is None or shutil.which("useradd") is None:
        peer_unavailable("runuser or useradd is missing (util-linux, passwd)")
    bindir = _bindir()
    with open(LOCK, "w") as lock:  # several xdist workers / sessions: one set-up at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        make_users()
        venv, site = make_venv()
    root = Path(tempfile.mkdtemp(prefix="sd-team-"))
    os.chmod(root, 0o755)
    host = TeamHost(root=root, venv=venv, site=site, bindir=bindir, socket_dir=root / "pg" / "sock")
    pg = pwd.getpwnam("postgres")
    (root / "pg").mkdir(mode=0o755)
    host.socket_dir.mkdir(mode=0o755)
    for p in (root / "pg", host.socket_dir):
        os.chown(p, pg.pw_uid, pg.pw_gid)
    for name in (*USERS, "postgres"):
        ent = pwd.getpwnam(name)
        home = root / "users" / name
        home.mkdir(parents=True, mode=0o700)
        os.chmod(root / "users", 0o755)
        os.chown(home, ent.pw_uid, ent.pw_gid)
        host.homes[name] = home
    data = root / "pg" / "data"
    res = host.sh("postgres", f"{bindir}/initdb", "-D", str(data), "-U", "postgres",
                  "--auth-local=peer", "--auth-host=reject", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")  # fmt: skip
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        peer_unavailable(f"initdb failed: {res.stderr.strip()[-300:]}")
    opts = f"-k {host.socket_dir} -c listen_addresses='' -c fsync=off -c shared_buffers=16MB"
    res = host.sh("postgres", f"{bindir}/pg_ctl", "-D", str(data), "-o", opts,
                  "-l", str(root / "pg" / "log"), "-w", "-t", "30", "start")  # fmt: skip
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        peer_unavailable(f"PostgreSQL did not start: {res.stderr.strip()[-300:]}")
    wait_until(
        lambda: host.psql("postgres", "postgres", "SELECT 1").returncode == 0,
        20,
        what="the peer-auth PostgreSQL to accept logins",
    )
    return host


@pytest.fixture(scope="session")
def team_host() -> Iterator[TeamHost]:
    host = start_team_host()
    try:
        yield host
    finally:
        host.stop()
