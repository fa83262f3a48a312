"""Synchronous access for notebooks and scripts: ``st = open_storage(); df = st.tasks_frame()``.

The async API stays primary (``await create_storage()`` and ``await tasks_frame(storage)`` work
in Jupyter, which runs cells on its own event loop). ``SyncStorage`` offers the same storage and
analysis functions as plain calls, for pandas-style work and for scripts::

    import bindu_storage.analysis.notebook as bn

    st = bn.open_storage()                 # the backend rule of create_storage (STORAGE_BACKEND)
    st.count_tasks()
    df = st.tasks_frame(states=["failed"])
    st.find_tasks(metadata={"model": "gpt-4o"})
    st.close()                             # or let the interpreter's exit close it

Design: every call is submitted with ``asyncio.run_coroutine_threadsafe`` to one long-lived event
loop running in a daemon thread (one per process, started on first use) and the caller waits
for its result. A storage opened through the facade is connected on that loop, so its asyncpg
pool and every connection in it stay bound to one loop for their whole life: repeated calls
reuse the pool, never open a loop per call and never meet "attached to a different loop". The
alternative the design card names, ``nest_asyncio``, re-enters the loop the caller is already
running (Jupyter's) by monkeypatching asyncio; upstream nest_asyncio is archived, and the patch
changes the semantics of every library on that loop (other tasks run in the middle of what
looks like a synchronous call, a re-entrancy asyncio, anyio and asyncpg do not expect) and
breaks as asyncio internals change between Python versions. The background loop touches
nothing of the caller's: it works the same under a running loop (a Jupyter kernel, an async
test), in a plain script and from several threads, and exceptions raised on the loop reach the
caller as the very objects raised. The price is the plain one of any blocking call: the
caller's thread (and loop, if it has one) waits until the call returns, and the storage behind
a ``SyncStorage`` belongs to the background loop, so async code should await a storage of its
own. ``close()`` closes a storage; an ``atexit`` hook closes the ones still open, then stops
the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import importlib
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar
from uuid import UUID

from bindu_storage.errors import InvalidTypeError, InvalidValueError, StorageError
from bindu_storage.settings import StorageSettings
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.factory import create_storage
from bindu_storage.storage.postgres import PostgresStorage
from bindu_storage.types import (
    Artifact,
    ContextRecord,
    ContextSummary,
    FeedbackRecord,
    Message,
    PushNotificationConfig,
    Task,
    TaskEvent,
    TaskRecord,
)

__all__ = ["SyncProxy", "SyncStorage", "background_loop", "open_storage", "run"]

T = TypeVar("T")
log = logging.getLogger("bindu_storage.notebook")

EXIT_TIMEOUT = 10.0
"""Seconds the exit hook waits for each open storage to close."""


# --- the background loop -----------------------------------------------------------------------


class _BackgroundLoop:
    """One event loop in a daemon thread, started on first use, stopped at interpreter exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._exit_hook = False

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._serve, args=(loop, started), name="bindu-storage-loop", daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
                if not self._exit_hook:
                    atexit.register(_at_exit)
                    self._exit_hook = True
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def on_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self.on_loop_thread():
            coro.close()
            raise RuntimeError(
                "a synchronous bindu-storage call was made from a coroutine running on the facade's "
                "own event loop, which would wait for itself; await the async API there instead"
            )
        loop = self.get()
        future, start = _submission(loop, _boxed(coro))
        try:
            # Scheduling happens inside the try: an interrupt that lands right after the loop
            # picked the work up still cancels it (run_coroutine_threadsafe has that window).
            loop.call_soon_threadsafe(start)
            result = future.result(timeout)
        except BaseException as exc:
            if future.done():
                raise
            future.cancel()  # a timeout, or KeyboardInterrupt in a notebook: stop the work too
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"the call did not finish within {timeout} s; cancelled") from None
            raise
        if isinstance(result, _Failure):
            raise result.error  # the very exception object the coroutine raised
        return result

    def stop(self, timeout: float) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    def forget(self) -> None:
        """After ``fork``: the child has no loop thread; start afresh on next use."""
        self._lock = threading.Lock()
        self._loop = self._thread = None


