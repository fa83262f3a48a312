"""The connection half of ``PostgresStorage``: settings, the pool's lifecycle, and retries.

``PostgresBase`` owns what every operation runs on: the DSN (never shown unmasked), the asyncpg
pool and its lifecycle (``storage.base``: a new storage connects lazily, ``close()`` closes the
pool and keeps the data, a closed storage raises ``StorageClosedError`` until ``connect()``), the
read capability analysis uses (``storage.read.SqlReadable``), and ``_with_conn``: a piece of
work on a pooled connection with the one retry policy (``storage.retry``). Transient failures
are retried ``postgres_max_retries`` times with exponential backoff from
``postgres_retry_delay``; other errors are raised at once, typed and password-free.

The operations of the contract live in ``storage.postgres`` on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidValueError,
    OutcomeUnknownError,
    StorageConnectionError,
    StorageError,
    StorageTimeoutError,
)
from bindu_storage.settings import StorageSettings, app_settings
from bindu_storage.sqlnames import schema_for_did, validate_schema_name
from bindu_storage.storage.base import Storage
from bindu_storage.storage.codec import init_connection
from bindu_storage.storage.push_configs import make_cipher
from bindu_storage.storage.read import PoolStats
from bindu_storage.storage.retry import (
    CONFIGURATION_ERRORS,
    TRANSIENT_ERRORS,
    backoff,
    configuration_error,
    is_final,
)
from bindu_storage.storage.sql import Statements

log = logging.getLogger("bindu_storage.postgres")
T = TypeVar("T")

WRITES = frozenset({
    "submit_task", "update_task", "update_task_state_if", "append_artifact_chunk",
    "update_context", "append_to_context", "clear_context", "clear_all", "store_task_feedback",
    "save_webhook", "delete_webhook",
    "set_push_config", "delete_push_config", "reencrypt_push_config", "delete_task", "purge_batch",
})
"""Operations that change data: when their connection fails after the statement went out,
a final error says the write may have been applied (``OutcomeUnknownError``)."""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without the session reset query (see ``_create_pool``)."""


