"""One backend rule everywhere, and the smaller frictions of a first hour (issue 9, items 2 and 4).

The rule (``bindu_storage.settings``): ``STORAGE_BACKEND`` (or upstream's ``STORAGE_TYPE``)
decides; unset, the backend is memory even when ``DATABASE_URL`` is set, as upstream Bindu
decides. The same environment must give the same backend to ``create_storage()``,
``open_storage()``, every CLI command and the notebooks, and every command names its target on
stderr without a password. Commands run as subprocesses, in an empty directory (no ``.env``),
against this run's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from test_cli import TARGET_LINE, _env, assert_one_line_error, run

from bindu_storage.cli import main
from bindu_storage.dsn import password_of
from bindu_storage.settings import StorageSettings

REPO = Path(__file__).resolve().parent.parent
_ALEMBIC_SCRIPT = Path(sys.executable).with_name("alembic")
ALEMBIC = [str(_ALEMBIC_SCRIPT)] if _ALEMBIC_SCRIPT.exists() else [sys.executable, "-m", "alembic"]

API_SCRIPT = """
import asyncio
from bindu_storage import create_storage, close_storage
import bindu_storage.analysis.notebook as bn

async def factory():
    storage = await create_storage()
    name = type(storage).__name__
    await close_storage(storage)
    return name

print(asyncio.run(factory()))
st = bn.open_storage()
print(type(st.storage).__name__)
st.close()
"""

KINDS = {"InMemoryStorage": "memory", "PostgresStorage": "postgres"}


async def _drop_schemas(url: str, *schemas: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A schema of this test's own in the test database, dropped afterwards."""
    name = f"rule_{uuid.uuid4().hex[:8]}"
    yield name
    asyncio.run(_drop_schemas(pg_url, name))


def _backend_of(proc: subprocess.CompletedProcess[str]) -> str:
    """The backend a command said it works on: its target line, or its refusal of memory."""
    first = proc.stderr.splitlines()[0] if proc.stderr else ""
    if (match := TARGET_LINE.match(first)) is not None:
        return match.group(1)
    assert "the backend is memory" in proc.stderr, proc.stderr
    return "memory"


