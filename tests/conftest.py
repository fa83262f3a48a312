"""Shared fixtures: one throwaway PostgreSQL per test run, a clean state per test.

``BINDU_TEST_DATABASE_URL`` points the suite at an existing server instead (its database is
used as is; tests create their own schemas and databases in it).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from pgbouncer import pgbouncer, pgbouncer_url  # noqa: F401 - fixtures: PgBouncer in transaction mode
from upstream import upstream, upstream_python  # noqa: F401 - fixtures for the upstream tests

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

TEST_DATABASE = "bindu_test"
TABLES = "tasks, contexts, task_feedback, task_events, webhook_configs"


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TemporaryPostgres | None]:
    """The throwaway server of this run (None when BINDU_TEST_DATABASE_URL is given)."""
    if os.environ.get("BINDU_TEST_DATABASE_URL"):
        yield None
        return
    with TemporaryPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def admin_url(pg_server: TemporaryPostgres | None) -> str:
    """URL of a database where the tests may create databases and schemas."""
    return os.environ.get("BINDU_TEST_DATABASE_URL") or pg_server.url  # type: ignore[union-attr]


async def _create_database(admin: str, name: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(admin, name)


@pytest.fixture(scope="session")
def pg_url(admin_url: str) -> str:
    """A database migrated to head once per run (schema ``public``)."""

    async def setup() -> str:
        url = await _create_database(admin_url, TEST_DATABASE)
        await migrate.upgrade(url)
        return url

    return asyncio.run(setup())


@pytest.fixture
def fresh_database(admin_url: str) -> Iterator[str]:
    """An empty database of its own, dropped afterwards (for migration tests)."""
    name = f"bindu_{uuid.uuid4().hex[:10]}"
    url = asyncio.run(_create_database(admin_url, name))
    yield url

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def execute(url: str, *statements: str) -> None:
    """Run statements on a fresh connection to ``url``."""
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def truncate(url: str, schema: str = "public") -> None:
    """Empty every Bindu table of ``schema`` and restart its id sequences."""
    conn = await asyncpg.connect(url)
    try:
        tables = ", ".join(f'"{schema}".{t.strip()}' for t in TABLES.split(","))
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def postgres_storage(url: str, **options: Any) -> PostgresStorage:
    """A PostgresStorage for tests: no startup migration, small pool, quick retries."""
    defaults: dict[str, Any] = {
        "run_migrations": False, "pool_min": 1, "pool_max": 10, "retry_delay": 0.01,
    }
    return PostgresStorage(url, **{**defaults, **options})


@pytest.fixture
async def pg_storage(pg_url: str) -> AsyncIterator[PostgresStorage]:
    """A connected PostgresStorage on an emptied database."""
    await truncate(pg_url)
    storage = postgres_storage(pg_url)
    await storage.connect()
    try:
        yield storage
    finally:
        await storage.close()


BACKENDS = ["memory", "postgres"]
"""The backends every suite that takes ``storage`` runs on."""

POOLED_BACKENDS = [*BACKENDS, "pgbouncer"]
"""Plus PostgreSQL through PgBouncer in transaction mode: the contract and concurrency suites
override ``storage`` with these (``open_backend``), the others keep the two backends."""


@asynccontextmanager
async def open_backend(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """An empty storage of the backend ``request.param`` names."""
    if request.param == "memory":
        yield InMemoryStorage()
        return
    await truncate(pg_url)
    if request.param == "pgbouncer":  # transaction pooling: no prepared statements across calls
        pg = postgres_storage(request.getfixturevalue("pgbouncer_url"), statement_cache_size=0)
    else:
        pg = postgres_storage(pg_url)
    await pg.connect()
    try:
        yield pg
    finally:
        await pg.close()


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, empty: the contract tests run once per backend."""
    # pg_url is a parameter (not getfixturevalue): its asyncio.run() cannot run inside this loop
    async with open_backend(request, pg_url) as opened:
        yield opened
