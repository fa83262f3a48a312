"""The ``bindu-storage`` command line, run as a user runs it: subprocesses against the test server.

Each run gets a clean environment (no DATABASE_URL or STORAGE_* unless the test sets them) and
an empty working directory (no ``.env``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from test_migrations import HEAD, PREVIOUS

from bindu_storage.dsn import password_of
from bindu_storage.storage.postgres import PostgresStorage
from bindu_storage.testing import TemporaryPostgres

COMMANDS = ("demo", "seed", "diagnose", "export", "migrate")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STORAGE") and k not in ("DATABASE_URL", "BINDU_TEST_DATABASE_URL")}
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m bindu_storage ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "bindu_storage", *args], cwd=cwd, env=env or _env(),
        capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )


TARGET_LINE = re.compile(r"^bindu-storage [a-z]+: (memory|postgres|embedded)\b")
"""The line each command starts with on stderr, naming its target (issue 9, item 2)."""


def assert_one_line_error(proc: subprocess.CompletedProcess[str], command: str, needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not TARGET_LINE.match(line)]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"bindu-storage {command}: error: "), lines[0]
    assert needle in lines[0], lines[0]


def assert_no_secret(proc: subprocess.CompletedProcess[str], url: str) -> None:
    secret = password_of(url)
    assert secret
    assert secret not in proc.stdout and secret not in proc.stderr


# --- help ----------------------------------------------------------------------------------------


def test_console_script_help(tmp_path: Path) -> None:
    exe = shutil.which("bindu-storage")
    assert exe, "the console script is installed (pip install -e .)"
    proc = subprocess.run([exe, "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: bindu-storage")
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    proc = run(command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: bindu-storage {command}")


def test_version(tmp_path: Path) -> None:
    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("bindu-storage ")


# --- demo ----------------------------------------------------------------------------------------


def test_demo_is_the_default_and_shows_the_main_job(tmp_path: Path) -> None:
    proc = run(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert proc.stderr == "bindu-storage demo: memory\n", "the target, no warnings, no tracebacks"
    assert out.startswith("bindu-storage demo: in-memory backend")
    assert "Seeded 2,000 synthetic tasks" in out
    assert "recorded: submitted → working → input-required → submitted → working → completed" in out
    for heading in ("Tasks by state", "Feedback by agent", "Lifecycle timings", "JSONB containment filters"):
        assert heading in out
    for word in ("completed", "failed", "translator", "support-agent", "input-required",
                 'metadata @> {"priority": "high"}'):
        assert word in out
    tables = out.split("\n\n")
    by_state = next(t for t in tables if t.startswith("Tasks by state")).splitlines()[3:]
    assert sum(int(line.split()[1].replace(",", "")) for line in by_state) == 2001  # + the live task


def test_demo_on_postgres_uses_its_own_schema(pg_url: str, tmp_path: Path) -> None:
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=pg_url)
    proc = run("demo", "--tasks", "300", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "postgres backend" in proc.stdout and "schema bindu_demo (emptied)" in proc.stdout
    assert "Seeded 300 synthetic tasks" in proc.stdout
    assert "GIN-indexed" in proc.stdout
    assert_no_secret(proc, pg_url)


# --- seed, export, migrate on a fresh database ---------------------------------------------------------


def test_seed_export_migrate(fresh_database: str, tmp_path: Path) -> None:
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=fresh_database)
    seeded = run("seed", "--tasks", "400", "--seed", "3", cwd=tmp_path, env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "Seeded 400 tasks" in seeded.stdout
    assert "loading" in seeded.stderr, "a progress bar"
    assert_no_secret(seeded, fresh_database)

    again = run("seed", "--tasks", "400", "--seed", "3", "--no-progress", cwd=tmp_path, env=env)
    assert_one_line_error(again, "seed", "the data of seed 3 is already in schema 'public'")
    assert "`bindu-storage seed --replace` empties the schema first" in again.stderr
    assert_no_secret(again, fresh_database)

    for kind, name in (("tasks", "tasks.parquet"), ("events", "events.csv"), ("messages", "m.parquet"),
                       ("feedback", "feedback.csv"), ("contexts", "contexts.parquet")):
        proc = run("export", kind, "--to", name, "--chunksize", "150", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"rows of {kind} to {name}" in proc.stdout
        assert_no_secret(proc, fresh_database)
        path = tmp_path / name
        frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
        assert len(frame) == int(proc.stdout.split()[1].replace(",", "")) > 0
        if kind == "tasks":
            assert len(frame) == 400 and frame["id"].is_unique
    assert not list(tmp_path.glob(".*.part")), "no temporary files left behind"

    current = run("migrate", "current", cwd=tmp_path, env=env)
    assert current.returncode == 0 and f"{HEAD} (up to date)" in current.stdout
    down = run("migrate", "downgrade", "--revision", PREVIOUS, cwd=tmp_path, env=env)
    assert down.returncode == 0, down.stderr
    assert f"downgraded {HEAD} → {PREVIOUS}" in down.stdout
    up = run("migrate", "upgrade", cwd=tmp_path, env=env)
    assert up.returncode == 0 and f"upgraded {PREVIOUS} → {HEAD}" in up.stdout
    history = run("migrate", "history", cwd=tmp_path, env=env)
    assert history.returncode == 0
    assert "current, head" in history.stdout.splitlines()[-1]
    for proc in (current, down, up, history):
        assert_no_secret(proc, fresh_database)


MIXED = [1, "x", [1, "y", None], True, 2.5, None, {"a": 1}, "ünï"]
"""Values of one metadata key across tasks: its column holds JSON values of mixed types."""


def test_export_of_json_values_of_mixed_types(fresh_database: str, tmp_path: Path) -> None:
    """A key whose values differ in type exports as their JSON text, to Parquet and to CSV (a
    Parquet export used to fail on such a column, and CSV held Python's repr, not JSON)."""

    async def store() -> None:
        storage = PostgresStorage(fresh_database, run_migrations=True, pool_min=1, pool_max=2)
        try:
            for value in MIXED:
                task_id, context_id = uuid.uuid4(), uuid.uuid4()
                message = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "kind": "message",
                           "message_id": str(uuid.uuid4()), "task_id": str(task_id),
                           "context_id": str(context_id)}
                await storage.submit_task(context_id, message)
                await storage.update_task(task_id, "working", metadata={"k": value, "n": 1})
        finally:
            await storage.close()

    asyncio.run(store())
    # an object's keys get columns of their own (``metadata.k.a``), as pandas.json_normalize does
    expected = [None if value is None or isinstance(value, dict)
                else json.dumps(value, ensure_ascii=False, separators=(",", ":")) for value in MIXED]
    for name in ("mixed.parquet", "mixed.csv"):
        proc = run("export", "tasks", "--to", name, "--database-url", fresh_database, "--chunksize", "3",
                   "--no-progress", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        path = tmp_path / name
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            assert str(table.schema.field("metadata.k").type) in ("string", "large_string")
            got = table.column("metadata.k").to_pylist()
            assert table.column("metadata.n").to_pylist() == [1] * len(MIXED)
            assert table.column("metadata.k.a").to_pylist() == [1 if v == {"a": 1} else None for v in MIXED]
        else:
            got = pd.read_csv(path, dtype={"metadata.k": "object"}, keep_default_na=False,
                              na_values={"metadata.k": [""]})["metadata.k"].tolist()
            got = [None if isinstance(v, float) else v for v in got]
        assert got == expected, name
        assert [json.loads(v) if v is not None else None for v in got] == [
            None if isinstance(v, dict) else v for v in MIXED
        ]


def test_migrate_refuses_a_hot_standby(
    pg_server: TemporaryPostgres | None, pg_url: str, tmp_path: Path
) -> None:
    if pg_server is None:
        pytest.skip("BINDU_TEST_DATABASE_URL is set: no local server to start a standby of")
    standby = pg_server.replica()
    try:
        url = standby.database_url(pg_url.rpartition("/")[2])
        proc = run("migrate", "upgrade", "--database-url", url, cwd=tmp_path)
        assert_one_line_error(proc, "migrate", "hot standby (read-only replica); run migrations on the")
        assert "[SQL:" not in proc.stderr
        assert_no_secret(proc, url)
        current = run("migrate", "current", "--database-url", url, cwd=tmp_path)
        assert current.returncode == 0, current.stderr
    finally:
        standby.stop()


def test_seed_needs_a_database(tmp_path: Path) -> None:
    assert_one_line_error(run("seed", "--tasks", "10", cwd=tmp_path), "seed", "seed writes to PostgreSQL")


# --- diagnose --------------------------------------------------------------------------------------


def test_diagnose_exit_status_follows_the_report(pg_url: str, tmp_path: Path) -> None:
    text = run("diagnose", "--database-url", pg_url, cwd=tmp_path)
    assert text.returncode in (0, 1, 2), text.stderr
    status = text.stdout.split(":", 1)[0]
    assert {"OK": 0, "WARN": 1, "CRITICAL": 2}[status] == text.returncode
    assert "migrations" in text.stdout
    assert_no_secret(text, pg_url)

    as_json = run("diagnose", "--format", "json", cwd=tmp_path,
                  env=_env(STORAGE_BACKEND="postgres", DATABASE_URL=pg_url))
    report = json.loads(as_json.stdout)
    assert report["exit_code"] == as_json.returncode
    assert {f["check"] for f in report["findings"]} >= {"connection usage", "schema drift"}
    assert_no_secret(as_json, pg_url)

    as_html = run("diagnose", "--format", "html", "--database-url", pg_url, cwd=tmp_path)
    assert as_html.stdout.startswith("<!doctype html>") and "<table>" in as_html.stdout
    assert_no_secret(as_html, pg_url)


def test_diagnose_unreachable_is_critical_and_masked(tmp_path: Path) -> None:
    url = "postgresql://ops:hunter2-secret@127.0.0.1:1/bindu"
    proc = run("diagnose", "--database-url", url, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc, "diagnose", "127.0.0.1:1")
    assert_no_secret(proc, url)


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "command", "needle"),
    [
        (("export", "tasks", "--to", "out.txt", "--database-url", "postgresql://u:pw1234@127.0.0.1:1/d"), {},
         "export", "--to must end in .parquet or .csv"),
        (("diagnose", "--database-url", "mysql://root:pw1234@db/x"), {}, "diagnose",
         "must be a PostgreSQL URL"),
        (("demo",), {"STORAGE_BACKEND": "postgres"}, "demo", "STORAGE_BACKEND=postgres needs DATABASE_URL"),
        (("demo",), {"STORAGE__POSTGRES_POOL_MIN": "many"}, "demo", "STORAGE__POSTGRES_POOL_MIN"),
        (("export", "tasks", "--to", "x.csv"), {}, "export", "no database to use"),
        (("migrate", "current", "--schema", "bad-name", "--database-url", "postgresql://u:pw1234@h/d"), {},
         "migrate", "--schema must be a plain identifier"),
        (("seed", "--start", "yesterday", "--database-url", "postgresql://u:pw1234@127.0.0.1:1/d"), {},
         "seed", "--start must be a date"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], env: dict[str, str], command: str, needle: str,
                               tmp_path: Path) -> None:
    proc = run(*args, cwd=tmp_path, env=_env(**env))
    assert_one_line_error(proc, command, needle)
    assert "pw1234" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("args", [("seed", "--tasks", "0"), ("export", "nothing", "--to", "x.csv"),
                                  ("migrate", "sideways"), ("frobnicate",)])
def test_usage_errors(args: tuple[str, ...], tmp_path: Path) -> None:
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("bindu-storage")
    assert "error:" in proc.stderr.splitlines()[-1]
