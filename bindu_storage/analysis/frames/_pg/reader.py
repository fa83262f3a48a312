"""Where frames read from: a storage's records, or SQL on a PostgreSQL schema.

``open_source`` turns the ``source`` argument of a frame into either a storage read as records
(through the ``Storage`` contract) or a ``PgReader``:

* a storage with the read capability (``storage.read.sql_readable``: ``PostgresStorage``, or any
  backend implementing ``SqlReadable``) is read through its ``connection()`` and ``schema``,
  every statement in a read-only transaction;
* a PostgreSQL URL gets a connection of its own opened with ``default_transaction_read_only=on``
  and ``application_name=bindu-storage-frames``, closed when the loader finishes.

Every read runs in a read-only transaction that first publishes the statement's parameters
(``params``). ``PgReader.fetch`` and ``PgReader.copy_csv`` survive the interruptions a
long read on a hot standby meets: a query cancelled by a recovery conflict (SQLSTATE 40001, or
57014/40P01 "conflict with recovery") or a lost connection is run again, up to ``MAX_RESUMES``
times in a row, after reconnecting. Loaders read in keyset-ordered chunks, so "again" means
from the last completed chunk.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from bindu_storage.analysis.frames._pg.params import Param, bound, from_settings, set_params_sql
from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    StorageConfigurationError,
    StorageConnectionError,
    StorageError,
)
from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage.base import Storage
from bindu_storage.storage.read import SqlReadable, sql_readable
from bindu_storage.storage.retry import backoff, is_resumable

log = logging.getLogger("bindu_storage.analysis.frames")

APPLICATION_NAME = "bindu-storage-frames"
"""The ``application_name`` of connections frames open from a URL."""

MAX_RESUMES = 5
"""How many interruptions in a row a read survives before the error is raised."""

BINDU_TABLES = ("tasks", "contexts", "task_feedback", "task_events", "webhook_configs")
TASK_TABLE_COLUMNS = ("id", "context_id", "state", "state_timestamp", "history")
"""The columns a ``tasks`` table needs to count as a Bindu table."""

_LIST_SCHEMAS = """
SELECT n.nspname AS schema
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'tasks' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (SELECT count(*) FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         AND a.attname = ANY($1::text[])) = cardinality($1::text[])
  AND has_schema_privilege(n.oid, 'USAGE')
  AND n.nspname ~ '^[A-Za-z_][A-Za-z0-9_$]{0,62}$'  -- the names schema= accepts
ORDER BY n.nspname
"""

_TABLE_COLUMNS = """
SELECT c.relname AS table_name, array_agg(a.attname::text ORDER BY a.attnum) AS columns
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
GROUP BY c.relname
"""


SESSION_SETTINGS = {
    "jit": "off", "TimeZone": "UTC", "DateStyle": "ISO, MDY", "extra_float_digits": "3",
    "standard_conforming_strings": "on",
}
"""Settings of every frame read. JIT compilation costs ~0.4 s per statement here (the planner's
fixed estimate of 100 rows per ``jsonb_each`` makes walks look huge) and gains nothing on these
scans; the others fix the text PostgreSQL writes (UTC ISO timestamps, shortest exact floats),
which the CSV reader parses, and how it reads the frames' own literals (a regex)."""

_SET_LOCAL = "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in SESSION_SETTINGS.items())

Work = Callable[[asyncpg.Connection], Awaitable[Any]]


@dataclass(frozen=True)
class SchemaInfo:
    """The Bindu tables of a schema and their columns (upstream's lack some of ours)."""

    schema: str
    tables: dict[str, frozenset[str]]

    @property
    def quoted(self) -> str:
        """The schema as a quoted SQL identifier."""
        return quote_ident(self.schema)

    def has(self, table: str, column: str | None = None) -> bool:
        """Whether the table (and the column) exists."""
        cols = self.tables.get(table)
        return cols is not None and (column is None or column in cols)


