"""Programmatic alembic: ``upgrade``/``downgrade``/``current`` for one schema, under a lock.

The revision scripts are the single source of truth for the schema. In a checkout they live in
the top-level ``alembic/`` folder; an installed wheel carries them as ``bindu_storage/_alembic``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from bindu_storage.dsn import mask_secrets, to_sqlalchemy_url
from bindu_storage.errors import MigrationError
from bindu_storage.storage.sql import quote_ident, validate_schema_name

__all__ = [
    "current_revision",
    "downgrade",
    "head_revision",
    "preamble",
    "quote_ident",
    "resolve_schema",
    "script_location",
    "sqlalchemy_url",
    "upgrade",
]

_LOCK_NAMESPACE = "bindu_storage.migrate"


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/`` (package copy first, then checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError("alembic scripts not found (neither bindu_storage/_alembic nor ./alembic)")


def resolve_schema(schema: str | None) -> str:
    """The schema to migrate: the argument, else ``STORAGE__POSTGRES_SCHEMA``, else public."""
    chosen = schema or os.environ.get("STORAGE__POSTGRES_SCHEMA") or "public"
    return validate_schema_name(chosen, "schema")


def sqlalchemy_url(url: str | None = None) -> str:
    """SQLAlchemy URL for ``url`` or ``DATABASE_URL``."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise MigrationError("DATABASE_URL is not set; alembic needs it to reach the database")
    return to_sqlalchemy_url(url)


def preamble(schema: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Statements run first in every migration transaction: refuse a standby, lock, scope."""
    yield (
        "DO $$ BEGIN IF pg_is_in_recovery() THEN RAISE EXCEPTION "
        "'refusing to migrate a hot standby (read-only replica): run migrations on the primary'; "
        "END IF; END $$",
        {},
    )
    yield "SELECT pg_advisory_xact_lock(hashtext(:key))", {"key": f"{_LOCK_NAMESPACE}:{schema}"}
    yield f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}", {}
    yield f"SET LOCAL search_path TO {quote_ident(schema)}", {}


def _config(schema: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["schema"] = schema
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the scripts declare."""
    head = ScriptDirectory.from_config(_config("public")).get_current_head()
    assert head is not None
    return head


async def _with_connection(url: str, schema: str, action: Any) -> Any:
    engine = create_async_engine(to_sqlalchemy_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(lambda sync: action(_config(schema, sync), sync))
            await connection.commit()
            return result
    except MigrationError:
        raise
    except Exception as exc:  # mask the password of the URL in whatever the driver said
        message = mask_secrets(str(exc), url)
        if "hot standby" in message:
            raise MigrationError(
                "refusing to migrate a hot standby (read-only replica): run migrations on the primary"
            ) from None
        raise MigrationError(f"migration of schema {schema!r} failed: {message}") from None
    finally:
        await engine.dispose()


async def upgrade(url: str, schema: str | None = None, revision: str = "head") -> None:
    """Upgrade ``schema`` to ``revision`` (creating the schema); safe to run concurrently."""
    await _with_connection(url, resolve_schema(schema), lambda cfg, _c: command.upgrade(cfg, revision))


async def downgrade(url: str, schema: str | None = None, revision: str = "-1") -> None:
    """Downgrade ``schema`` to ``revision`` (``-1``: one step, ``base``: everything)."""
    await _with_connection(
        url, resolve_schema(schema), lambda cfg, _c: command.downgrade(cfg, revision)
    )


async def current_revision(url: str, schema: str | None = None) -> str | None:
    """The revision recorded in ``schema``, or None when it was never migrated."""
    name = resolve_schema(schema)

    def read(_cfg: Config, connection: Connection) -> str | None:
        exists = connection.execute(
            text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{quote_ident(name)}.alembic_version"}
        ).scalar()
        if not exists:
            return None
        return connection.execute(
            text(f"SELECT version_num FROM {quote_ident(name)}.alembic_version")
        ).scalar()

    return await _with_connection(url, name, read)
