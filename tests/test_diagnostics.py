"""Read-only diagnostics against real servers: a primary, its streaming standby, a pg_monitor role.

One throwaway primary and one hot standby (pg_basebackup, streaming) serve the whole module. The
primary holds a migrated ``public`` schema with a few hundred tasks written through
``PostgresStorage``, an agent's ``did_…`` schema, a schema with a dropped index, one left at an
older revision, and a scratch schema with duplicate, invalid and dead-row-laden things; a second
database has no ``pg_stat_statements``. A ``pg_monitor`` login role with CONNECT/USAGE/SELECT
grants runs the diagnostics as an ops setup would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pandas as pd
import pytest
from conftest import postgres_storage

from bindu_storage import InvalidTypeError, InvalidValueError, PostgresStorage, StorageConnectionError
from bindu_storage.analysis.diagnostics import (
    DIAGNOSTICS,
    PRIMARY_ONLY,
    Diagnostics,
    Limit,
    Thresholds,
    health_report,
    open_diagnostics_connection,
    redact_sql,
)
from bindu_storage.analysis.diagnostics.settings import KEY_SETTINGS
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

DATABASE = "bindu_diag"
NO_STATS_DATABASE = "bindu_nostats"
AGENT_DID = "did:key:agent-x"
AGENT_SCHEMA = "did_key_agent_x"
MONITOR = "bindu_monitor"
SCHEMAS = ("public", AGENT_SCHEMA, "drifted", "scratch", "old_revision")


def _url(
    server: TemporaryPostgres, database: str, user: str | None = None, password: str | None = None
) -> str:
    if user is None:
        return server.database_url(database)
    return f"postgresql://{user}:{password}@127.0.0.1:{server.port}/{database}"


def message(task_id: uuid.UUID, context_id: uuid.UUID, text: str) -> dict[str, Any]:
    """An A2A user message of one text part."""
    return {
        "message_id": str(uuid.uuid4()),
        "task_id": str(task_id),
        "context_id": str(context_id),
        "kind": "message",
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
    }


@dataclass
class Cluster:
    """Everything the tests need to reach: URLs (with passwords) and the planted tasks."""

    primary: TemporaryPostgres
    standby: TemporaryPostgres
    admin_password: str
    monitor_password: str
    stuck_task: uuid.UUID
    waiting_task: uuid.UUID
    tasks_written: int

    def url(self, database: str = DATABASE) -> str:
        return _url(self.primary, database)

    def standby_url(self, database: str = DATABASE) -> str:
        return _url(self.standby, database)

    def monitor_url(self, standby: bool = False) -> str:
        server = self.standby if standby else self.primary
        return _url(server, DATABASE, MONITOR, self.monitor_password)

    def target(self, name: str) -> str:
        """The URL of a named way in: primary/standby, as the admin or as the monitor role."""
        return {
            "primary": self.url(),
            "standby": self.standby_url(),
            "monitor": self.monitor_url(),
            "monitor-standby": self.monitor_url(standby=True),
        }[name]


async def _populate(primary: TemporaryPostgres, monitor_password: str) -> dict[str, Any]:
    url = _url(primary, DATABASE)
    admin = await asyncpg.connect(primary.url)
    try:
        for name in (DATABASE, NO_STATS_DATABASE):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    for schema in ("public", AGENT_SCHEMA, "drifted"):
        await migrate.upgrade(url, schema)
    await migrate.upgrade(url, "old_revision", revision="0004")

    storage = postgres_storage(url)
    agent = postgres_storage(url, did=AGENT_DID, schema=None)
    written = 0

    async def fill_context(n: int) -> None:  # one writer per context, ten contexts at once
        context = uuid.uuid4()
        for i in range(30):
            tid = uuid.uuid4()
            await storage.submit_task(context, message(tid, context, f"task {n}-{i}"))
            if i < 20:
                await storage.update_task(tid, "completed")

    try:
        await asyncio.gather(*(fill_context(n) for n in range(10)))
        written += 300
        big = uuid.uuid4()
        ctx = uuid.uuid4()
        await storage.submit_task(ctx, message(big, ctx, "a big one"))
        noise = secrets.token_hex(100_000)  # 200 kB that does not compress: lands in TOAST
        await storage.update_task(
            big,
            "working",
            new_artifacts=[
                {"artifact_id": str(uuid.uuid4()), "name": "blob", "parts": [{"kind": "text", "text": noise}]}
            ],
        )
        stuck, waiting = uuid.uuid4(), uuid.uuid4()
        for tid in (stuck, waiting):
            await storage.submit_task(ctx, message(tid, ctx, "will get stuck"))
        written += 3
        for _ in range(5):
            ctx = uuid.uuid4()
            await agent.submit_task(ctx, message(uuid.uuid4(), ctx, "agent task"))
    finally:
        await storage.close()
        await agent.close()

    conn = await asyncpg.connect(url)
    try:
        # the agent stopped working on one task 20 minutes ago; another waits 2 h on its caller
        await conn.execute(
            "UPDATE tasks SET state = 'working', state_timestamp = now() - interval '20 minutes' "
            "WHERE id = $1",
            stuck,
        )
        await conn.execute(
            "UPDATE tasks SET state = 'input-required', state_timestamp = now() - interval '2 hours' "
            "WHERE id = $1",
            waiting,
        )
        await conn.execute("CREATE EXTENSION pg_stat_statements")
        await conn.execute("DROP INDEX drifted.idx_tasks_metadata_gin")
        await conn.execute(
            """
            CREATE SCHEMA scratch;
            CREATE TABLE scratch.things (a int, b int, c int, d int) WITH (autovacuum_enabled = off);
            INSERT INTO scratch.things SELECT n, n % 7, n, n % 3 FROM generate_series(1, 2000) n;
            CREATE INDEX things_a ON scratch.things (a);
            CREATE INDEX things_a_b ON scratch.things (a, b);
            CREATE INDEX things_b_first ON scratch.things (b);
            CREATE INDEX things_b_twin ON scratch.things (b);
            CREATE UNIQUE INDEX things_c_unique ON scratch.things (c);
            CREATE INDEX things_c ON scratch.things (c);
            """
        )
        with pytest.raises(asyncpg.UniqueViolationError):  # leaves an invalid index behind
            await conn.execute("CREATE UNIQUE INDEX CONCURRENTLY things_d_invalid ON scratch.things (d)")
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await _settle_statistics(conn, inserted=written, updated=200 + 1 + 2)  # completed, big, planted
        await conn.execute("VACUUM ANALYZE public.tasks, scratch.things")
        await conn.execute("DELETE FROM scratch.things WHERE a > 1000")
        await conn.execute("SELECT pg_stat_force_next_flush()")  # dead rows visible to others now
        await conn.execute(
            f"CREATE ROLE {MONITOR} LOGIN PASSWORD '{monitor_password}' IN ROLE pg_monitor;"
            f"GRANT CONNECT ON DATABASE {DATABASE} TO {MONITOR};"
            + "".join(
                f"GRANT USAGE ON SCHEMA {s} TO {MONITOR};"
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {MONITOR};"
                for s in SCHEMAS
            )
        )
        await conn.execute("SELECT pg_create_physical_replication_slot('forgotten_slot', true)")
        for _ in range(120):  # a statement with >= 100 calls, for the slow-query check
            await conn.fetchval("SELECT count(*) FROM tasks WHERE state = $1", "working")
    finally:
        await conn.close()
    return {"stuck_task": stuck, "waiting_task": waiting, "tasks_written": written}


async def _settle_statistics(conn: asyncpg.Connection, inserted: int, updated: int) -> None:
    """Wait until every writer's counters reached the shared statistics (backends flush them
    when they go idle or exit), so that VACUUM's live-row count is not overtaken by late ones."""
    for _ in range(600):
        row = await conn.fetchrow(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables WHERE relid = 'public.tasks'::regclass"
        )
        if (row["n_tup_ins"], row["n_tup_upd"]) == (inserted, updated):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"statistics of public.tasks did not settle: {dict(row)}")