class PgReader:
    """Read-only SQL on one schema, through a storage's connections or a connection of its own."""

    def __init__(
        self, schema: str, *, storage: SqlReadable | None = None, dsn: str | None = None
    ) -> None:
        self.schema = validate_schema_name(schema, "schema")
        self._storage = storage
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._info: SchemaInfo | None = None
        self._connected = False
        self.resumes = 0
        """How many interrupted reads were run again (for tests and logs)."""

    def __repr__(self) -> str:
        where = describe_target(self._dsn) if self._dsn else "a storage's connections"
        return f"PgReader({where!r}, schema={self.schema!r})"

    async def _connect(self) -> asyncpg.Connection:
        assert self._dsn is not None
        try:
            return await asyncpg.connect(
                self._dsn,
                server_settings={
                    "default_transaction_read_only": "on",
                    "application_name": APPLICATION_NAME,
                    **SESSION_SETTINGS,
                },
            )
        except asyncpg.ProtocolViolationError as exc:  # PgBouncer: "unsupported startup parameter: ..."
            raise StorageConfigurationError(
                f"cannot connect to {describe_target(self._dsn)}: {mask_secrets(str(exc), self._dsn)}; "
                "frames read from a URL need a session of their own: point it at PostgreSQL directly, "
                "or read through a PostgresStorage (its pool works behind PgBouncer)"
            ) from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageConnectionError(
                f"cannot connect to {describe_target(self._dsn)}: "
                f"{mask_secrets(str(exc) or type(exc).__name__, self._dsn)}"
            ) from None

    async def _once(self, work: Work, params: Sequence[Param]) -> Any:
        """Run ``work`` in a read-only transaction, after publishing ``params`` as settings."""
        if self._storage is not None:
            async with self._storage.connection() as conn, conn.transaction(readonly=True):
                self._connected = True
                await conn.execute(_SET_LOCAL)
                return await self._with_params(conn, work, params)
        if self._conn is None:
            self._conn = await self._connect()
            self._connected = True
        async with self._conn.transaction(readonly=True):
            return await self._with_params(self._conn, work, params)

    @staticmethod
    async def _with_params(conn: asyncpg.Connection, work: Work, params: Sequence[Param]) -> Any:
        if params:
            await conn.fetchval(set_params_sql(params), *(param.value for param in params))
        return await work(conn)

    async def _run(self, work: Work, params: Sequence[Param]) -> Any:
        """Run a read, running it again after a recovery conflict or a lost connection."""
        for attempt in range(MAX_RESUMES + 1):
            try:
                return await self._once(work, params)
            except Exception as exc:
                first_connect = isinstance(exc, StorageConnectionError) and not self._connected
                lost = self._conn is not None and self._conn.is_closed()
                if first_connect or not (lost or is_resumable(exc)) or attempt == MAX_RESUMES:
                    raise
                self.resumes += 1
                log.warning(
                    "read of schema %r interrupted (%s: %s); resuming from the last completed "
                    "chunk (attempt %d of %d)", self.schema, type(exc).__name__,
                    mask_secrets(str(exc), self._dsn), attempt + 1, MAX_RESUMES,
                )
                await self._drop_connection()
                await asyncio.sleep(backoff(attempt, 0.05))
        raise AssertionError("unreachable")

    async def fetch(
        self, sql: str, args: Sequence[Any] = (), *, params: Sequence[Param] = ()
    ) -> list[asyncpg.Record]:
        """The rows of a read: ``args`` bound as ``$1``..., or frame SQL with ``params``."""
        if params:
            sql, args = bound(sql, params)
        rows: list[asyncpg.Record] = await self._run(lambda conn: conn.fetch(sql, *args), ())
        return rows

    async def copy_csv(
        self,
        sql: str,
        params: Sequence[Param] = (),
        pick: str | None = None,
        fallback: str | None = None,
    ) -> bytes:
        """The rows of frame SQL as CSV (``COPY (sql) TO STDOUT``), its ``params`` set first.

        ``pick``, frame SQL run first with bound ``params`` in the same transaction, says
        whether ``sql`` can run; when it says no, ``fallback`` runs instead.
        """
        statements = [from_settings(s, params) for s in (sql, fallback or sql)]
        first = bound(pick, params) if pick is not None else None

        async def work(conn: asyncpg.Connection) -> bytes:
            statement = statements[0]
            if first is not None and not await conn.fetchval(first[0], *first[1]):
                statement = statements[1]
            out = io.BytesIO()  # new on each attempt: a resumed read starts afresh

            async def keep(chunk: bytes) -> None:  # a file object would be written through a thread pool
                out.write(chunk)

            await conn.copy_from_query(statement, output=keep, format="csv")
            return out.getvalue()

        data: bytes = await self._run(work, params)
        return data

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def info(self) -> SchemaInfo:
        """The schema's Bindu tables; raises if it has no ``tasks`` table."""
        if self._info is None:
            rows = await self.fetch(_TABLE_COLUMNS, (self.schema, list(BINDU_TABLES)))
            tables = {r["table_name"]: frozenset(r["columns"]) for r in rows}
            if not set(TASK_TABLE_COLUMNS) <= tables.get("tasks", frozenset()):
                raise StorageError(
                    f"schema {self.schema!r} holds no Bindu tasks table; list_schemas() names "
                    "the schemas that do"
                )
            self._info = SchemaInfo(self.schema, tables)
        return self._info

    async def list_schemas(self) -> list[str]:
        """Every schema of the database holding a Bindu ``tasks`` table."""
        rows = await self.fetch(_LIST_SCHEMAS, (list(TASK_TABLE_COLUMNS),))
        return [r["schema"] for r in rows]

    async def close(self) -> None:
        """Close the connection of a URL source (a storage's connections stay its own)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


Source = Storage | str
"""What a loader reads: a Storage (in-memory or PostgreSQL) or a PostgreSQL URL."""


@asynccontextmanager
async def open_source(source: object, schema: str | None) -> AsyncIterator[Storage | PgReader]:
    """A ``PgReader`` on the schema to read, or the storage itself, to read as records."""
    if schema is not None:
        validate_schema_name(schema, "schema")
    readable = sql_readable(source)
    if readable is not None:
        yield PgReader(schema or readable.schema, storage=readable)
        return
    if isinstance(source, Storage):
        if schema is not None:
            raise InvalidValueError(
                f"schema={schema!r} applies to PostgreSQL sources only, not {type(source).__name__}"
            )
        yield source
        return
    if isinstance(source, str):
        reader = PgReader(schema or "public", dsn=to_asyncpg_dsn(source, "source"))
        try:
            yield reader
        finally:
            await reader.close()
        return
    raise InvalidTypeError(
        f"source must be a Storage or a PostgreSQL URL, got {type(source).__name__}"
    )
