"""PostgresStorage: an asyncpg pool over the schema the alembic revisions declare.

Lifecycle (``storage.base``): ``connect()`` migrates (if enabled) and opens the pool; a new
storage connects lazily on first use; ``close()`` closes the pool and keeps the data, and from
then on every operation raises ``StorageClosedError`` until ``connect()`` reopens it.
Each operation is one statement where SQL allows it (``update_task`` is one CTE that locks the
row, de-duplicates appends, updates and logs the event), so a retry after a lost connection
applies a write at most once. Transient failures are retried ``postgres_max_retries`` times with
exponential backoff from ``postgres_retry_delay``; other errors are raised at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from bindu_storage.dsn import describe_target, mask_secrets, to_asyncpg_dsn
from bindu_storage.errors import (
    InvalidValueError,
    OutcomeUnknownError,
    OwnershipError,
    StorageConnectionError,
    StorageError,
    StorageTimeoutError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.settings import StorageSettings, app_settings
from bindu_storage.sqlnames import schema_for_did, validate_schema_name
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.read import PoolStats
from bindu_storage.storage.retry import (
    CONFIGURATION_ERRORS,
    TRANSIENT_ERRORS,
    backoff,
    configuration_error,
)
from bindu_storage.storage.rows import task_from_row
from bindu_storage.storage.sql import Statements
from bindu_storage.types import (
    TERMINAL_STATES,
    Artifact,
    ContextRecord,
    ContextSummary,
    FeedbackRecord,
    Message,
    PushNotificationConfig,
    Task,
    TaskEvent,
    TaskRecord,
)

log = logging.getLogger("bindu_storage.postgres")
T = TypeVar("T")

WRITES = frozenset({
    "submit_task", "update_task", "update_task_state_if", "append_artifact_chunk",
    "update_context", "append_to_context", "clear_context", "clear_all", "store_task_feedback",
    "save_webhook", "delete_webhook",
})
"""Operations that change data: when their connection fails after the statement went out,
a final error says the write may have been applied (``OutcomeUnknownError``)."""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset without the session reset query, for a transaction pooler (see ``_create_pool``)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=_dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


class PostgresStorage(Storage):
    """The PostgreSQL backend (asyncpg pool, JSONB columns, alembic migrations).

    ``schema`` (or ``did``, from which upstream's ``did_…`` schema name is derived) scopes the
    storage to one PostgreSQL schema; every statement is qualified with it.
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
            await pool.release(conn)

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
            init=_init_connection,
            server_settings={"application_name": "bindu-storage"},
            # 0 (behind PgBouncer in transaction mode): asyncpg then sends every statement unnamed
            # and re-parses it with its Bind in one message sequence, so no statement outlives
            # its transaction; and the release skips the session reset query (RESET ALL, UNLISTEN,
            # advisory unlock), which would run on whichever server connection the pooler picks.
            statement_cache_size=self.statement_cache_size,
            reset=_keep_session if self.statement_cache_size == 0 else None,
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
            return await pool.acquire(timeout=self.timeout)
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
                final = (TimeoutError, StorageError, *CONFIGURATION_ERRORS)
                if not idempotent and not isinstance(exc, final):
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
        lazy connect and retries of transient failures; for analysis code, not for writes."""
        return await self._with_conn(lambda c: c.fetch(query, *args), "fetch")

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._with_conn(lambda c: c.fetch(query, *args), self.sql.name_of(query))

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._with_conn(lambda c: c.fetchrow(query, *args), self.sql.name_of(query))

    async def _fetchval(self, query: str, *args: Any) -> Any:
        return await self._with_conn(lambda c: c.fetchval(query, *args), self.sql.name_of(query))

    async def _execute(self, query: str, *args: Any) -> str:
        return await self._with_conn(lambda c: c.execute(query, *args), self.sql.name_of(query))

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(self, task_id: IdLike, history_length: int | None = None) -> Task | None:
        tid = v.as_uuid(task_id, "task_id")
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        row = await self._fetchrow(self.sql.load_task, tid, history_length)
        return task_from_row(row) if row else None

    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        cid = v.as_uuid(context_id, "context_id")
        caller = v.check_optional_str(caller_did, "caller_did")
        msg = v.messages([message], "message")[0]
        tid = v.as_uuid(msg.get("task_id"), "message['task_id']")

        async def work(conn: asyncpg.Connection) -> Task:
            async with conn.transaction():
                owners = await conn.fetch(self.sql.ensure_context, cid, caller)
                if not owners:  # created by a concurrent transaction after our snapshot
                    owners = await conn.fetch(self.sql.context_owner, cid)
                owner = owners[0]["owner_did"]
                if owner is not None and owner != caller:
                    raise OwnershipError(cid, caller)
                created = await conn.fetchrow(self.sql.insert_task, tid, cid, msg, caller)
                if created is not None:
                    return task_from_row(created)
                row = await conn.fetchrow(self.sql.continue_task, tid, msg, cid)
                assert row is not None and row["prior_state"] is not None
                if row["prior_context"] != cid:
                    raise InvalidValueError(
                        f"task {tid} belongs to context {row['prior_context']}, not {cid}"
                    )
                if row["id"] is not None:
                    return task_from_row(row)
                if not row["replay"] and row["prior_state"] in TERMINAL_STATES:
                    raise TerminalTaskError(tid, row["prior_state"], "cannot continue it with a new message")
                current = await conn.fetchrow(self.sql.load_task, tid, None)
                return task_from_row(current)

        return await self._with_conn(work, "submit_task")

    async def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(state)
        arts = v.artifacts(new_artifacts)
        msgs = v.messages(new_messages)
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        row = await self._fetchrow(self.sql.update_task, tid, state, msgs, arts, meta)
        if row is None:
            raise TaskNotFoundError(tid)
        if row["id"] is None:
            prior = row["prior_state"]
            detail = f"cannot move to {state}" if state != prior else "cannot append messages or artifacts"
            raise TerminalTaskError(tid, prior, detail)
        return task_from_row(row)

    async def append_artifact_chunk(self, task_id: IdLike, artifact: Artifact) -> None:
        tid = v.as_uuid(task_id, "task_id")
        chunk = v.artifacts([artifact], "artifact")[0]
        row = await self._with_conn(
            lambda c: c.fetchrow(self.sql.append_artifact_chunk, tid, chunk),
            "append_artifact_chunk",
            idempotent=False,
        )
        if row is None:
            raise TaskNotFoundError(tid)
        if not row["appended"]:
            raise TerminalTaskError(tid, row["prior_state"], "cannot append artifact chunks")

    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(from_state, "from_state")
        v.check_state(to_state, "to_state")
        request_key = uuid.uuid4()  # fixed across retries: a retry recognises its own transition
        row = await self._fetchrow(self.sql.update_task_state_if, tid, from_state, to_state, request_key)
        if row is None:
            raise TaskNotFoundError(tid)
        if row["moved"]:
            return True
        if row["prior_state"] == from_state:  # in from_state, but terminal and asked to move
            raise TerminalTaskError(tid, from_state, f"cannot move to {to_state}")
        return False

    async def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_tasks, length, offset, owner)
        return [task_from_row(r) for r in rows]

    async def count_tasks(self, status: str | None = None) -> int:
        if status is not None:
            v.check_state(status, "status")
        return int(await self._fetchval(self.sql.count_tasks, status))

    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        cid = v.as_uuid(context_id, "context_id")
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_tasks_by_context, cid, length, offset, owner)
        return [task_from_row(r) for r in rows]

    async def get_task_owner(self, task_id: IdLike) -> str | None:
        return await self._fetchval(self.sql.get_task_owner, v.as_uuid(task_id, "task_id"))

    # --- contexts ----------------------------------------------------------------------------

    async def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        row = await self._fetchrow(self.sql.load_context, v.as_uuid(context_id, "context_id"))
        return row["context_data"] if row else None

    async def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        cid = v.as_uuid(context_id, "context_id")
        await self._execute(self.sql.update_context, cid, v.json_object(context, "context"))

    async def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        cid = v.as_uuid(context_id, "context_id")
        await self._execute(self.sql.append_to_context, cid, v.required_messages(messages, "messages"))

    async def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[ContextSummary]:
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_contexts, length, offset, owner)
        return [
            {
                "context_id": r["context_id"],
                "context_data": r["context_data"],
                "task_count": int(r["task_count"]),
                "task_ids": list(r["task_ids"]),
            }
            for r in rows
        ]

    async def get_context_owner(self, context_id: IdLike) -> str | None:
        return await self._fetchval(self.sql.get_context_owner, v.as_uuid(context_id, "context_id"))

    async def clear_context(self, context_id: IdLike) -> None:
        await self._execute(self.sql.clear_context, v.as_uuid(context_id, "context_id"))

    async def clear_all(self) -> None:
        await self._execute(self.sql.clear_all)

    # --- feedback ----------------------------------------------------------------------------

    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(feedback_data, "feedback_data")
        request_key = uuid.uuid4()  # fixed across retries: the insert applies at most once

        async def work(conn: asyncpg.Connection) -> None:
            inserted = await conn.fetchval(self.sql.store_feedback, tid, data, request_key)
            if inserted is None and not await conn.fetchval(self.sql.task_exists, tid):
                raise TaskNotFoundError(tid)

        await self._with_conn(work, "store_task_feedback")

    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        rows = await self._fetch(self.sql.get_feedback, v.as_uuid(task_id, "task_id"))
        return [r["feedback_data"] for r in rows] or None

    # --- webhook configs ---------------------------------------------------------------------

    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        tid = v.as_uuid(task_id, "task_id")
        saved = await self._fetchval(self.sql.save_webhook, tid, v.json_object(config, "config"))
        if saved is None:
            raise TaskNotFoundError(tid)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        return await self._fetchval(self.sql.load_webhook, v.as_uuid(task_id, "task_id"))

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        await self._execute(self.sql.delete_webhook, v.as_uuid(task_id, "task_id"))

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        rows = await self._fetch(self.sql.load_all_webhooks)
        return {r["task_id"]: r["config"] for r in rows}

    # --- analysis read API -------------------------------------------------------------------

    async def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        v.check_window(limit, offset, "limit")
        rows = await self._fetch(self.sql.task_records, limit, offset, since)
        return [
            {"task": task_from_row(r), "owner_did": r["owner_did"],
             "created_at": r["created_at"], "updated_at": r["updated_at"]}
            for r in rows
        ]

    async def context_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        v.check_window(limit, offset, "limit")
        return [dict(r) for r in await self._fetch(self.sql.context_records, limit, offset)]  # type: ignore[misc]

    async def feedback_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[FeedbackRecord]:
        v.check_window(limit, offset, "limit")
        return [dict(r) for r in await self._fetch(self.sql.feedback_records, limit, offset)]  # type: ignore[misc]

    async def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        v.check_window(limit, offset, "limit")
        tid = v.as_uuid(task_id, "task_id") if task_id is not None else None
        return [dict(r) for r in await self._fetch(self.sql.task_events, tid, limit, offset)]  # type: ignore[misc]
