"""The synchronous proxies: ``SyncStorage`` (a storage plus the analysis functions), ``SyncProxy``
(any async object), and ``open_storage``.

Every ``Storage`` method has a blocking twin on ``SyncStorage``, declared in one line with
:func:`_blocking`: it takes the very parameters of the contract's method (its signature and
docstring are the contract's, for ``help()`` and a notebook's tooltips, and a type checker sees
them through ``ParamSpec``) and returns its result. The analysis functions (``tasks_frame``,
``find_tasks``, ``health_report``...) are bound by name with :class:`_Bound`, imported on first
use, with the storage already passed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from bindu_storage.analysis.notebook._loop import (
    register,
    resolve,
    resolve_with_timeout,
    run,
    run_on_loop,
    unregister,
)
from bindu_storage.errors import InvalidTypeError, InvalidValueError, StorageError
from bindu_storage.settings import StorageSettings
from bindu_storage.storage.base import Storage
from bindu_storage.storage.factory import create_storage
from bindu_storage.storage.read import sql_readable

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_FRAMES = "bindu_storage.analysis.frames"
_FILTERS = "bindu_storage.analysis.filters"
_DIAGNOSTICS = "bindu_storage.analysis.diagnostics"


class SyncProxy:
    """Any async object used synchronously: its coroutine methods run on the background loop.

    ``st.diagnostics()`` returns one over ``Diagnostics``; ``close()`` (or the exit hook)
    closes the wrapped object when it has an async ``close``.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        if callable(getattr(target, "close", None)):
            register(self)

    @property
    def target(self) -> Any:
        """The wrapped async object (its coroutines belong to the background loop)."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_target":
            raise AttributeError(name)
        attribute = getattr(self._target, name)
        if not callable(attribute) or inspect.isclass(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return resolve(attribute(*args, **kwargs))

        return call

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | {"target", "close"})

    def __repr__(self) -> str:
        return f"SyncProxy({self._target!r})"

    def _repr_html_(self) -> str | None:
        html = getattr(self._target, "_repr_html_", None)
        return html() if callable(html) else None

    def _close(self, timeout: float | None = None) -> None:
        unregister(self)
        resolve_with_timeout(self._target.close(), timeout)

    def close(self) -> None:
        """Close the wrapped object (idempotent when its ``close`` is)."""
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bound:
    """A ``SyncStorage`` method that runs ``module.name(storage, *args, **kwargs)`` synchronously.

    The function is looked up on access, so analysis modules are imported only when used and
    ``help(st.tasks_frame)`` shows the function's own signature and docstring. Whatever it
    returns is made synchronous by ``resolve``: a coroutine or any awaitable gives its result, an
    async iterator (``chunksize=``) a plain iterator of its items.
    """

    def __init__(self, module: str, name: str | None = None) -> None:
        self.module = module
        self.name = name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def target(self) -> Callable[..., Any]:
        """The analysis function, imported now."""
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name != self.module:
                raise
            raise AttributeError(f"{self.name} needs {self.module}, which is not installed") from None
        function = getattr(module, self.name, None)
        if function is None:
            raise AttributeError(f"{self.module} has no {self.name}")
        return function

    def __get__(self, obj: SyncStorage | None, owner: type | None = None) -> Callable[..., Any]:
        function = self.target()
        if obj is None:
            return function

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            return resolve(function(obj._live(), *args, **kwargs))

        signature = inspect.signature(function)
        params = list(signature.parameters.values())[1:]  # the storage is bound
        call.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # read by inspect
        return call


def _blocking(
    method: Callable[Concatenate[Storage, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncStorage, P], R]:
    """The blocking twin of the ``Storage`` method ``method``: same parameters, same result.

    It calls the wrapped storage's own method of that name (so a backend's override runs) on the
    background loop. ``functools.wraps`` gives it the contract's signature and docstring.
    """
    name = method.__name__

    @functools.wraps(method)
    def twin(self: SyncStorage, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(lambda storage: getattr(storage, name)(*args, **kwargs))

    return twin


def open_storage(
    backend: str | None = None, *, settings: StorageSettings | None = None, **overrides: Any
) -> SyncStorage:
    """Create and connect a storage on the background loop, as ``create_storage`` does.

    ``backend`` (``memory``, ``postgres``, ``embedded``), ``settings`` and ``overrides``
    (``database_url=``, ``schema=``, ``pool_max=``...) mean what they mean there; by default
    the environment decides by the one backend rule (``bindu_storage.settings``):
    ``STORAGE_BACKEND`` / ``STORAGE_TYPE``, and memory when unset, even with ``DATABASE_URL``.
    """
    return SyncStorage(run_on_loop(create_storage(backend, settings=settings, **overrides)), _connected=True)


class SyncStorage:
    """A ``Storage`` whose methods are plain (blocking) calls, plus the analysis functions.

    Every method of the ``Storage`` contract is here with the same arguments and result; the
    analysis functions (``tasks_frame``, ``find_tasks``, ``health_report``...) are methods with
    the storage already passed. Everything runs on the module's one background loop.
    """

    def __init__(self, storage: Storage, *, _connected: bool = False) -> None:
        """Wrap ``storage``; a storage with an open pool must not be wrapped (its pool would
        belong to another loop): it connects on the background loop on first use."""
        if not isinstance(storage, Storage):
            raise InvalidTypeError(f"SyncStorage wraps a Storage, got {type(storage).__name__}")
        readable = sql_readable(storage)
        if not _connected and readable is not None and readable.pool_stats() is not None:
            raise InvalidValueError(
                f"this {type(storage).__name__} is already connected, so its pool belongs to the event "
                "loop that connected it; pass it before connecting, or use open_storage()"
            )
        self._storage = storage
        self._closed = False
        register(self)

    @property
    def storage(self) -> Storage:
        """The wrapped async storage. Its pool lives on the background loop: await its methods
        only through ``run(...)``; in async code prefer a storage of your own."""
        return self._storage

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"SyncStorage({self._storage!r}{', closed' if self._closed else ''})"

    def _live(self) -> Storage:
        if self._closed:
            raise StorageError("this SyncStorage is closed; open another with open_storage()")
        return self._storage

    def _run(self, call: Callable[[Storage], Coroutine[Any, Any, T]]) -> T:
        return run_on_loop(call(self._live()))

    # --- lifecycle ---------------------------------------------------------------------------

    def _close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        unregister(self)
        run_on_loop(self._storage.close(), timeout)

    def close(self) -> None:
        """Close the storage (its pool); the data stays. Idempotent."""
        self._close()

    def connect(self) -> None:
        """Acquire the storage's resources now rather than on first use."""
        self._run(lambda s: s.connect())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run a coroutine (typically over ``self.storage``) on the background loop."""
        self._live()
        return run(coro, timeout=timeout)

    # --- the Storage contract, blocking ------------------------------------------------------

    load_task = _blocking(Storage.load_task)
    submit_task = _blocking(Storage.submit_task)
    update_task = _blocking(Storage.update_task)
    append_artifact_chunk = _blocking(Storage.append_artifact_chunk)
    update_task_state_if = _blocking(Storage.update_task_state_if)
    list_tasks = _blocking(Storage.list_tasks)
    count_tasks = _blocking(Storage.count_tasks)
    list_tasks_by_context = _blocking(Storage.list_tasks_by_context)
    get_task_owner = _blocking(Storage.get_task_owner)
    list_tasks_page = _blocking(Storage.list_tasks_page)
    load_context = _blocking(Storage.load_context)
    update_context = _blocking(Storage.update_context)
    append_to_contexts = _blocking(Storage.append_to_contexts)
    list_contexts = _blocking(Storage.list_contexts)
    get_context_owner = _blocking(Storage.get_context_owner)
    clear_context = _blocking(Storage.clear_context)
    clear_all = _blocking(Storage.clear_all)
    store_task_feedback = _blocking(Storage.store_task_feedback)
    get_task_feedback = _blocking(Storage.get_task_feedback)
    save_webhook_config = _blocking(Storage.save_webhook_config)
    load_webhook_config = _blocking(Storage.load_webhook_config)
    delete_webhook_config = _blocking(Storage.delete_webhook_config)
    load_all_webhook_configs = _blocking(Storage.load_all_webhook_configs)
    task_records = _blocking(Storage.task_records)
    context_records = _blocking(Storage.context_records)
    feedback_records = _blocking(Storage.feedback_records)
    task_events = _blocking(Storage.task_events)
    changes = _blocking(Storage.changes)
    set_push_config = _blocking(Storage.set_push_config)
    get_push_config = _blocking(Storage.get_push_config)
    list_push_configs = _blocking(Storage.list_push_configs)
    delete_push_config = _blocking(Storage.delete_push_config)
    push_config_records = _blocking(Storage.push_config_records)
    reencrypt_push_configs = _blocking(Storage.reencrypt_push_configs)
    delete_task = _blocking(Storage.delete_task)
    purge = _blocking(Storage.purge)

    # --- analysis: frames, filters, diagnostics ----------------------------------------------

    tasks_frame = _Bound(_FRAMES)
    messages_frame = _Bound(_FRAMES)
    artifacts_frame = _Bound(_FRAMES)
    contexts_frame = _Bound(_FRAMES)
    feedback_frame = _Bound(_FRAMES)
    events_frame = _Bound(_FRAMES)
    webhooks_frame = _Bound(_FRAMES)
    iter_tasks_frame = _Bound(_FRAMES)  # the deprecated iter_… names: plain iterators of frames
    iter_messages_frame = _Bound(_FRAMES)
    iter_artifacts_frame = _Bound(_FRAMES)
    iter_contexts_frame = _Bound(_FRAMES)
    iter_feedback_frame = _Bound(_FRAMES)
    iter_events_frame = _Bound(_FRAMES)
    list_schemas = _Bound(_FRAMES)
    find_tasks = _Bound(_FILTERS)
    find_feedback = _Bound(_FILTERS)
    find_contexts = _Bound(_FILTERS)
    health_report = _Bound(_DIAGNOSTICS)

    def diagnostics(self, **options: Any) -> SyncProxy:
        """Read-only diagnostics of this (PostgreSQL) storage, used synchronously.

        Returns a ``SyncProxy`` over an open ``bindu_storage.analysis.diagnostics.Diagnostics``
        (``options``: ``schema=``, ``statement_timeout_ms=``, ``dtype_backend=``...):
        ``d.table_sizes()``, ``d.health_report()``; close it with ``d.close()`` or a ``with`` block.
        """
        from bindu_storage.analysis.diagnostics import Diagnostics

        storage = self._live()
        readable = sql_readable(storage)
        if readable is None:
            raise InvalidTypeError(
                f"diagnostics need a storage readable with SQL (PostgreSQL), not a {type(storage).__name__}"
            )
        diag = Diagnostics(readable, **options)
        run_on_loop(diag.open())
        return SyncProxy(diag)
