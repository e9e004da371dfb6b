"""A hostile agent on a team desk on one host (Unix users + peer-auth PostgreSQL), and on a
SQLite home a group shares (trusted mode).

The set-up follows README's "A team on one host" step by step (see ``team_desk``). Each attack
is tried through the CLI and directly with psql (or sqlite3 and the shell); each must be refused
with one sentence, and every change that did happen must be in the audit log under the real OS
user.
"""

from __future__ import annotations

import grp
import itertools
import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from supportdesk.store.migrate import head_revision
from tests.peers.util import wait_until
from tests.security.conftest import GROUP, TeamHost

pytestmark = pytest.mark.xdist_group("team_host")

_dbs = itertools.count(1)


def one_sentence(res: subprocess.CompletedProcess[str]) -> str:
    """The error a refused command printed: one line, no traceback."""
    err = res.stderr.strip()
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def _mail(i: int, attachment: bool = False) -> str:
    head = (
        f"From: Customer {i} <c{i}@example.test>\r\nTo: support@acme.test\r\n"
        f"Subject: Printer {i} broken\r\nMessage-ID: <m{i}@example.test>\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    )
    if not attachment:
        return head + "Content-Type: text/plain\r\n\r\nIt does not print.\r\n"
    return head + (
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n"
        '--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="log.txt"'
        "\r\n\r\nline one\r\n--b--\r\n"
    )


def _write_as(host: TeamHost, user: str, path: Path, text: str, mode: int) -> None:
    res = host.sh(user, "sh", "-c", f"umask 077 && cat > '{path}' && chmod {mode:o} '{path}'",
                  input=text)  # fmt: skip
    assert res.returncode == 0, res.stderr


@dataclass
class TeamDesk:
    host: TeamHost
    db: str
    url: str
    runner_home: Path

    def agent(self, *args: str, user: str = "sdagent", **kw: object):  # type: ignore[no-untyped-def]
        return self.host.run(user, "--db", self.url, *args, **kw)  # type: ignore[arg-type]

    def psql(self, user: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self.host.psql(user, self.db, sql)

    def audit(self, where: str) -> list[str]:
        out = self.host.admin_sql(
            self.db, f"SELECT db_user || '|' || coalesce(on_behalf_of, '') || '|' || tbl || '|' "
            f"|| op || '|' || coalesce(row_id, '') FROM audit_log WHERE {where} ORDER BY id"
        )  # fmt: skip
        return out.splitlines() if out else []


@pytest.fixture(scope="module")
def team_desk(team_host: TeamHost) -> Iterator[TeamDesk]:
    """README, "A team on one host", steps 3-6 (users and the venv are steps 1-2)."""
    host = team_host
    db = f"sd_team_{os.getpid()}_{next(_dbs)}"
    url = host.url(db)
    # 3. the database, owned by the postgres superuser (or an owner role with CREATEROLE)
    res = host.sh("postgres", f"{host.bindir}/createdb", "-h", str(host.socket_dir), db)
    assert res.returncode == 0, res.stderr
    # 4. roles, privileges, triggers; the runner's login and the first lead
    res = host.run("postgres", "team", "init", "--db", url, "--runner", "sdrunner",
                   "--lead", "sdlead")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Team desk ready" in res.stdout
    # 5. the runner's home: its own, private; config.toml names the database
    runner_home = host.root / "srv" / db
    runner_home.parent.mkdir(exist_ok=True, mode=0o755)
    res = host.sh("root", "install", "-d", "-o", "sdrunner", "-g", GROUP, "-m", "2750",
                  str(runner_home))  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = host.run("sdrunner", "--home", str(runner_home), "--db", url, "init")
    assert res.returncode == 0, res.stderr
    secret = runner_home / "imap-password"
    _write_as(host, "sdrunner", secret, "runner-only-s3cret\n", 0o600)
    _write_as(host, "sdrunner", runner_home / "config.toml", RUNNER_CONFIG.format(
        url=url, secret=secret), 0o640)  # fmt: skip
    # 6. agents, added by a lead
    res = host.run("sdlead", "--db", url, "agents", "add", "sdagent", "--role", "agent")
    assert res.returncode == 0, res.stderr
    # some mail, brought in by the runner
    mail = host.root / "mail" / db
    mail.mkdir(parents=True)
    for i in range(1, 61):
        (mail / f"{i:03d}.eml").write_text(_mail(i, attachment=(i == 1)))
    os.chmod(host.root / "mail", 0o755)
    os.chmod(mail, 0o755)
    for f in mail.iterdir():
        os.chmod(f, 0o644)
    res = host.run("sdrunner", "--home", str(runner_home), "import", str(mail), "--json")
    assert res.returncode == 0, res.stderr
    yield TeamDesk(host=host, db=db, url=url, runner_home=runner_home)


RUNNER_CONFIG = """\
[desk]
name = "Acme support"
database_url = "{url}"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
  [channel.imap]
  host = "127.0.0.1"
  port = 1
  security = "none"
  username = "support"
  password_cmd = "/bin/cat {secret}"
"""


# ---- the set-up itself ---------------------------------------------------------------------


def test_the_set_up_works_for_each_role(team_desk: TeamDesk) -> None:
    res = team_desk.agent("agents", "list", "--json")
    assert res.returncode == 0, res.stderr
    roles = {a["name"]: a["role"] for a in json.loads(res.stdout)}
    assert roles == {"sdlead": "lead", "sdagent": "agent"}
    res = team_desk.agent("tickets", "list", "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)) >= 50
    res = team_desk.agent("status")
    assert "enforced by PostgreSQL" in res.stdout and "sdagent" in res.stdout, res.stdout


def test_an_outsider_cannot_log_in(team_desk: TeamDesk) -> None:
    res = team_desk.psql("sdoutsider", "SELECT count(*) FROM ticket")
    assert res.returncode != 0 and "sdoutsider" in res.stderr
    res = team_desk.agent("tickets", "list", user="sdoutsider")
    assert res.returncode == 7
    assert "sdoutsider" in one_sentence(res)


# ---- become lead ----------------------------------------------------------------------------


def test_an_agent_cannot_become_lead(team_desk: TeamDesk) -> None:
    res = team_desk.agent("agents", "edit", "sdagent", "--role", "lead")
    assert res.returncode == 4
    assert "lead" in one_sentence(res)
    for sql in (
        "UPDATE agent SET role = 'lead' WHERE name = 'sdagent'",
        "INSERT INTO agent (name, display_name, role, active, created_at) "
        "VALUES ('mallory', '', 'lead', true, now())",
        "GRANT supportdesk_lead TO sdagent",
        "SET ROLE supportdesk_lead",
        "SET SESSION AUTHORIZATION sdlead",
        "CREATE ROLE mallory LOGIN",
    ):
        res = team_desk.psql("sdagent", sql)
        assert res.returncode != 0, sql
        assert "denied" in res.stderr or "must have" in res.stderr or "policy" in res.stderr, (
            sql, res.stderr)  # fmt: skip
    res = team_desk.psql("sdagent", "SELECT pg_has_role('sdagent', 'supportdesk_lead', 'MEMBER')")
    assert res.stdout.strip() == "f"
    # their own display name is theirs to change, and that is audited
    res = team_desk.agent("agents", "edit", "sdagent", "--display-name", "Agent Smith")
    assert res.returncode == 0, res.stderr
    assert any(r.startswith("sdagent||agent|update|") for r in team_desk.audit("tbl = 'agent'"))


# ---- act as another agent -------------------------------------------------------------------


def test_an_agent_cannot_act_as_another(team_desk: TeamDesk) -> None:
    res = team_desk.agent("--as", "sdlead", "tickets", "note", "2", "--text", "hello")
    assert res.returncode == 4
    assert "your own login (sdagent)" in one_sentence(res)
    res = team_desk.host.run("sdagent", "--db", team_desk.url, "tickets", "note", "2", "--text", "hi",
                             env={"SUPPORTDESK_AGENT": "sdlead"})  # fmt: skip
    assert res.returncode == 4
    # with psql: the event says who really wrote it, whatever the row or the setting claims
    res = team_desk.psql(
        "sdagent",
        "SELECT set_config('supportdesk.on_behalf', 'sdlead', false); "
        "INSERT INTO event (ticket_id, agent, kind, data, created_at) "
        "VALUES (2, 'sdlead', 'note', '{}', now()) RETURNING agent",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "sdagent"


def test_a_lead_acting_for_an_agent_is_recorded_as_such(team_desk: TeamDesk) -> None:
    res = team_desk.agent("--as", "sdagent", "tickets", "set", "3", "--priority", "high",
                          user="sdlead")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = team_desk.host.admin_sql(
        team_desk.db, "SELECT agent, data FROM event WHERE ticket_id = 3 AND data LIKE '%by%'"
    )
    assert rows.startswith("sdagent|") and '"by": "sdlead"' in rows, rows
    assert "sdlead|sdagent|ticket|update|3" in team_desk.audit("tbl = 'ticket'")


# ---- the audit log --------------------------------------------------------------------------


def test_audit_rows_cannot_be_edited_or_deleted(team_desk: TeamDesk) -> None:
    team_desk.agent("tickets", "set", "4", "--priority", "low")
    before = team_desk.host.admin_sql(team_desk.db, "SELECT count(*) FROM audit_log")
    assert int(before) > 0
    for user in ("sdagent", "sdlead", "sdrunner"):
        for sql in (
            "UPDATE audit_log SET db_user = 'someone'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE event SET agent = 'someone'",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER sd_audit ON ticket",
        ):
            res = team_desk.psql(user, sql)
            assert res.returncode != 0, (user, sql)
            err = res.stderr.strip()  # one sentence from PostgreSQL
            assert len(err.splitlines()) == 1, err
            assert "permission denied" in err or "must be owner" in err, err
    res = team_desk.psql("sdagent", "DELETE FROM event")
    assert res.returncode != 0
    after = team_desk.host.admin_sql(team_desk.db, "SELECT count(*) FROM audit_log")
    assert after == before


# ---- lead-only actions ----------------------------------------------------------------------


def test_lead_only_actions_are_refused_to_an_agent(team_desk: TeamDesk) -> None:
    res = team_desk.agent("customers", "merge", "c5@example.test", "--into", "c6@example.test")
    assert res.returncode == 4
    one_sentence(res)
    res = team_desk.psql("sdagent", "UPDATE customer SET merged_into_id = 6 WHERE id = 5")
    assert res.returncode != 0
    assert "merging or unmerging customers needs the lead role, and sdagent is not a lead" in (
        res.stderr)  # fmt: skip
    res = team_desk.psql("sdagent", "UPDATE ticket SET reply_to_address = 'merged:8' WHERE id = 7")
    assert "merging or unmerging tickets needs the lead role" in res.stderr
    res = team_desk.psql("sdagent", "UPDATE ticket SET status = 'closed'")
    assert "changing more than 50 tickets at once needs the lead role" in res.stderr
    res = team_desk.psql("sdagent", "DELETE FROM ticket WHERE id = 9")
    assert "permission denied" in res.stderr
    res = team_desk.psql("sdagent", "UPDATE template SET body = 'x'")
    assert "permission denied" in res.stderr
    res = team_desk.agent("templates", "add", "evil", "--text", "{{ ticket.id }}")
    assert res.returncode == 4, res.stdout + res.stderr
    assert "refused" in one_sentence(res)
    # through the CLI as well: more than 50 tickets at once
    res = team_desk.agent("tickets", "close", *[str(i) for i in range(1, 56)])
    assert res.returncode == 4
    one_sentence(res)
    # and nothing of it happened
    assert (
        team_desk.host.admin_sql(
            team_desk.db, "SELECT count(*) FROM customer WHERE merged_into_id IS NOT NULL"
        )
        == "0"
    )
    # a lead may: the merge is done and audited under the lead's login
    res = team_desk.agent(
        "customers", "merge", "c5@example.test", "--into", "c6@example.test", user="sdlead"
    )
    assert res.returncode == 0, res.stderr
    assert any(r.startswith("sdlead||customer|update|5") for r in team_desk.audit("tbl='customer'"))


def test_every_change_an_agent_makes_is_audited_under_their_login(team_desk: TeamDesk) -> None:
    res = team_desk.agent("tickets", "assign", "10", "--to", "me")
    assert res.returncode == 0, res.stderr
    res = team_desk.agent("tickets", "note", "10", "--text", "checked the cable")
    assert res.returncode == 0, res.stderr
    res = team_desk.psql("sdagent", "UPDATE ticket SET priority = 'urgent' WHERE id = 11")
    assert res.returncode == 0, res.stderr
    rows = team_desk.audit("row_id IN ('10', '11') AND tbl = 'ticket'")
    assert "sdagent||ticket|update|10" in rows and "sdagent||ticket|update|11" in rows
    notes = team_desk.audit("tbl = 'message' AND op = 'insert'")
    assert any(r.startswith("sdagent||message|insert|") for r in notes)


# ---- the runner's config, files and secrets -------------------------------------------------


def test_an_agent_cannot_touch_the_runners_config_files_or_secrets(team_desk: TeamDesk) -> None:
    home = team_desk.runner_home
    host = team_desk.host
    res = host.sh(
        "sdagent",
        "sh",
        "-c",
        f'printf \'[[channel]]\\nname="x"\\ntype="email"\\n\' >> {home}/config.toml',
    )
    assert res.returncode != 0 and "Permission denied" in res.stderr
    res = host.sh("sdagent", "cat", str(home / "imap-password"))
    assert res.returncode != 0 and "Permission denied" in res.stderr
    res = host.sh("sdagent", "cat", str(home / "config.toml"))  # readable: it holds no secret
    assert res.returncode == 0 and "s3cret" not in res.stdout
    for cmd in (
        ["ln", "-s", "/tmp", f"{home}/attachments/99"],
        ["mkdir", f"{home}/raw/zz"],
        ["sh", "-c", f"echo x > {home}/attachments/new"],
    ):
        res = host.sh("sdagent", *cmd)
        assert res.returncode != 0 and "Permission denied" in res.stderr, cmd
    # agents read the attachments the runner stored (read-only), and work from its home
    stored = [p for p in (home / "attachments").rglob("*") if p.is_file()]
    assert stored and all(p.stat().st_mode & 0o777 == 0o640 for p in stored)
    res = host.sh("sdagent", "cat", str(stored[0]))
    assert res.returncode == 0 and "line one" in res.stdout
    res = host.run("sdagent", "--home", str(home), "status")
    assert res.returncode == 0, res.stderr
    assert "you are sdagent (agent)" in res.stdout
    res = host.run("sdagent", "--home", str(home), "tickets", "note", "12", "--text", "from home")
    assert res.returncode == 0, res.stderr
    res = host.run("sdagent", "--home", str(home), "tickets", "show", "1", "--json")
    assert res.returncode == 0 and "log.txt" in res.stdout, res.stderr
    # nothing the runner made in its home is writable by the group or others
    loose = host.sh("sdrunner", "find", str(home), "-perm", "/022", "-not", "-type", "l")
    assert loose.returncode == 0 and loose.stdout == "", loose.stdout
    outsider = host.sh("sdoutsider", "cat", str(stored[0]))
    assert outsider.returncode != 0 and "Permission denied" in outsider.stderr
    # the database holds none of the runner's secrets
    res = team_desk.psql("sdagent", "SELECT count(*) FROM channel_state")
    assert res.returncode == 0
    dump = team_desk.psql("sdagent", "SELECT string_agg(t::text, ' ') FROM cursor t")
    assert "s3cret" not in dump.stdout
    # the runner reads its secret through its own command
    code = (
        "from pathlib import Path; from supportdesk.core.strict import read_trusted_config as r; "
        f"print(r(Path('{home}')).channel[0].imap.password())"
    )
    res = host.sh("sdrunner", str(host.venv / "bin" / "python"), "-c", code)
    assert res.stdout.strip() == "runner-only-s3cret", res.stderr


def test_the_runner_refuses_a_config_others_can_write(team_desk: TeamDesk) -> None:
    home = team_desk.runner_home
    host = team_desk.host
    cfg = home / "config.toml"
    os.chmod(cfg, 0o660)  # the admin's mistake (what the README used to say)
    try:
        res = host.run("sdrunner", "--home", str(home), "poll", "--once")
        assert res.returncode == 6
        err = one_sentence(res)
        assert str(cfg) in err and "writable by its group" in err
    finally:
        os.chmod(cfg, 0o640)
    # a program named by a *_cmd that others may replace is refused the same way
    tool = host.root / "tools"
    tool.mkdir(mode=0o777, exist_ok=True)
    os.chmod(tool, 0o777)
    (tool / "secret.sh").write_text("#!/bin/sh\nid\n")
    os.chmod(tool / "secret.sh", 0o755)
    text = RUNNER_CONFIG.format(url=team_desk.url, secret="x").replace(
        "/bin/cat x", f"{tool}/secret.sh"
    )
    _write_as(host, "sdrunner", cfg, text, 0o600)
    try:
        res = host.run("sdrunner", "--home", str(home), "poll", "--once")
        assert res.returncode == 6
        assert "folder above secret.sh" in one_sentence(res)
    finally:
        _write_as(host, "sdrunner", cfg, RUNNER_CONFIG.format(
            url=team_desk.url, secret=home / "imap-password"), 0o640)  # fmt: skip


def test_an_agent_cannot_move_the_sla_watermark(team_desk: TeamDesk) -> None:
    """The SLA pass's watermark (store/slamark.py) is the runner's row: an agent who could move
    it (or its hourly full pass) could keep breaches from being recorded."""
    for sql in (
        "INSERT INTO cursor (channel, key, value, updated_at) VALUES ('sla', 'watermark', "
        '\'{"at": "2099-01-01T00:00:00+00:00", "full_at": "2099-01-01T00:00:00+00:00", '
        '"stale": 0}\', now())',
        "UPDATE cursor SET value = '{}' WHERE channel = 'sla'",
        "DELETE FROM cursor WHERE channel = 'sla'",
    ):
        res = team_desk.psql("sdagent", sql)
        assert res.returncode != 0 and "denied" in res.stderr, (sql, res.stderr)

    # the invalidation counter is theirs to bump (their own changes bump it): it can only ever
    # make the next pass a full one
    def stale(user: str, value: str) -> subprocess.CompletedProcess[str]:
        return team_desk.psql(
            user,
            f"INSERT INTO meta (key, value) VALUES ('sla:stale', "
            f"'{value}') ON CONFLICT (key) DO UPDATE SET value = '{value}'",
        )

    team_desk.host.admin_sql(team_desk.db, "DELETE FROM meta WHERE key = 'sla:stale'")
    assert stale("sdagent", "7").returncode == 0
    assert stale("sdagent", "8").returncode == 0
    # but never set back (to the count a watermark was taken at, after an old-dated change
    # raised it: that change's ticket would wait for the hourly full pass), nor renamed away
    for user, sql in (
        ("sdagent", "UPDATE meta SET value = '7' WHERE key = 'sla:stale'"),
        ("sdlead", "UPDATE meta SET value = '0' WHERE key = 'sla:stale'"),
        ("sdagent", "UPDATE meta SET value = 'x' WHERE key = 'sla:stale'"),
        ("sdagent", "UPDATE meta SET key = 'sla:old' WHERE key = 'sla:stale'"),
    ):
        res = team_desk.psql(user, sql)
        assert res.returncode != 0 and "only goes up" in res.stderr, (sql, res.stderr)
    assert stale("sdagent", "7").returncode != 0
    # the largest readable count, then one more (what the next change writes): allowed; the
    # runner reads it as unreadable, passes in full, and may reset it
    assert stale("sdagent", "999999999999999999").returncode == 0
    assert stale("sdagent", "1000000000000000000").returncode == 0
    assert stale("sdrunner", "0").returncode == 0
    got = team_desk.host.admin_sql(team_desk.db, "SELECT value FROM meta WHERE key = 'sla:stale'")
    assert got == "0"


def test_team_init_again_and_a_removed_agent_loses_their_grants(team_desk: TeamDesk) -> None:
    host = team_desk.host
    res = host.run("postgres", "team", "init", "--db", team_desk.url, "--runner", "sdrunner")
    assert res.returncode == 0, res.stderr  # idempotent: after an upgrade, run it again
    res = team_desk.agent("agents", "add", "sdtemp", "--role", "agent", user="sdlead")
    assert res.returncode == 0, res.stderr
    assert team_desk.psql("sdtemp", "SELECT count(*) > 0 FROM ticket").stdout.strip() == "t"
    res = team_desk.agent("agents", "rm", "sdtemp", user="sdlead")
    assert res.returncode == 0, res.stderr
    res = team_desk.psql("sdtemp", "SELECT count(*) FROM ticket")
    assert res.returncode != 0 and "denied" in res.stderr
    res = team_desk.agent("agents", "add", "postgres", "--role", "agent", user="sdlead")
    assert res.returncode == 4
    assert "superuser or the runner" in one_sentence(res)


OLD_AUDIT_TABLE = """CREATE TABLE audit_log (id BIGSERIAL PRIMARY KEY,
  at TIMESTAMPTZ NOT NULL DEFAULT now(), db_user TEXT NOT NULL, on_behalf_of TEXT,
  tbl TEXT NOT NULL, op TEXT NOT NULL, row_id TEXT, detail TEXT NOT NULL DEFAULT '{}')"""


def test_team_init_on_a_desk_set_up_before_the_audit_log_migration(team_host: TeamHost) -> None:
    """A desk whose audit_log an older ``team init`` made (schema 0007): the new one upgrades
    it to the newest migration (0009), keeps its rows, and runs again cleanly."""
    host = team_host
    db = f"sd_old_{os.getpid()}_{next(_dbs)}"
    url = host.url(db)
    res = host.sh("postgres", f"{host.bindir}/createdb", "-h", str(host.socket_dir), db)
    assert res.returncode == 0, res.stderr
    code = (
        "import sys; from supportdesk.store.db import Database; "
        "from supportdesk.store.migrate import upgrade_if_needed; "
        "upgrade_if_needed(Database(sys.argv[1]), '0007')"
    )
    res = host.sh("postgres", str(host.venv / "bin" / "python"), "-c", code, url)
    assert res.returncode == 0, res.stderr
    host.admin_sql(db, OLD_AUDIT_TABLE)
    host.admin_sql(
        db, "INSERT INTO audit_log (db_user, tbl, op) VALUES ('old', 'ticket', 'update')"
    )
    for _ in range(2):
        res = host.run("postgres", "team", "init", "--db", url, "--runner", "sdrunner",
                       "--lead", "sdlead")  # fmt: skip
        assert res.returncode == 0, res.stderr
    assert host.admin_sql(db, "SELECT version_num FROM alembic_version") == head_revision()
    assert host.admin_sql(db, "SELECT db_user FROM audit_log ORDER BY id LIMIT 1") == "old"
    res = host.run("sdlead", "--db", url, "templates", "add", "hello", "--text", "Hi")
    assert res.returncode == 0, res.stderr
    rows = host.admin_sql(
        db, "SELECT db_user || '|' || tbl || '|' || op FROM audit_log ORDER BY id"
    )
    assert rows.splitlines()[0] == "old|ticket|update"  # kept
    assert rows.splitlines()[-1] == "sdlead|template|insert"  # and the triggers write to it
    res = host.psql("sdlead", db, "DELETE FROM audit_log")
    assert res.returncode != 0 and "permission denied" in res.stderr


# ---- SQLite trusted mode ---------------------------------------------------------------------


@pytest.fixture
def shared_home(team_host: TeamHost, tmp_path: Path) -> Path:
    """A SQLite home a group shares (trusted mode): 2770 sdrunner:sdteam."""
    base = team_host.root / "shared"
    base.mkdir(exist_ok=True, mode=0o755)
    home = base / f"desk{next(_dbs)}"
    gid = grp.getgrnam(GROUP).gr_gid
    uid = pwd.getpwnam("sdrunner").pw_uid
    home.mkdir(mode=0o2770)
    os.chown(home, uid, gid)
    os.chmod(home, 0o2770)
    res = team_host.run("sdrunner", "--home", str(home), "init")
    assert res.returncode == 0, res.stderr
    return home


def test_trusted_mode_says_roles_are_advisory(team_host: TeamHost, shared_home: Path) -> None:
    res = team_host.run("sdagent", "--home", str(shared_home), "status")
    assert res.returncode == 0, res.stderr
    assert "advisory" in res.stdout


def test_trusted_mode_runner_refuses_a_group_writable_config(
    team_host: TeamHost, shared_home: Path
) -> None:
    cfg = shared_home / "config.toml"
    os.chmod(cfg, 0o660)
    res = team_host.sh("sdagent", "sh", "-c", f"printf '# agent was here\\n' >> {cfg}")
    assert res.returncode == 0  # the group can write it: so the runner must not trust it
    res = team_host.run("sdrunner", "--home", str(shared_home), "poll", "--once")
    assert res.returncode == 6
    assert str(cfg) in one_sentence(res)


def test_trusted_mode_runner_never_follows_a_planted_link(
    team_host: TeamHost, shared_home: Path
) -> None:
    private = team_host.homes["sdrunner"] / f"private{next(_dbs)}"
    res = team_host.sh("sdrunner", "mkdir", "-m", "0700", str(private))
    assert res.returncode == 0, res.stderr
    res = team_host.sh(
        "sdagent",
        "sh",
        "-c",
        f"for i in 1 2 3 4 5; do ln -s {private} {shared_home}/attachments/$i; done",
    )
    assert res.returncode == 0, res.stderr
    mail = team_host.root / "mail-trusted"
    mail.mkdir(exist_ok=True, mode=0o755)
    (mail / "a.eml").write_text(_mail(1, attachment=True))
    os.chmod(mail / "a.eml", 0o644)
    res = team_host.run("sdrunner", "--home", str(shared_home), "import", str(mail / "a.eml"))
    assert res.returncode == 0, res.stderr
    assert list(private.iterdir()) == []
    res = team_host.sh("sdagent", "sqlite3", str(shared_home / "supportdesk.db"),
                       "SELECT note FROM attachment")  # fmt: skip
    assert "symbolic link" in res.stdout, res.stdout + res.stderr


# ---- stall intake with a template ------------------------------------------------------------

SLOW = (
    "{% for a in range(99999) %}{% for b in range(99999) %}{% for c in range(99999) %}"
    "{% endfor %}{% endfor %}{% endfor %}Thanks"
)


def _slow_mail(i: int) -> bytes:
    return (
        f"From: Slow {i} <slow{i}@example.test>\r\nTo: support@acme.test\r\n"
        f"Subject: Slow ack {i}\r\nMessage-ID: <slow{i}@example.test>\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
    ).encode()


def test_a_slow_template_stalls_neither_intake_nor_other_writers(
    team_desk: TeamDesk, imap_account: Any
) -> None:
    """The runner, as its own Unix user, fetches mail over IMAP while the acknowledgement
    template is hostile. Intake commits; the template is read and rendered after the commit,
    outside any write transaction (the test holds it at the template's read with a table lock,
    and meanwhile an agent writes); then the template hits its time limit and the built-in
    text goes out, with the reason logged and recorded."""
    host, db = team_desk.host, team_desk.db
    # the hostile agent may not plant or edit the acknowledgement template
    res = team_desk.agent("templates", "add", "acknowledgement", "--text", SLOW)
    assert res.returncode == 4 and "refused" in one_sentence(res)
    res = team_desk.psql(
        "sdagent", f"INSERT INTO template (name, body) VALUES ('acknowledgement', '{SLOW}')"
    )
    assert res.returncode != 0 and "permission denied" in res.stderr
    # a lead's template that is just as slow
    res = team_desk.agent("templates", "add", "acknowledgement", "--text", SLOW, user="sdlead")
    assert res.returncode == 0, res.stderr
    home = team_desk.runner_home
    secret = home / "imap-password"
    cfg = home / "config.toml"
    _write_as(host, "sdrunner", secret, imap_account.password + "\n", 0o600)
    text = RUNNER_CONFIG.format(url=team_desk.url, secret=secret)
    text = text.replace("port = 1\n", f"port = {imap_account.port}\n").replace(
        'username = "support"', f'username = "{imap_account.username}"'
    )
    _write_as(host, "sdrunner", cfg, text, 0o640)
    imap_account.append_many("INBOX", [_slow_mail(i) for i in (1, 2)])
    # hold the template table: whoever reads it now waits until the test lets go
    lock = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", *host.env("postgres"), f"{host.bindir}/psql", "-X",
         "-q", "-At", "-h", str(host.socket_dir), "-d", db],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/",
    )  # fmt: skip
    runner: subprocess.Popen[str] | None = None
    out = err = ""
    try:
        assert lock.stdin is not None and lock.stdout is not None
        lock.stdin.write("BEGIN; LOCK TABLE template IN ACCESS EXCLUSIVE MODE; SELECT 'held';\n")
        lock.stdin.flush()
        assert lock.stdout.readline().strip() == "held"
        runner = subprocess.Popen(
            ["runuser", "-u", "sdrunner", "--", *host.env("sdrunner"), host.supportdesk,
             "--home", str(home), "poll", "--once"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
        )  # fmt: skip

        def waiting_for_the_template() -> bool:
            return host.admin_sql(db, "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                                  "'sdrunner' AND wait_event_type = 'Lock'") == "1"  # fmt: skip

        wait_until(waiting_for_the_template, 90, 0.2, what="the runner to reach the template")
        # intake is committed: the tickets and their held acknowledgements are there
        ids = host.admin_sql(
            db, "SELECT id FROM ticket WHERE subject LIKE 'Slow ack %' ORDER BY id"
        )
        assert len(ids.split()) == 2, ids
        # and the runner holds no write transaction and not the writers' lock while it waits
        held = host.admin_sql(db, "SELECT count(*) FROM pg_stat_activity a LEFT JOIN pg_locks l "
                              "ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted "
                              "WHERE a.usename = 'sdrunner' AND (a.backend_xid IS NOT NULL "
                              "OR l.pid IS NOT NULL)")  # fmt: skip
        assert held == "0"
        # another writer goes on meanwhile: an agent's note, through the CLI
        first = ids.split()[0]
        res = team_desk.agent("tickets", "note", first, "--text", "looking", timeout=60)
        assert res.returncode == 0, res.stderr
        assert runner.poll() is None  # still waiting at the template: the note did not wait
    finally:
        if lock.stdin is not None:
            lock.stdin.write("COMMIT;\n")
            lock.stdin.close()
        lock.wait(30)
        if runner is not None:
            try:
                out, err = runner.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                runner.kill()
                out, err = runner.communicate()
        res = team_desk.agent("templates", "rm", "acknowledgement", user="sdlead")
        _write_as(
            host, "sdrunner", cfg, RUNNER_CONFIG.format(url=team_desk.url, secret=secret), 0o640
        )
        _write_as(host, "sdrunner", secret, "runner-only-s3cret\n", 0o600)
    assert "Traceback" not in err, err
    assert "support: 2 fetched, 2 new tickets" in out, out + err
    assert (
        "acknowledgement template 'acknowledgement' failed (the template took longer than 1 s"
        in err
    )
    acks = host.admin_sql(db, "SELECT m.text FROM outbox o JOIN message m ON m.id = o.message_id "
                          "JOIN ticket t ON t.id = o.ticket_id WHERE t.subject LIKE 'Slow ack %' "
                          "AND o.payload NOT LIKE '%ack_pending%'")  # fmt: skip
    assert acks.count("thank you for writing to Acme support") == 2, acks
    reasons = host.admin_sql(db, "SELECT data FROM event WHERE kind = 'ack_template_failed'")
    assert "took longer than 1 s" in reasons
    # what people changed is in the audit log under their logins; the refusals changed nothing
    rows = team_desk.audit("tbl IN ('message', 'template') AND op = 'insert'")
    assert any(r.startswith("sdagent||message|insert|") for r in rows)
    assert [r for r in rows if "|template|" in r and "sdagent" in r] == []
    assert any(r.startswith("sdlead||template|insert|") for r in rows)
