"""The read-only diagnostics connection, and ``Diagnostics``: one method per diagnostic.

``open_diagnostics_connection`` opens a plain asyncpg connection whose session starts with
``default_transaction_read_only = on`` (every statement runs in a read-only transaction: a
write fails with ``ReadOnlySQLTransactionError``), a ``statement_timeout`` and a
``lock_timeout`` (a diagnostic never waits long behind an application's lock), and its own
``application_name`` (so it is easy to spot, and the connection diagnostics leave it out). It
checks the session really is read-only before handing it over.

``Diagnostics`` holds such a connection for one schema (and, when given a ``PostgresStorage``,
its pool for the pool diagnostic)::

    async with Diagnostics(url, schema="public") as diag:
        await diag.table_sizes()
        report = await diag.health_report()

Everything works as a ``pg_monitor`` role (plus ``SELECT`` on the Bindu tables for the Bindu
checks) and on a hot standby. The URL's password never appears in a repr or an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics import (
    bindu,
    connections,
    indexes,
    locks,
    pool,
    queries,
    replication,
    settings,
    tables,
)
from bindu_storage.analysis.diagnostics import schema as schema_topic
from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    StorageConfigurationError,
    StorageConnectionError,
)
from bindu_storage.sqlnames import validate_schema_name
from bindu_storage.storage.postgres import PostgresStorage

if TYPE_CHECKING:
    from bindu_storage.analysis.diagnostics.report import HealthReport, Thresholds

APPLICATION_NAME = "bindu-storage-diagnostics"
"""Default ``application_name`` of diagnostics sessions."""

STATEMENT_TIMEOUT_MS = 30_000
"""Default ``statement_timeout`` of diagnostics sessions (milliseconds)."""

LOCK_TIMEOUT_MS = 2_000
"""Default ``lock_timeout`` of diagnostics sessions (milliseconds)."""

MIN_SERVER_VERSION = 140000
"""Oldest supported server (``pg_locks.waitstart`` and ``pg_stat_statements`` 1.8+ columns)."""

_CHECK_SESSION = """
SELECT current_setting('transaction_read_only') AS read_only,
       current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       pg_is_in_recovery() AS standby
