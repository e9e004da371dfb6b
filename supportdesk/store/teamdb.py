"""Team desks on PostgreSQL: the database, not the program, decides what each person may do.

Every person logs in as themselves (``peer`` authentication over the Unix socket on one host,
per-agent credentials across hosts), so the database's ``session_user`` is the acting agent.
``install`` (run by the database owner through ``supportdesk team init``) sets up:

* the group roles ``supportdesk_agent``, ``supportdesk_lead`` (an agent and more) and
  ``supportdesk_runner``; login roles for agents are made by a trigger on the ``agent`` table;
* table privileges: agents read everything and write the day's work (tickets, messages,
  customers, tags, replies); only leads write agents, templates, knowledge-base articles and
  groups, and only leads delete; nobody but the owner may change or delete ``audit_log``;
  ``event`` (the activity history) takes new rows from everyone, deletions from leads only;
* row-level security on ``agent``: an agent may change their own display name, e-mail and group;
* triggers (``SECURITY DEFINER``, so they run with the owner's rights whoever fires them):
  merging and unmerging customers and tickets and changing more than ``BULK_LIMIT`` tickets in
  one transaction are refused unless ``session_user`` is a lead; every event's ``agent`` is the
  real login (a lead acting for someone with ``--as`` is recorded as both); and ``audit_log``
  gets one row per change people make, with ``session_user``.

The runner's own intake is not repeated in ``audit_log`` (the event history records it); the
owner and superusers are trusted. Nothing here touches SQLite desks, where roles stay advisory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from supportdesk.core.errors import StoreError

AGENT, LEAD, RUNNER = "supportdesk_agent", "supportdesk_lead", "supportdesk_runner"
BULK_LIMIT = 50
AUDITED = (
    "agent", "customer", "identity", "ticket", "message", "attachment", "template",
    "kb_article", "desk_group", "tag", "ticket_tag", "event", "outbox", "saved_view", "journal",
)  # fmt: skip
AGENT_DELETES = ("presence", "ticket_tag", "saved_view", "search_doc")
LEAD_ONLY = ("agent", "template", "kb_article", "desk_group")
RUNNER_ONLY = ("lease", "cursor", "channel_state")  # agents and leads only read these
NOBODY = ("audit_log", "event", "alembic_version")  # besides the owner

_ROLES = f"""
DO $$ BEGIN
  IF to_regrole('{AGENT}') IS NULL THEN CREATE ROLE {AGENT} NOLOGIN; END IF;
  IF to_regrole('{LEAD}') IS NULL THEN CREATE ROLE {LEAD} NOLOGIN; END IF;
  IF to_regrole('{RUNNER}') IS NULL THEN CREATE ROLE {RUNNER} NOLOGIN; END IF;
