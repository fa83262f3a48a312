"""Migrations on a real PostgreSQL: round trips, the schema against the spec and against
``schema.EXPECTED``, the alembic command line, concurrency, hot standbys, and an installed wheel.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import execute

from bindu_storage.dsn import describe_target, password_of
from bindu_storage.errors import InvalidValueError, MigrationError, StorageConnectionError
from bindu_storage.storage import migrate, schema
from bindu_storage.storage.schema import Drift
from bindu_storage.testing import TemporaryPostgres

REPO = Path(__file__).resolve().parents[1]
REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"]
HEAD = REVISIONS[-1]
PREVIOUS = REVISIONS[-2]
"""The revision before head."""
_ALEMBIC_SCRIPT = Path(sys.executable).with_name("alembic")
ALEMBIC = [str(_ALEMBIC_SCRIPT)] if _ALEMBIC_SCRIPT.exists() else [sys.executable, "-m", "alembic"]


# --- helpers ---------------------------------------------------------------------------------


async def snapshot(url: str, schema_name: str = "public") -> schema.SchemaSnapshot:
    """The catalog view of ``schema_name``."""
    conn = await asyncpg.connect(url)
    try:
        return await schema.introspect(conn, schema_name)
    finally:
        await conn.close()


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query on a fresh connection."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STORAGE__POSTGRES_SCHEMA")}
    return {**env, **extra}


def alembic(
    *args: str, url: str | None = None, cwd: Path = REPO, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the ``alembic`` command line (with ``DATABASE_URL=url`` when given)."""
    env = _clean_env(**({"DATABASE_URL": url} if url else {}))
    proc = subprocess.run(
        [*ALEMBIC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    if check:
        assert proc.returncode == 0, f"alembic {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def assert_no_password(output: str, url: str) -> None:
    """The password of ``url`` does not occur in ``output``."""
    password = password_of(url)
    assert password, "the test URL has a password"
    if password in describe_target(url):  # e.g. password == user name: the check would mean nothing
        pytest.fail(f"choose a password distinct from the rest of the URL {describe_target(url)}")
    assert password not in output


# --- round trip and EXPECTED -----------------------------------------------------------------


async def test_head_revision_is_what_expected_describes() -> None:
    assert migrate.head_revision() == HEAD == schema.EXPECTED_REVISION


async def test_round_trip_through_base_leaves_an_identical_schema(fresh_database: str) -> None:
    assert await migrate.current_revision(fresh_database) is None
    await migrate.upgrade(fresh_database)
    first = await snapshot(fresh_database)
    assert await migrate.current_revision(fresh_database) == HEAD

    await migrate.downgrade(fresh_database, revision="base")
    emptied = await snapshot(fresh_database)
    assert emptied.tables == {} and emptied.indexes == [] and emptied.constraints == []
    assert await migrate.current_revision(fresh_database) is None

    await migrate.upgrade(fresh_database)
    assert await snapshot(fresh_database) == first
    assert await migrate.current_revision(fresh_database) == HEAD


async def test_every_downgrade_restores_the_previous_revision_exactly(fresh_database: str) -> None:
    before: dict[str, schema.SchemaSnapshot] = {"base": await snapshot(fresh_database)}
    for revision in REVISIONS:
        await migrate.upgrade(fresh_database, revision=revision)
        assert await migrate.current_revision(fresh_database) == revision
        before[revision] = await snapshot(fresh_database)
    assert len({json.dumps(repr(s)) for s in before.values()}) == len(before)  # each step changes it

    for revision, previous in zip(reversed(REVISIONS), reversed(["base", *REVISIONS[:-1]]), strict=True):
        assert await migrate.current_revision(fresh_database) == revision
        await migrate.downgrade(fresh_database)  # one step
        assert await snapshot(fresh_database) == before[previous], f"downgrade of {revision}"


async def test_live_schema_equals_what_the_migrations_declare(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    assert schema.diff(schema.EXPECTED, await snapshot(fresh_database)) == []


async def test_another_schema_has_the_same_shape(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database, "did_agent_a")
    live = await snapshot(fresh_database, "did_agent_a")
    assert schema.diff(schema.EXPECTED, live) == []
    assert (await snapshot(fresh_database, "public")).tables == {}


async def test_current_revision_is_read_only(fresh_database: str) -> None:
    assert await migrate.current_revision(fresh_database, "never_migrated") is None
    rows = await fetch(fresh_database, "SELECT 1 FROM pg_namespace WHERE nspname = 'never_migrated'")
    assert rows == []


# --- the schema against the spec (read from the catalog, independently of schema.py) ---------

SPEC_COLUMNS: dict[str, list[tuple[str, str, int | None, bool, str | None]]] = {
    # column, information_schema data_type, character_maximum_length, nullable, default
    "tasks": [
        ("id", "uuid", None, False, None),
        ("context_id", "uuid", None, False, None),
        ("kind", "character varying", 50, False, "'task'::character varying"),
        ("state", "character varying", 50, False, None),
        ("state_timestamp", "timestamp with time zone", None, False, None),
        ("history", "jsonb", None, False, "'[]'::jsonb"),
        ("artifacts", "jsonb", None, True, "'[]'::jsonb"),
        ("metadata", "jsonb", None, True, "'{}'::jsonb"),
        ("created_at", "timestamp with time zone", None, False, "now()"),
        ("updated_at", "timestamp with time zone", None, False, "now()"),
    ],
    "contexts": [
        ("id", "uuid", None, False, None),
        ("context_data", "jsonb", None, False, "'{}'::jsonb"),
        ("message_history", "jsonb", None, True, "'[]'::jsonb"),
        ("created_at", "timestamp with time zone", None, False, "now()"),
        ("updated_at", "timestamp with time zone", None, False, "now()"),
    ],
    "task_feedback": [
        ("id", "integer", None, False, "nextval('task_feedback_id_seq'::regclass)"),
        ("task_id", "uuid", None, False, None),
        ("feedback_data", "jsonb", None, False, None),
        ("created_at", "timestamp with time zone", None, False, "now()"),
    ],
}

LATER_COLUMNS: dict[str, list[tuple[str, str, int | None, bool, str | None]]] = {
    "tasks": [("owner_did", "text", None, True, None), ("seq", "bigint", None, False, None),
              ("status_message", "jsonb", None, True, None)],
    "contexts": [("owner_did", "text", None, True, None), ("seq", "bigint", None, False, None)],
    "task_feedback": [("request_key", "uuid", None, True, None)],
    "webhook_configs": [
        ("task_id", "uuid", None, False, None),
        ("config", "jsonb", None, False, None),
        ("created_at", "timestamp with time zone", None, False, "now()"),
        ("updated_at", "timestamp with time zone", None, False, "now()"),
        ("config_id", "text", None, False, None),
        ("encrypted", "boolean", None, False, "false"),
        ("seq", "bigint", None, False, None),
    ],
    "task_events": [
        ("id", "bigint", None, False, "nextval('task_events_id_seq'::regclass)"),
        ("task_id", "uuid", None, False, None),
        ("from_state", "character varying", 50, True, None),
        ("to_state", "character varying", 50, False, None),
        ("at", "timestamp with time zone", None, False, "now()"),
        ("request_key", "uuid", None, True, None),
        ("kind", "text", None, False, "'status'::text"),
        ("status_message", "jsonb", None, True, None),
        ("messages", "jsonb", None, True, None),
        ("artifacts", "jsonb", None, True, None),
        ("xact", "xid8", None, False, "pg_current_xact_id()"),
    ],
}

_COLUMNS_SQL = """
SELECT table_name, column_name, data_type, character_maximum_length,
       is_nullable = 'YES' AS nullable, column_default
FROM information_schema.columns WHERE table_schema = $1
ORDER BY table_name, ordinal_position
"""

_INDEX_KEYS_SQL = """
SELECT t.relname AS table_name, a.attname AS first_column, am.amname AS method,
       opc.opcname AS opclass, i.relname AS index_name
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
JOIN pg_opclass opc ON opc.oid = x.indclass[0]
WHERE n.nspname = $1
"""

_FOREIGN_KEYS_SQL = """
SELECT t.relname AS child, a.attname AS child_column, r.relname AS parent,
       k.confdeltype = 'c' AS cascades
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.conkey[1]
WHERE k.contype = 'f' AND n.nspname = $1
"""


async def _columns(url: str, schema_name: str = "public") -> dict[str, dict[str, tuple[Any, ...]]]:
    tables: dict[str, dict[str, tuple[Any, ...]]] = {}
    for r in await fetch(url, _COLUMNS_SQL, schema_name):
        tables.setdefault(r["table_name"], {})[r["column_name"]] = (
            r["data_type"], r["character_maximum_length"], r["nullable"], r["column_default"]
        )
    return tables


async def test_revision_0001_creates_exactly_the_spec_tables(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database, revision="0001")
    live = await _columns(fresh_database)
    live.pop("alembic_version")
    assert live == {table: {c[0]: c[1:] for c in cols} for table, cols in SPEC_COLUMNS.items()}
    primary_keys = await fetch(
        fresh_database,
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) "
        "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'",
    )
    assert {tuple(r) for r in primary_keys} == {
        ("tasks", "id"), ("contexts", "id"), ("task_feedback", "id"), ("alembic_version", "version_num")
    }


async def test_head_has_the_spec_columns_and_the_later_ones(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    live = await _columns(fresh_database)
    assert set(live) == {"alembic_version", *SPEC_COLUMNS, *LATER_COLUMNS}
    for table in {*SPEC_COLUMNS, *LATER_COLUMNS}:
        declared = SPEC_COLUMNS.get(table, []) + LATER_COLUMNS.get(table, [])
        assert live[table] == {c[0]: c[1:] for c in declared}, table
    identity = await fetch(
        fresh_database,
        "SELECT table_name, identity_generation FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'seq' ORDER BY table_name",
    )
    assert [tuple(r) for r in identity] == [
        ("contexts", "BY DEFAULT"), ("tasks", "BY DEFAULT"), ("webhook_configs", "BY DEFAULT")]


async def test_btree_indexes_on_context_id_state_and_timestamps(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    keys = {
        (r["table_name"], r["first_column"])
        for r in await fetch(fresh_database, _INDEX_KEYS_SQL, "public") if r["method"] == "btree"
    }
    for wanted in [
        ("tasks", "context_id"), ("tasks", "state"), ("tasks", "state_timestamp"),
        ("tasks", "created_at"), ("tasks", "updated_at"), ("contexts", "created_at"),
        ("contexts", "updated_at"), ("task_feedback", "created_at"), ("task_feedback", "task_id"),
        ("tasks", "owner_did"), ("contexts", "owner_did"), ("task_events", "task_id"),
        ("task_events", "at"),
    ]:
        assert wanted in keys, wanted


async def test_gin_indexes_on_every_jsonb_column_of_the_spec(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    jsonb = {
        (table, column)
        for table, columns in (await _columns(fresh_database)).items() if table in SPEC_COLUMNS
        for column, (data_type, *_rest) in columns.items() if data_type == "jsonb"
    } - {("tasks", "status_message")}  # 0009: read with its task, never searched (no index)
    assert jsonb == {
        ("tasks", "history"), ("tasks", "artifacts"), ("tasks", "metadata"),
        ("contexts", "context_data"), ("contexts", "message_history"), ("task_feedback", "feedback_data"),
    }
    gin = {
        (r["table_name"], r["first_column"]): r["opclass"]
        for r in await fetch(fresh_database, _INDEX_KEYS_SQL, "public") if r["method"] == "gin"
    }
    assert {key: gin.get(key) for key in jsonb} == dict.fromkeys(jsonb, "jsonb_path_ops")

    # and the planner can answer a containment query with one
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0] for r in await conn.fetch(
                """EXPLAIN SELECT id FROM tasks WHERE metadata @> '{"priority": "high"}'"""
            )
        )
    finally:
        await conn.close()
    assert "idx_tasks_metadata_gin" in plan


async def test_foreign_keys_cascade(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    keys = {tuple(r) for r in await fetch(fresh_database, _FOREIGN_KEYS_SQL, "public")}
    assert keys == {
        ("task_feedback", "task_id", "tasks", True),
        ("tasks", "context_id", "contexts", True),
        ("webhook_configs", "task_id", "tasks", True),
        ("task_events", "task_id", "tasks", True),
    }
    # behaviour: deleting a context removes its tasks and everything hanging off them
    context_id, task_id = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("INSERT INTO contexts (id) VALUES ($1)", context_id)
        await conn.execute(
            "INSERT INTO tasks (id, context_id, state, state_timestamp) VALUES ($1, $2, 'submitted', now())",
            task_id, context_id,
        )
        await conn.execute(
            "INSERT INTO task_feedback (task_id, feedback_data) VALUES ($1, '{\"rating\": 5}')", task_id
        )
        await conn.execute("INSERT INTO task_events (task_id, to_state) VALUES ($1, 'submitted')", task_id)
        await conn.execute(
            "INSERT INTO webhook_configs (task_id, config_id, config) VALUES ($1, 'c', '{}')", task_id
        )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO tasks (id, context_id, state, state_timestamp) "
                "VALUES ($1, $2, 'submitted', now())", uuid.uuid4(), uuid.uuid4(),
            )
        await conn.execute("DELETE FROM contexts WHERE id = $1", context_id)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM task_feedback) AS feedback,"
            " (SELECT count(*) FROM task_events) AS events, (SELECT count(*) FROM webhook_configs) AS hooks"
        )
    finally:
        await conn.close()
    assert dict(counts) == {"tasks": 0, "feedback": 0, "events": 0, "hooks": 0}


# --- drift -----------------------------------------------------------------------------------


async def test_diff_reports_a_dropped_gin_index_and_other_drift(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    await execute(
        fresh_database,
        "DROP INDEX idx_tasks_history_gin",
        "ALTER TABLE contexts ADD COLUMN note TEXT",
        "ALTER TABLE tasks ALTER COLUMN kind SET DEFAULT 'job'",
        "CREATE TABLE scratch (x int)",
    )
    drifts = schema.diff(schema.EXPECTED, await snapshot(fresh_database))
    history_gin = next(i for i in schema.EXPECTED.indexes if i.name == "idx_tasks_history_gin")
    assert drifts == [
        Drift("unexpected", "table", "scratch", "scratch", None, "scratch"),
        Drift("unexpected", "column", "contexts", "note", None, "text"),
        Drift("different", "column", "tasks", "kind",
              "character varying(50) not null default 'task'::character varying",
              "character varying(50) not null default 'job'::character varying"),
        Drift("missing", "index", "tasks", "idx_tasks_history_gin", history_gin.definition, None),
    ]
    assert str(drifts[3]) == (
        "missing index tasks.idx_tasks_history_gin (expected: CREATE INDEX idx_tasks_history_gin "
        "ON tasks USING gin (history jsonb_path_ops))"
    )
    assert str(drifts[0]) == "unexpected table scratch (found: scratch)"
    assert "expected character varying(50) not null default 'task'" in str(drifts[2])


async def test_diff_of_an_unmigrated_schema_lists_every_table_missing(fresh_database: str) -> None:
    drifts = schema.diff(schema.EXPECTED, await snapshot(fresh_database))
    assert [(d.kind, d.object_type, d.name) for d in drifts] == [
        ("missing", "table", t) for t in sorted(schema.EXPECTED.tables)
    ]


# --- the alembic command line ----------------------------------------------------------------


def test_cli_upgrade_current_history_downgrade(fresh_database: str) -> None:
    up = alembic("upgrade", "head", url=fresh_database)
    for old, new in zip(["", *REVISIONS[:-1]], REVISIONS, strict=True):
        assert f"Running upgrade {old} -> {new}," in up.stderr
    current = alembic("current", url=fresh_database)
    assert current.stdout.strip() == f"{HEAD} (head)"

    history = alembic("history", url=fresh_database)
    lines = history.stdout.strip().splitlines()
    assert lines[0].startswith(f"{PREVIOUS} -> {HEAD} (head), ")
    assert lines[-1].startswith("<base> -> 0001, initial schema")
    assert len(lines) == len(REVISIONS)

    down = alembic("downgrade", "-1", url=fresh_database)
    assert f"Running downgrade {HEAD} -> {PREVIOUS}" in down.stderr
    assert alembic("current", url=fresh_database).stdout.strip() == PREVIOUS
    assert asyncio.run(migrate.current_revision(fresh_database)) == PREVIOUS

    for proc in (up, current, history, down):
        assert_no_password(proc.stdout + proc.stderr, fresh_database)


def test_cli_x_schema_targets_another_schema(fresh_database: str) -> None:
    alembic("-x", "schema=did_agent_b", "upgrade", "head", url=fresh_database)
    current = alembic("-x", "schema=did_agent_b", "current", url=fresh_database)
    assert current.stdout.strip() == f"{HEAD} (head)"
    assert alembic("current", url=fresh_database).stdout.strip() == ""  # public was not touched
    assert asyncio.run(migrate.current_revision(fresh_database, "did_agent_b")) == HEAD
    live = asyncio.run(snapshot(fresh_database, "did_agent_b"))
    assert schema.diff(schema.EXPECTED, live) == []
    assert asyncio.run(snapshot(fresh_database, "public")).tables == {}

    alembic("-x", "schema=did_agent_b", "downgrade", "-1", url=fresh_database)
    assert asyncio.run(migrate.current_revision(fresh_database, "did_agent_b")) == PREVIOUS

    bad = alembic("-x", "schema=bad-name;drop", "upgrade", "head", url=fresh_database, check=False)
    assert bad.returncode != 0
    assert "FAILED: " in bad.stdout and "'bad-name;drop'" in bad.stdout


def test_cli_environment_schema_variable_is_honoured(fresh_database: str) -> None:
    env = _clean_env(DATABASE_URL=fresh_database, STORAGE__POSTGRES_SCHEMA="did_agent_env")
    proc = subprocess.run(
        [*ALEMBIC, "upgrade", "head"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert asyncio.run(migrate.current_revision(fresh_database, "did_agent_env")) == HEAD


def test_cli_revision_creates_a_script_after_head(tmp_path: Path) -> None:
    before = sorted(p.name for p in (REPO / "alembic" / "versions").glob("*.py"))
    shutil.copy(REPO / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(REPO / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))

    made = alembic("revision", "-m", "add a thing", cwd=tmp_path)
    created = [p for p in (tmp_path / "alembic" / "versions").glob("*.py") if p.name not in before]
    assert len(created) == 1 and created[0].name.endswith("_add_a_thing.py"), made.stdout
    source = created[0].read_text()
    quoted = (f'"{HEAD}"', f"'{HEAD}'")
    assert any(f"down_revision: str | None = {q}" in source for q in quoted)
    compile(source, str(created[0]), "exec")
    new_id = created[0].name.split("_")[0]
    assert alembic("heads", cwd=tmp_path).stdout.strip() == f"{new_id} (head)"

    numbered = alembic("revision", "-m", "next one", "--rev-id", "0008", cwd=tmp_path)
    assert (tmp_path / "alembic" / "versions" / "0008_next_one.py").exists(), numbered.stdout
    assert sorted(p.name for p in (REPO / "alembic" / "versions").glob("*.py")) == before


def test_cli_offline_sql_needs_no_database() -> None:
    proc = alembic("-x", "schema=did_agent_c", "upgrade", "head", "--sql")
    sql = proc.stdout
    assert "pg_advisory_xact_lock(hashtext('bindu_storage.migrate/did_agent_c'))" in sql
    assert 'SET LOCAL search_path TO "did_agent_c"' in sql
    assert "CREATE TABLE tasks" in sql and "CREATE TABLE task_events" in sql
    assert sql.strip().endswith("COMMIT;")


def test_cli_errors_are_one_line_and_never_show_the_password(fresh_database: str) -> None:
    secret = "Wr0ng-Pw-7f3c91"
    user_host = fresh_database.split("://", 1)[1].split("@", 1)[1]
    wrong = f"postgresql://postgres:{secret}@{user_host}"
    proc = alembic("upgrade", "head", url=wrong, check=False)
    assert proc.returncode != 0
    assert "FAILED: " in proc.stdout and "password authentication failed" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert secret not in proc.stdout + proc.stderr

    unparsable = f"postgresql://postgres:{secret}@127.0.0.1:notaport/db"
    proc = alembic("current", url=unparsable, check=False)
    assert proc.returncode != 0 and "FAILED: " in proc.stdout
    assert secret not in proc.stdout + proc.stderr

    not_postgres = f"mysql://root:{secret}@127.0.0.1/db"
    proc = alembic("upgrade", "head", url=not_postgres, check=False)
    assert proc.returncode != 0 and "not a PostgreSQL URL" in proc.stdout
    assert secret not in proc.stdout + proc.stderr

    missing = alembic("upgrade", "head", check=False)
    assert missing.returncode != 0 and "DATABASE_URL is not set" in missing.stdout


async def test_programmatic_errors_never_show_the_password(fresh_database: str) -> None:
    secret = "Wr0ng-Pw-2b8e44"
    host = fresh_database.split("@", 1)[1]
    with pytest.raises(MigrationError) as refused:
        await migrate.upgrade(f"postgresql://postgres:{secret}@{host}")
    assert "password authentication failed" in str(refused.value)
    assert secret not in str(refused.value) + repr(refused.value)

    port = host.split(":")[1].split("/")[0]
    closed = f"postgresql://postgres:{secret}@127.0.0.1:1/db"
    assert port != "1"
    with pytest.raises(StorageConnectionError) as unreachable:  # transient: PostgresStorage retries it
        await migrate.upgrade(closed)
    assert secret not in str(unreachable.value) + repr(unreachable.value)

    with pytest.raises(InvalidValueError) as bad_url:
        await migrate.upgrade(f"mysql://root:{secret}@127.0.0.1/db")
    assert secret not in str(bad_url.value)
    with pytest.raises(InvalidValueError, match="'no such schema!'"):
        await migrate.upgrade(fresh_database, "no such schema!")


async def test_a_role_owning_only_its_schema_can_migrate_it(fresh_database: str, admin_url: str) -> None:
    """No CREATE privilege on the database is needed to migrate an existing schema."""
    role, password = f"migrator_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    database = fresh_database.rsplit("/", 1)[1]
    await execute(admin_url, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        await execute(fresh_database, f"CREATE SCHEMA did_owned AUTHORIZATION {role}")
        credentials = fresh_database.split("://", 1)[1].split("@", 1)[0]
        as_role = fresh_database.replace(credentials, f"{role}:{password}")
        can_create = await fetch(as_role, f"SELECT has_database_privilege('{database}', 'CREATE') AS ok")
        assert can_create[0]["ok"] is False
        await migrate.upgrade(as_role, "did_owned")
        assert await migrate.current_revision(as_role, "did_owned") == HEAD
        with pytest.raises(MigrationError, match="permission denied"):  # a new schema does need it
            await migrate.upgrade(as_role, "did_not_owned")
    finally:
        await execute(fresh_database, "DROP SCHEMA IF EXISTS did_owned CASCADE", f"DROP OWNED BY {role}")
        await execute(admin_url, f"DROP ROLE {role}")


# --- concurrency, standby, wheel -------------------------------------------------------------

_RACER = """
import asyncio, logging, os, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
from bindu_storage.storage import migrate
Path(os.environ["RACE_READY"]).touch()
while not Path(os.environ["RACE_GO"]).exists():
    time.sleep(0.005)
asyncio.run(migrate.upgrade(os.environ["DATABASE_URL"], "did_racers"))
"""


def test_processes_migrating_at_once_apply_each_revision_once(fresh_database: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    racers = []
    for n in range(4):
        env = _clean_env(DATABASE_URL=fresh_database, RACE_READY=str(tmp_path / f"ready{n}"), RACE_GO=str(go))
        racers.append(
            subprocess.Popen(
                [sys.executable, "-c", _RACER], env=env, cwd=tmp_path,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready*"))) < len(racers):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers), "racers died"
        time.sleep(0.01)
    go.touch()  # all four are imported and waiting: release them together

    outputs = [r.communicate(timeout=180) for r in racers]
    for racer, (_out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err
    logs = "".join(err for _out, err in outputs)
    for old, new in zip(["", *REVISIONS[:-1]], REVISIONS, strict=True):
        assert logs.count(f"Running upgrade {old} -> {new},") == 1, logs
    assert asyncio.run(migrate.current_revision(fresh_database, "did_racers")) == HEAD
    assert schema.diff(schema.EXPECTED, asyncio.run(snapshot(fresh_database, "did_racers"))) == []


def test_hot_standby_is_refused_but_readable() -> None:
    with TemporaryPostgres() as primary:
        asyncio.run(migrate.upgrade(primary.url))
        standby = primary.replica()
        try:
            assert asyncio.run(fetch(standby.url, "SELECT pg_is_in_recovery() AS r"))[0]["r"] is True
            with pytest.raises(MigrationError, match="hot standby") as refused:
                asyncio.run(migrate.upgrade(standby.url))
            assert primary.password not in str(refused.value)
            with pytest.raises(MigrationError, match="hot standby"):
                asyncio.run(migrate.downgrade(standby.url))

            # reading works: the recorded revision, the catalog snapshot, `alembic current`
            assert asyncio.run(migrate.current_revision(standby.url)) == HEAD
            assert schema.diff(schema.EXPECTED, asyncio.run(snapshot(standby.url))) == []
            assert alembic("current", url=standby.url).stdout.strip() == f"{HEAD} (head)"
            cli = alembic("upgrade", "head", url=standby.url, check=False)
            assert cli.returncode != 0 and "hot standby" in cli.stdout
            assert primary.password not in cli.stdout + cli.stderr
        finally:
            standby.stop()


@pytest.mark.slow
def test_installed_wheel_migrates_outside_the_repository(fresh_database: str, tmp_path: Path) -> None:
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("bindu_storage-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "bindu_storage/_alembic/env.py" in names
    assert "bindu_storage/_alembic/script.py.mako" in names
    shipped = {n.rsplit("/", 1)[1][:4] for n in names if n.startswith("bindu_storage/_alembic/versions/")}
    assert set(REVISIONS) <= shipped

    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr

    script = (
        "import asyncio, os, bindu_storage\n"
        "from bindu_storage.storage import migrate\n"
        "url = os.environ['DATABASE_URL']\n"
        "asyncio.run(migrate.upgrade(url))\n"
        "print(bindu_storage.__file__)\n"
        "print(migrate.script_location())\n"
        "print(asyncio.run(migrate.current_revision(url)))\n"
    )
    env = _clean_env(DATABASE_URL=fresh_database, PYTHONPATH=str(site))
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr
    package_file, location, revision = run.stdout.strip().splitlines()
    assert Path(package_file).is_relative_to(site)
    assert Path(location) == site / "bindu_storage" / "_alembic"
    assert revision == HEAD
    assert schema.diff(schema.EXPECTED, asyncio.run(snapshot(fresh_database))) == []


# --- data written by older schemas -----------------------------------------------------------


async def test_upgrade_backfills_contexts_events_and_order_for_upstream_shaped_data(
    fresh_database: str,
) -> None:
    await migrate.upgrade(fresh_database, revision="0002")
    orphan_ctx, known_ctx = uuid.uuid4(), uuid.uuid4()
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await execute(
        fresh_database,
        f"INSERT INTO contexts (id, context_data) VALUES ('{known_ctx}', '{{\"topic\": \"kept\"}}')",
        # upstream Bindu wrote tasks without a contexts row; two share the orphan context
        "INSERT INTO tasks (id, context_id, state, state_timestamp, created_at, updated_at) VALUES "
        f"('{first}', '{orphan_ctx}', 'completed', '2024-01-01 10:05Z', '2024-01-01 10:00Z', "
        "'2024-01-01 10:05Z'),"
        f"('{second}', '{orphan_ctx}', 'working', '2024-01-02 09:00Z', '2024-01-02 08:00Z', "
        "'2024-01-02 09:00Z'),"
        f"('{third}', '{known_ctx}', 'submitted', '2024-01-01 12:00Z', '2024-01-01 12:00Z', "
        "'2024-01-01 12:00Z')",
        f"INSERT INTO task_feedback (task_id, feedback_data) VALUES ('{first}', '{{\"rating\": 4}}')",
    )
    await migrate.upgrade(fresh_database)

    contexts = {
        r["id"]: r for r in await fetch(
            fresh_database, "SELECT id, context_data, created_at, updated_at, seq FROM contexts"
        )
    }
    assert set(contexts) == {orphan_ctx, known_ctx}
    backfilled = contexts[orphan_ctx]
    assert backfilled["context_data"] == "{}"
    assert backfilled["created_at"].isoformat() == "2024-01-01T10:00:00+00:00"
    assert backfilled["updated_at"].isoformat() == "2024-01-02T09:00:00+00:00"
    assert json.loads(contexts[known_ctx]["context_data"]) == {"topic": "kept"}

    events = await fetch(fresh_database, "SELECT task_id, from_state, to_state FROM task_events ORDER BY id")
    assert [(e["task_id"], e["from_state"], e["to_state"]) for e in events] == [
        (first, None, "completed"), (third, None, "submitted"), (second, None, "working")
    ]
    tasks = await fetch(fresh_database, "SELECT id FROM tasks ORDER BY seq")
    assert [t["id"] for t in tasks] == [first, third, second]  # numbered in creation order
    # new rows continue the numbering, and the foreign key now holds
    conn = await asyncpg.connect(fresh_database)
    try:
        new_seq = await conn.fetchval(
            "INSERT INTO tasks (id, context_id, state, state_timestamp) "
            "VALUES ($1, $2, 'submitted', now()) RETURNING seq", uuid.uuid4(), known_ctx,
        )
        assert new_seq == 4
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO tasks (id, context_id, state, state_timestamp) "
                "VALUES ($1, $2, 'submitted', now())", uuid.uuid4(), uuid.uuid4(),
            )
    finally:
        await conn.close()
    assert len(await fetch(fresh_database, "SELECT 1 FROM task_feedback")) == 1
