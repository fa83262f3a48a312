"""The four notebooks, executed headless in a real Jupyter kernel — on their defaults and on a server.

Each notebook runs twice, top to bottom, with no edits:

* on its **default**: the in-memory backend (01, 04) or the embedded PostgreSQL (02, 03), the
  latter in a throwaway data directory of this run;
* against **this run's PostgreSQL** (``STORAGE_BACKEND=postgres``, ``DATABASE_URL`` of a fresh
  database, migrated and seeded with synthetic data): 03, the read-only ops notebook, is pointed
  at a streaming hot standby of that database, as it would be at a production replica.

The eight executions run concurrently (each in its own kernel) in one module fixture; the tests
then check that no cell errored, that every cell tagged ``plot`` produced a PNG, that the
backend the environment asked for is the one the notebook used, and that no output holds a
password, a host or a machine path. The committed notebooks are checked the same way.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bindu_storage import TERMINAL_STATES, PostgresStorage
from bindu_storage.dsn import mask_secrets, password_of
from bindu_storage.synthetic import generate, load
from bindu_storage.testing import TemporaryPostgres

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
README_IMAGES = ROOT / "docs" / "images"
KERNEL = "python3"
CELL_TIMEOUT = 300
PARALLEL = 4
"""Kernels running at once."""

CLEARED_VARIABLES = ("STORAGE_BACKEND", "STORAGE__BACKEND", "DATABASE_URL", "STORAGE__POSTGRES_URL",
                     "STORAGE__POSTGRES_SCHEMA", "STORAGE__EMBEDDED_DATA_DIR", "MPLBACKEND")

LEAKS = {
    "a URL with a password": re.compile(r"postgres(?:ql)?(?:\+asyncpg)?://[^\s/@'\"]*:[^\s/@'\"]+@", re.I),
    "a temporary path": re.compile(r"/tmp/|\\\\tmp\\\\"),
    "a home path": re.compile(r"/root\b|/home/|/Users/"),
    "a system path": re.compile(r"/usr/|/var/|/opt/|/work/|site-packages"),
    "a socket host parameter": re.compile(r"[?&]host=", re.I),
    "a loopback host": re.compile(r"\blocalhost\b|127\.0\.0\.1|::1\b"),
}
"""What must never appear in a notebook output."""


# --- what the tests look at ------------------------------------------------------------------------


def output_texts(nb: nbformat.NotebookNode) -> Iterator[tuple[int, str]]:
    """Every piece of text of every output: streams, text and HTML reprs, error tracebacks."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                yield index, output.get("text", "")
            elif output.get("output_type") == "error":
                yield index, "\n".join([output.get("ename", ""), output.get("evalue", ""),
                                        *output.get("traceback", [])])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    yield index, value if isinstance(value, str) else "".join(value)


def find_leaks(nb: nbformat.NotebookNode, secrets: tuple[str, ...] = ()) -> list[str]:
    """Outputs holding a password, host or machine path (the literal ``secrets`` too)."""
    names = {socket.gethostname(), socket.getfqdn()} - {"", "localhost"}
    found = []
    for index, text in output_texts(nb):
        for what, pattern in LEAKS.items():
            if pattern.search(text):
                found.append(f"cell {index}: {what}")
        for secret in (*secrets, *(n for n in names if len(n) >= 4)):
            if secret and secret in text:
                found.append(f"cell {index}: a secret or the machine's host name")
    return found


def plot_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indexes of the cells tagged ``plot``."""
    return [i for i, c in enumerate(nb.cells) if "plot" in c.get("metadata", {}).get("tags", [])]


def has_png(cell: nbformat.NotebookNode) -> bool:
    """Whether the cell displayed a PNG image (a real one, not an empty payload)."""
    for output in cell.get("outputs", []):
        png = output.get("data", {}).get("image/png")
        if png and base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n":
            return True
    return False


def errors(nb: nbformat.NotebookNode) -> list[str]:
    """Error outputs (and stderr text) of the notebook's cells."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index} wrote to stderr: {output.get('text', '')[:300]}")
    return found


# --- running notebooks ----------------------------------------------------------------------------