class _Failure:
    """An exception carried back as a value: asyncio would copy a ``TimeoutError`` into a new
    object (losing its traceback) on its way to the caller's thread."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _submission(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> tuple[concurrent.futures.Future[T], Callable[[], None]]:
    """A future for ``coro`` and the callback that starts it on ``loop``.

    Cancelling the future before the callback runs closes the coroutine unstarted; cancelling
    it afterwards cancels the task on the loop.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        if future.cancelled():
            coro.close()
            return
        task = loop.create_task(coro)

        def settle(done: asyncio.Task[T]) -> None:
            if done.cancelled():
                future.cancel()
                return
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled meanwhile
                if (error := done.exception()) is not None:
                    future.set_exception(error)
                else:
                    future.set_result(done.result())

        task.add_done_callback(settle)
        future.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel))

    return future, start


async def _boxed(coro: Coroutine[Any, Any, T]) -> T | _Failure:
    try:
        return await coro
    except Exception as exc:
        return _Failure(exc)


_LOOP = _BackgroundLoop()
_OPEN: dict[int, SyncStorage | SyncProxy] = {}
_OPEN_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    _LOOP.forget()
    _OPEN.clear()  # the parent's pools and connections are the parent's to close


os.register_at_fork(after_in_child=_forget_after_fork)


def _at_exit() -> None:
    with _OPEN_LOCK:
        still_open = list(_OPEN.values())
    for item in still_open:
        try:
            item._close(EXIT_TIMEOUT)
        except Exception as exc:  # never fail the interpreter's exit over it
            log.warning("could not close %r at exit: %s", item, type(exc).__name__)
    _LOOP.stop(EXIT_TIMEOUT)


def background_loop() -> asyncio.AbstractEventLoop:
    """The facade's event loop (started if needed): the loop every sync call runs on."""
    return _LOOP.get()


def run(coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and return its result (or raise its exception).

    Use it for async functions the facade does not wrap, for example
    ``bn.run(some_analysis(st.storage))``; ``timeout`` (seconds) cancels it when exceeded.
    """
    if not inspect.iscoroutine(coro):
        raise InvalidTypeError(f"run() takes a coroutine, got {type(coro).__name__}")
    return _LOOP.run(coro, timeout)


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def _iterate(iterator: AsyncIterator[T]) -> Iterator[T]:
    """A plain iterator over an async one, each step run on the background loop."""
    done = False
    try:
        while True:
            try:
                item = _LOOP.run(_anext(iterator))
            except StopAsyncIteration:
                done = True
                return
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if not done and aclose is not None:
            if _LOOP.on_loop_thread():  # garbage-collected on the loop itself: schedule, don't wait
                asyncio.get_running_loop().create_task(aclose())
            else:
                _LOOP.run(aclose())


def _resolve(result: Any) -> Any:
    if inspect.iscoroutine(result):
        return _LOOP.run(result)
    if inspect.isawaitable(result):
        return _LOOP.run(_await(result))
    if isinstance(result, AsyncIterator):
        return _iterate(result)
    return result


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _register(item: SyncStorage | SyncProxy) -> None:
    with _OPEN_LOCK:
        _OPEN[id(item)] = item


def _unregister(item: SyncStorage | SyncProxy) -> None:
    with _OPEN_LOCK:
        _OPEN.pop(id(item), None)


# --- analysis functions bound by name ----------------------------------------------------------


class _Bound:
    """A ``SyncStorage`` method that runs ``module.name(storage, *args, **kwargs)`` synchronously.

    The function is looked up on access, so analysis modules are imported only when used and
    ``help(st.tasks_frame)`` shows the function's own signature and docstring.
    """

    def __init__(self, module: str, name: str | None = None) -> None:
        self.module = module
        self.name = name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def target(self) -> Callable[..., Any]:
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name != self.module:
                raise
            raise AttributeError(f"{self.name} needs {self.module}, which is not installed") from None
        function = getattr(module, self.name, None)
        if function is None:
            raise AttributeError(f"{self.module} has no {self.name}")
        return function  # type: ignore[no-any-return]

    def __get__(self, obj: SyncStorage | None, owner: type | None = None) -> Callable[..., Any]:
        function = self.target()
        if obj is None:
            return function

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            return _resolve(function(obj._live(), *args, **kwargs))

        signature = inspect.signature(function)
        params = list(signature.parameters.values())[1:]  # the storage is bound
        call.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return call


_FRAMES = "bindu_storage.analysis.frames"
_FILTERS = "bindu_storage.analysis.filters"
_DIAGNOSTICS = "bindu_storage.analysis.diagnostics"


# --- proxies -----------------------------------------------------------------------------------


class SyncProxy:
    """Any async object used synchronously: its coroutine methods run on the background loop.

    ``st.diagnostics()`` returns one over ``Diagnostics``; ``close()`` (or the exit hook)
    closes the wrapped object when it has an async ``close``.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        if callable(getattr(target, "close", None)):
            _register(self)

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
            return _resolve(attribute(*args, **kwargs))

        return call

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | {"target", "close"})

    def __repr__(self) -> str:
        return f"SyncProxy({self._target!r})"

    def _repr_html_(self) -> str | None:
        html = getattr(self._target, "_repr_html_", None)
        return html() if callable(html) else None

    def _close(self, timeout: float | None = None) -> None:
        _unregister(self)
        _resolve_with_timeout(self._target.close(), timeout)

    def close(self) -> None:
        """Close the wrapped object (idempotent when its ``close`` is)."""
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve_with_timeout(result: Any, timeout: float | None) -> Any:
    if inspect.iscoroutine(result):
        return _LOOP.run(result, timeout)
    return _resolve(result)


