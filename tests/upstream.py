"""Upstream Bindu itself, for the compatibility tests: its PyPI package in its own virtualenv.

A Python >= 3.12 virtualenv with ``bindu`` is built once and cached under
``~/.cache/bindu-storage-tests/bindu-<version>`` (``BINDU_UPSTREAM_VERSION`` picks another
release, ``BINDU_TESTS_CACHE`` another folder). Scripts run there with this checkout's
``bindu_storage`` importable (through ``PYTHONPATH``, never installed into the cached venv), so
upstream's real server, worker and storage run beside ours. Nothing here imitates upstream.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

UPSTREAM_VERSION = os.environ.get("BINDU_UPSTREAM_VERSION", "2026.36.7")
CACHE = Path(os.environ.get("BINDU_TESTS_CACHE", Path.home() / ".cache" / "bindu-storage-tests"))
PACKAGE = Path(__file__).resolve().parents[1] / "bindu_storage"


def _python312() -> str:
    """A Python >= 3.12 (upstream's minimum): pyenv's 3.12, or python3.12/3.13 on PATH."""
    candidates = [*sorted(Path("/root/.pyenv/versions").glob("3.1[2-9]*/bin/python")),
                  shutil.which("python3.12"), shutil.which("python3.13")]
    for candidate in candidates:
        if candidate and subprocess.run(
            [str(candidate), "-c", "import sys; assert sys.version_info >= (3, 12)"], capture_output=True
        ).returncode == 0:
            return str(candidate)
    pytest.fail("upstream bindu needs Python >= 3.12 and none was found (python3.12 on PATH)")


def upstream_venv() -> Path:
    """The interpreter of the cached virtualenv holding upstream ``bindu`` (built on first use)."""
    venv = CACHE / f"bindu-{UPSTREAM_VERSION}"
    python, ready = venv / "bin" / "python", venv / ".ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"bindu-{UPSTREAM_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse it
        if not ready.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([_python312(), "-m", "venv", str(venv)], check=True)
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"bindu=={UPSTREAM_VERSION}"],
                capture_output=True, text=True, timeout=1800,
            )
            if pip.returncode != 0:
                pytest.fail(f"cannot install bindu=={UPSTREAM_VERSION} from PyPI:\n{pip.stderr[-3000:]}")
            ready.write_text(UPSTREAM_VERSION)
    return python


class Upstream:
    """Runs Python scripts in upstream's virtualenv, with this checkout's ``bindu_storage``."""

    def __init__(self, python: Path, pythonpath: Path) -> None:
        self.python = python
        self.pythonpath = pythonpath

    def run(self, script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
            input_text: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with ``args`` (and ``input_text`` on stdin) in ``cwd`` (default: a
        fresh temporary folder, since upstream writes key files where it runs); fail the test
        if it fails."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("STORAGE", "DATABASE_URL", "POSTGRES_", "DID"))}
        with tempfile.TemporaryDirectory(prefix="bindu-upstream-run-") as scratch:
            done = subprocess.run(
                [str(self.python), "-c", script, *args], capture_output=True, text=True,
                timeout=timeout, input=input_text, cwd=cwd or scratch,
                env={**base, "PYTHONPATH": str(self.pythonpath), **(env or {})},
            )
        assert done.returncode == 0, (
            f"upstream script failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
        return done

    def result(self, script: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> Any:
        """Run ``script`` and return the JSON it printed on its last ``RESULT `` line."""
        done = self.run(script, *args, env=env, timeout=timeout)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"upstream script reported nothing:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """The interpreter of the cached virtualenv holding upstream ``bindu``."""
    return upstream_venv()


@pytest.fixture(scope="session")
def upstream(upstream_python: Path) -> Any:
    """An ``Upstream`` runner: upstream's venv, this checkout's ``bindu_storage`` importable."""
    with tempfile.TemporaryDirectory(prefix="bindu-storage-path-") as folder:
        (Path(folder) / "bindu_storage").symlink_to(PACKAGE, target_is_directory=True)
        yield Upstream(upstream_python, Path(folder))
