"""The first command is quick: importing the package and ``bindu-storage --help`` load none of
the heavy libraries (alembic, SQLAlchemy, pandas, pyarrow, asyncpg, pydantic). Their time is
measured in ``benchmarks/bench_import.py``; here only what gets imported is checked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("alembic", "sqlalchemy", "pandas", "pyarrow", "asyncpg", "pydantic", "pydantic_settings")

_PROBE = """
import atexit, json, sys
atexit.register(lambda: print("LOADED " + json.dumps(sorted(m for m in {heavy} if m in sys.modules))))
{body}
"""


def loaded_by(body: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY, body=body)],
        capture_output=True, text=True, timeout=120,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("LOADED ")][-1]
    return json.loads(line.removeprefix("LOADED "))


@pytest.mark.parametrize("body", [
    "import bindu_storage",
    "from bindu_storage import TaskNotFoundError, TASK_STATES, Message",
    "import sys; sys.argv = ['bindu-storage', '--help']\nfrom bindu_storage.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass",
])
def test_the_first_command_loads_no_heavy_library(body: str) -> None:
    assert loaded_by(body) == []


def test_the_storage_names_still_import_from_the_package() -> None:
    assert loaded_by("from bindu_storage import PostgresStorage, create_storage, Storage") == [
        "asyncpg", "pydantic", "pydantic_settings",
    ]  # and still no alembic or SQLAlchemy: those load when migrations run
