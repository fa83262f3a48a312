"""``create_storage`` / ``close_storage``: the backend the settings choose, connected."""

from __future__ import annotations

import logging
from typing import Any

from bindu_storage.errors import InvalidValueError
from bindu_storage.settings import StorageSettings, app_settings
from bindu_storage.storage.base import Storage
from bindu_storage.storage.memory import InMemoryStorage
from bindu_storage.storage.postgres import PostgresStorage


async def create_storage(
    backend: str | None = None,
    *,
    settings: StorageSettings | None = None,
    did: str | None = None,
    **overrides: Any,
) -> Storage:
    """Create and connect the storage chosen by ``STORAGE_BACKEND`` (or ``backend``).

    The backend rule (``bindu_storage.settings``): ``STORAGE_BACKEND`` / ``STORAGE_TYPE`` decides,
    and unset it is memory even when ``DATABASE_URL`` is set, as upstream decides; that case logs
    a warning on the ``bindu_storage`` logger, so a database URL is never ignored quietly.

    ``did`` is the agent's DID, as upstream's ``create_storage(did=...)`` takes it: on
    PostgreSQL it selects the agent's ``did_…`` schema (the one upstream would use); the memory
    backend ignores it. ``overrides`` are passed to the backend's constructor (for example
    ``database_url=``, ``schema=``, ``pool_max=``) and win over the environment.
    """
    cfg = settings or app_settings.storage
    chosen = (backend or cfg.backend).lower()
    if backend is None and (note := cfg.unused_url_note):
        logging.getLogger("bindu_storage").warning("create_storage: %s", note)
    storage: Storage
    if chosen == "memory":
        if overrides:
            raise InvalidValueError(f"the memory backend takes no options, got {sorted(overrides)}")
        storage = InMemoryStorage(push_config_key=cfg.push_config_key)
    elif chosen == "postgres":
        storage = PostgresStorage(settings=cfg, **_with_did(did, overrides))
    elif chosen == "embedded":
        from bindu_storage.embedded import embedded_database_url

        url = overrides.pop("database_url", None) or embedded_database_url(cfg.embedded_data_dir)
        storage = PostgresStorage(url, settings=cfg, **_with_did(did, overrides))
    else:
        raise InvalidValueError(f"unknown storage backend {chosen!r} (memory, postgres, embedded)")
    await storage.connect()
    return storage


def _with_did(did: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides if did is None else {**overrides, "did": did}


async def close_storage(storage: Storage) -> None:
    """Release the storage's resources (its data stays)."""
    await storage.close()
