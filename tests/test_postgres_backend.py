"""What only the PostgreSQL backend has: schemas, migrations on connect, lifecycle, retries, timeouts.

Failures are real: connections are killed with ``pg_terminate_backend`` and statements are held up
by row locks taken from a separate admin connection.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from conftest import postgres_storage, truncate

from bindu_storage import (
    OwnershipError,
    PostgresStorage,
    StorageClosedError,
    StorageConnectionError,
    StorageError,
)
from bindu_storage.sqlnames import schema_for_did
from bindu_storage.storage.sql import Statements

RETRY_LOG = "transient error"


def message(task_id: uuid.UUID, context_id: uuid.UUID, text: str = "hi") -> dict[str, Any]:
    """A one-part text message with a fresh id."""
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


async def new_task(storage: PostgresStorage, caller_did: str | None = None) -> tuple[uuid.UUID, uuid.UUID]:
    """Submit a task in a new context; return (task id, context id)."""
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid), caller_did=caller_did)
    return tid, cid


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test database, outside any storage."""
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds (a liveness bound of about 20 s, not a timing assertion)."""
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def blocked_storage_pids(admin: asyncpg.Connection) -> list[int]:
    """Backends of storages waiting on a lock in this database."""
    await admin.execute("SELECT pg_stat_clear_snapshot()")  # a transaction caches pg_stat_activity
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'bindu-storage' AND wait_event_type = 'Lock'"
    )
    return [r["pid"] for r in rows]


async def drop_schemas(url: str, *schemas: str) -> None:
    """Drop test schemas (they outlive the test otherwise when the server is shared)."""
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    """How many retries the storage logged."""
    return sum(RETRY_LOG in r.getMessage() for r in caplog.records)


# --- schemas ---------------------------------------------------------------------------------


async def test_schemas_keep_tenants_apart(pg_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    did = f"did:bindu:agent-{suffix}"
    schemas = [f"tenant_a_{suffix}", f"tenant_b_{suffix}", schema_for_did(did)]
    assert schemas[2].startswith("did_") and suffix in schemas[2]
    stores = [
        postgres_storage(pg_url, schema=schemas[0], run_migrations=True),
        postgres_storage(pg_url, schema=schemas[1], run_migrations=True),
        postgres_storage(pg_url, did=did, run_migrations=True),
    ]
    try:
        assert stores[2].schema == schemas[2]
        created = [await new_task(s) for s in stores]
        for i, store in enumerate(stores):
            assert [t["id"] for t in await store.list_tasks()] == [created[i][0]]
            assert await store.count_tasks() == 1
            for j, (tid, cid) in enumerate(created):
                if j != i:
                    assert await store.load_task(tid) is None
                    assert await store.load_context(cid) is None
        await stores[0].clear_all()
        assert await stores[0].count_tasks() == 0
        assert await stores[1].count_tasks() == 1 and await stores[2].count_tasks() == 1
    finally:
        for store in stores:
            await store.close()
        await drop_schemas(pg_url, *schemas)


def test_did_schema_names_are_plain_identifiers() -> None:
    assert schema_for_did("did:bindu:Alice@Example.com:agent/1") == "did_bindu_alice_example_com_agent_1"
    assert len(schema_for_did("did:key:" + "z" * 200)) <= 63
    with pytest.raises(StorageError):
        PostgresStorage("postgresql://u@h/db", schema="x", did="did:y")


def test_every_statement_is_schema_qualified() -> None:
    rendered = Statements.for_schema("tenant_q")
    for name, sql in vars(rendered).items():
        assert '"tenant_q".' in sql, name
        words = " ".join(sql.replace(",", " , ").split()) + " "  # line breaks count as spaces
        for table in ("tasks", "contexts", "task_feedback", "task_events", "webhook_configs"):
            for keyword in ("FROM", "INTO", "UPDATE", "TRUNCATE", "DELETE FROM", "JOIN", ","):
                assert f"{keyword} {table} " not in words, f"{name}: unqualified {table}"


def test_statements_are_whole_sql_with_the_schema_put_in_once() -> None:
    """The schema is the one placeholder; JSON braces are plain SQL, never format escapes."""
    rendered = Statements.for_schema("Tenant$1")
    for name, sql in vars(rendered).items():
        assert "{schema}" not in sql and "{{" not in sql and "}}" not in sql, name
        assert '"Tenant$1".' in sql, name  # quoted, so the case is kept
        assert sql == sql.strip() and not sql.startswith(" "), name
    assert "coalesce(t.metadata, '{}') || $5::jsonb" in rendered.update_task
    assert "jsonb_set(a, '{parts}'," in rendered.append_artifact_chunk
    for bad in ("", 'odd"name', "a; DROP TABLE tasks", "x" * 64):
        with pytest.raises(StorageError):
            Statements.for_schema(bad)


def test_task_columns_keep_their_value() -> None:
    from bindu_storage.storage.sql import TASK_COLUMNS

    assert TASK_COLUMNS == (
        "t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata"
    )


async def test_statements_do_not_depend_on_search_path(fresh_database: str) -> None:
    """With every session's search_path pointing at a decoy schema, the storage still uses its own."""
    decoy = postgres_storage(fresh_database, schema="decoy", run_migrations=True)
    await decoy.connect()
    await decoy.close()
    conn = await asyncpg.connect(fresh_database)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{name}" SET search_path TO decoy')
    finally:
        await conn.close()

    for schema in ("tenant", "public"):
        storage = postgres_storage(fresh_database, schema=schema, run_migrations=True)
        async with storage:
            assert storage.pool is not None
            async with storage.pool.acquire() as probe:
                assert await probe.fetchval("SHOW search_path") == "decoy"
            tid, cid = await new_task(storage, caller_did="did:t")
            await storage.update_task(tid, "working", new_messages=[message(tid, cid, "more")])
            await storage.update_task_state_if(tid, "working", "completed")
            await storage.store_task_feedback(tid, {"ok": True})
            await storage.save_webhook_config(tid, {"url": "https://hooks.example"})
            await storage.update_context(cid, {"k": 1})
            await storage.append_to_contexts(cid, [message(tid, cid)])
            assert len(await storage.list_tasks()) == 1 and len(await storage.list_contexts()) == 1
            assert len(await storage.task_events(tid)) == 3
            assert await storage.get_task_feedback(tid) == [{"ok": True}]
            conn = await asyncpg.connect(fresh_database)
            try:
                assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".tasks') == 1
                for table in ("tasks", "contexts", "task_feedback", "task_events", "webhook_configs"):
                    assert await conn.fetchval(f"SELECT count(*) FROM decoy.{table}") == 0, table
            finally:
                await conn.close()
            await storage.clear_context(cid)
            assert await storage.count_tasks() == 0


