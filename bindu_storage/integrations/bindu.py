"""Run an unchanged upstream Bindu agent server on bindu-storage.

::

    from bindu_storage.integrations import bindu as bindu_storage_for_bindu

    bindu_storage_for_bindu.install()      # before the server starts (before bindufy(...))
    bindufy(config, handler)

Upstream's server builds its storage in its lifespan: it copies the agent's storage config into
``bindu.settings.app_settings.storage`` and calls ``bindu.server.storage.factory.create_storage(
did=<the agent's DID>)``, then ``close_storage(storage)`` at shutdown. ``install()`` replaces
those two functions (and every re-export of them already imported under ``bindu.``) with
``create_storage`` / ``close_storage`` below, which build a bindu-storage backend from the
settings the lifespan left (``storage_settings``) and wrap it in ``BinduStorage``, an upstream
``Storage`` that:

* raises ``BinduOwnershipError`` (both ``bindu_storage.OwnershipError`` and upstream's
  ``bindu.server.storage.base.OwnershipError``), so upstream's handlers answer "Context not
  found" to a caller submitting into another caller's context;
* lets the first terminal state win without crashing upstream's worker: ``update_task`` on a
  completed/canceled/failed/rejected task is a logged no-op returning the stored task
  unchanged (bindu-storage itself refuses it with ``TerminalTaskError``), and
  ``update_task_state_if`` answers False where the core would raise;
* answers in upstream's shapes where its handlers depend on them (``list_contexts`` entries,
  ``clear_context`` of an unknown context raising ``ValueError``, webhook configs with UUID
  ``id``s).

The warning logged for an ignored write names the task, its state and the refused state only.

Only this module imports ``bindu``; nothing else in bindu-storage imports it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any
from uuid import UUID

try:
    import bindu.server.storage  # noqa: F401 - the package re-exporting create_storage/close_storage
    import bindu.server.storage.factory as _upstream_factory
    import bindu.settings as _upstream_settings
    from bindu.server.storage.base import OwnershipError as _UpstreamOwnershipError
    from bindu.server.storage.base import Storage as _UpstreamStorage
except ImportError as _missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "bindu_storage.integrations.bindu needs upstream Bindu: pip install 'bindu-storage[bindu]' "
        f"(Python >= 3.12); importing it failed: {_missing}"
    ) from _missing

from bindu_storage import errors
from bindu_storage.settings import StorageSettings
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.factory import create_storage as _create_core_storage
from bindu_storage.types import Artifact, Message, PushNotificationConfig, Task

__all__ = [
    "BinduOwnershipError",
    "BinduStorage",
    "ContextNotFoundError",
    "close_storage",
    "create_storage",
    "install",
    "installed",
    "is_installed",
    "storage_settings",
    "uninstall",
]

logger = logging.getLogger(__name__)


class BinduOwnershipError(errors.OwnershipError, _UpstreamOwnershipError):
    """The context belongs to another caller: caught as ours and as upstream's ``OwnershipError``."""


class ContextNotFoundError(errors.StorageError, ValueError):
    """``clear_context`` of an unknown context (upstream raises ``ValueError`` there)."""

    def __init__(self, context_id: object) -> None:
        super().__init__(f"Context {context_id} not found")
        self.context_id = context_id


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """Re-raise bindu-storage errors as the classes upstream's handlers catch."""
    try:
        yield
    except errors.OwnershipError as err:
        if isinstance(err, _UpstreamOwnershipError):
            raise
        raise BinduOwnershipError(err.context_id, err.caller_did) from err


