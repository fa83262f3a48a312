"""``diagnose`` gives no advice that would hurt (issue 9, item 3), on real servers.

- right after ``seed``, the indexes the migrations declare are never advised away (neither as
  unused nor as duplicates): they are reported as ours, with what uses them; other unused or
  duplicate indexes still are;
- the ``pg_stat_statements`` advice follows what is actually missing: the library not preloaded
  (a second server started without it), the extension not created (the suite's server preloads
  it), or this role not allowed to read it (``REVOKE``, no ``pg_read_all_stats``);
- ``--format json`` / ``html`` print one document even when there is no report;
- the HTML header names the status once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from conftest import execute

from bindu_storage.analysis.diagnostics import Diagnostics, Finding, HealthReport, Thresholds, health_report
from bindu_storage.dsn import password_of
from bindu_storage.storage import schema
from bindu_storage.testing import TemporaryPostgres

DECLARED = {i.name for i in schema.EXPECTED.indexes}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STORAGE") and k not in ("DATABASE_URL", "BINDU_TEST_DATABASE_URL")}
    return {**env, **extra}


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m bindu_storage ARGS`` in ``cwd``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "bindu_storage", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=300, check=False)


def _with_user(url: str, user: str, password: str) -> str:
    rest = url.split("@", 1)[1]
    return f"postgresql://{user}:{password}@{rest}"


async def _preloaded(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        setting = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
    finally:
        await conn.close()
    return "pg_stat_statements" in setting


@pytest.fixture
async def plain_role(fresh_database: str) -> AsyncIterator[str]:
    """The URL of ``fresh_database`` as a login role with no grants at all (not even pg_monitor)."""
    name, password = f"plain_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await execute(fresh_database, f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    try:
        yield _with_user(fresh_database, name, password)
    finally:
        await execute(fresh_database, f"DROP OWNED BY {name}", f"DROP ROLE {name}")


# --- indexes after seed ------------------------------------------------------------------------------


def test_seeded_database_keeps_the_declared_indexes(fresh_database: str, tmp_path: Path) -> None:
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=fresh_database)
    seeded = cli("seed", "--no-progress", cwd=tmp_path, env=env)  # the README's command, 10,000 tasks
    assert seeded.returncode == 0, seeded.stderr

    proc = cli("diagnose", "--format", "json", cwd=tmp_path, env=env)
    report = json.loads(proc.stdout)
    findings = {f["check"]: f for f in report["findings"]}
    unused = findings["unused indexes"]
    assert unused["status"] == "ok" and unused["seen"] == "none", unused
    assert not DECLARED & set(unused["seen"].replace(",", " ").split())
    declared = findings["declared indexes"]
    assert declared["status"] == "ok"
    assert "idx_tasks_metadata_gin" in declared["seen"]
    assert "serves the JSONB containment filters on metadata" in declared["seen"]
    assert findings["schema drift"]["status"] == "ok"
    for finding in report["findings"]:  # no advice anywhere names one of our indexes to drop
        if "DROP INDEX" in finding["advice"] and finding["status"] != "ok":
            assert not DECLARED & set(finding["seen"].replace(",", " ").replace("(", " ").split()), finding


async def test_only_indexes_that_are_not_ours_are_advised_away(fresh_database: str, tmp_path: Path) -> None:
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=fresh_database)
    assert cli("seed", "--tasks", "500", "--no-progress", cwd=tmp_path, env=env).returncode == 0
    await execute(
        fresh_database,
        "CREATE INDEX my_tasks_kind ON tasks (kind)",  # never scanned, not ours
        "CREATE INDEX my_tasks_context_created ON tasks (context_id, created_at)",  # covers ours
        "CREATE INDEX my_tasks_kind_twin ON tasks (kind)",  # a twin of the one above
    )
    every_size = Thresholds(unused_index_min_bytes=0)
    async with Diagnostics(fresh_database) as diag:
        unused = (await diag.unused_indexes()).set_index("index_name")
        duplicates = (await diag.duplicate_indexes()).set_index("index_name")
        report = await diag.health_report(every_size)
    assert unused.loc["idx_tasks_metadata_gin", "declared"]
    assert "JSONB containment filters on metadata" in unused.loc["idx_tasks_metadata_gin", "purpose"]
    assert not unused.loc["my_tasks_kind", "declared"] and unused["purpose"].isna()["my_tasks_kind"]
    # idx_tasks_context_id is also a prefix of our own keyset index (revision 0008): one row each
    covered = duplicates.loc[["idx_tasks_context_id"]].set_index("covered_by")
    assert "my_tasks_context_created" in covered.index
    assert covered["declared"].all()
    assert not duplicates.loc["my_tasks_kind_twin", "declared"]

    findings = {f.check: f for f in report.findings}
    advised = findings["unused indexes"].seen
    assert findings["unused indexes"].status == "warn" and "my_tasks_kind" in advised
    assert not DECLARED & {name.split(" ")[0] for name in advised.split(", ")}
    assert "idx_tasks_metadata_gin" in findings["declared indexes"].seen
    dup = findings["duplicate indexes"]
    assert dup.status == "warn" and "my_tasks_kind_twin (covered by my_tasks_kind)" in dup.seen
    named, _, kept = dup.seen.partition("; kept")
    assert "idx_tasks_context_id" not in named and "idx_tasks_context_id" in kept


# --- pg_stat_statements ------------------------------------------------------------------------------


async def test_preloaded_but_not_created_needs_no_restart(fresh_database: str) -> None:
    if not await _preloaded(fresh_database):
        pytest.skip("the test server does not preload pg_stat_statements")
    async with Diagnostics(fresh_database) as diag:
        status = await diag.statements_status()
        frame = await diag.queries_by_total_time()
        report = await diag.health_report()
    assert (status.available, status.problem) == (False, "not created")
    assert "CREATE EXTENSION pg_stat_statements" in status.advice
    assert "shared_preload_libraries" not in status.advice and "no restart needed" in status.advice
    assert "shared_preload_libraries" not in frame.attrs["note"]
    finding = {f.check: f for f in report.findings}["pg_stat_statements"]
    assert finding.status == "warn" and finding.advice == status.advice


async def test_a_role_without_permission_is_told_what_to_grant(fresh_database: str, plain_role: str) -> None:
    if not await _preloaded(fresh_database):
        pytest.skip("the test server does not preload pg_stat_statements")
    await execute(fresh_database, "CREATE EXTENSION pg_stat_statements")
    async with Diagnostics(plain_role) as diag:  # readable by PUBLIC, but only its own statements
        own = await diag.statements_status()
        frame = await diag.queries_by_total_time()
        report = await diag.health_report()
    assert (own.available, own.problem) == (True, "own statements only")
    assert "GRANT pg_read_all_stats" in own.advice and "restart" not in own.advice
    assert "CREATE EXTENSION" not in own.advice
    assert len(frame) and "pg_read_all_stats" in frame.attrs["note"]
    findings = {f.check: f for f in report.findings}
    assert findings["pg_stat_statements"].status == "warn"
    assert findings["slow queries"].status != "skipped"

    await execute(fresh_database, "REVOKE SELECT ON pg_stat_statements FROM PUBLIC")
    async with Diagnostics(plain_role) as diag:
        denied = await diag.statements_status()
        frame = await diag.queries_by_total_time()
    assert (denied.available, denied.problem) == (False, "no permission")
    assert "GRANT SELECT ON public.pg_stat_statements TO plain_" in denied.advice
    assert "GRANT pg_read_all_stats" in denied.advice
    assert "shared_preload_libraries" not in denied.advice and "CREATE EXTENSION" not in denied.advice
    assert frame.empty and "may not read" in frame.attrs["note"]


@pytest.fixture(scope="module")
def bare_server(pg_server: TemporaryPostgres | None) -> Iterator[TemporaryPostgres]:
    """A second server started like a default install: nothing in shared_preload_libraries."""
    if pg_server is None:
        pytest.skip("BINDU_TEST_DATABASE_URL is set: no local server binaries to start another")
    with TemporaryPostgres(preload="") as server:
        yield server


async def test_not_preloaded_says_restart_then_create(bare_server: TemporaryPostgres) -> None:
    url = bare_server.url
    plain_password = uuid.uuid4().hex
    await execute(url, f"CREATE ROLE plain LOGIN PASSWORD '{plain_password}'")
    plain = _with_user(url, "plain", plain_password)

    async with Diagnostics(url) as diag:
        missing = await diag.statements_status()
        report = await diag.health_report()
    assert (missing.available, missing.problem) == (False, "not preloaded")
    assert "shared_preload_libraries" in missing.advice and "restart" in missing.advice
    assert missing.advice.index("restart") < missing.advice.index("CREATE EXTENSION pg_stat_statements")
    finding = {f.check: f for f in report.findings}["pg_stat_statements"]
    assert finding.status == "warn" and finding.advice == missing.advice

    async with Diagnostics(plain) as diag:  # may not read the setting: cannot tell, says both
        unsure = await diag.statements_status()
    assert unsure.problem == "not created" and "shared_preload_libraries" in unsure.advice

    await execute(url, "CREATE EXTENSION pg_stat_statements")  # created, but the library is not loaded
    for target in (url, plain):  # the plain role cannot read the setting: the probe call tells
        async with Diagnostics(target) as diag:
            created = await diag.statements_status()
            frame = await diag.queries_by_mean_time()
        assert (created.available, created.problem) == (False, "not preloaded"), target
        assert "shared_preload_libraries" in created.advice and "already created" in created.advice
        assert "CREATE EXTENSION" not in created.advice
        assert frame.empty and "did not load the library" in frame.attrs["note"]


# --- output when there is no report -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--database-url", "postgresql://ops:hunter2-secret@127.0.0.1:1/bindu"), "127.0.0.1:1"),
        (("--database-url", "mysql://ops:hunter2-secret@db/x"), "must be a PostgreSQL URL"),
        ((), "no database to use"),
    ],
)
def test_json_is_one_document_even_without_a_report(
    args: tuple[str, ...], needle: str, tmp_path: Path
) -> None:
    proc = cli("diagnose", "--format", "json", *args, cwd=tmp_path)
    assert proc.returncode == 2
    document = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert document["status"] == "error" and document["exit_code"] == 2 and document["findings"] == []
    assert needle in document["error"]
    assert "hunter2" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines()  # the target line comes first, when known
             if not line.startswith("bindu-storage diagnose: postgres ")]
    assert len(lines) == 1 and lines[0].startswith("bindu-storage diagnose: error: ") and needle in lines[0]

    page = cli("diagnose", "--format", "html", *args, cwd=tmp_path)
    assert page.returncode == 2 and page.stdout.startswith("<!doctype html>")
    assert "ERROR" in page.stdout and "hunter2" not in page.stdout + page.stderr
    assert page.stdout.rstrip().endswith("</html>")


def test_json_error_names_the_target_without_password(tmp_path: Path) -> None:
    url = "postgresql://ops:hunter2-secret@127.0.0.1:1/bindu"
    document = json.loads(cli("diagnose", "--format", "json", "--database-url", url, cwd=tmp_path).stdout)
    assert document["target"] == "postgresql://ops@127.0.0.1:1/bindu" and document["schema"] == "public"
    assert password_of(url) not in json.dumps(document)


# --- the HTML header -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["critical", "warn", "ok"])
def test_html_header_names_the_status_once(status: str) -> None:
    report = HealthReport("postgresql://u@h:5432/db", "public", "primary",
                          [Finding("stuck tasks", status, "seen", "threshold")])  # type: ignore[arg-type]
    page = report._repr_html_()
    header = page.split("<table>")[0]
    assert header.count(status.upper()) == 1, header


async def test_html_page_of_a_real_report_names_the_status_once(pg_url: str) -> None:
    report = await health_report(pg_url)
    header = report._repr_html_().split("<table>")[0]
    assert header.count(report.status.upper()) == 1, header
