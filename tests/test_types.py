"""The package type-checks: mypy over ``bindu_storage`` with the settings in pyproject.toml.

Every remaining ``# type: ignore`` carries an error code and is used (``warn_unused_ignores``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_finds_no_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "pyproject.toml"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"Success: no issues found in \d+ source files", done.stdout)


def test_every_type_ignore_names_its_error_code() -> None:
    bare = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "bindu_storage").rglob("*.py"))
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"type:\s*ignore(?!\[)", line)]
    assert bare == []
