"""Alembic migrations, run programmatically: an older database is upgraded on open."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supportdesk.store.db import Database


import sqlalchemy as sa

from supportdesk.store.quick import MIGRATIONS, migration_heads


def head_revision() -> str:
    """The newest revision, read from the scripts' headers (cheap: alembic is not imported)."""
    heads = migration_heads()
    if len(heads) != 1:
        from alembic.script import ScriptDirectory

        return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())
    return heads.pop()


def _alembic_config(db: Database):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["database"] = db
    return cfg


def current_revision(db: Database) -> str | None:
    with db.read_engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else None


_HEAD_CACHE: dict[str, str] = {}


def upgrade_if_needed(db: Database, revision: str = "head") -> bool:
    """Upgrade to ``revision``; True if anything ran."""
    if revision == "head":
        head = _HEAD_CACHE.get("head") or head_revision()
        _HEAD_CACHE["head"] = head
        if current_revision(db) == head:
            return False
    from alembic import command

    command.upgrade(_alembic_config(db), revision)
    return True


def downgrade(db: Database, revision: str) -> None:
    from alembic import command

    command.downgrade(_alembic_config(db), revision)
