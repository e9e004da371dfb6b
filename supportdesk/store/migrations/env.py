"""Alembic environment: runs on the Database handed over in config.attributes."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import supportdesk.store.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate must leave the search index alone (FTS5 tables are not in the models)."""
    # ... nor the team desk's audit_log (migration 0008, PostgreSQL only: no model), nor the
    # ticket tally its triggers keep (migration 0011, store/tally.py)
    return not (
        type_ == "table" and (name or "").startswith(("search_doc", "audit_log", "ticket_tally"))
    )


def run_migrations_online() -> None:
    db = config.attributes.get("database")
    if db is not None:
        engine = db.write_engine
    else:  # alembic CLI / autogenerate
        import sqlalchemy as sa

        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