async def _wait_for_replay(primary_url: str, standby_url: str) -> None:
    primary = await asyncpg.connect(primary_url)
    standby = await asyncpg.connect(standby_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(600):
            if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the standby did not replay the primary's changes in 30 s")
    finally:
        await primary.close()
        await standby.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A primary with Bindu data, a monitoring role, and a streaming hot standby of it."""
    monitor_password = "mon-" + secrets.token_hex(8)
    with TemporaryPostgres() as primary:
        planted = asyncio.run(_populate(primary, monitor_password))
        standby = primary.replica()
        try:
            asyncio.run(_wait_for_replay(_url(primary, DATABASE), _url(standby, DATABASE)))
            yield Cluster(primary, standby, primary.password, monitor_password, **planted)
        finally:
            standby.stop()


def _no_secret(cluster: Cluster, *texts: str) -> None:
    for text in texts:
        assert cluster.admin_password not in text
        assert cluster.monitor_password not in text


# --- the read-only connection ------------------------------------------------------------------


async def test_the_connection_refuses_writes_and_carries_its_settings(cluster: Cluster) -> None:
    conn = await open_diagnostics_connection(
        cluster.url(), statement_timeout_ms=1234, application_name="ops-check"
    )
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute(
                "INSERT INTO tasks (id, context_id, state, state_timestamp) "
                "VALUES (gen_random_uuid(), gen_random_uuid(), 'working', now())"
            )
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE scratch.nope (x int)")
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SHOW statement_timeout") == "1234ms"
        assert await conn.fetchval("SHOW application_name") == "ops-check"
    finally:
        await conn.close()
    quick = await open_diagnostics_connection(cluster.url(), statement_timeout_ms=100)
    try:
        with pytest.raises(asyncpg.QueryCanceledError):  # the statement timeout is enforced
            await quick.execute("SELECT pg_sleep(5)")
    finally:
        await quick.close()


async def test_bad_arguments_are_refused_before_connecting(cluster: Cluster) -> None:
    with pytest.raises(InvalidValueError, match="statement_timeout_ms"):
        Diagnostics(cluster.url(), statement_timeout_ms=0)
    with pytest.raises(InvalidValueError, match="bad schema"):
        Diagnostics(cluster.url(), schema="bad schema")
    with pytest.raises(InvalidValueError, match="application_name"):
        Diagnostics(cluster.url(), application_name="")
    with pytest.raises(InvalidTypeError, match="int"):
        Diagnostics(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="mysql"):
        await open_diagnostics_connection("mysql://root:pw@localhost/db")
    with pytest.raises(InvalidValueError, match="sslmode") as bad_url:
        await open_diagnostics_connection("postgresql://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=bogus")
    assert "s3cr3t-pw" not in str(bad_url.value)
    async with Diagnostics(cluster.url()) as diag:
        with pytest.raises(InvalidValueError, match="min_seconds"):
            await diag.long_running_queries(min_seconds=-1)
        with pytest.raises(InvalidValueError, match="sample_percent"):
            await diag.jsonb_sizes(sample_percent=0)
        with pytest.raises(InvalidValueError, match="limit"):
            await diag.queries_by_total_time(limit=0)
    with pytest.raises(InvalidValueError, match="stuck_task_seconds"):
        Thresholds(stuck_task_seconds=Limit(-1, 10))
    with pytest.raises(InvalidValueError, match="lock_wait_seconds: warn must be below critical"):
        Thresholds(lock_wait_seconds=Limit(60, 10))
    with pytest.raises(InvalidValueError, match=r"jsonb_value_bytes needs \(warn, critical\), got 5"):
        Thresholds(jsonb_value_bytes=5)  # type: ignore[arg-type]
    assert Thresholds(cache_hit_percent=(90, 80)).cache_hit_percent == Limit(90, 80)  # type: ignore[arg-type]


async def test_errors_and_reprs_never_show_the_password(cluster: Cluster) -> None:
    wrong = "wrong-" + secrets.token_hex(6)
    bad_url = _url(cluster.primary, DATABASE, MONITOR, wrong)
    diag = Diagnostics(bad_url)
    with pytest.raises(StorageConnectionError) as refused:
        await diag.open()
    message_text = str(refused.value) + repr(refused.value) + repr(diag)
    assert wrong not in message_text and MONITOR in message_text
    assert refused.value.__cause__ is None and refused.value.__suppress_context__

    unreachable = f"postgresql://{MONITOR}:{wrong}@127.0.0.1:1/{DATABASE}"
    with pytest.raises(StorageConnectionError) as down:
        await open_diagnostics_connection(unreachable, application_name="x")
    assert wrong not in str(down.value)

    async with Diagnostics(cluster.monitor_url()) as diag:
        shown = repr(diag) + str(diag.target)
        assert "open, primary" in shown
        _no_secret(cluster, shown)
    with pytest.raises(StorageConnectionError, match="not open"):
        diag.connection  # noqa: B018


# --- every diagnostic, everywhere ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["primary", "standby", "monitor", "monitor-standby"])
async def test_every_diagnostic_returns_its_documented_columns(cluster: Cluster, where: str) -> None:
    async with Diagnostics(cluster.target(where)) as diag:
        assert diag.is_standby == where.endswith("standby")
        superuser = await diag.connection.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        assert superuser == (not where.startswith("monitor"))
        for name, columns in DIAGNOSTICS.items():
            frame = await getattr(diag, name)()
            assert isinstance(frame, pd.DataFrame), name
            assert list(frame.columns) == list(columns), name
        sizes = await diag.table_sizes()
        assert {"tasks", "contexts", "task_feedback", "task_events", "webhook_configs"} <= set(
            sizes["table_name"]
        )
        stuck = await diag.stuck_tasks()
        assert stuck.loc[stuck["state"] == "working", "stuck_tasks"].tolist() == [1]


async def test_one_dtype_convention_and_dtype_backend(cluster: Cluster) -> None:
    async with Diagnostics(cluster.url()) as diag:
        stats = await diag.table_stats()
        queries = await diag.queries_by_total_time()
    assert stats["table_name"].dtype == "str" and stats["live_rows"].dtype == "Int64"  # as frames
    assert stats["dead_percent"].dtype == "float64" and stats["last_vacuum"].dtype == "datetime64[us, UTC]"
    assert queries["query"].dtype == "str"  # redacted texts stay str
    async with Diagnostics(cluster.url(), dtype_backend="pyarrow") as diag:
        arrow = await diag.table_stats()
        report = await diag.health_report()  # the checks read Arrow-backed frames as well
    assert all(isinstance(t, pd.ArrowDtype) for t in arrow.dtypes)
    assert arrow["table_name"].tolist() == stats["table_name"].tolist()
    assert {f.check for f in report.findings if f.status == "skipped"} == {"pool saturation"}


async def test_standby_leaves_primary_only_figures_empty(cluster: Cluster) -> None:
    async with (
        Diagnostics(cluster.url()) as primary,
        Diagnostics(cluster.monitor_url(standby=True)) as standby,
    ):
        on_primary = (await primary.table_stats()).set_index("table_name")
        on_standby = (await standby.table_stats()).set_index("table_name")
    assert on_primary.loc["tasks", "live_rows"] == cluster.tasks_written
    assert pd.notna(on_primary.loc["tasks", "last_vacuum"])
    assert "note" not in on_primary.attrs
    blanked = PRIMARY_ONLY["table_stats"]
    assert on_standby[list(blanked)].isna().all().all()
    assert on_standby.attrs["primary_only"] == list(blanked)
    assert "primary" in on_standby.attrs["note"]
    assert on_standby["seq_scans"].notna().all()  # the standby's own reads are real figures
    assert on_standby["live_rows"].dtype == on_primary["live_rows"].dtype == "Int64"


# --- connections, locks, the pool ----------------------------------------------------------------


async def test_idle_in_transaction_and_long_queries_show_up(cluster: Cluster) -> None:
    idle = await asyncpg.connect(cluster.url(), server_settings={"application_name": "forgetful-app"})
    busy = await asyncpg.connect(cluster.url(), server_settings={"application_name": "slow-app"})
    sleeper = asyncio.ensure_future(busy.execute("SELECT pg_sleep(60)"))
    try:
        await idle.execute("BEGIN; SELECT count(*) FROM tasks")
        idle_pid, busy_pid = idle.get_server_pid(), busy.get_server_pid()
        async with Diagnostics(cluster.monitor_url()) as diag:
            frame = await diag.idle_in_transaction()
            row = frame.set_index("pid").loc[idle_pid]
            assert row["application"] == "forgetful-app"
            assert row["last_query"] == "BEGIN; SELECT count(*) FROM tasks"
            for _ in range(200):
                running = await diag.long_running_queries(min_seconds=0)
                if busy_pid in set(running["pid"]):
                    break
                await asyncio.sleep(0.05)
            assert running.set_index("pid").loc[busy_pid, "query"] == "SELECT pg_sleep(60)"
            states = await diag.sessions_by_state()
            assert states.set_index("state").loc["idle in transaction", "sessions"] >= 1
            sources = await diag.connection_sources()
            assert {"forgetful-app", "slow-app"} <= set(sources["application"])
            assert diag.application_name not in set(sources["application"])  # itself left out
            usage = (await diag.connection_usage()).iloc[0]
            assert usage["max_connections"] == 300 and usage["sessions"] >= 3

            report = await diag.health_report(Thresholds(idle_in_transaction_seconds=Limit(0, 3600)))
            finding = {f.check: f for f in report.findings}["idle in transaction"]
            assert finding.status == "warn" and "1 session" in finding.seen
    finally:
        sleeper.cancel()  # asyncpg asks the server to cancel the statement
        with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
            await sleeper
        await busy.close()
        await idle.close()


async def test_a_blocked_session_shows_up_with_its_blocker(cluster: Cluster) -> None:
    holder = await asyncpg.connect(cluster.url(), server_settings={"application_name": "holder"})
    waiter = await asyncpg.connect(cluster.url(), server_settings={"application_name": "waiter"})
    update = "UPDATE tasks SET metadata = '{\"touched\": true}' WHERE id = $1"
    try:
        await holder.execute("BEGIN")
        await holder.execute(update, cluster.stuck_task)
        blocked = asyncio.ensure_future(waiter.execute(update, cluster.stuck_task))
        async with Diagnostics(cluster.monitor_url()) as diag:
            for _ in range(200):
                frame = await diag.blocked_sessions()
                if len(frame):
                    break
                await asyncio.sleep(0.05)
            row = frame.iloc[0]
            assert row["blocked_pid"] == waiter.get_server_pid()
            assert row["blocking_pid"] == holder.get_server_pid()
            assert row["blocked_application"] == "waiter" and row["blocking_state"] == "idle in transaction"
            assert "ShareLock" in row["waiting_for"]
            assert row["blocked_query"].startswith("UPDATE tasks")

            strict = Thresholds(lock_wait_seconds=Limit(0, 3600))
            finding = {f.check: f for f in (await diag.health_report(strict)).findings}["blocked sessions"]
            assert finding.status == "warn" and finding.advice
            relaxed = {f.check: f for f in (await diag.health_report()).findings}["blocked sessions"]
            assert relaxed.status == "ok"  # a wait under 10 s is normal
        await holder.execute("ROLLBACK")
        await blocked
    finally:
        await holder.close()
        await waiter.close()


async def test_pool_of_a_storage(cluster: Cluster) -> None:
    storage = PostgresStorage(
        cluster.url(), schema=AGENT_SCHEMA, pool_min=1, pool_max=4, run_migrations=False
    )
    async with Diagnostics(storage) as diag:
        assert diag.schema == AGENT_SCHEMA
        idle = (await diag.pool_stats()).iloc[0]
        assert not idle["connected"] and pd.isna(idle["size"])
        await storage.connect()
        try:
            pool = storage.pool
            assert pool is not None
            held = [await pool.acquire(), await pool.acquire()]
            row = (await diag.pool_stats()).iloc[0]
            assert row["connected"] and row["max_size"] == 4 and row["in_use"] == 2
            assert row["saturation_percent"] == 50.0
            finding = {
                f.check: f
                for f in (
                    await diag.health_report(Thresholds(pool_saturation_percent=Limit(40, 90)))
                ).findings
            }["pool saturation"]
            assert finding.status == "warn" and "2 of max 4" in finding.seen
            for conn in held:
                await pool.release(conn)
        finally:
            await storage.close()
        stuck = await diag.stuck_tasks()  # the agent schema has no stuck task
        assert stuck.empty and list(stuck.columns) == list(DIAGNOSTICS["stuck_tasks"])
        assert (await diag.table_sizes(schema="public"))["table_name"].isin(["tasks"]).any()
        _no_secret(cluster, repr(diag), repr(storage))


# --- queries -----------------------------------------------------------------------------------


async def test_slow_queries_come_from_pg_stat_statements(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url()) as diag:
        assert (await diag.statements_status()).available
        by_total = await diag.queries_by_total_time(limit=50)
        by_mean = await diag.queries_by_mean_time(limit=50, min_calls=100)
    assert by_total["total_ms"].is_monotonic_decreasing
    assert len(by_total) > 5 and "note" not in by_total.attrs
    counted = by_mean[by_mean["query"].str.contains("FROM tasks WHERE state = \\$1", regex=True)]
    assert counted["calls"].iloc[0] >= 120
    assert by_total["percent_of_total_time"].between(0, 100).all()


async def test_statement_texts_are_redacted(cluster: Cluster) -> None:
    admin = await asyncpg.connect(cluster.url())
    try:
        raw = await admin.fetch("SELECT query FROM pg_stat_statements WHERE query ILIKE 'CREATE ROLE%'")
    finally:
        await admin.close()
    assert any(cluster.monitor_password in r["query"] for r in raw)  # the server keeps it verbatim
    async with Diagnostics(cluster.monitor_url()) as diag:
        frame = await diag.queries_by_total_time(limit=10_000)
    create_role = frame[frame["query"].str.startswith("CREATE ROLE")]
    assert len(create_role) == 1 and "PASSWORD '***'" in create_role["query"].iloc[0]
    _no_secret(cluster, frame.to_string(), frame.to_json())


async def test_missing_pg_stat_statements_is_a_finding_not_an_error(cluster: Cluster) -> None:
    async with Diagnostics(cluster.url(NO_STATS_DATABASE)) as diag:
        status = await diag.statements_status()
        frame = await diag.queries_by_total_time()
        report = await diag.health_report()
    assert not status.available and "not created" in status.reason and status.problem == "not created"
    assert frame.empty and list(frame.columns) == list(DIAGNOSTICS["queries_by_total_time"])
    assert "shared_preload_libraries" not in frame.attrs["note"]  # this server preloads it already
    assert "CREATE EXTENSION pg_stat_statements" in frame.attrs["note"]
    findings = {f.check: f for f in report.findings}
    assert findings["pg_stat_statements"].status == "warn"
    assert "CREATE EXTENSION pg_stat_statements" in findings["pg_stat_statements"].advice
    assert findings["slow queries"].status == "skipped"
    assert findings["migrations"].status == "critical"  # this database was never migrated
    assert report.exit_code == 2


def test_redact_sql() -> None:
    assert redact_sql("ALTER ROLE x PASSWORD 'it''s secret'") == "ALTER ROLE x PASSWORD '***'"
    assert redact_sql("CREATE ROLE x LOGIN password $q$s3cr3t$q$") == "CREATE ROLE x LOGIN password '***'"
    assert redact_sql("SELECT dblink('host=db password=hunter2 dbname=x')") == (
        "SELECT dblink('host=db password=*** dbname=x')"
    )
    assert redact_sql("COPY t FROM PROGRAM 'curl postgresql://u:pw@h/db'") == (
        "COPY t FROM PROGRAM 'curl postgresql://u:***@h/db'"
    )
    assert redact_sql("SELECT * FROM tasks WHERE state = $1") == "SELECT * FROM tasks WHERE state = $1"


# --- tables and indexes --------------------------------------------------------------------------


async def test_table_sizes_count_toast_and_indexes(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url()) as diag:
        sizes = (await diag.table_sizes()).set_index("table_name")
        jsonb = await diag.jsonb_sizes()
        sampled = await diag.jsonb_sizes(sample_percent=100)
    tasks = sizes.loc["tasks"]
    assert tasks["total_bytes"] == tasks["table_bytes"] + tasks["toast_bytes"] + tasks["index_bytes"]
    assert tasks["toast_bytes"] > 100_000  # the incompressible artifact
    assert tasks["estimated_rows"] == cluster.tasks_written
    artifacts = jsonb.set_index(["table_name", "column_name"]).loc[("tasks", "artifacts")]
    assert artifacts["max_bytes"] > 100_000 and artifacts["values_counted"] == cluster.tasks_written
    assert set(jsonb["column_name"]) >= {"history", "artifacts", "metadata", "context_data", "feedback_data"}
    pd.testing.assert_frame_equal(jsonb, sampled)


async def test_index_diagnostics(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url(), schema="scratch") as diag:
        duplicates = await diag.duplicate_indexes()
        invalid = await diag.invalid_indexes()
        unused = await diag.unused_indexes()
        usage = await diag.index_usage(schema="public")
        ratios = await diag.cache_hit_ratios(schema="public")
        report = await diag.health_report()
    pairs = set(zip(duplicates["index_name"], duplicates["covered_by"], strict=True))
    assert pairs == {
        ("things_a", "things_a_b"),
        ("things_b_twin", "things_b_first"),
        ("things_c", "things_c_unique"),
    }
    assert invalid["index_name"].tolist() == ["things_d_invalid"]
    assert "things_c_unique" not in set(unused["index_name"]) and "things_b_twin" in set(unused["index_name"])
    pkey = usage.set_index("index_name").loc["tasks_pkey"]
    assert pkey["scans"] > 0 and pkey["is_primary_key"] and pkey["is_valid"]
    assert ratios["object_type"].tolist() == ["table", "index"]
    assert ratios["hit_percent"].between(0, 100).all()
    findings = {f.check: f for f in report.findings}
    assert findings["duplicate indexes"].status == "warn" and "things_a (covered by things_a_b)" in (
        findings["duplicate indexes"].seen
    )
    assert findings["invalid indexes"].status == "warn"
    assert findings["dead rows"].status == "critical"  # half of scratch.things was deleted
    assert "things: 1000 dead rows (50 %)" in findings["dead rows"].seen
    assert findings["stuck tasks"].status == "skipped"  # the scratch schema has no tasks table


# --- replication -------------------------------------------------------------------------------


async def test_replication_seen_from_both_sides(cluster: Cluster) -> None:
    async with (
        Diagnostics(cluster.monitor_url()) as primary,
        Diagnostics(cluster.monitor_url(True)) as standby,
    ):
        on_primary = (await primary.replication_status()).iloc[0]
        replicas = await primary.replicas()
        on_standby = (await standby.replication_status()).iloc[0]
        standby_replicas = await standby.replicas()
        standby_report = await standby.health_report()
    assert on_primary["role"] == "primary" and on_primary["connected_standbys"] == 1
    assert pd.isna(on_primary["replay_lag_seconds"]) and pd.isna(on_primary["received_lsn"])
    assert len(replicas) == 1 and replicas["state"].iloc[0] == "streaming"
    assert replicas["lag_bytes"].iloc[0] >= 0 and replicas["client_address"].iloc[0] == "127.0.0.1"
    assert pd.isna(on_primary["replay_paused"])
    assert on_standby["role"] == "standby" and not on_standby["replay_paused"]
    assert on_standby["replay_lag_bytes"] >= 0 and on_standby["replay_lag_seconds"] >= 0
    assert pd.notna(on_standby["received_lsn"]) and pd.notna(on_standby["last_replayed_at"])
    assert standby_replicas.empty
    findings = {f.check: f for f in standby_report.findings}
    assert standby_report.role == "standby"
    assert (
        findings["replication lag"].status == "ok"
        and "behind the primary" in findings["replication lag"].seen
    )
    assert findings["dead rows"].status == "skipped" and findings["unused indexes"].status == "skipped"
    assert findings["stuck tasks"].status == "warn"  # the standby sees the same stuck task


async def test_replication_slots(cluster: Cluster) -> None:
    async with (
        Diagnostics(cluster.monitor_url()) as primary,
        Diagnostics(cluster.monitor_url(True)) as standby,
    ):
        slots = await primary.replication_slots()
        report = await primary.health_report()
        standby_slots = await standby.replication_slots()
    slot = slots.set_index("slot_name").loc["forgotten_slot"]
    assert slot["slot_type"] == "physical" and not slot["active"] and slot["retained_wal_bytes"] > 0
    finding = {f.check: f for f in report.findings}["replication slots"]
    assert finding.status == "warn" and "1 inactive" in finding.seen
    assert standby_slots.empty  # slots are not replicated


async def test_key_settings_as_the_monitoring_role(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url(standby=True)) as diag:
        frame = (await diag.server_settings()).set_index("name")
    assert list(frame.index) == list(KEY_SETTINGS)  # pg_read_all_settings shows every one
    assert frame.loc["max_connections", "value"] == "300"
    assert frame.loc["shared_buffers", "value"] == "128MB" and frame.loc["shared_buffers", "unit"] == "8kB"
    assert "pg_stat_statements" in frame.loc["shared_preload_libraries", "value"]
    assert frame.loc["hot_standby", "value"] == "on" and frame["description"].notna().all()


# --- schema: migrations and drift ---------------------------------------------------------------


async def test_migration_status_and_drift(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url(standby=True)) as diag:
        public = (await diag.migration_status()).iloc[0]
        old = (await diag.migration_status(schema="old_revision")).iloc[0]
        nowhere = (await diag.migration_status(schema="no_such_schema")).iloc[0]
        clean = await diag.schema_drift()
        drifted = await diag.schema_drift(schema="drifted")
        behind = await diag.schema_drift(schema="old_revision")
    head = migrate.head_revision()
    assert (public["database_revision"], public["head_revision"], public["status"]) == (
        head,
        head,
        "up to date",
    )
    assert (old["database_revision"], old["status"]) == ("0004", "behind head")
    assert pd.isna(nowhere["database_revision"]) and nowhere["status"] == "not migrated"
    assert clean.empty and "note" not in clean.attrs
    assert drifted[["kind", "object_type", "table_name", "name"]].values.tolist() == [
        ["missing", "index", "tasks", "idx_tasks_metadata_gin"]
    ]
    assert "gin (metadata jsonb_path_ops)" in drifted["expected"].iloc[0]
    assert "migrate first" in behind.attrs["note"]

    report = await health_report(cluster.monitor_url(), schema="drifted")
    findings = {f.check: f for f in report.findings}
    assert findings["schema drift"].status == "warn"
    assert "missing index tasks.idx_tasks_metadata_gin" in findings["schema drift"].seen
    old_report = await health_report(cluster.monitor_url(), schema="old_revision")
    assert {f.check: f for f in old_report.findings}["migrations"].status == "warn"


# --- the health report -----------------------------------------------------------------------------


async def test_stuck_tasks_follow_the_thresholds(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url()) as diag:
        frame = (await diag.stuck_tasks()).set_index("state")
        assert frame.loc["working", "waiting_on"] == "agent" and frame.loc["working", "stuck_tasks"] == 1
        assert frame.loc["input-required", "waiting_on"] == "caller"
        assert frame.loc["working", "oldest_seconds"] >= 20 * 60
        assert "submitted" not in frame.index  # fresh submitted tasks are not stuck

        async def stuck_status(limit: Limit) -> str:
            report = await diag.health_report(Thresholds(stuck_task_seconds=limit))
            return {f.check: f for f in report.findings}["stuck tasks"].status

        assert await stuck_status(Limit(900, 3600)) == "warn"  # the defaults: 20 min is over 15 min
        assert await stuck_status(Limit(60, 600)) == "critical"
        assert await stuck_status(Limit(7200, 86400)) == "ok"
        default = await diag.health_report()
    finding = {f.check: f for f in default.findings}["stuck tasks"]
    assert "1 working" in finding.seen and "waiting on their caller" in finding.seen
    assert (
        default.status in ("warn", "critical")
        and default.exit_code == {"warn": 1, "critical": 2}[default.status]
    )


async def test_report_renders_for_notebooks_terminals_and_machines(cluster: Cluster) -> None:
    async with Diagnostics(cluster.monitor_url()) as diag:
        report = await diag.health_report(Thresholds(jsonb_value_bytes=Limit(100_000, 10**9)))
    findings = {f.check: f for f in report.findings}
    assert findings["JSONB sizes"].status == "warn" and "tasks.artifacts" in findings["JSONB sizes"].seen
    assert findings["pool saturation"].status == "skipped"  # no storage given
    assert findings["connection usage"].status == "ok"
    assert (
        findings["replication lag"].status == "ok"
        and "1 standby(s) streaming" in findings["replication lag"].seen
    )
    assert report.status == "warn" and report.exit_code == 1
    text, page, data = str(report), report._repr_html_(), report.to_json()
    assert text.splitlines()[0].startswith("WARN: ") and "JSONB sizes" in text and "-> " in text
    assert (
        page.startswith('<div class="bindu-health-report">')
        and page.count("<tr>") == len(report.findings) + 1
    )
    assert f"database {DATABASE}, schema public (primary)" in page and "127.0.0.1" not in page
    decoded = json.loads(data)
    assert decoded["exit_code"] == 1 and len(decoded["findings"]) == len(report.findings)
    assert decoded["findings"][0].keys() == {"check", "status", "seen", "threshold", "advice", "topic"}
    frame = report.to_frame()
    assert (
        len(frame) == len(report.findings)
        and frame["status"].isin(["ok", "warn", "critical", "skipped"]).all()
    )
    assert report.target == f"postgresql://{MONITOR}@127.0.0.1:{cluster.primary.port}/{DATABASE}"
    _no_secret(cluster, text, page, data, repr(report), frame.to_string())
