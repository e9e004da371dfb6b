"""Alembic environment: runs on the Database handed over in config.attributes."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import supportdesk.store.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


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
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
