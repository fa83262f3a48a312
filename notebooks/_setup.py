"""What the notebooks share: which storage each one opens, and how to name it without secrets.

Every notebook starts with ``from _setup import ...``. The rules, in one place:

* The backend rule of the whole package (``bindu_storage.settings``): ``STORAGE_BACKEND`` (or
  ``STORAGE_TYPE``) decides; unset, it is memory, also when ``DATABASE_URL`` is set.
* ``01`` and ``04`` follow it: memory by default; ``STORAGE_BACKEND=postgres`` with
  ``DATABASE_URL`` (or ``STORAGE_BACKEND=embedded``) moves them to PostgreSQL, into a schema of
  their own so that they never touch an application's tables.
* ``02`` and ``03`` need PostgreSQL: the configured one (``STORAGE_BACKEND=postgres`` or
  ``embedded``), else the embedded server (a local PostgreSQL kept in a per-user data directory),
  where 03 works in a schema of its own, ``notebook_demo``.
* Nothing here prints a URL. A storage is described by its kind, server version, database and
  schema — never by host, socket directory or password — so committed outputs stay clean.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import asyncpg
import matplotlib as mpl

import bindu_storage.analysis.notebook as bn
from bindu_storage.settings import StorageSettings, load_settings
from bindu_storage.storage.postgres import PostgresStorage

__all__ = [
    "backend_for", "configured", "connect", "database_url", "describe", "fetch", "open_notebook_storage",
    "postgres_backend", "style",
]


def configured() -> StorageSettings:
    """The storage settings, read as the library reads them (environment and ``.env``)."""
    return load_settings().storage


def style() -> None:
    """Quiet, consistent notebooks: no environment warnings in outputs, one plot style."""
    # platformdirs warns (with a machine path) when XDG_RUNTIME_DIR is unset; not the reader's concern
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    mpl.rcParams.update({
        "figure.figsize": (9, 4), "figure.dpi": 90, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "axes.titleweight": "bold",
    })


def postgres_backend() -> str:
    """The configured PostgreSQL backend (``postgres``, ``embedded``), else ``embedded``."""
    backend = configured().backend
    return backend if backend in ("postgres", "embedded") else "embedded"


def backend_for(default: str) -> str:
    """The backend a notebook whose own default is ``default`` runs on, given the settings."""
    cfg = configured()
    return cfg.backend if cfg.backend_is_explicit else default


def database_url(backend: str) -> str:
    """The URL of ``backend``'s database (``postgres``: DATABASE_URL; ``embedded``: its server)."""
    if backend == "embedded":
        from bindu_storage.embedded import embedded_database_url

        return embedded_database_url(configured().embedded_data_dir)
    url = configured().postgres_url
    if url is None:
        raise ValueError("STORAGE_BACKEND=postgres needs DATABASE_URL")
    return url


def open_notebook_storage(backend: str, schema: str | None = None, **options: Any) -> bn.SyncStorage:
    """Open ``backend``; on PostgreSQL in ``schema`` (created and migrated when missing)."""
    if backend == "memory":
        return bn.open_storage("memory")
    if schema is not None:
        options["schema"] = schema
    return bn.open_storage(backend, **options)


async def connect(st: bn.SyncStorage) -> asyncpg.Connection:
    """A companion asyncpg connection to ``st``'s database, JSON(B) read and written as Python.

    Await it on the facade's loop (``st.run(...)``); the caller closes it.
    """
    conn = await asyncpg.connect(_dsn(st))
    for name in ("jsonb", "json"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


def fetch(st: bn.SyncStorage, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on a short-lived companion connection of ``st`` (PostgreSQL only)."""

    async def run() -> list[asyncpg.Record]:
        conn = await connect(st)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return st.run(run())


def _dsn(st: bn.SyncStorage) -> str:
    storage = st.storage
    if not isinstance(storage, PostgresStorage):
        raise TypeError("this needs a PostgreSQL storage")
    return storage.connection_dsn


def describe(st: bn.SyncStorage, backend: str) -> str:
    """One line naming the storage: kind, server version, database and schema; no URL."""
    if not isinstance(st.storage, PostgresStorage):
        note = configured().unused_url_note
        return "the in-memory backend (this kernel's memory; gone when the kernel stops)" + (
            f"; {note}" if note else "")
    row = fetch(st, "SELECT current_setting('server_version') AS version, current_database() AS db")[0]
    kind = "the embedded PostgreSQL" if backend == "embedded" else "PostgreSQL from DATABASE_URL"
    version = row["version"].split()[0]
    return f"{kind} (server {version}, database {row['db']!r}, schema {st.storage.schema!r})"