@dataclass
class Run:
    """One execution of one notebook."""

    notebook: str
    mode: str  # "default" or "postgres"
    env: dict[str, str]
    secrets: tuple[str, ...] = ()
    nb: nbformat.NotebookNode | None = None
    failure: str | None = None
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


KERNEL_STARTS = 2
"""Tries at starting a notebook's kernel. A kernel that dies before answering ``kernel_info``
ran none of the notebook (seen once in a CI run with four kernels starting at once; the cause
was not found), so it is started once more; any later failure counts."""


async def execute(run: Run, gate: asyncio.Semaphore) -> None:
    """Execute the notebook in a fresh kernel, with the notebooks folder as working directory."""
    async with gate:
        start = time.perf_counter()
        for attempt in range(1, KERNEL_STARTS + 1):
            nb = nbformat.read(NOTEBOOK_DIR / run.notebook, as_version=4)
            client = NotebookClient(
                nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
            )
            run.failure = None
            try:
                await client.async_execute(env=run.env)
            except CellExecutionError as exc:
                run.failure = mask_secrets(str(exc), *run.secrets)
            except Exception as exc:  # a dead kernel, a timeout: report it, masked
                run.failure = mask_secrets(f"{type(exc).__name__}: {exc}", *run.secrets)
                if "died before replying to kernel_info" in str(exc) and attempt < KERNEL_STARTS:
                    continue
            break
        run.seconds = time.perf_counter() - start
    run.nb = nb


def kernel_env(**settings: str) -> dict[str, str]:
    """This process's environment without any storage setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    return {**env, **settings}


@pytest.fixture(scope="module")
def kernel() -> str:
    """The ``python3`` kernelspec, installed for this interpreter when missing."""
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True,
                       capture_output=True)
    assert KERNEL in KernelSpecManager().find_kernel_specs()
    return KERNEL


async def _seed(url: str) -> None:
    """Migrate ``public``, enable pg_stat_statements and load synthetic tasks (a 'production')."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()
    storage = PostgresStorage(url, pool_min=1, pool_max=2)
    async with storage:
        await load(storage, generate(1500, seed=5))
        for task in await storage.list_tasks(length=100):  # some application traffic
            if task["status"]["state"] in TERMINAL_STATES:
                await storage.update_task(task["id"], task["status"]["state"], metadata={"reviewed": True})


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _schemas(url: str) -> dict[str, int]:
    """Task counts of every schema holding a tasks table."""
    conn = await asyncpg.connect(url)
    try:
        names = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'tasks'"
        )
        return {r["table_schema"]: await conn.fetchval(f'SELECT count(*) FROM "{r["table_schema"]}".tasks')
                for r in names}
    finally:
        await conn.close()


def _with_database(url: str, database: str) -> str:
    return f"{url.rpartition('/')[0]}/{database}"


@pytest.fixture(scope="module")
def runs(
    kernel: str, admin_url: str, pg_server: TemporaryPostgres | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], Run]]:
    """Every notebook executed on its defaults and against this run's PostgreSQL, concurrently."""
    database = f"notebooks_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(admin_url, database))
    url = _with_database(admin_url, database)
    asyncio.run(_seed(url))
    standby = pg_server.replica() if pg_server is not None else None
    replica_url = _with_database(standby.url, database) if standby is not None else url
    data_dir = tmp_path_factory.mktemp("embedded") / "pg"
    secrets = tuple(p for p in {password_of(url), password_of(replica_url)} if p)
    all_runs: dict[tuple[str, str], Run] = {}
    for name in NOTEBOOKS:
        all_runs[name, "default"] = Run(name, "default", kernel_env(STORAGE__EMBEDDED_DATA_DIR=str(data_dir)),
                                        secrets=(str(data_dir.parent),))
        on_standby = name.startswith("03") and standby is not None
        env = kernel_env(STORAGE_BACKEND="postgres", DATABASE_URL=replica_url if on_standby else url)
        all_runs[name, "postgres"] = Run(name, "postgres", env, secrets, notes={"standby": on_standby})

    async def run_all() -> None:
        gate = asyncio.Semaphore(PARALLEL)
        await asyncio.gather(*(execute(r, gate) for r in all_runs.values()))

    try:
        asyncio.run(run_all())
        for r in all_runs.values():  # shown with pytest -s
            print(f"{r.notebook} ({r.mode}): {r.seconds:.1f} s")
        schemas = asyncio.run(_schemas(url))
        for r in all_runs.values():
            r.notes.setdefault("schemas", schemas)
        yield all_runs
    finally:
        if standby is not None:
            standby.stop()
        asyncio.run(_drop_database(admin_url, database))
        shutil.rmtree(data_dir.parent, ignore_errors=True)