END $$
"""

_SD = "SECURITY DEFINER SET search_path = pg_catalog, public"

_FUNCTIONS = (
    # a member of the role (superusers and the owner count as every role)
    f"""CREATE OR REPLACE FUNCTION sd_is(role_name text) RETURNS boolean LANGUAGE sql STABLE
    {_SD} AS $$ SELECT pg_has_role(session_user, role_name, 'MEMBER') $$""",
    # granted the role itself, not just a superuser
    f"""CREATE OR REPLACE FUNCTION sd_granted(role_name text) RETURNS boolean LANGUAGE sql STABLE
    {_SD} AS $$ SELECT EXISTS (SELECT 1 FROM pg_auth_members m
      JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      WHERE r.rolname = role_name AND u.rolname = session_user) $$""",
    f"""CREATE OR REPLACE FUNCTION sd_trusted() RETURNS boolean LANGUAGE sql STABLE {_SD} AS $$
      SELECT sd_is('{LEAD}') OR sd_is('{RUNNER}') $$""",
    f"""CREATE OR REPLACE FUNCTION sd_on_behalf() RETURNS text LANGUAGE sql STABLE {_SD} AS $$
      SELECT CASE WHEN sd_is('{LEAD}')
        THEN nullif(current_setting('supportdesk.on_behalf', true), '') END $$""",
    f"""CREATE OR REPLACE FUNCTION sd_refuse(what text) RETURNS void LANGUAGE plpgsql {_SD} AS $$
    BEGIN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('%s needs the lead role, and %s is not a lead', what, session_user);
    END $$""",
    f"""CREATE OR REPLACE FUNCTION sd_audit() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    DECLARE detail jsonb; rid text;
    BEGIN
      IF sd_granted('{RUNNER}') AND NOT sd_is('{LEAD}') THEN RETURN NULL; END IF;
      IF TG_TABLE_NAME = 'event' AND TG_OP = 'INSERT' THEN RETURN NULL; END IF;  -- it says who
      IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, jsonb_build_array(o.value, n.value)) INTO detail
          FROM jsonb_each(to_jsonb(NEW)) n JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
          WHERE n.value IS DISTINCT FROM o.value;
        IF detail IS NULL THEN RETURN NULL; END IF;
        rid := to_jsonb(NEW) ->> 'id';
      ELSIF TG_OP = 'INSERT' THEN
        detail := to_jsonb(NEW); rid := to_jsonb(NEW) ->> 'id';
      ELSE
        detail := to_jsonb(OLD); rid := to_jsonb(OLD) ->> 'id';
      END IF;
      INSERT INTO audit_log (db_user, on_behalf_of, tbl, op, row_id, detail)
        VALUES (session_user, sd_on_behalf(), TG_TABLE_NAME, lower(TG_OP), rid, detail::text);
      RETURN NULL;
    END $$""",
    # every event row names the real login; a lead acting for someone is recorded as such
    f"""CREATE OR REPLACE FUNCTION sd_event_actor() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    DECLARE ob text := sd_on_behalf(); extra jsonb;
    BEGIN
      IF sd_granted('{RUNNER}') AND NOT sd_is('{LEAD}') THEN RETURN NEW; END IF;
      IF NOT sd_granted('{AGENT}') AND NOT sd_granted('{LEAD}') AND sd_is('{LEAD}') THEN
        RETURN NEW;  -- the owner or a superuser (set-up, repairs)
      END IF;
      IF ob IS NOT NULL THEN
        NEW.agent := ob;
        extra := jsonb_build_object('by', session_user::text, 'on_behalf_of', ob);
      ELSE
        NEW.agent := session_user;
        extra := '{{}}'::jsonb;
      END IF;
      BEGIN
        NEW.data := (coalesce(nullif(NEW.data, ''), '{{}}')::jsonb || extra)::text;
      EXCEPTION WHEN others THEN
        NEW.data := extra::text;
      END;
      RETURN NEW;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION sd_customer_guard() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    BEGIN
      IF NEW.merged_into_id IS DISTINCT FROM OLD.merged_into_id AND NOT sd_trusted() THEN
        PERFORM sd_refuse('merging or unmerging customers');
      END IF;
      RETURN NEW;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION sd_ticket_guard() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    DECLARE n int;
    BEGIN
      IF sd_trusted() THEN RETURN NEW; END IF;
      IF (coalesce(NEW.reply_to_address, '') LIKE 'merged:%')
         IS DISTINCT FROM (coalesce(OLD.reply_to_address, '') LIKE 'merged:%') THEN
        PERFORM sd_refuse('merging or unmerging tickets');
      END IF;
      -- tickets changed in this transaction, in a table only this function (the owner) owns
      IF to_regclass('pg_temp.sd_touched') IS NULL THEN
        CREATE TEMP TABLE sd_touched (ticket_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;
      ELSIF (SELECT c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
             FROM pg_class c WHERE c.oid = to_regclass('pg_temp.sd_touched')) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
          MESSAGE = 'a table named sd_touched that supportdesk did not make is in the way';
      END IF;
      INSERT INTO pg_temp.sd_touched VALUES (NEW.id) ON CONFLICT DO NOTHING;
      SELECT count(*) INTO n FROM pg_temp.sd_touched;
      IF n > {BULK_LIMIT} THEN
        PERFORM sd_refuse('changing more than {BULK_LIMIT} tickets at once');
      END IF;
      RETURN NEW;
    END $$""",
    # the SLA watermark's invalidation counter (store/slamark.py) only ever goes up for people:
    # set back, it would hide an old-dated change from the next pass; the runner (and the
    # owner) reset an unreadable one. A counter outside 0..10^18 is unreadable to the runner.
    f"""CREATE OR REPLACE FUNCTION sd_meta_guard() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    BEGIN
      IF OLD.key <> 'sla:stale' OR sd_is('{RUNNER}') THEN RETURN NEW; END IF;
      IF NEW.key IS DISTINCT FROM OLD.key THEN
        PERFORM sd_refuse_stale();
      END IF;
      IF OLD.value ~ '^[0-9]{{1,18}}$' AND NOT (NEW.value ~ '^[0-9]{{1,19}}$'
                                              AND NEW.value::numeric > OLD.value::numeric) THEN
        PERFORM sd_refuse_stale();
      END IF;
      RETURN NEW;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION sd_refuse_stale() RETURNS void LANGUAGE plpgsql {_SD} AS $$
    BEGIN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('the SLA invalidation counter only goes up, and %s is not the runner',
                         session_user);
    END $$""",
    # a row in agent makes (or updates) the login role of the same name and its grants
    f"""CREATE OR REPLACE FUNCTION sd_agent_role() RETURNS trigger LANGUAGE plpgsql {_SD} AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = NEW.name
                 AND (r.rolsuper OR pg_has_role(r.oid, '{RUNNER}', 'MEMBER'))) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
          MESSAGE = format('%s is a superuser or the runner and cannot be an agent', NEW.name);
      END IF;
      IF to_regrole(quote_ident(NEW.name)) IS NULL THEN
        EXECUTE format('CREATE ROLE %I LOGIN', NEW.name);
      END IF;
      IF NEW.active THEN
        EXECUTE format('GRANT {AGENT} TO %I', NEW.name);
      ELSIF pg_has_role(NEW.name, '{AGENT}', 'MEMBER') THEN
        EXECUTE format('REVOKE {AGENT} FROM %I', NEW.name);
      END IF;
      IF NEW.active AND NEW.role = 'lead' THEN
        EXECUTE format('GRANT {LEAD} TO %I', NEW.name);
      ELSIF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                    JOIN pg_roles u ON u.oid = m.member
                    WHERE r.rolname = '{LEAD}' AND u.rolname = NEW.name) THEN
        EXECUTE format('REVOKE {LEAD} FROM %I', NEW.name);
      END IF;
      RETURN NULL;
    END $$""",
)


def _triggers(tables: list[str]) -> list[str]:
    out = []
    for table in (t for t in AUDITED if t in tables):
        out += [
            f"DROP TRIGGER IF EXISTS sd_audit ON {table}",
            f"CREATE TRIGGER sd_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION sd_audit()",
        ]
    for name, table, when in (
        ("sd_event_actor", "event", "BEFORE INSERT"),
        ("sd_customer_guard", "customer", "BEFORE UPDATE"),
        ("sd_ticket_guard", "ticket", "BEFORE UPDATE"),
        ("sd_agent_role", "agent", "AFTER INSERT OR UPDATE OF name, role, active"),
        ("sd_meta_guard", "meta", "BEFORE UPDATE"),
    ):
        out += [
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
    return out


def _grants(tables: list[str]) -> list[str]:
    every = ", ".join(tables)
    have = set(tables)

    def only(names: tuple[str, ...]) -> str:
        return ", ".join(n for n in names if n in have)

    lead_writes = ", ".join(t for t in tables if t not in NOBODY)
    runner_writes = ", ".join(t for t in tables if t not in NOBODY and t not in LEAD_ONLY)
    # the day's work: everything but the lead's tables, the runner's state and the logs
    agent_writes = ", ".join(
        t for t in tables if t not in NOBODY and t not in LEAD_ONLY and t not in RUNNER_ONLY
    )
    return [
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {AGENT}, {RUNNER}",
        f"REVOKE ALL ON {every} FROM PUBLIC, {AGENT}, {LEAD}, {RUNNER}",
        f"GRANT SELECT ON {every} TO {AGENT}, {RUNNER}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {AGENT}, {RUNNER}",
        f"GRANT INSERT, UPDATE ON {agent_writes} TO {AGENT}",
        f"GRANT INSERT ON event TO {AGENT}, {RUNNER}",
        f"GRANT DELETE ON {only(AGENT_DELETES)} TO {AGENT}",
        f'GRANT UPDATE (display_name, email, "group") ON agent TO {AGENT}',
        f"GRANT UPDATE (usage_count) ON template TO {AGENT}",
        f"GRANT INSERT, UPDATE, DELETE ON {lead_writes} TO {LEAD}",
        f"GRANT DELETE ON event TO {LEAD}",  # undoing a split removes its events (audited)
        f"GRANT INSERT, UPDATE, DELETE ON {runner_writes} TO {RUNNER}",
        "ALTER TABLE agent ENABLE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS agent_read ON agent",
        "CREATE POLICY agent_read ON agent FOR SELECT USING (true)",
        "DROP POLICY IF EXISTS agent_self ON agent",
        f"CREATE POLICY agent_self ON agent FOR UPDATE TO {AGENT} "
        "USING (name = session_user) WITH CHECK (name = session_user)",
        "DROP POLICY IF EXISTS agent_lead ON agent",
        f"CREATE POLICY agent_lead ON agent FOR ALL TO {LEAD} USING (true) WITH CHECK (true)",
    ]


def _x(conn: sa.Connection, sql: str) -> None:
    """Run one statement as written (no parameters: a '%' in plpgsql is not a placeholder)."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
    finally:
        cur.close()