class BinduStorage(_UpstreamStorage[dict[str, Any]]):
    """An upstream ``bindu.server.storage.base.Storage`` backed by a bindu-storage ``Storage``.

    Every method of upstream's ABC delegates to ``self.storage`` with the adjustments listed in
    the module docstring; other attributes (``task_events``, ``task_records``...) are the
    wrapped storage's own.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def __repr__(self) -> str:
        return f"BinduStorage({self.storage!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "storage":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.storage, name)

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(self, task_id: IdLike, history_length: int | None = None) -> Task | None:
        """The task, with only its last ``history_length`` messages if given, or None."""
        return await self.storage.load_task(task_id, history_length)

    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        """Create or continue a task; ``BinduOwnershipError`` for another caller's context."""
        with _upstream_errors():
            return await self.storage.submit_task(context_id, message, caller_did=caller_did)

    async def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        """Update the task; on a terminal task, a logged no-op returning the stored task."""
        try:
            return await self.storage.update_task(
                task_id, state, new_artifacts=new_artifacts, new_messages=new_messages, metadata=metadata
            )
        except errors.TerminalTaskError as err:
            stored = await self.storage.load_task(task_id)
            if stored is None:  # cleared in between: nothing to return
                raise
            logger.warning(
                "bindu-storage: ignored update_task(%s, %r): the task is already %s, which is final "
                "(the first terminal state wins; nothing was changed)",
                err.task_id, state, err.state,
            )
            return stored

    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        """Compare-and-swap the state; False for an unknown task or a terminal one."""
        try:
            return await self.storage.update_task_state_if(task_id, from_state, to_state)
        except errors.TaskNotFoundError:
            return False
        except errors.TerminalTaskError as err:
            logger.info(
                "bindu-storage: refused to move task %s from %s to %r (terminal)",
                err.task_id, err.state, to_state,
            )
            return False

    async def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        """Tasks newest first, of ``owner_did`` only if given."""
        return await self.storage.list_tasks(length, offset, owner_did=owner_did)

    async def count_tasks(self, status: str | None = None) -> int:
        """Number of tasks, or of tasks in state ``status``."""
        return await self.storage.count_tasks(status)

    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        """The context's tasks oldest first."""
        return await self.storage.list_tasks_by_context(context_id, length, offset, owner_did=owner_did)

    async def get_task_owner(self, task_id: IdLike) -> str | None:
        """The task's ``caller_did``, or None."""
        return await self.storage.get_task_owner(task_id)

    # --- contexts ----------------------------------------------------------------------------

    async def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        """The context's data (``{}`` if never set), or None if unknown."""
        return await self.storage.load_context(context_id)

    async def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        """Append messages to the context's history."""
        with _upstream_errors():
            await self.storage.append_to_contexts(context_id, messages)

    async def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        """Replace the context's data."""
        with _upstream_errors():
            await self.storage.update_context(context_id, context)

    async def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[dict[str, Any]]:
        """Contexts newest first in upstream's shape: ``context_id``, ``task_count``, ``task_ids``.

        The context's data is left out, as upstream does: ``contexts/list`` answers with these
        entries, and agent-internal context data is not the caller's to read.
        """
        return [
            {"context_id": c["context_id"], "task_count": c["task_count"], "task_ids": c["task_ids"]}
            for c in await self.storage.list_contexts(length, offset, owner_did=owner_did)
        ]

    async def get_context_owner(self, context_id: IdLike) -> str | None:
        """The context's ``caller_did``, or None."""
        return await self.storage.get_context_owner(context_id)

    async def clear_context(self, context_id: IdLike) -> None:
        """Remove the context and its tasks; ``ContextNotFoundError`` (a ValueError) if unknown."""
        if await self.storage.load_context(context_id) is None:
            raise ContextNotFoundError(context_id)
        await self.storage.clear_context(context_id)

    async def clear_all(self) -> None:
        """Remove everything (destructive)."""
        await self.storage.clear_all()

    # --- feedback ----------------------------------------------------------------------------

    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        """Store one feedback entry for the task."""
        await self.storage.store_task_feedback(task_id, feedback_data)

    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        """The task's feedback entries oldest first, or None."""
        return await self.storage.get_task_feedback(task_id)

    # --- webhook configs ---------------------------------------------------------------------

    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        """Store (replace) the task's push-notification config."""
        await self.storage.save_webhook_config(task_id, config)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        """The task's push-notification config (its ``id`` a UUID, as upstream types it), or None."""
        config = await self.storage.load_webhook_config(task_id)
        return None if config is None else _with_uuid_id(config)

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        """Remove the task's push-notification config (no-op if none)."""
        await self.storage.delete_webhook_config(task_id)

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        """Every stored push-notification config by task id (each ``id`` a UUID)."""
        return {tid: _with_uuid_id(c) for tid, c in (await self.storage.load_all_webhook_configs()).items()}

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect the wrapped storage (``create_storage`` already did)."""
        await self.storage.connect()

    async def close(self) -> None:
        """Close the wrapped storage (its data stays); it refuses calls until ``connect()``."""
        await self.storage.close()

    async def disconnect(self) -> None:
        """Alias of ``close`` (upstream's name)."""
        await self.close()


def _with_uuid_id(config: PushNotificationConfig) -> PushNotificationConfig:
    """The config with its ``id`` back as a UUID: storage keeps JSON (a string), and upstream's
    ``tasks/pushNotificationConfig/delete`` compares it with the request's UUID."""
    ident = config.get("id")
    if isinstance(ident, str):
        with suppress(ValueError):  # not a UUID: left as stored
            config["id"] = UUID(ident)
    return config


# --- the factory upstream's lifespan calls ---------------------------------------------------

_FROM_UPSTREAM = {
    "STORAGE__POSTGRES_POOL_MIN": "postgres_pool_min",
    "STORAGE__POSTGRES_POOL_MAX": "postgres_pool_max",
    "STORAGE__POSTGRES_TIMEOUT": "postgres_timeout",
    "STORAGE__POSTGRES_COMMAND_TIMEOUT": "postgres_command_timeout",
    "STORAGE__POSTGRES_MAX_RETRIES": "postgres_max_retries",
    "STORAGE__POSTGRES_RETRY_DELAY": "postgres_retry_delay",
}
"""bindu-storage's variable ← the attribute of upstream's ``app_settings.storage`` it takes."""


def storage_settings(upstream: Any | None = None, did: str | None = None) -> StorageSettings:
    """bindu-storage settings for upstream's storage settings (``app_settings.storage`` by default).

    Upstream's values win: ``backend`` (memory or postgres), ``postgres_url``, pool sizes,
    timeouts, retries. bindu-storage's own environment settings fill in the rest. Migrations
    run when upstream's ``run_migrations_on_startup`` is on, and always for a PostgreSQL agent
    with a DID: upstream creates the DID schema's tables on connect, so an agent must start on
    an empty database either way.
    """
    up = _upstream_settings.app_settings.storage if upstream is None else upstream
    backend = str(getattr(up, "backend", "memory")).strip().lower()
    values: dict[str, Any] = {"STORAGE_BACKEND": backend}
    url = getattr(up, "postgres_url", None)
    if url:
        values["DATABASE_URL"] = url
    for variable, attribute in _FROM_UPSTREAM.items():
        value = getattr(up, attribute, None)
        if value is not None:
            values[variable] = value
    values["STORAGE__RUN_MIGRATIONS_ON_STARTUP"] = bool(
        getattr(up, "run_migrations_on_startup", False)
    ) or (did is not None and backend != "memory")
    return StorageSettings(**values)


async def create_storage(did: str | None = None) -> BinduStorage:
    """Upstream's ``create_storage(did=...)``, creating a connected bindu-storage backend.

    The backend and its options come from ``storage_settings()``; ``did`` selects the schema
    upstream would use for the agent (``did_…``) on PostgreSQL and is ignored in memory.
    """
    settings = storage_settings(did=did)
    storage = await _create_core_storage(settings.backend, settings=settings, did=did)
    logger.info("bindu-storage: %r serves upstream Bindu", storage)
    return BinduStorage(storage)


async def close_storage(storage: Any) -> None:
    """Upstream's ``close_storage``: release the storage's resources (its data stays)."""
    await storage.close()


# --- install / uninstall ---------------------------------------------------------------------

_REPLACEMENTS: dict[str, Any] = {"create_storage": create_storage, "close_storage": close_storage}
_ORIGINALS: dict[str, Any] = {
    "create_storage": _upstream_factory.create_storage,
    "close_storage": _upstream_factory.close_storage,
}
_patched: list[tuple[ModuleType, str, Any]] = []


def install() -> None:
    """Make upstream Bindu's storage factory create bindu-storage backends (idempotent).

    Replaces ``create_storage`` and ``close_storage`` in ``bindu.server.storage.factory`` and
    in every already-imported ``bindu.*`` module holding upstream's originals (such as the
    ``bindu.server.storage`` package). Call it before the server's lifespan starts.
    """
    if _patched:
        return
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", None)
        if not isinstance(module, ModuleType) or not isinstance(name, str):
            continue
        if name != "bindu" and not name.startswith("bindu."):
            continue
        for attribute, original in _ORIGINALS.items():
            if module.__dict__.get(attribute) is original:
                _patched.append((module, attribute, original))
                setattr(module, attribute, _REPLACEMENTS[attribute])
    logger.debug("bindu-storage: installed into %d upstream module attribute(s)", len(_patched))


def uninstall() -> None:
    """Restore upstream's own ``create_storage``/``close_storage`` wherever ``install`` replaced them."""
    while _patched:
        module, attribute, original = _patched.pop()
        if module.__dict__.get(attribute) is _REPLACEMENTS[attribute]:
            setattr(module, attribute, original)


def is_installed() -> bool:
    """Whether ``install()`` is in effect."""
    return bool(_patched)


@contextmanager
def installed() -> Iterator[None]:
    """``install()`` for the duration of a ``with`` block (left installed if it already was)."""
    already = is_installed()
    install()
    try:
        yield
    finally:
        if not already:
            uninstall()