# --- the tests --------------------------------------------------------------------------------------


def test_the_four_notebooks_are_there() -> None:
    assert NOTEBOOKS == [
        "01_task_lifecycle.ipynb", "02_performance.ipynb", "03_troubleshooting.ipynb",
        "04_feedback_analysis.ipynb",
    ]


def _check_run(run: Run) -> nbformat.NotebookNode:
    assert run.failure is None, f"{run.notebook} ({run.mode}) failed:\n{run.failure}"
    nb = run.nb
    assert nb is not None
    assert not errors(nb), errors(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "a code cell did not run"
    plots = plot_cells(nb)
    assert plots, f"{run.notebook} has no cell tagged 'plot'"
    missing = [i for i in plots if not has_png(nb.cells[i])]
    assert not missing, f"plot cells without a PNG output: {missing}"
    assert not find_leaks(nb, run.secrets), find_leaks(nb, run.secrets)
    return nb


def _first_output(nb: nbformat.NotebookNode) -> str:
    return next(text for _, text in output_texts(nb))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_its_default(runs: dict[tuple[str, str], Run], name: str) -> None:
    run = runs[name, "default"]
    nb = _check_run(run)
    expected = "in-memory backend" if name[:2] in ("01", "04") else "embedded PostgreSQL"
    assert expected in _first_output(nb), _first_output(nb)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_against_postgres(runs: dict[tuple[str, str], Run], name: str) -> None:
    run = runs[name, "postgres"]
    nb = _check_run(run)
    assert "DATABASE_URL" in _first_output(nb), _first_output(nb)
    schemas = run.notes["schemas"]
    if name.startswith("01"):  # the lifecycle notebook wrote its 8 tasks to a schema of its own
        assert schemas["notebook_lifecycle"] == 8
    elif name.startswith("02"):  # the performance notebook dropped its scratch schema
        assert not [s for s in schemas if s.startswith("notebook_perf_")]
    elif name.startswith("03"):  # the ops notebook read the seeded data (on the standby when there is one)
        assert schemas["public"] == 1500
        text = "\n".join(t for _, t in output_texts(nb))
        assert re.search(r"hot_standby\s+" + str(run.notes["standby"]), text)
        assert re.search(r"read_only\s+on", text)
    else:  # the feedback notebook bulk-loaded its synthetic tasks into its own schema
        assert schemas["notebook_feedback"] == 4000


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_shows_its_plots_and_leaks_nothing(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    assert not errors(nb), errors(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "commit the notebook executed"
    plots = plot_cells(nb)
    assert plots and all(has_png(nb.cells[i]) for i in plots), "commit the notebook with its plots"
    assert not find_leaks(nb), find_leaks(nb)


def test_readme_has_a_picture_of_each_notebook() -> None:
    for name in NOTEBOOKS:
        image = README_IMAGES / f"{Path(name).stem}.png"
        assert image.is_file(), image.name
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leak_check_catches_what_it_must() -> None:
    """The leak check itself: each kind of leak in an output is found, clean text passes."""
    leaky = [
        "postgresql://bindu:s3cret@db.internal:5432/bindu", "saved to /tmp/x.csv", "/root/.cache",
        "/home/ada/data", "site-packages/foo.py", "postgresql://postgres@/bindu?host=/run/pg",
        "connected to localhost", "client 127.0.0.1", "token s3cret-token",
    ]
    for text in leaky:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=text)])])
        assert find_leaks(nb, ("s3cret-token",)), text
    plain = {"text/plain": "PostgreSQL from DATABASE_URL, 1.2 ms"}
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("execute_result", data=plain)])])
    assert find_leaks(clean) == []