def install(conn: sa.Connection, *, runners: list[str], leads: list[str]) -> None:
    """Create the roles, privileges, policies and triggers (idempotent); run as the owner on a
    schema at the newest revision (the audit_log table is migration 0008's)."""
    _x(conn, _ROLES)
    conn.exec_driver_sql(f"GRANT {AGENT} TO {LEAD}")
    if conn.execute(sa.text("SELECT to_regclass('public.audit_log')")).scalar() is None:
        raise StoreError(
            "the database has no audit_log table: upgrade its schema first (team init does, "
            "through migration 0008)"
        )
    dbname = conn.exec_driver_sql("SELECT current_database()").scalar_one()
    # no temporary tables for people: the bulk guard's own table cannot be forged
    conn.exec_driver_sql(f'REVOKE TEMPORARY ON DATABASE "{dbname}" FROM PUBLIC')
    conn.exec_driver_sql(f'REVOKE CONNECT ON DATABASE "{dbname}" FROM PUBLIC')
    conn.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{dbname}" TO {AGENT}, {RUNNER}')
    for stmt in _FUNCTIONS:
        _x(conn, stmt)
    conn.exec_driver_sql("REVOKE ALL ON FUNCTION sd_refuse(text) FROM PUBLIC")
    conn.exec_driver_sql("REVOKE ALL ON FUNCTION sd_refuse_stale() FROM PUBLIC")
    tables = list(
        conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).scalars()
    )
    for stmt in (*_grants(tables), *_triggers(tables)):
        _x(conn, stmt)
    for name in runners:
        role = _ident(conn, name)
        if conn.execute(sa.text("SELECT to_regrole(:n)").bindparams(n=role)).scalar() is None:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT {RUNNER} TO {role}")
    for name in leads:
        conn.execute(
            sa.text(
                "INSERT INTO agent (name, display_name, role, active, created_at) "
                "VALUES (:n, '', 'lead', true, now() AT TIME ZONE 'utc') "
                "ON CONFLICT (name) DO UPDATE SET role = 'lead', active = true"
            ).bindparams(n=name)
        )