class PostgresBase(Storage):
    """The pool, the lifecycle and retried execution of the PostgreSQL backend (no operations).

    ``schema`` (or ``did``, from which upstream's ``did_…`` schema name is derived) scopes the
    storage to one PostgreSQL schema; ``sql`` holds every statement rendered for it.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        schema: str | None = None,
        did: str | None = None,
        pool_min: int | None = None,
        pool_max: int | None = None,
        timeout: float | None = None,
        command_timeout: float | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        statement_cache_size: int | None = None,
        run_migrations: bool | None = None,
        settings: StorageSettings | None = None,
        push_config_key: Any = None,
    ) -> None:
        cfg = settings or app_settings.storage
        url = database_url or cfg.postgres_url
        if not url:
            raise InvalidValueError("PostgresStorage needs a database_url (or DATABASE_URL)")
        self._dsn = to_asyncpg_dsn(url, "database_url" if database_url else "DATABASE_URL")  # never quoted
        if schema is not None and did is not None:
            raise InvalidValueError("give either schema or did, not both")
        self.schema = (
            schema_for_did(did) if did is not None
            else validate_schema_name(schema or cfg.postgres_schema, "schema")
        )
        self.pool_min = cfg.postgres_pool_min if pool_min is None else pool_min
        self.pool_max = cfg.postgres_pool_max if pool_max is None else pool_max
        if self.pool_min > self.pool_max:
            raise InvalidValueError(f"pool_min ({self.pool_min}) > pool_max ({self.pool_max})")
        self.timeout = cfg.postgres_timeout if timeout is None else timeout
        self.command_timeout = cfg.postgres_command_timeout if command_timeout is None else command_timeout
        self.max_retries = cfg.postgres_max_retries if max_retries is None else max_retries
        self.retry_delay = cfg.postgres_retry_delay if retry_delay is None else retry_delay
        self.statement_cache_size = (
            cfg.postgres_statement_cache_size if statement_cache_size is None else statement_cache_size
        )
        if self.statement_cache_size < 0:
            raise InvalidValueError(f"statement_cache_size must be >= 0, got {self.statement_cache_size}")
        self.run_migrations = cfg.run_migrations_on_startup if run_migrations is None else run_migrations
        self.sql = Statements.for_schema(self.schema)
        # encryption at rest of push-config secrets (storage.push_configs); None: stored plain
        self._push_cipher = make_cipher(cfg.push_config_key if push_config_key is None else push_config_key)
        self._pool: asyncpg.Pool | None = None
        self._closed = False
        self._connect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._pool is not None else "not connected"
        return f"PostgresStorage({describe_target(self._dsn)!r}, schema={self.schema!r}, {state})"

    @property
    def database_url(self) -> str:
        """The URL this storage connects to, with the password masked."""
        return mask_secrets(self._dsn, self._dsn)

    @property
    def pool(self) -> asyncpg.Pool | None:
        """The asyncpg pool while connected (for diagnostics of the pool itself)."""
        return self._pool

    @property
    def connection_dsn(self) -> str:
        """The DSN *with its password*, for companion connections (read-only diagnostics).

        Never display or log it: ``database_url`` is the masked form for that.
        """
        return self._dsn

    # --- the read capability (storage.read.SqlReadable) -------------------------------------

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for the block, connecting a new storage first (for analysis reads);
        ``StorageClosedError`` once closed."""
        pool = await self._pool_or_connect()
        conn = await self._acquire(pool, "fetch")
        try:
            yield conn
        finally:
            await self._reset_lent(conn)
            await pool.release(conn)

    async def _reset_lent(self, conn: asyncpg.Connection) -> None:
        """Undo the session state code of its own may have left on a lent connection (settings,
        locks, LISTEN, cursors), as the pool's release no longer does (``_create_pool``); a
        connection that cannot be reset is closed instead of going back to the pool."""
        if self.statement_cache_size == 0 or conn.is_closed():
            return
        try:
            await conn.reset(timeout=self.timeout)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            conn.terminate()

    def pool_stats(self) -> PoolStats | None:
        """The pool's counters, or ``None`` while no pool is open."""
        pool = self._pool
        if pool is None or pool.is_closing():
            return None
        return PoolStats(
            size=pool.get_size(), min_size=pool.get_min_size(), max_size=pool.get_max_size(),
            idle=pool.get_idle_size(),
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Run migrations if enabled, then open the pool; reopens a closed storage (idempotent)."""
        await self._open(reopen=True)

    async def _open(self, *, reopen: bool) -> None:
        """Open the pool; a lazy open (``reopen=False``) refuses a closed storage."""
        async with self._connect_lock:
            if self._closed and not reopen:
                raise self._closed_error()
            if self._pool is not None:
                return
            if self.run_migrations:
                # imported here, not at the top: alembic and SQLAlchemy take ~0.5 s to import
                # and only migrations need them (``import bindu_storage`` stays fast)
                from bindu_storage.storage import migrate

                await self._retry(lambda: migrate.upgrade(self._dsn, self.schema), "migrate")
            self._pool = await self._retry(self._create_pool, "connect")
            self._closed = False

    async def _create_pool(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            self._dsn,
            min_size=self.pool_min,
            max_size=self.pool_max,
            timeout=self.timeout,
            command_timeout=self.command_timeout,
            init=init_connection,
            server_settings={"application_name": "bindu-storage"},
            # 0 (behind PgBouncer in transaction mode): asyncpg then sends every statement unnamed
            # and re-parses it with its Bind in one message sequence, so no statement outlives
            # its transaction.
            statement_cache_size=self.statement_cache_size,
            # No session reset query (RESET ALL, UNLISTEN, advisory unlock: one more round trip)
            # on release: the operations set no session state, and asyncpg still rolls back a
            # transaction left open. ``connection()``, which lends a connection to other code,
            # resets it itself (except behind a transaction pooler, where the reset would run
            # on whichever server connection the pooler picks).
            reset=_keep_session,
        )

    async def close(self) -> None:
        """Close the pool (waiting for connections in use); the data stays. Later operations
        raise ``StorageClosedError`` until ``connect()``. Idempotent."""
        async with self._connect_lock:  # after a connect in progress, not racing it
            self._closed = True
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    # --- execution with retries --------------------------------------------------------------

    async def _retry(
        self, attempt: Callable[[], Awaitable[T]], what: str, sent: Callable[[], bool] = lambda: False
    ) -> T:
        """Run ``attempt`` with retries of transient errors; ``sent()`` tells whether a failed
        attempt may have reached the server (then the final error says the outcome is unknown)."""
        for n in range(self.max_retries + 1):
            try:
                return await attempt()
            except StorageError:
                raise  # our typed errors are final (OwnershipError is a PermissionError: an OSError)
            except CONFIGURATION_ERRORS as exc:  # before TRANSIENT_ERRORS: 08P01 is in class 08
                raise configuration_error(what, exc, self._dsn) from None
            except TimeoutError as exc:  # also an OSError, but a statement past its bound is final
                raise self._timeout(what) from exc
            except TRANSIENT_ERRORS as exc:
                if n == self.max_retries:
                    raise self._exhausted(what, n + 1, exc, sent()) from None
                delay = backoff(n, self.retry_delay)
                log.warning(
                    "transient error during %s (%s), retry %d/%d in %.2fs", what,
                    type(exc).__name__, n + 1, self.max_retries, delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _reason(self, exc: BaseException) -> str:
        return mask_secrets(str(exc) or type(exc).__name__, self._dsn)

    def _exhausted(self, what: str, attempts: int, exc: BaseException, sent: bool) -> StorageError:
        failed = f"{what} failed after {attempts} attempt(s) on {describe_target(self._dsn)}"
        if what in WRITES and sent:
            return OutcomeUnknownError(
                f"{failed}: {self._reason(exc)}. An attempt may have been applied before its "
                "connection failed; the write is idempotent, so calling it again is safe"
            )
        return StorageConnectionError(f"{failed}: {self._reason(exc)}")

    def _timeout(self, what: str) -> StorageTimeoutError:
        if what in ("connect", "migrate"):
            return StorageTimeoutError(
                f"{what} timed out: {describe_target(self._dsn)} did not answer within {self.timeout}s "
                "(STORAGE__POSTGRES_TIMEOUT)"
            )
        maybe = " (it may have completed first)" if what in WRITES else ""
        return StorageTimeoutError(
            f"{what} timed out: it ran longer than command_timeout={self.command_timeout}s and was "
            f"canceled{maybe}; "
            "raise STORAGE__POSTGRES_COMMAND_TIMEOUT if such statements are expected"
        )

    def _outcome_unknown(self, what: str, exc: BaseException) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            f"{what}: the connection failed after the statement may have reached "
            f"{describe_target(self._dsn)}; not retried, since it is not idempotent "
            f"({self._reason(exc)})"
        )

    async def _pool_or_connect(self) -> asyncpg.Pool:
        """The open pool; a new storage connects first, a closed one raises ``StorageClosedError``."""
        pool = self._pool
        if pool is None:
            await self._open(reopen=False)
            pool = self._pool
            if pool is None:  # closed while this call waited for the connect lock
                raise self._closed_error()
        return pool

    async def _acquire(self, pool: asyncpg.Pool, what: str) -> asyncpg.Connection:
        try:
            async with asyncio.timeout(self.timeout):  # not acquire(timeout=): no task per call
                conn = await pool.acquire()
        except asyncpg.InterfaceError:
            if self._closed or pool.is_closing():  # closed after this call took the pool
                raise self._closed_error() from None
            raise
        except TimeoutError:
            raise StorageTimeoutError(
                f"{what} timed out waiting for a pooled connection: none became free within "
                f"{self.timeout}s (all {self.pool_max} busy); raise STORAGE__POSTGRES_POOL_MAX, or "
                "STORAGE__POSTGRES_TIMEOUT to wait longer"
            ) from None
        if pool.is_closing():
            # handed over while close() runs: its close would cut this call's reply after the
            # statement may have committed; say closed before sending anything instead
            with contextlib.suppress(Exception):
                await pool.release(conn)
            raise self._closed_error()
        return conn

    async def _with_conn(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        what: str,
        *,
        idempotent: bool = True,
    ) -> T:
        sent = False  # did an attempt get a connection, so that its statement may have gone out?

        async def attempt() -> T:
            nonlocal sent
            pool = await self._pool_or_connect()
            conn = await self._acquire(pool, what)
            try:
                sent = True
                return await work(conn)
            except asyncpg.InterfaceError as exc:
                # a transaction whose connection died says so on exit ("connection is closed"),
                # hiding the transient connection error that caused it: raise that one
                if isinstance(exc.__context__, TRANSIENT_ERRORS) and not isinstance(
                    exc.__context__, CONFIGURATION_ERRORS
                ):
                    if not idempotent:
                        raise self._outcome_unknown(what, exc.__context__) from None
                    raise exc.__context__ from None
                raise
            except TRANSIENT_ERRORS as exc:
                if not idempotent and not is_final(exc):
                    raise self._outcome_unknown(what, exc) from None
                raise
            finally:
                await pool.release(conn)

        try:
            return await self._retry(attempt, what, lambda: sent)
        except asyncpg.UndefinedTableError as exc:
            raise StorageError(
                f"schema {self.schema!r} has no Bindu tables ({exc}); run `alembic upgrade head` "
                "or set STORAGE__RUN_MIGRATIONS_ON_STARTUP=true"
            ) from None

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run a read query of your own (SQL on the documented schema) with the storage's pool,
        lazy connect and retries of transient failures; for analysis code, not for writes.

        It runs in a read-only transaction whose statements are planned for their values
        (``plan_cache_mode = force_custom_plan``): a prepared statement that has run five times
        may otherwise get one generic plan, blind to a JSONB ``@>`` value, that reads the GIN
        index for a filter matching most of the table too."""

        async def read(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            try:
                async with conn.transaction(readonly=True):
                    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                    rows: list[asyncpg.Record] = await conn.fetch(query, *args)
                    return rows
            finally:
                await self._reset_lent(conn)  # the query is the caller's: it may set session state

        return await self._with_conn(read, "fetch")

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._with_conn(lambda c: c.fetch(query, *args), self.sql.name_of(query))

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._with_conn(lambda c: c.fetchrow(query, *args), self.sql.name_of(query))

    async def _fetchval(self, query: str, *args: Any) -> Any:
        return await self._with_conn(lambda c: c.fetchval(query, *args), self.sql.name_of(query))

    async def _execute(self, query: str, *args: Any) -> str:
        return await self._with_conn(lambda c: c.execute(query, *args), self.sql.name_of(query))
