"""The read-only diagnostics connection, and ``Session``: the lifecycle every topic shares.

``open_diagnostics_connection`` opens a plain asyncpg connection whose session starts with
``default_transaction_read_only = on`` (every statement runs in a read-only transaction: a
write fails with ``ReadOnlySQLTransactionError``), a ``statement_timeout`` and a
``lock_timeout`` (a diagnostic never waits long behind an application's lock), and its own
``application_name`` (so it is easy to spot, and the connection diagnostics leave it out). It
checks the session really is read-only before handing it over.

``Session`` holds such a connection for one schema (and, when given a storage readable with
SQL, such as ``PostgresStorage``, that storage for the pool diagnostic). The topic classes
(``ConnectionsTopic``, ``TablesTopic``...) are sessions with their diagnostics as methods, and
``Diagnostics`` is all of them at once.

Everything works as a ``pg_monitor`` role (plus ``SELECT`` on the Bindu tables for the Bindu
checks) and on a hot standby. The URL's password never appears in a repr or an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import fetch_frame, records_frame
from bindu_storage.analysis.dtypes import DtypeBackend, check_dtype_backend
from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    StorageConfigurationError,
    StorageConnectionError,
)
from bindu_storage.sqlnames import validate_schema_name
from bindu_storage.storage.read import SqlReadable, sql_readable

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
    if (readable := sql_readable(target)) is not None:
        return readable.connection_dsn
    if isinstance(target, str):
        try:
            return to_asyncpg_dsn(target)
        except ValueError as exc:
            raise InvalidValueError(str(exc)) from None
    raise InvalidTypeError(
        "diagnostics need a PostgreSQL URL or a storage readable with SQL (a PostgresStorage), "
        f"got {type(target).__name__}"
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
    url_or_storage: str | SqlReadable,
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


class Session:
    """A read-only diagnostics session of one database and Bindu schema; an async context manager.

    ``target`` is a PostgreSQL URL or a storage readable with SQL, such as a ``PostgresStorage``
    (then its schema is the default and its pool is what ``pool_stats`` describes).
    ``dtype_backend`` (``"numpy_nullable"`` or ``"pyarrow"``) converts every frame's dtypes, as
    ``pandas.read_sql`` does; by default they follow ``bindu_storage.analysis.dtypes``.
    """

    def __init__(
        self,
        target: str | SqlReadable,
        *,
        schema: str | None = None,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        application_name: str = APPLICATION_NAME,
        dtype_backend: DtypeBackend | None = None,
    ) -> None:
        self._dsn = _dsn_of(target)
        self.storage: SqlReadable | None = sql_readable(target)
        """The storage given as ``target``, if any (its pool is what ``pool_stats`` describes)."""
        default_schema = self.storage.schema if self.storage is not None else "public"
        self.schema = validate_schema_name(schema if schema is not None else default_schema)
        self.statement_timeout_ms = _check_timeout(statement_timeout_ms, "statement_timeout_ms")
        self.lock_timeout_ms = _check_timeout(lock_timeout_ms, "lock_timeout_ms")
        self.application_name = _check_application_name(application_name)
        self.dtype_backend = check_dtype_backend(dtype_backend)
        self.target = describe_target(self._dsn)
        """Where the diagnostics connect, without the password (``user@host:port/db``)."""
        self._conn: asyncpg.Connection | None = None
        self._standby: bool | None = None

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open, standby" if self._standby else "open, primary"
        return f"{type(self).__name__}({self.target!r}, schema={self.schema!r}, {state})"

    async def open(self) -> Self:
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

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connection(self) -> asyncpg.Connection:
        """The read-only connection (for queries of your own)."""
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

    # --- for the topics ----------------------------------------------------------------------

    def _schema(self, schema: str | None) -> str:
        """``schema`` checked, or the session's schema when ``None``."""
        return self.schema if schema is None else validate_schema_name(schema)

    async def _open_connection(self) -> asyncpg.Connection:
        await self.open()
        return self.connection

    async def _fetch(
        self, sql: str, *args: Any, primary_only: Iterable[str] = (), redact: Iterable[str] = ()
    ) -> pd.DataFrame:
        """The frame of one diagnostic statement (opening the connection first if needed)."""
        return await fetch_frame(
            await self._open_connection(), sql, *args, primary_only=primary_only, redact=redact,
            dtype_backend=self.dtype_backend,
        )

    def _records(
        self, rows: Sequence[Sequence[Any]], columns: Sequence[str], type_names: Sequence[str]
    ) -> pd.DataFrame:
        """A frame of rows computed in Python, typed by the PostgreSQL type names given."""
        return records_frame(rows, columns, type_names, self.dtype_backend)
