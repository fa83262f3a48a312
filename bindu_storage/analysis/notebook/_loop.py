"""The facade's background event loop: one loop in a daemon thread, and running work on it.

Every synchronous call of the facade is a coroutine submitted to this loop from the caller's
thread, which then waits for its result (see the package docstring for why a thread rather than
``nest_asyncio``). Here: the loop itself (started on first use, forgotten in a forked child,
stopped at interpreter exit after closing what is still open), ``run`` (a coroutine to its
result, with a timeout and interrupts that cancel the work), and ``resolve`` (whatever an
analysis function returned, made synchronous: a coroutine or awaitable to its result, an async
iterator to a plain iterator).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

from bindu_storage.errors import InvalidTypeError

T = TypeVar("T")
log = logging.getLogger("bindu_storage.notebook")

EXIT_TIMEOUT = 10.0
"""Seconds the exit hook waits for each open storage to close."""


class Closable(Protocol):
    """What the exit hook closes: a facade object still open."""

    def _close(self, timeout: float | None = None) -> None: ...


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
_OPEN: dict[int, Closable] = {}
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


def resolve(result: Any) -> Any:
    """``result`` made synchronous: a coroutine or awaitable to its result (run on the loop), an
    async iterator to a plain iterator (each step run on the loop), anything else as it is."""
    if inspect.iscoroutine(result):
        return _LOOP.run(result)
    if inspect.isawaitable(result):
        return _LOOP.run(_await(result))
    if isinstance(result, AsyncIterator):
        return _iterate(result)
    return result


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def register(item: Closable) -> None:
    """Close ``item`` at interpreter exit unless it is unregistered first."""
    with _OPEN_LOCK:
        _OPEN[id(item)] = item


def unregister(item: Closable) -> None:
    """Forget ``item`` (it was closed)."""
    with _OPEN_LOCK:
        _OPEN.pop(id(item), None)


def resolve_with_timeout(result: Any, timeout: float | None) -> Any:
    """:func:`resolve`, with ``timeout`` (seconds) for a coroutine."""
    if inspect.iscoroutine(result):
        return _LOOP.run(result, timeout)
    return resolve(result)


def run_on_loop(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and return its result (the facade's own calls)."""
    return _LOOP.run(coro, timeout)
