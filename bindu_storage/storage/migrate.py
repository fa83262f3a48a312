"""Programmatic alembic: ``upgrade``/``downgrade``/``current_revision`` of one schema, under a lock.

The revision scripts are the single source of truth for the schema. In a checkout they live in
the top-level ``alembic/`` folder; an installed wheel carries them as ``bindu_storage/_alembic``.

Every migration runs in one transaction that first refuses a hot standby, then takes a
transaction-scoped advisory lock keyed by the schema (so processes starting at once apply each
revision exactly once, the others wait and find nothing left to do), creates the schema if
needed and points ``search_path`` at it for that transaction only (``SET LOCAL``), so the
revisions can use plain table names. Connections go through asyncpg with the URL exactly as
given (the same parsing as ``PostgresStorage``); errors never carry the URL's password.

A schema upstream Bindu made is adopted by ``upgrade`` in that same transaction, and
``to_upstream`` hands a schema back to upstream (both in ``bindu_storage.storage.adopt``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidValueError,
    MigrationError,
    StorageConnectionError,
    StorageError,
)
from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage import adopt
from bindu_storage.storage.retry import TRANSIENT_ERRORS

__all__ = [
    "HandBack",
    "create_engine",
    "current_revision",
    "database_url",
    "downgrade",
    "failure",
    "head_revision",
    "preamble",
    "resolve_schema",
    "script_location",
    "to_upstream",
    "upgrade",
]

T = TypeVar("T")

LOCK_NAMESPACE = "bindu_storage.migrate"
"""Prefix of the advisory-lock key (``hashtext('bindu_storage.migrate/<schema>')``)."""

APPLICATION_NAME = "bindu-storage-migrate"
"""``application_name`` of migration connections (visible in ``pg_stat_activity``)."""


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/`` (package copy first, then checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise MigrationError("alembic scripts not found (neither bindu_storage/_alembic nor ./alembic)")


def resolve_schema(schema: str | None) -> str:
    """The schema to migrate: the argument, else ``STORAGE__POSTGRES_SCHEMA``, else public."""
    chosen = schema or os.environ.get("STORAGE__POSTGRES_SCHEMA") or "public"
    return validate_schema_name(chosen, "schema")


def database_url() -> str:
    """The URL in ``DATABASE_URL`` (what the ``alembic`` command line migrates)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise MigrationError("DATABASE_URL is not set; alembic needs it to reach the database")
    return url


def create_engine(url: str) -> AsyncEngine:
    """A pool-less SQLAlchemy engine whose connections asyncpg opens from ``url`` itself.

    The URL never goes through SQLAlchemy's parser, so ``sslmode=`` and other libpq-style
    parameters mean what they mean to ``PostgresStorage``.
    """
    try:
        dsn = to_asyncpg_dsn(url, "")  # validated before any connection; the message never quotes it
    except ValueError as exc:
        raise InvalidValueError(f"DATABASE_URL: {exc}") from None

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            dsn, statement_cache_size=0, server_settings={"application_name": APPLICATION_NAME}
        )

    def creator() -> Any:
        # PgBouncer in transaction mode: no cached statements, and names no other process
        # uses (asyncpg numbers them from 1 in every process; a leftover one would collide)
        return engine.sync_engine.dialect.dbapi.connect(  # type: ignore[union-attr]
            async_creator_fn=connect, prepared_statement_cache_size=0,
            prepared_statement_name_func=lambda: f"__bindu_migrate_{uuid.uuid4().hex}__",
        )

    engine = create_async_engine("postgresql+asyncpg://", poolclass=NullPool, creator=creator)
    return engine


def preamble(schema: str) -> list[str]:
    """The statements that open every migration transaction: refuse a standby, lock, scope.

    The schema is created only when it is missing (``CREATE SCHEMA IF NOT EXISTS`` would need
    the CREATE privilege on the database even when the schema exists, which a role that merely
    owns its schema does not have). ``schema`` is a validated plain identifier.
    """
    name = quote_ident(validate_schema_name(schema))
    return [
        "DO $$ BEGIN IF pg_is_in_recovery() THEN RAISE EXCEPTION USING "
        "ERRCODE = 'read_only_sql_transaction', MESSAGE = 'the server is a hot standby "
        "(read-only replica); run migrations on the primary'; END IF; END $$",
        f"SELECT pg_advisory_xact_lock(hashtext('{LOCK_NAMESPACE}/{schema}'))",
        f"DO 'BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = ''{schema}'') "
        f"THEN CREATE SCHEMA {name}; END IF; END'",
        f"SET LOCAL search_path TO {name}",
    ]


