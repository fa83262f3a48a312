"""PgBouncer in transaction pooling mode (issue 8, item 4), through a real PgBouncer.

The whole contract suite runs through PgBouncer as the ``pgbouncer`` param of the ``storage``
fixture; these tests add concurrency (64 mixed calls sharing 3 server connections), the typed
errors of a storage configured wrongly for a pooler (never retried), migrations through it and
the setting itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from conftest import _create_database, postgres_storage, truncate
from pgbouncer import TemporaryPgBouncer

from bindu_storage import PostgresStorage
from bindu_storage.analysis.diagnostics import open_diagnostics_connection
from bindu_storage.analysis.frames import tasks_frame
from bindu_storage.errors import StorageConfigurationError, StorageConnectionError
from bindu_storage.settings import StorageSettings
from bindu_storage.storage import migrate
from bindu_storage.storage.retry import CONFIGURATION_ERRORS, TRANSIENT_ERRORS

CALLS = 64


def _message(task_id: uuid.UUID, context_id: uuid.UUID, text: str = "hi") -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


async def _mixed(storage: PostgresStorage, i: int) -> uuid.UUID:
    """One task's life: submit, update, read, list, compare-and-swap, feedback, webhook, context."""
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, _message(tid, cid))
    await storage.update_task(tid, "working", new_messages=[_message(tid, cid, "more")], metadata={"i": i})
    assert (await storage.load_task(tid))["status"]["state"] == "working"  # type: ignore[index]
    await storage.list_tasks(length=5)
    await storage.list_contexts(length=5)
    assert await storage.update_task_state_if(tid, "working", "completed")
    await storage.store_task_feedback(tid, {"rating": i % 5 + 1})
    await storage.save_webhook_config(tid, {"url": f"https://example.com/{i}"})
    await storage.update_context(cid, {"n": i})
    assert await storage.load_context(cid) == {"n": i}
    assert await storage.get_task_feedback(tid) == [{"rating": i % 5 + 1}]
    return tid


def _bouncer_storage(url: str, **options: Any) -> PostgresStorage:
    return postgres_storage(url, **{"statement_cache_size": 0, **options})


async def test_64_concurrent_mixed_calls_through_pgbouncer(pgbouncer_url: str, pg_url: str) -> None:
    """Before the setting, 55 of 64 such lives failed (prepared statement ... does not exist)."""
    await truncate(pg_url)
    storage = _bouncer_storage(pgbouncer_url)
    async with storage:
        results = await asyncio.gather(*(_mixed(storage, i) for i in range(CALLS)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"{len(errors)} of {CALLS} failed, first: {errors[0]!r}"
        assert await storage.count_tasks("completed") == CALLS
        assert len(await storage.load_all_webhook_configs()) == CALLS
        assert len(await storage.task_events()) == 2 * CALLS + CALLS  # submitted, working, completed


async def test_server_connections_really_are_shared(pgbouncer_url: str, pg_url: str) -> None:
    """The fixture's PgBouncer serves 10 client connections from at most 3 server connections."""
    storage = _bouncer_storage(pgbouncer_url, pool_min=10, pool_max=10)
    async with storage:
        pids = await asyncio.gather(*(storage.fetch("SELECT pg_backend_pid() AS p, pg_sleep(0.05)")
                                      for _ in range(30)))
    assert 1 <= len({rows[0]["p"] for rows in pids}) <= 3


async def test_statement_cache_behind_pgbouncer_is_a_typed_configuration_error(
    pgbouncer_url: str, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With asyncpg's statement cache on, the raw asyncpg errors become one typed error naming the
    setting, raised at once (retrying cannot help)."""
    await truncate(pg_url)
    storage = postgres_storage(pgbouncer_url, statement_cache_size=100, max_retries=3, retry_delay=1.0)
    errors: list[BaseException] = []
    async with storage:
        for _ in range(5):  # 55 of 64 fail in one round; a few rounds make it certain
            calls = (_mixed(storage, i) for i in range(CALLS))
            results = await asyncio.gather(*calls, return_exceptions=True)
            errors += [r for r in results if isinstance(r, BaseException)]
            if errors:
                break
    assert errors
    for error in errors:
        assert isinstance(error, StorageConfigurationError), repr(error)
        assert "STORAGE__POSTGRES_STATEMENT_CACHE_SIZE=0" in str(error)
        assert urlsplit(pg_url).password not in str(error)
    assert "transient error" not in caplog.text  # never retried


async def test_unsupported_startup_parameter_is_not_retried(
    pgbouncer: TemporaryPgBouncer, pg_url: str
) -> None:
    """PgBouncer refuses unknown startup parameters (08P01, a ProtocolViolationError, in the
    'connection exception' class 08): a configuration error, raised at once, naming what to change.
    Before: StorageConnectionError after 4 attempts and 7 s of backoff."""
    url = pgbouncer.url(urlsplit(pg_url).path.lstrip("/")) + "?statement_timeout=5000"
    storage = postgres_storage(url, statement_cache_size=0, max_retries=3, retry_delay=1.0)
    started = time.monotonic()
    with pytest.raises(StorageConfigurationError) as info:
        await storage.connect()
    assert time.monotonic() - started < 1.0
    message = str(info.value)
    assert "unsupported startup parameter: statement_timeout" in message
    assert "ignore_startup_parameters" in message and "DATABASE_URL" in message
    assert urlsplit(pg_url).password not in message
    assert not isinstance(info.value, StorageConnectionError)


async def test_protocol_violation_is_not_transient(pg_url: str) -> None:
    """08P01 subclasses asyncpg's PostgresConnectionError (a transient class): the retry loop must
    check the configuration errors first. A real server error, not a mock: the attempt is counted."""
    assert issubclass(asyncpg.ProtocolViolationError, TRANSIENT_ERRORS)  # why the order matters
    assert issubclass(asyncpg.ProtocolViolationError, CONFIGURATION_ERRORS)
    storage = postgres_storage(pg_url, max_retries=3, retry_delay=0.2)
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        raise asyncpg.ProtocolViolationError("unsupported startup parameter: jit")

    with pytest.raises(StorageConfigurationError, match="ignore_startup_parameters"):
        await storage._retry(attempt, "connect")
    assert attempts == 1


async def test_storage_migrates_through_pgbouncer(pgbouncer: TemporaryPgBouncer, admin_url: str) -> None:
    """Migrations run in one transaction (transaction-scoped advisory lock, SET LOCAL), so they
    work through transaction pooling too, with startup migrations on."""
    name = f"bindu_{uuid.uuid4().hex[:10]}"
    await _create_database(admin_url, name)
    storage = PostgresStorage(
        pgbouncer.url(name), statement_cache_size=0, schema="via_bouncer", pool_min=1, pool_max=4
    )
    async with storage:
        assert await migrate.current_revision(pgbouncer.url(name), "via_bouncer") == migrate.head_revision()
        await _mixed(storage, 1)


_MIGRATE = "import asyncio, sys; from bindu_storage.storage import migrate; " \
           "asyncio.run(migrate.upgrade(sys.argv[1], sys.argv[2]))"


def test_racing_migration_processes_through_pgbouncer(pgbouncer: TemporaryPgBouncer, admin_url: str) -> None:
    """6 processes migrating at once through PgBouncer: before, most failed with 'prepared statement
    "__asyncpg_stmt_1__" already exists' (every process numbers its statements from 1)."""
    name = f"bindu_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_database(admin_url, name))
    url = pgbouncer.url(name)
    procs = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE, url, schema], stderr=subprocess.PIPE, text=True)
        for schema in ["public"] * 3 + ["racing"] * 3
    ]
    failures = [err[-500:] for p in procs if (err := p.communicate(timeout=120)[1]) and p.returncode]
    assert not failures, failures
    for schema in ("public", "racing"):
        assert asyncio.run(migrate.current_revision(url, schema)) == migrate.head_revision()