# --- the storage facade ------------------------------------------------------------------------


def open_storage(
    backend: str | None = None, *, settings: StorageSettings | None = None, **overrides: Any
) -> SyncStorage:
    """Create and connect a storage on the background loop, as ``create_storage`` does.

    ``backend`` (``memory``, ``postgres``, ``embedded``), ``settings`` and ``overrides``
    (``database_url=``, ``schema=``, ``pool_max=``...) mean what they mean there; by default
    the environment decides by the one backend rule (``bindu_storage.settings``):
    ``STORAGE_BACKEND`` / ``STORAGE_TYPE``, and memory when unset, even with ``DATABASE_URL``.
    """
    return SyncStorage(_LOOP.run(create_storage(backend, settings=settings, **overrides)), _connected=True)


class SyncStorage:
    """A ``Storage`` whose methods are plain (blocking) calls, plus the analysis functions.

    Every method of the ``Storage`` contract is here with the same arguments and result; the
    analysis functions (``tasks_frame``, ``find_tasks``, ``health_report``...) are methods with
    the storage already passed. Everything runs on the module's one background loop.
    """

    def __init__(self, storage: Storage, *, _connected: bool = False) -> None:
        """Wrap ``storage``; a ``PostgresStorage`` must not be connected yet (its pool would
        belong to another loop): it connects on the background loop on first use."""
        if not isinstance(storage, Storage):
            raise InvalidTypeError(f"SyncStorage wraps a Storage, got {type(storage).__name__}")
        if not _connected and isinstance(storage, PostgresStorage) and storage.pool is not None:
            raise InvalidValueError(
                "this PostgresStorage is already connected, so its pool belongs to the event loop "
                "that connected it; pass it before connecting, or use open_storage()"
            )
        self._storage = storage
        self._closed = False
        _register(self)

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
        return _LOOP.run(call(self._live()))

    # --- lifecycle ---------------------------------------------------------------------------

    def _close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        _unregister(self)
        _LOOP.run(self._storage.close(), timeout)

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

    # --- tasks -------------------------------------------------------------------------------

    def load_task(self, task_id: IdLike, history_length: int | None = None) -> Task | None:
        """See ``Storage.load_task``."""
        return self._run(lambda s: s.load_task(task_id, history_length))

    def submit_task(self, context_id: IdLike, message: Message, caller_did: str | None = None) -> Task:
        """See ``Storage.submit_task``."""
        return self._run(lambda s: s.submit_task(context_id, message, caller_did))

    def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        """See ``Storage.update_task``."""
        return self._run(lambda s: s.update_task(task_id, state, new_artifacts, new_messages, metadata))

    def append_artifact_chunk(self, task_id: IdLike, artifact: Artifact) -> None:
        """See ``Storage.append_artifact_chunk``."""
        return self._run(lambda s: s.append_artifact_chunk(task_id, artifact))

    def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        """See ``Storage.update_task_state_if``."""
        return self._run(lambda s: s.update_task_state_if(task_id, from_state, to_state))

    def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        """See ``Storage.list_tasks``."""
        return self._run(lambda s: s.list_tasks(length, offset, owner_did))

    def count_tasks(self, status: str | None = None) -> int:
        """See ``Storage.count_tasks``."""
        return self._run(lambda s: s.count_tasks(status))

    def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        """See ``Storage.list_tasks_by_context``."""
        return self._run(lambda s: s.list_tasks_by_context(context_id, length, offset, owner_did))

    def get_task_owner(self, task_id: IdLike) -> str | None:
        """See ``Storage.get_task_owner``."""
        return self._run(lambda s: s.get_task_owner(task_id))

    # --- contexts ----------------------------------------------------------------------------

    def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        """See ``Storage.load_context``."""
        return self._run(lambda s: s.load_context(context_id))

    def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        """See ``Storage.update_context``."""
        return self._run(lambda s: s.update_context(context_id, context))

    def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        """See ``Storage.append_to_contexts``."""
        return self._run(lambda s: s.append_to_contexts(context_id, messages))

    def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[ContextSummary]:
        """See ``Storage.list_contexts``."""
        return self._run(lambda s: s.list_contexts(length, offset, owner_did))

    def get_context_owner(self, context_id: IdLike) -> str | None:
        """See ``Storage.get_context_owner``."""
        return self._run(lambda s: s.get_context_owner(context_id))

    def clear_context(self, context_id: IdLike) -> None:
        """See ``Storage.clear_context``."""
        return self._run(lambda s: s.clear_context(context_id))

    def clear_all(self) -> None:
        """See ``Storage.clear_all`` (destructive)."""
        return self._run(lambda s: s.clear_all())

    # --- feedback ----------------------------------------------------------------------------

    def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        """See ``Storage.store_task_feedback``."""
        return self._run(lambda s: s.store_task_feedback(task_id, feedback_data))

    def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        """See ``Storage.get_task_feedback``."""
        return self._run(lambda s: s.get_task_feedback(task_id))

    # --- webhook configs ---------------------------------------------------------------------

    def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        """See ``Storage.save_webhook_config``."""
        return self._run(lambda s: s.save_webhook_config(task_id, config))

    def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        """See ``Storage.load_webhook_config``."""
        return self._run(lambda s: s.load_webhook_config(task_id))

    def delete_webhook_config(self, task_id: IdLike) -> None:
        """See ``Storage.delete_webhook_config``."""
        return self._run(lambda s: s.delete_webhook_config(task_id))

    def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        """See ``Storage.load_all_webhook_configs``."""
        return self._run(lambda s: s.load_all_webhook_configs())

    # --- analysis read API -------------------------------------------------------------------

    def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        """See ``Storage.task_records``."""
        return self._run(lambda s: s.task_records(limit, offset, since))

    def context_records(self, limit: int | None = None, offset: int = 0) -> list[ContextRecord]:
        """See ``Storage.context_records``."""
        return self._run(lambda s: s.context_records(limit, offset))

    def feedback_records(self, limit: int | None = None, offset: int = 0) -> list[FeedbackRecord]:
        """See ``Storage.feedback_records``."""
        return self._run(lambda s: s.feedback_records(limit, offset))

    def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        """See ``Storage.task_events``."""
        return self._run(lambda s: s.task_events(task_id, limit, offset))

    # --- analysis: frames, filters, diagnostics ----------------------------------------------

    tasks_frame = _Bound(_FRAMES)
    messages_frame = _Bound(_FRAMES)
    artifacts_frame = _Bound(_FRAMES)
    contexts_frame = _Bound(_FRAMES)
    feedback_frame = _Bound(_FRAMES)
    events_frame = _Bound(_FRAMES)
    webhooks_frame = _Bound(_FRAMES)
    iter_tasks_frame = _Bound(_FRAMES)  # the iter_… loaders return plain iterators of frames
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
        (``options``: ``schema=``, ``statement_timeout_ms=``...): ``d.table_sizes()``,
        ``d.health_report()``; close it with ``d.close()`` or a ``with`` block.
        """
        from bindu_storage.analysis.diagnostics import Diagnostics

        diag = Diagnostics(self._live(), **options)  # type: ignore[arg-type]
        _LOOP.run(diag.open())
        return SyncProxy(diag)