def failure(exc: BaseException, url: str | None, schema: str) -> StorageError:
    """The typed, password-free error for a migration of ``schema`` that raised ``exc``.

    A read-only server (hot standby) gives ``MigrationError``; a transient connection problem
    (refused, lost, too many connections, server starting) gives ``StorageConnectionError``;
    anything else ``MigrationError`` with the server's reason and the failing statement.
    """
    chain = _causes(exc)
    root = chain[-1]
    reason = str(root) or type(root).__name__
    if isinstance(exc, sa_exc.StatementError) and exc.statement:
        reason += f" [SQL: {' '.join(exc.statement.split())[:300]}]"
    reason = mask_secrets(reason, url)
    target = _target(url)
    if any(isinstance(e, asyncpg.ReadOnlySQLTransactionError) for e in chain):
        return MigrationError(f"refusing to migrate schema {schema!r} on {target}: {reason}")
    if any(isinstance(e, TRANSIENT_ERRORS) for e in chain):
        return StorageConnectionError(
            f"migration of schema {schema!r} could not reach {target}: {reason}"
        )
    return MigrationError(f"migration of schema {schema!r} on {target} failed: {reason}")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, then ``__cause__``), outermost first."""
    chain = [exc]
    while len(chain) < 10:
        last = chain[-1]
        inner = getattr(last, "orig", None) or last.__cause__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _target(url: str | None) -> str:
    try:
        return describe_target(url) if url else "the database"
    except ValueError:
        return "the database"


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
    if head is None:
        raise MigrationError(f"no revisions found in {script_location()}")
    return head


_IN_PROCESS = threading.Lock()
"""alembic's ``context`` and ``op`` are module-level proxies to the migration running now, so two
migrations interleaving in one process (storages connecting at once on one event loop, or loops
in several threads) would run statements through each other's proxies. One at a time per
process; the advisory lock orders processes."""


@asynccontextmanager
async def _one_at_a_time() -> AsyncIterator[None]:
    while not _IN_PROCESS.acquire(blocking=False):  # polling: a cancelled waiter holds nothing
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        _IN_PROCESS.release()


async def _with_connection(url: str, schema: str, action: Callable[[Config, Connection], T]) -> T:
    engine = create_engine(url)
    try:
        async with _one_at_a_time(), engine.connect() as connection:
            result = await connection.run_sync(lambda sync: action(_config(schema, sync), sync))
            await connection.commit()
            return result
    except StorageError:
        raise
    except Exception as exc:
        raise failure(exc, url, schema) from None
    finally:
        await engine.dispose()


async def upgrade(url: str, schema: str | None = None, revision: str = "head") -> None:
    """Upgrade ``schema`` to ``revision`` (creating the schema); safe to run concurrently.

    Raises ``MigrationError`` on a hot standby or when a revision fails (nothing is applied
    then: all revisions run in one transaction), ``StorageConnectionError`` when the server
    cannot be reached.
    """
    name = resolve_schema(schema)
    await _with_connection(url, name, lambda cfg, _conn: command.upgrade(cfg, revision))


async def downgrade(url: str, schema: str | None = None, revision: str = "-1") -> None:
    """Downgrade ``schema`` to ``revision`` (``-1``: one step, ``base``: everything)."""
    name = resolve_schema(schema)
    await _with_connection(url, name, lambda cfg, _conn: command.downgrade(cfg, revision))


async def current_revision(url: str, schema: str | None = None) -> str | None:
    """The revision recorded in ``schema``, or None when it was never migrated (read-only)."""
    name = resolve_schema(schema)

    def read(_cfg: Config, connection: Connection) -> Any:
        table = f"{quote_ident(name)}.alembic_version"
        if not connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar():
            return None
        return connection.execute(text(f"SELECT version_num FROM {table}")).scalar()

    return await _with_connection(url, name, read)


@dataclass(frozen=True)
class HandBack:
    """What ``to_upstream`` did: the revision found, the version marker left, whether it changed."""

    schema: str
    before: str | None
    """The revision recorded before (None: no ``alembic_version``)."""
    marker: str | None
    """Upstream's marker left behind: ``alembic_version`` in ``public``, None (no table) elsewhere."""
    changed: bool
    """False when the schema already was upstream's (never adopted, or handed back before)."""


async def to_upstream(url: str, schema: str | None = None) -> HandBack:
    """Hand ``schema`` back to upstream Bindu: a state its own ``PostgresStorage`` runs on.

    In one locked transaction: our revisions after ``adopt.ADOPTED_AS`` are downgraded (``seq``,
    ``request_key`` and ``task_events`` go; every task, context, feedback and webhook config
    stays), upstream's indexes come back and its version marker is restored (``public``:
    ``alembic_version`` = ``adopt.UPSTREAM_HEAD``; other schemas: no ``alembic_version``, as
    upstream's ``did_…`` schemas). A schema that already is upstream's is left alone; one with
    no Bindu tables, or at a revision neither we nor upstream wrote, raises ``MigrationError``.
    """
    name = resolve_schema(schema)

    def hand_back(cfg: Config, connection: Connection) -> HandBack:
        for statement in preamble(name):  # begins the one transaction every step runs in
            connection.execute(text(statement))
        order = [s.revision for s in reversed(list(ScriptDirectory.from_config(cfg).walk_revisions()))]
        found = adopt.origin(connection, name, order)
        if found.kind == "foreign":
            raise adopt.foreign_revision_error(name, found.revision, order)
        if found.kind == "empty":
            raise MigrationError(f"schema {name!r} holds no Bindu tables: nothing to hand back")
        if found.kind == "upstream":
            return HandBack(name, found.revision, found.revision, changed=False)
        assert found.revision is not None
        if order.index(found.revision) < order.index(adopt.ADOPTED_AS):
            command.upgrade(cfg, adopt.ADOPTED_AS)
        elif found.revision != adopt.ADOPTED_AS:
            command.downgrade(cfg, adopt.ADOPTED_AS)
        return HandBack(name, found.revision, adopt.hand_back(connection, name), changed=True)

    return await _with_connection(url, name, hand_back)
