"""docker-compose.yml and docker/Dockerfile: the shape the README promises, checked statically.

``docker compose config`` runs too where a Docker CLI with the compose plugin is installed (it
needs no running engine); elsewhere that one test is skipped, saying why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bindu_storage.settings import StorageSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SPEC_SETTINGS = (
    "STORAGE_BACKEND", "DATABASE_URL", "STORAGE__POSTGRES_POOL_MIN", "STORAGE__POSTGRES_POOL_MAX",
    "STORAGE__POSTGRES_TIMEOUT", "STORAGE__POSTGRES_COMMAND_TIMEOUT", "STORAGE__POSTGRES_MAX_RETRIES",
    "STORAGE__POSTGRES_RETRY_DELAY", "STORAGE__RUN_MIGRATIONS_ON_STARTUP",
)


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", lambda m: m.group(1), value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def jupyter_env(compose: dict[str, Any]) -> dict[str, str]:
    env = compose["services"]["jupyterlab"]["environment"]
    assert isinstance(env, dict), "environment is a mapping"
    return {k: _interpolate(str(v)) for k, v in env.items()}


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"db", "jupyterlab"}
    assert compose["services"]["db"]["image"] == "postgres:16"


def test_database_health_check_and_volume(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    check = db["healthcheck"]
    test = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
    assert "pg_isready" in test
    assert "-U bindu" in test and "-d bindu" in test
    assert check["retries"] >= 1
    mounts = [m.split(":") for m in db["volumes"]]
    assert ["pgdata", "/var/lib/postgresql/data"] in mounts
    assert "pgdata" in compose["volumes"], "the data volume is a named volume"


def test_jupyterlab_service(compose: dict[str, Any]) -> None:
    lab = compose["services"]["jupyterlab"]
    assert lab["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / lab["build"]["context"] / lab["build"]["dockerfile"]).is_file()
    assert lab["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert any(str(p).endswith("8888:8888") for p in lab["ports"])
    assert "./notebooks:/home/bindu/notebooks" in lab["volumes"]
    assert (ROOT / "notebooks").is_dir()


def test_environment_is_the_spec_settings(compose: dict[str, Any], jupyter_env: dict[str, str]) -> None:
    assert set(SPEC_SETTINGS) <= set(jupyter_env)
    assert jupyter_env["STORAGE_BACKEND"] == "postgres"
    assert jupyter_env["STORAGE__RUN_MIGRATIONS_ON_STARTUP"] == "true"
    url = urlsplit(jupyter_env["DATABASE_URL"])
    db_env = {k: _interpolate(str(v)) for k, v in compose["services"]["db"]["environment"].items()}
    assert url.hostname == "db" and url.port == 5432
    assert url.username == db_env["POSTGRES_USER"]
    assert url.password == db_env["POSTGRES_PASSWORD"]
    assert url.path == "/" + db_env["POSTGRES_DB"]


def test_environment_values_load_as_settings(
    jupyter_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in jupyter_env.items():
        monkeypatch.setenv(key, value)
    cfg = StorageSettings(_env_file=None)  # type: ignore[call-arg]
    assert cfg.backend == "postgres"
    assert cfg.run_migrations_on_startup is True
    assert (cfg.postgres_pool_min, cfg.postgres_pool_max) == (2, 10)
    assert "***" in (cfg.postgres_url_masked or "")


def test_dockerfile_installs_the_package_and_serves_jupyterlab() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install \"?\.\[notebooks\]", text), "installs the repo with the notebooks extra"
    for path in ("pyproject.toml", "alembic", "bindu_storage"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), f"copies {path}"
        assert (ROOT / path).exists()
    assert "--ip=0.0.0.0" in text and "--port=8888" in text and "jupyter lab" in text
    assert "EXPOSE 8888" in text
    assert "bindu-storage migrate upgrade" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M), "JupyterLab does not run as root"


def _compose_cli() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        return f"`docker compose version` failed ({reason[0] if reason else probe.returncode})"
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    missing = _compose_cli()
    if missing:
        pytest.skip(f"Docker compose plugin not available: {missing}")
    run = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
