"""Alembic environment for bindu-storage: asyncpg through SQLAlchemy, one schema per run.

On the command line the database and schema come from the settings the CLI and the library
read (``bindu_storage.settings``: the environment, then a ``.env`` file in the working
directory), never from alembic.ini: ``DATABASE_URL`` (the embedded server's when
``STORAGE_BACKEND=embedded``; alembic is a database tool, so a ``DATABASE_URL`` is used whatever
the backend, as upstream's alembic does), and ``-x schema=NAME``, else ``STORAGE__POSTGRES_SCHEMA``
(or the schema of ``POSTGRES_DID``/``DID``), default ``public``. Programmatic use
(``bindu_storage.storage.migrate``) passes both in ``config.attributes``.

A run that changes the database opens its transaction with ``migrate.preamble``: refuse a hot
standby, take an advisory lock keyed by the schema (several processes migrating at once apply
every revision exactly once), create the schema, ``SET LOCAL search_path`` to it so the
revisions use plain names. Then, for an upgrade, a schema upstream Bindu made is adopted
(``bindu_storage.storage.adopt``); a version neither we nor upstream wrote is refused by name.
Read-only commands (``alembic current``) skip it, so they work on a
standby too. On the command line, failures print as one password-free ``FAILED:`` line.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alembic import context, util
from bindu_storage.errors import StorageError
from bindu_storage.settings import StorageSettings, load_settings
from bindu_storage.storage import adopt, migrate

config = context.config


def _schema() -> str:
    chosen = config.attributes.get("schema") or context.get_x_argument(as_dictionary=True).get("schema")
    return migrate.resolve_schema(chosen)


def _settings() -> StorageSettings:
    """The storage settings, as the CLI reads them (environment and ``.env``); one clean line on error."""
    from pydantic import ValidationError

    from bindu_storage.cli.app import known_urls, one_line

    try:
        return load_settings().storage
    except ValidationError as exc:
        raise util.CommandError(one_line(exc, known_urls())) from None


def _command_line_target() -> tuple[str, str | None]:
    """The schema and the database URL (None for ``--sql``) of an ``alembic`` command."""
    cfg = _settings()
    chosen = context.get_x_argument(as_dictionary=True).get("schema")
    schema = migrate.resolve_schema(chosen or cfg.postgres_schema)
    if context.is_offline_mode():
        return schema, None
    if cfg.backend == "embedded":
        from bindu_storage.embedded import embedded_database_url

        return schema, embedded_database_url(cfg.embedded_data_dir)
    if not cfg.postgres_url:
        raise util.CommandError(
            "DATABASE_URL is not set (in the environment or .env); alembic needs it to reach the database"
        )
    return schema, cfg.postgres_url


def _run(connection: Connection, schema: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    options = context.get_context().opts
    read_only = bool(options.get("dont_mutate"))
    direction = getattr(options.get("fn"), "__name__", "")  # alembic's upgrade/downgrade callbacks
    with context.begin_transaction():
        if not read_only:
            for statement in migrate.preamble(schema):
                connection.execute(text(statement))
            if direction in ("upgrade", "downgrade"):
                ours = {script.revision for script in context.script.walk_revisions()}
                adopt.prepare(connection, schema, upgrading=direction == "upgrade", ours=ours)
        context.run_migrations()


async def _run_online(url: str, schema: str) -> None:
    engine = migrate.create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, schema)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline(schema: str) -> None:
    """``--sql``: print the SQL of the migration (no database needed)."""
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        for statement in migrate.preamble(schema):
            context.execute(statement)
        context.run_migrations()


def _run_command_line() -> None:
    """Run for the ``alembic`` command: log like alembic does, fail with one clean line."""
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        schema, url = _command_line_target()
    except StorageError as exc:
        raise util.CommandError(str(exc)) from None
    if url is None:
        _run_offline(schema)
        return
    try:
        asyncio.run(_run_online(url, schema))
    except util.CommandError:
        raise
    except StorageError as exc:
        raise util.CommandError(str(exc)) from None
    except Exception as exc:
        raise util.CommandError(str(migrate.failure(exc, url, schema))) from None


if (connection := config.attributes.get("connection")) is not None:
    _run(connection, _schema())  # programmatic: migrate.py owns the connection and the errors
else:
    _run_command_line()