def test_statement_cache_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """STORAGE__POSTGRES_STATEMENT_CACHE_SIZE: default 100 (asyncpg's), 0 allowed, negative refused."""
    monkeypatch.delenv("STORAGE__POSTGRES_STATEMENT_CACHE_SIZE", raising=False)
    assert StorageSettings().postgres_statement_cache_size == 100
    monkeypatch.setenv("STORAGE__POSTGRES_STATEMENT_CACHE_SIZE", "0")
    settings = StorageSettings()
    assert settings.postgres_statement_cache_size == 0
    url = "postgresql://u@localhost/db"
    assert PostgresStorage(url, settings=settings).statement_cache_size == 0
    assert PostgresStorage(url, settings=settings, statement_cache_size=50).statement_cache_size == 50
    monkeypatch.setenv("STORAGE__POSTGRES_STATEMENT_CACHE_SIZE", "-1")
    with pytest.raises(ValueError, match="STORAGE__POSTGRES_STATEMENT_CACHE_SIZE"):
        StorageSettings()


def test_missing_pgbouncer_fails_loudly(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    """No silent skip: without the binary the fixture fails, saying how to install it."""
    monkeypatch.setenv("BINDU_PGBOUNCER", "/nonexistent/pgbouncer")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y pgbouncer"):
        TemporaryPgBouncer(pg_url)



async def test_frames_through_a_pgbouncer_storage_and_clear_errors_from_a_url(
    pgbouncer_url: str, pg_url: str
) -> None:
    """Frames read through a PostgresStorage behind PgBouncer (COPY inside one transaction);
    frames and diagnostics from a PgBouncer URL need a session of their own: a typed error saying
    to connect directly, instead of a bare 'unsupported startup parameter'."""
    await truncate(pg_url)
    storage = _bouncer_storage(pgbouncer_url)
    async with storage:
        await asyncio.gather(*(_mixed(storage, i) for i in range(8)))
        frame = await tasks_frame(storage)
    assert len(frame) == 8 and set(frame["state"]) == {"completed"}
    password = urlsplit(pg_url).password
    with pytest.raises(StorageConfigurationError, match="PostgreSQL directly") as info:
        await tasks_frame(pgbouncer_url)
    assert password not in str(info.value)
    with pytest.raises(StorageConfigurationError, match="PostgreSQL \\(or a replica\\) directly") as info:
        await open_diagnostics_connection(pgbouncer_url)
    assert password not in str(info.value)