"""


def _dsn_of(target: object) -> str:
    if isinstance(target, PostgresStorage):
        return target.connection_dsn
    if isinstance(target, str):
        try:
            return to_asyncpg_dsn(target)
        except ValueError as exc:
            raise InvalidValueError(str(exc)) from None
    raise InvalidTypeError(
        f"diagnostics need a PostgreSQL URL or a PostgresStorage, got {type(target).__name__}"
    )


def _check_timeout(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidValueError(f"{what} must be a positive number of milliseconds, got {value!r}")
    return value


def _check_application_name(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 63 or not value.isprintable():
        raise InvalidValueError(f"application_name must be 1-63 printable characters, got {value!r}")
    return value


async def open_diagnostics_connection(
    url_or_storage: str | PostgresStorage,
    *,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    application_name: str = APPLICATION_NAME,
    connect_timeout: float = 10.0,
) -> asyncpg.Connection:
    """Open a read-only asyncpg connection for diagnostics (see the module docstring).

    Raises ``InvalidValueError``/``InvalidTypeError`` for bad arguments (before connecting) and
    ``StorageConnectionError`` (password masked) when the server cannot be reached, refuses the
    login, is older than PostgreSQL 14, or did not make the session read-only.
    """
    dsn = _dsn_of(url_or_storage)
    session = {
        "default_transaction_read_only": "on",
        "statement_timeout": str(_check_timeout(statement_timeout_ms, "statement_timeout_ms")),
        "lock_timeout": str(_check_timeout(lock_timeout_ms, "lock_timeout_ms")),
        "application_name": _check_application_name(application_name),
    }
    target = describe_target(dsn)
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout, server_settings=session)
    except ValueError as exc:  # a URL asyncpg cannot parse (bad port, unknown sslmode...)
        raise InvalidValueError(f"bad database URL {target}: {mask_secrets(str(exc), dsn)}") from None
    except asyncpg.ProtocolViolationError as exc:  # PgBouncer: "unsupported startup parameter: ..."
        raise StorageConfigurationError(
            f"cannot open a diagnostics connection to {target}: {mask_secrets(str(exc), dsn)}; diagnostics "
            "need a read-only session of their own: connect to PostgreSQL (or a replica) directly, "
            "not through PgBouncer"
        ) from None
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = mask_secrets(str(exc) or type(exc).__name__, dsn)
        raise StorageConnectionError(f"cannot open a diagnostics connection to {target}: {reason}") from None
    try:
        row = await conn.fetchrow(_CHECK_SESSION)
        assert row is not None
        if row["read_only"] != "on":
            raise StorageConnectionError(
                f"the diagnostics session on {target} is not read-only (a pooler dropped "
                "default_transaction_read_only?); connect to the server directly"
            )
        if row["version_num"] < MIN_SERVER_VERSION:
            raise StorageConnectionError(
                f"diagnostics need PostgreSQL 14 or newer; {target} runs {row['version']}"
            )
    except BaseException:
        await conn.close()
        raise
    return conn


class Diagnostics:
    """Read-only diagnostics of one database and Bindu schema; an async context manager.

    ``target`` is a PostgreSQL URL or a ``PostgresStorage`` (then its schema is the default and
    its pool is what ``pool_stats`` describes). Every method returns a DataFrame with the
    columns its topic module documents; ``health_report`` turns them into findings.
    """

    def __init__(
        self,
        target: str | PostgresStorage,
        *,
        schema: str | None = None,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self._dsn = _dsn_of(target)
        self.storage = target if isinstance(target, PostgresStorage) else None
        default_schema = self.storage.schema if self.storage is not None else "public"
        self.schema = validate_schema_name(schema if schema is not None else default_schema)
        self.statement_timeout_ms = _check_timeout(statement_timeout_ms, "statement_timeout_ms")
        self.lock_timeout_ms = _check_timeout(lock_timeout_ms, "lock_timeout_ms")
        self.application_name = _check_application_name(application_name)
        self.target = describe_target(self._dsn)
        """Where the diagnostics connect, without the password (``user@host:port/db``)."""
        self._conn: asyncpg.Connection | None = None
        self._standby: bool | None = None

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open, standby" if self._standby else "open, primary"
        return f"Diagnostics({self.target!r}, schema={self.schema!r}, {state})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> Diagnostics:
        """Open the read-only connection (idempotent); returns self."""
        if self._conn is None:
            self._conn = await open_diagnostics_connection(
                self._dsn, statement_timeout_ms=self.statement_timeout_ms,
                lock_timeout_ms=self.lock_timeout_ms, application_name=self.application_name,
            )
            self._standby = bool(await self._conn.fetchval("SELECT pg_is_in_recovery()"))
        return self

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> Diagnostics:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connection(self) -> asyncpg.Connection:
        """The read-only connection (for running a topic function directly)."""
        if self._conn is None:
            raise StorageConnectionError(
                f"diagnostics of {self.target} are not open: use `async with` or await open()"
            )
        return self._conn

    @property
    def is_standby(self) -> bool:
        """Whether the server was a hot standby when the connection was opened."""
        self.connection  # noqa: B018 - raises when not open
        return bool(self._standby)

    def mask(self, text: str) -> str:
        """``text`` with the password of this connection's URL (and any URL password) masked."""
        return mask_secrets(text, self._dsn)

    def _schema(self, schema: str | None) -> str:
        return self.schema if schema is None else validate_schema_name(schema)

    async def _conn_or_open(self) -> asyncpg.Connection:
        await self.open()
        return self.connection

    # --- connections -------------------------------------------------------------------------

    async def connection_usage(self) -> pd.DataFrame:
        """See :func:`connections.connection_usage`."""
        return await connections.connection_usage(await self._conn_or_open())

    async def sessions_by_state(self) -> pd.DataFrame:
        """See :func:`connections.sessions_by_state`."""
        return await connections.sessions_by_state(await self._conn_or_open())

    async def connection_sources(self) -> pd.DataFrame:
        """See :func:`connections.connection_sources`."""
        return await connections.connection_sources(await self._conn_or_open())

    async def long_running_queries(self, min_seconds: float = 60.0) -> pd.DataFrame:
        """See :func:`connections.long_running_queries`."""
        return await connections.long_running_queries(await self._conn_or_open(), min_seconds)

    async def idle_in_transaction(self, min_seconds: float = 0.0) -> pd.DataFrame:
        """See :func:`connections.idle_in_transaction`."""
        return await connections.idle_in_transaction(await self._conn_or_open(), min_seconds)

    # --- the storage's pool ------------------------------------------------------------------

    async def pool_stats(self) -> pd.DataFrame:
        """See :func:`pool.pool_stats` (one row, ``connected`` false without a storage)."""
        return pool.pool_stats(self.storage)

    # --- queries -----------------------------------------------------------------------------

    async def queries_by_total_time(self, limit: int = 10, min_calls: int = 1) -> pd.DataFrame:
        """See :func:`queries.queries_by_total_time`."""
        return await queries.queries_by_total_time(await self._conn_or_open(), limit, min_calls)

    async def queries_by_mean_time(self, limit: int = 10, min_calls: int = 1) -> pd.DataFrame:
        """See :func:`queries.queries_by_mean_time`."""
        return await queries.queries_by_mean_time(await self._conn_or_open(), limit, min_calls)

    async def statements_status(self) -> queries.StatementsStatus:
        """See :func:`queries.statements_status`."""
        return await queries.statements_status(await self._conn_or_open())

    # --- tables and indexes ------------------------------------------------------------------

    async def table_sizes(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`tables.table_sizes`."""
        return await tables.table_sizes(await self._conn_or_open(), self._schema(schema))

    async def table_stats(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`tables.table_stats`."""
        return await tables.table_stats(await self._conn_or_open(), self._schema(schema))

    async def index_usage(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`indexes.index_usage`."""
        return await indexes.index_usage(await self._conn_or_open(), self._schema(schema))

    async def unused_indexes(self, schema: str | None = None, max_scans: int = 0) -> pd.DataFrame:
        """See :func:`indexes.unused_indexes`."""
        return await indexes.unused_indexes(await self._conn_or_open(), self._schema(schema), max_scans)

    async def duplicate_indexes(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`indexes.duplicate_indexes`."""
        return await indexes.duplicate_indexes(await self._conn_or_open(), self._schema(schema))

    async def invalid_indexes(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`indexes.invalid_indexes`."""
        return await indexes.invalid_indexes(await self._conn_or_open(), self._schema(schema))

    async def cache_hit_ratios(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`indexes.cache_hit_ratios`."""
        return await indexes.cache_hit_ratios(await self._conn_or_open(), self._schema(schema))

    # --- locks and replication ---------------------------------------------------------------

    async def blocked_sessions(self) -> pd.DataFrame:
        """See :func:`locks.blocked_sessions`."""
        return await locks.blocked_sessions(await self._conn_or_open())

    async def replication_status(self) -> pd.DataFrame:
        """See :func:`replication.replication_status`."""
        return await replication.replication_status(await self._conn_or_open())

    async def replicas(self) -> pd.DataFrame:
        """See :func:`replication.replicas`."""
        return await replication.replicas(await self._conn_or_open())

    async def replication_slots(self) -> pd.DataFrame:
        """See :func:`replication.replication_slots`."""
        return await replication.replication_slots(await self._conn_or_open())

    # --- schema ------------------------------------------------------------------------------

    async def migration_status(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`schema.migration_status`."""
        return await schema_topic.migration_status(await self._conn_or_open(), self._schema(schema))

    async def schema_drift(self, schema: str | None = None) -> pd.DataFrame:
        """See :func:`schema.schema_drift`."""
        return await schema_topic.schema_drift(await self._conn_or_open(), self._schema(schema))

    # --- Bindu -------------------------------------------------------------------------------

    async def stuck_tasks(self, schema: str | None = None, older_than_seconds: float = 900.0) -> pd.DataFrame:
        """See :func:`bindu.stuck_tasks`."""
        return await bindu.stuck_tasks(await self._conn_or_open(), self._schema(schema), older_than_seconds)

    async def jsonb_sizes(
        self, schema: str | None = None, sample_percent: float | None = None
    ) -> pd.DataFrame:
        """See :func:`bindu.jsonb_sizes`."""
        return await bindu.jsonb_sizes(await self._conn_or_open(), self._schema(schema), sample_percent)

    # --- settings and the report -------------------------------------------------------------

    async def server_settings(self) -> pd.DataFrame:
        """See :func:`settings.server_settings`."""
        return await settings.server_settings(await self._conn_or_open())

    async def health_report(
        self, thresholds: Thresholds | None = None, *, jsonb_sample_percent: float | None = None
    ) -> HealthReport:
        """Every check against its thresholds, as findings (see :mod:`report`)."""
        from bindu_storage.analysis.diagnostics.report import build_report

        await self.open()
        return await build_report(self, thresholds, jsonb_sample_percent=jsonb_sample_percent)