# --- item 2: one backend rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param({"DATABASE_URL": "{url}"}, "memory", id="only-DATABASE_URL"),
        pytest.param({}, "memory", id="nothing"),
        pytest.param({"STORAGE_BACKEND": "postgres", "DATABASE_URL": "{url}"}, "postgres",
                     id="STORAGE_BACKEND"),
        pytest.param({"STORAGE_TYPE": "postgres", "DATABASE_URL": "{url}"}, "postgres", id="STORAGE_TYPE"),
        pytest.param({"STORAGE_BACKEND": "memory", "DATABASE_URL": "{url}"}, "memory",
                     id="explicit-memory"),
    ],
)
def test_the_same_environment_gives_the_same_backend_everywhere(
    variables: dict[str, str], expected: str, pg_url: str, schema: str, tmp_path: Path
) -> None:
    env = _env(STORAGE__POSTGRES_SCHEMA=schema, STORAGE__POSTGRES_MAX_RETRIES="0",
               **{k: v.format(url=pg_url) for k, v in variables.items()})
    api = subprocess.run([sys.executable, "-c", API_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert api.returncode == 0, api.stderr
    seen = {"create_storage()": KINDS[api.stdout.split()[0]], "open_storage()": KINDS[api.stdout.split()[1]]}
    if "DATABASE_URL" in variables and expected == "memory" and "STORAGE_BACKEND" not in variables:
        assert "DATABASE_URL is set but STORAGE_BACKEND is not" in api.stderr, "never quietly"
    commands = {
        "demo": ("demo", "--tasks", "30"),
        "seed": ("seed", "--tasks", "30", "--no-progress"),
        "export": ("export", "tasks", "--to", "tasks.csv", "--no-progress"),
        "diagnose": ("diagnose",),
        "migrate": ("migrate", "current"),
    }
    secret = password_of(pg_url)
    assert secret
    for name, args in commands.items():
        proc = run(*args, cwd=tmp_path, env=env)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert secret not in proc.stdout + proc.stderr
        seen[name] = _backend_of(proc)
        if expected == "postgres":
            assert proc.stderr.startswith(f"bindu-storage {name}: postgres "), proc.stderr
            target = proc.stderr.splitlines()[0]
            wanted_schema = "bindu_demo" if name == "demo" else schema
            assert target.endswith(f"/bindu_test schema={wanted_schema}"), target
    assert seen == dict.fromkeys(seen, expected), seen


def test_database_url_option_is_the_explicit_override(pg_url: str, tmp_path: Path) -> None:
    proc = run("migrate", "current", "--database-url", pg_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("bindu-storage migrate: postgres ") and first.endswith("schema=public")
    user = pg_url.split("//", 1)[1].split(":", 1)[0]
    assert f" {user}@" in first
    assert password_of(pg_url) not in proc.stderr + proc.stdout


def test_the_target_line_never_shows_a_password(tmp_path: Path) -> None:
    url = "postgresql://ops:hunter2-secret@127.0.0.1:1/bindu"
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=url, STORAGE__POSTGRES_MAX_RETRIES="0")
    for args in (("diagnose",), ("migrate", "current"), ("seed", "--tasks", "5", "--no-progress"),
                 ("export", "events", "--to", "e.csv", "--no-progress"), ("demo", "--tasks", "5")):
        proc = run(*args, cwd=tmp_path, env=env)
        assert proc.returncode != 0
        schema = "bindu_demo" if args[0] == "demo" else "public"
        expected = f"bindu-storage {args[0]}: postgres ops@127.0.0.1:1/bindu schema={schema}"
        assert proc.stderr.splitlines()[0] == expected, proc.stderr
        assert "hunter2" not in proc.stderr + proc.stdout


def test_memory_is_refused_by_database_commands_with_what_to_set(tmp_path: Path) -> None:
    env = _env(DATABASE_URL="postgresql://ops:hunter2-secret@127.0.0.1:1/bindu")
    proc = run("seed", "--tasks", "5", cwd=tmp_path, env=env)
    assert_one_line_error(proc, "seed", "seed writes to PostgreSQL and the backend is memory")
    assert "STORAGE_BACKEND=postgres" in proc.stderr and "--database-url" in proc.stderr
    assert "hunter2" not in proc.stderr
    history = run("migrate", "history", cwd=tmp_path, env=env)  # needs no database: lists revisions
    assert history.returncode == 0, history.stderr
    assert history.stderr.startswith("bindu-storage migrate: memory (DATABASE_URL is set but")


def test_notebooks_follow_the_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(REPO / "notebooks"))
    setup: Any = importlib.import_module("_setup")
    for name in ("STORAGE_BACKEND", "STORAGE__BACKEND", "STORAGE_TYPE", "DATABASE_URL",
                 "STORAGE__POSTGRES_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw-secret@db.example/bindu")
    assert setup.backend_for("memory") == "memory"  # 01, 04
    assert setup.postgres_backend() == "embedded"  # 02, 03: their own default, not the unused URL
    monkeypatch.setenv("STORAGE_TYPE", "postgres")
    assert setup.backend_for("memory") == "postgres"
    assert setup.postgres_backend() == "postgres"


# --- item 4: smaller frictions -----------------------------------------------------------------------


def test_alembic_reads_dotenv(fresh_database: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DATABASE_URL={fresh_database}\nSTORAGE__POSTGRES_SCHEMA=from_dotenv\n", encoding="utf-8"
    )
    proc = subprocess.run([*ALEMBIC, "-c", str(REPO / "alembic.ini"), "upgrade", "head"], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    assert password_of(fresh_database) not in proc.stdout + proc.stderr

    async def version() -> str | None:
        conn = await asyncpg.connect(fresh_database)
        try:
            return await conn.fetchval("SELECT version_num FROM from_dotenv.alembic_version")
        finally:
            await conn.close()

    from bindu_storage.storage.migrate import head_revision

    assert asyncio.run(version()) == head_revision()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_exported_files_respect_the_umask(
    umask: int, mode: int, name: str, pg_url: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bindu_storage", "export", "events", "--to", name, "--database-url", pg_url,
         "--no-progress"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_seed_reaches_the_database_before_generating(tmp_path: Path) -> None:
    env = _env(STORAGE__POSTGRES_MAX_RETRIES="0")
    proc = run("seed", "--tasks", "3000000", "--no-progress", "--database-url",
               "postgresql://u:pw1234@127.0.0.1:1/d", cwd=tmp_path, env=env, timeout=60)
    assert_one_line_error(proc, "seed", "127.0.0.1:1")
    assert "Generating" not in proc.stdout, "3 million tasks were generated for nothing"
    assert "pw1234" not in proc.stdout + proc.stderr


def test_seed_replace_asks_then_empties(fresh_database: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=fresh_database)
    first = run("seed", "--tasks", "50", "--seed", "1", "--no-progress", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr

    unconfirmed = run("seed", "--tasks", "50", "--seed", "1", "--no-progress", "--replace",
                      cwd=tmp_path, env=env)
    assert_one_line_error(unconfirmed, "seed", "add --yes to confirm")

    # on a terminal it asks; anything but "yes" deletes nothing
    for key in ("DATABASE_URL", "STORAGE_BACKEND"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.chdir(tmp_path)

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    asked: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or "no")
    assert main(["seed", "--tasks", "50", "--seed", "1", "--no-progress", "--replace"]) == 1
    assert asked and "yes" in asked[0]

    replaced = run("seed", "--tasks", "70", "--seed", "1", "--no-progress", "--replace", "--yes",
                   cwd=tmp_path, env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert "50 tasks deleted" in replaced.stdout and "Seeded 70 tasks" in replaced.stdout
    assert password_of(fresh_database) not in replaced.stdout + replaced.stderr

    async def count() -> int:
        conn = await asyncpg.connect(fresh_database)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM public.tasks"))
        finally:
            await conn.close()

    assert asyncio.run(count()) == 70


def test_database_url_is_trimmed(monkeypatch: pytest.MonkeyPatch, pg_url: str, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"  {pg_url}\t")
    assert StorageSettings().postgres_url == pg_url
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=f" {pg_url} ")
    assert run("migrate", "current", cwd=tmp_path, env=env).returncode == 0
    proc = run("migrate", "current", "--database-url", f" {pg_url}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
