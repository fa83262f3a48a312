"""Alembic environment for bindu-storage: asyncpg through SQLAlchemy, one schema per run.

The target schema comes from ``config.attributes["schema"]`` (programmatic use), ``-x schema=``
or ``STORAGE__POSTGRES_SCHEMA`` (default ``public``). Each run holds a transaction-scoped advisory
lock, so several processes migrating at once apply every revision exactly once, and sets the
schema as ``search_path`` for that transaction only (``SET LOCAL``), so revisions use plain names.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import context
from bindu_storage.storage import migrate

config = context.config


def _schema() -> str:
    schema = config.attributes.get("schema") or context.get_x_argument(as_dictionary=True).get(
        "schema"
    )
    return migrate.resolve_schema(schema)


def _run(connection: Connection) -> None:
    schema = _schema()
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        for statement, params in migrate.preamble(schema):
            connection.execute(text(statement), params)
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(migrate.sqlalchemy_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    schema = _schema()
    context.configure(
        url=migrate.sqlalchemy_url(),
        literal_binds=True,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.execute(f"SET LOCAL search_path TO {migrate.quote_ident(schema)}")
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