async def test_connect_migrates_a_new_schema(fresh_database: str) -> None:
    storage = postgres_storage(fresh_database, schema="made_on_connect", run_migrations=True)
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT to_regnamespace('made_on_connect')") is None
        await storage.connect()
        tables = {
            r["table_name"] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'made_on_connect'"
            )
        }
        assert {"tasks", "contexts", "task_feedback", "task_events", "webhook_configs"} <= tables
        assert await conn.fetchval("SELECT count(*) FROM made_on_connect.alembic_version") == 1
        await new_task(storage)
        await storage.close()
        again = postgres_storage(fresh_database, schema="made_on_connect", run_migrations=True)
        async with again:  # migrating an up-to-date schema is a no-op: the data stays
            assert await again.count_tasks() == 1
    finally:
        await storage.close()
        await conn.close()


async def test_unmigrated_schema_fails_clearly_without_retries(
    fresh_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = postgres_storage(fresh_database, schema="public", run_migrations=False, max_retries=3)
    async with storage:
        with caplog.at_level(logging.WARNING), pytest.raises(StorageError, match="alembic upgrade head"):
            await storage.list_tasks()
    assert retries_logged(caplog) == 0


# --- lifecycle -------------------------------------------------------------------------------


async def test_connects_lazily_and_once(pg_url: str) -> None:
    await truncate(pg_url)
    storage = postgres_storage(pg_url)
    assert storage.pool is None
    assert "not connected" in repr(storage)
    try:
        results = await asyncio.gather(*(storage.count_tasks() for _ in range(20)))
        assert results == [0] * 20
        pool = storage.pool
        assert pool is not None and "connected" in repr(storage)
        await storage.list_tasks()
        await storage.connect()  # idempotent
        assert storage.pool is pool
    finally:
        await storage.close()
    assert storage.pool is None


async def test_async_context_manager_connects_and_closes(pg_url: str) -> None:
    await truncate(pg_url)
    async with postgres_storage(pg_url) as storage:
        assert storage.pool is not None
        tid, _ = await new_task(storage)
    assert storage.pool is None
    async with postgres_storage(pg_url) as other:  # a new storage sees what the first wrote
        assert (await other.load_task(tid)) is not None
    await storage.disconnect()  # closing a closed storage is fine


async def test_repr_masks_the_password(pg_url: str) -> None:
    password = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    storage = postgres_storage(pg_url, schema="public")
    for text in (repr(storage), str(storage), storage.database_url):
        assert password not in text
    assert "127.0.0.1" in repr(storage) and "public" in repr(storage)
    async with storage:
        assert password not in repr(storage)


async def statements_of(conn: asyncpg.Connection, call: Awaitable[Any]) -> int:
    """How many top-level statements ``call`` sent to this database (pg_stat_statements on
    ``conn``): BEGIN, COMMIT and a pool's reset query count too."""
    await conn.execute("SELECT pg_stat_statements_reset()")
    await call
    return await conn.fetchval(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
        " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
        " AND s.toplevel AND s.query NOT ILIKE '%pg_stat_statements%'"
    )


async def test_operations_are_one_statement_each(fresh_database: str) -> None:
    """update_task, submit's continue and the CAS each reach the server as one statement."""
    storage = postgres_storage(fresh_database, schema="rt", run_migrations=True, pool_max=1)
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        async with storage:
            tid, cid = await new_task(storage)

            assert await statements_of(conn, storage.update_task(
                tid, "working", new_messages=[message(tid, cid)], metadata={"a": 1}
            )) == 1
            claim = storage.update_task_state_if(tid, "working", "input-required")
            assert await statements_of(conn, claim) == 1
            assert await statements_of(conn, storage.load_task(tid, history_length=1)) == 1
            await storage.list_contexts()  # asyncpg introspects the uuid[] type once per connection
            assert await statements_of(conn, storage.list_contexts()) == 1
    finally:
        await conn.close()


async def test_a_call_is_one_round_trip(fresh_database: str) -> None:
    """No BEGIN/COMMIT around a single statement, no session reset query on release: a new
    task's submit, a load and a feedback each reach the server as exactly one statement."""
    storage = postgres_storage(fresh_database, schema="rt1", run_migrations=True, pool_max=1)
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        async with storage:
            tid, cid = await new_task(storage)

            other = uuid.uuid4()
            assert await statements_of(conn, storage.submit_task(cid, message(other, cid))) == 1
            assert await statements_of(conn, storage.load_task(tid)) == 1
            assert await statements_of(conn, storage.store_task_feedback(tid, {"rating": 5})) == 1
            async with storage.connection() as lent:  # a lent connection is reset on its return
                await lent.execute("SET work_mem = '7MB'")
            async with storage.connection() as lent:
                assert await lent.fetchval("SHOW work_mem") != "7MB"
    finally:
        await conn.close()


async def test_a_call_handed_a_connection_while_closing_says_closed_and_writes_nothing(
    pg_url: str,
) -> None:
    """A call that gets its connection while close() runs must not send its statement: the
    close would cut the reply of a write that committed (a success reported as closed)."""
    for _ in range(5):
        await truncate(pg_url)
        storage = postgres_storage(pg_url, pool_min=4, pool_max=4)
        await storage.connect()
        results = await asyncio.gather(
            *(new_task(storage) for _ in range(20)), storage.close(), return_exceptions=True
        )
        assert all(isinstance(r, tuple | StorageClosedError) for r in results[:-1]), results
        created = [r for r in results[:-1] if isinstance(r, tuple)]
        async with storage:
            assert await storage.count_tasks() == len(created)


# --- retries ---------------------------------------------------------------------------------


async def kill_while_blocked(
    admin: asyncpg.Connection, lock_sql: str, lock_args: tuple[Any, ...], call: Awaitable[Any]
) -> asyncio.Task[Any]:
    """Hold a row lock, start ``call``, kill its backend while it waits, release; return the task."""
    tx = admin.transaction()
    await tx.start()
    await admin.execute(lock_sql, *lock_args)
    running = asyncio.ensure_future(call)
    await eventually(lambda: _has_blocked(admin), "the storage waits on the row lock")
    (pid,) = await blocked_storage_pids(admin)
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    await eventually(lambda: _is_gone(admin, pid), "the killed backend is gone")
    await tx.commit()
    return running


async def _has_blocked(admin: asyncpg.Connection) -> bool:
    return bool(await blocked_storage_pids(admin))


async def _is_gone(admin: asyncpg.Connection, pid: int) -> bool:
    await admin.execute("SELECT pg_stat_clear_snapshot()")  # a transaction caches pg_stat_activity
    return not await admin.fetchval("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid)


async def test_killed_update_is_retried_and_applied_once(
    pg_storage: PostgresStorage, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    tid, cid = await new_task(pg_storage)
    reply = message(tid, cid, "reply")
    with caplog.at_level(logging.WARNING):
        running = await kill_while_blocked(
            admin, "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", (tid,),
            pg_storage.update_task(tid, "working", new_messages=[reply], metadata={"n": 1}),
        )
        task = await running
    assert retries_logged(caplog) >= 1
    assert [m["message_id"] for m in task["history"]][1:] == [reply["message_id"]]
    assert task["status"]["state"] == "working" and task["metadata"] == {"n": 1}
    events = await pg_storage.task_events(tid)
    transitions = [(e["from_state"], e["to_state"]) for e in events]
    assert transitions == [(None, "submitted"), ("submitted", "working")]
    # replaying the same write (as a retry after a lost reply would) appends nothing again
    replayed = await pg_storage.update_task(tid, "working", new_messages=[reply], metadata={"n": 1})
    assert {**replayed, "status": None} == {**task, "status": None}
    assert len(await pg_storage.task_events(tid)) == 2


async def test_killed_submit_is_retried_and_creates_once(
    pg_storage: PostgresStorage, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    _, cid = await new_task(pg_storage, caller_did="did:x")
    tid = uuid.uuid4()
    first = message(tid, cid, "new task in an existing context")
    with caplog.at_level(logging.WARNING):
        running = await kill_while_blocked(  # the new task's foreign key check waits on the context
            admin, "SELECT 1 FROM contexts WHERE id = $1 FOR UPDATE", (cid,),
            pg_storage.submit_task(cid, first, caller_did="did:x"),
        )
        task = await running
    assert retries_logged(caplog) >= 1
    assert task["history"] == [first]
    assert len(await pg_storage.list_tasks_by_context(cid)) == 2
    assert [(e["from_state"], e["to_state"]) for e in await pg_storage.task_events(tid)] == [
        (None, "submitted")
    ]


async def test_killed_feedback_is_retried_and_stored_once(
    pg_storage: PostgresStorage, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    tid, _ = await new_task(pg_storage)
    with caplog.at_level(logging.WARNING):
        running = await kill_while_blocked(
            admin, "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", (tid,),
            pg_storage.store_task_feedback(tid, {"rating": 5}),
        )
        await running
    assert retries_logged(caplog) >= 1
    assert await pg_storage.get_task_feedback(tid) == [{"rating": 5}]


async def test_killed_artifact_chunk_is_not_retried(
    pg_storage: PostgresStorage, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunk has no id to de-duplicate by: once it may have reached the server, no retry."""
    tid, _ = await new_task(pg_storage)
    chunk = {"artifact_id": "stream", "parts": [{"kind": "text", "text": "part"}]}
    with caplog.at_level(logging.WARNING):
        running = await kill_while_blocked(
            admin, "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", (tid,),
            pg_storage.append_artifact_chunk(tid, chunk),
        )
        with pytest.raises(StorageConnectionError, match="not retried"):
            await running
    assert retries_logged(caplog) == 0
    task = await pg_storage.load_task(tid)
    assert task is not None and task["artifacts"] == []  # killed before commit: applied zero times
    await pg_storage.append_artifact_chunk(tid, chunk)  # the caller decides to send it again
    task = await pg_storage.load_task(tid)
    assert task is not None and task["artifacts"] == [chunk]


async def test_no_retries_means_a_connection_error_and_nothing_applied(
    pg_url: str, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await truncate(pg_url)
    async with postgres_storage(pg_url, max_retries=0) as storage:
        tid, cid = await new_task(storage)
        with caplog.at_level(logging.WARNING):
            running = await kill_while_blocked(
                admin, "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", (tid,),
                storage.update_task(tid, "working", new_messages=[message(tid, cid, "lost")]),
            )
            with pytest.raises(StorageConnectionError) as raised:
                await running
        assert retries_logged(caplog) == 0
        assert isinstance(raised.value, ConnectionError)
        assert "update_task failed after 1 attempt" in str(raised.value)  # names the operation
        task = await storage.load_task(tid)  # the storage recovers for the next call
        assert task is not None and task["status"]["state"] == "submitted" and len(task["history"]) == 1


async def test_idle_connections_killed_between_calls_are_replaced(
    pg_storage: PostgresStorage, admin: asyncpg.Connection
) -> None:
    """The server closing pooled connections while they sit idle (a restart, an idle timeout)."""
    tid, cid = await new_task(pg_storage)
    for round_ in range(20):
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'bindu-storage'"
        )
        assert killed >= 1
        if round_ % 2:
            assert (await pg_storage.load_task(tid)) is not None
        else:
            await pg_storage.update_task(tid, "working", new_messages=[message(tid, cid, str(round_))])
    task = await pg_storage.load_task(tid)
    assert task is not None and len(task["history"]) == 11


async def test_fetch_runs_analysis_sql_with_the_same_retries(
    pg_storage: PostgresStorage, admin: asyncpg.Connection
) -> None:
    """``fetch`` (used by the JSONB filters) survives killed pooled connections like the rest."""
    tid, _ = await new_task(pg_storage)
    for _ in range(5):
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'bindu-storage'"
        )
        rows = await pg_storage.fetch("SELECT id FROM tasks WHERE id = $1", tid)
        assert [r["id"] for r in rows] == [tid]


async def test_refusals_are_not_retried(
    pg_storage: PostgresStorage, caplog: pytest.LogCaptureFixture
) -> None:
    tid, cid = await new_task(pg_storage, caller_did="did:owner")
    await pg_storage.update_task(tid, "completed")
    with caplog.at_level(logging.WARNING):
        with pytest.raises(OwnershipError):
            await pg_storage.submit_task(cid, message(tid, cid), caller_did="did:intruder")
        with pytest.raises(StorageError):
            await pg_storage.update_task(tid, "working")
        with pytest.raises(KeyError):
            await pg_storage.store_task_feedback(uuid.uuid4(), {"x": 1})
    assert retries_logged(caplog) == 0


# --- command timeout -------------------------------------------------------------------------


async def test_command_timeout_bounds_a_blocked_statement(
    pg_url: str, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await truncate(pg_url)
    async with postgres_storage(pg_url, command_timeout=0.5, max_retries=3) as storage:
        tid, cid = await new_task(storage)
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", tid)
            with caplog.at_level(logging.WARNING):
                running = asyncio.ensure_future(
                    storage.update_task(tid, "working", new_messages=[message(tid, cid, "late")])
                )
                done, _ = await asyncio.wait({running}, timeout=60)  # liveness bound only
                assert running in done, "the statement was not bounded by command_timeout"
                with pytest.raises(TimeoutError) as raised:
                    running.result()
        assert "timed out" in str(raised.value) and "0.5" in str(raised.value)
        assert retries_logged(caplog) == 0  # a statement past its bound is not retried
        task = await storage.load_task(tid)
        assert task is not None and task["status"]["state"] == "submitted" and len(task["history"]) == 1
        assert await storage.update_task(tid, "working")  # the pool is still healthy