def _ident(conn: sa.Connection, name: str) -> str:
    return str(conn.execute(sa.text("SELECT quote_ident(:n)").bindparams(n=name)).scalar_one())


@dataclass(frozen=True)
class TeamLogin:
    """Who the database says is connected, on a team desk."""

    user: str
    lead: bool
    runner: bool


def login(conn: sa.Connection) -> TeamLogin | None:
    """The session's login on a team desk; None for a database ``team init`` never set up."""
    row: Any = conn.exec_driver_sql(
        "SELECT to_regprocedure('public.sd_trusted()') IS NOT NULL, session_user"
    ).first()
    if row is None or not row[0]:
        return None
    lead, runner = conn.exec_driver_sql(
        f"SELECT pg_has_role(session_user, '{LEAD}', 'MEMBER'), "
        f"pg_has_role(session_user, '{RUNNER}', 'MEMBER')"
    ).one()
    return TeamLogin(user=str(row[1]), lead=bool(lead), runner=bool(runner))


def act_on_behalf(engine: sa.Engine, agent: str) -> None:
    """Every new connection of ``engine`` says a lead is acting for ``agent`` (the triggers
    honour it for leads only)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SELECT set_config('supportdesk.on_behalf', %s, false)", (agent,))
        cur.close()
        dbapi_conn.commit()

    engine.dispose()
