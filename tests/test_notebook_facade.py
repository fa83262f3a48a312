"""The sync facade: one background loop, one pool, every Storage method, analysis as methods."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from conftest import postgres_storage, truncate

import bindu_storage.analysis.notebook as bn
from bindu_storage import (
    InMemoryStorage,
    InvalidTypeError,
    InvalidValueError,
    PostgresStorage,
    Storage,
    StorageError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.analysis import filters, frames

REPO = Path(__file__).resolve().parents[1]


def _message(task_id: uuid.UUID, context_id: uuid.UUID, text: str = "hi") -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()), "context_id": str(context_id), "task_id": str(task_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


def _open(backend: str, pg_url: str) -> bn.SyncStorage:
    if backend == "memory":
        return bn.open_storage("memory")
    asyncio.run(truncate(pg_url))
    return bn.open_storage("postgres", database_url=pg_url, run_migrations=False, pool_min=1, pool_max=4)


@pytest.fixture(params=["memory", "postgres"])
def st(request: pytest.FixtureRequest, pg_url: str) -> Iterator[bn.SyncStorage]:
    """An empty storage behind the facade, per backend; closed afterwards."""
    storage = _open(request.param, pg_url)
    try:
        yield storage
    finally:
        storage.close()


def _seed(st: bn.SyncStorage, n: int = 3) -> list[uuid.UUID]:
    ctx = uuid.uuid4()
    ids = []
    for i in range(n):
        tid = uuid.uuid4()
        st.submit_task(ctx, _message(tid, ctx, f"task {i}"))  # type: ignore[arg-type]
        st.update_task(tid, "completed" if i % 2 == 0 else "working", metadata={"i": i, "even": i % 2 == 0})
        st.store_task_feedback(tid, {"rating": i + 1})
        ids.append(tid)
    return ids


# --- the mirror of the contract -----------------------------------------------------------------

def _contract_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(Storage, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def test_every_storage_method_has_a_sync_twin_with_the_same_parameters() -> None:
    methods = _contract_methods()
    assert {"load_task", "submit_task", "task_records", "close", "connect", "disconnect"} <= set(methods)
    for name, signature in methods.items():
        if name == "disconnect":
            continue  # upstream's alias of close; the facade has close()
        twin = getattr(bn.SyncStorage, name)
        assert not inspect.iscoroutinefunction(twin), name
        ours = inspect.signature(twin)
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in signature.parameters.values()
        ], name


def test_analysis_functions_are_methods_with_the_storage_bound(pg_url: str) -> None:
    st = bn.open_storage("memory")
    try:
        for name, module in (("tasks_frame", frames), ("iter_events_frame", frames),
                             ("find_tasks", filters), ("list_schemas", frames)):
            method = getattr(st, name)
            original = inspect.signature(getattr(module, name))
            assert list(inspect.signature(method).parameters) == list(original.parameters)[1:]
            assert method.__doc__ == getattr(module, name).__doc__
    finally:
        st.close()


class _Probe(bn.SyncStorage):
    """A facade with analysis functions of a module of this test, bound the way the real ones are."""

    chunks = bn.proxies._Bound(__name__, "chunks_of")
    total = bn.proxies._Bound(__name__, "total_of")
    plain = bn.proxies._Bound(__name__, "plain_of")


def chunks_of(storage: Storage, n: int, *, chunksize: int) -> Any:
    """A plain def returning an async iterator, as ``tasks_frame(..., chunksize=n)`` does."""

    async def chunks() -> Any:
        for start in range(0, n, chunksize):
            await asyncio.sleep(0)
            yield list(range(start, min(start + chunksize, n)))

    return chunks()


class _Later:
    """An awaitable that is not a coroutine."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        return self.value


def total_of(storage: Storage, n: int) -> _Later:
    """A plain def returning an awaitable, as ``tasks_frame(...)`` may."""
    return _Later(n * 2)


def plain_of(storage: Storage) -> str:
    return type(storage).__name__


def test_bound_functions_resolve_what_they_return() -> None:
    with _Probe(InMemoryStorage()) as st:
        chunks = st.chunks(5, chunksize=2)
        assert not inspect.isasyncgen(chunks) and iter(chunks) is chunks  # a plain iterator
        assert list(chunks) == [[0, 1], [2, 3], [4]]
        assert st.total(21) == 42
        assert st.plain() == "InMemoryStorage"
        assert list(inspect.signature(st.chunks).parameters) == ["n", "chunksize"]
        assert st.chunks.__doc__ == chunks_of.__doc__
        half = st.chunks(10, chunksize=3)
        assert next(half) == [0, 1, 2]
        half.close()  # an iterator left early closes its async iterator on the loop


def test_storage_twins_run_the_backends_own_method() -> None:
    assert bn.SyncStorage.load_task.__doc__ == Storage.load_task.__doc__
    assert bn.SyncStorage.load_task.__name__ == "load_task"
    with bn.SyncStorage(InMemoryStorage()) as st:
        assert st.count_tasks() == 0 and st.list_tasks() == []


# --- behaviour on both backends -----------------------------------------------------------------

def test_round_trip(st: bn.SyncStorage) -> None:
    ids = _seed(st)
    assert st.count_tasks() == 3
    assert st.count_tasks("completed") == 2
    assert [t["id"] for t in st.list_tasks()] == ids[::-1]
    task = st.load_task(ids[1])
    assert task is not None and task["metadata"] == {"i": 1, "even": False}
    assert st.get_task_feedback(ids[2]) == [{"rating": 3}]
    assert [e["to_state"] for e in st.task_events(ids[0])] == ["submitted", "completed"]
    assert st.update_task_state_if(ids[1], "working", "completed") is True
    ctx = task["context_id"]
    st.update_context(ctx, {"topic": "x"})
    assert st.load_context(ctx) == {"topic": "x"}
    assert st.list_contexts()[0]["task_count"] == 3
    st.save_webhook_config(ids[0], {"url": "https://example.invalid/hook", "token": "s3cret"})
    hook = {"url": "https://example.invalid/hook", "token": "s3cret"}
    assert st.load_all_webhook_configs() == {ids[0]: hook}
    assert len(st.task_records()) == len(st.feedback_records()) == 3
    st.clear_all()
    assert st.count_tasks() == 0


def test_analysis_methods_match_the_async_functions(st: bn.SyncStorage) -> None:
    ids = _seed(st)
    frame = st.tasks_frame(states=["completed"])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["id"]) == [str(ids[0]), str(ids[2])]
    pd.testing.assert_frame_equal(frame, st.run(frames.tasks_frame(st.storage, states=["completed"])))
    chunks = st.tasks_frame(chunksize=2)  # a plain iterator of frames, as pandas.read_sql gives
    assert not isinstance(chunks, pd.DataFrame)
    chunks = list(chunks)
    assert [len(c) for c in chunks] == [2, 1]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), st.tasks_frame())
    with pytest.warns(DeprecationWarning, match=r"use tasks_frame\(\.\.\., chunksize=2\)"):
        old = list(st.iter_tasks_frame(chunksize=2))  # the deprecated alias, for one release
    pd.testing.assert_frame_equal(pd.concat(old, ignore_index=True), st.tasks_frame())
    assert [t["id"] for t in st.find_tasks(metadata={"even": True})] == [ids[2], ids[0]]
    assert list(st.find_feedback(feedback={"rating": 2}, as_frame=True)["task_id"]) == [str(ids[1])]
    assert len(st.messages_frame()) == 3
    assert list(st.feedback_frame()["rating"]) == [1, 2, 3]
    assert len(st.events_frame()) == 6
    assert len(st.contexts_frame()) == 1
    assert st.artifacts_frame().empty


def test_exceptions_keep_their_type(st: bn.SyncStorage) -> None:
    ids = _seed(st, 1)
    with pytest.raises(InvalidValueError, match="task_id"):
        st.load_task("not-a-uuid")
    with pytest.raises(TaskNotFoundError):
        st.update_task(uuid.uuid4(), "working")
    with pytest.raises(TerminalTaskError):
        st.update_task(ids[0], "working")
    with pytest.raises(InvalidTypeError, match="metadata"):
        st.find_tasks(metadata=[1])


def test_calls_from_several_threads_share_the_loop(st: bn.SyncStorage) -> None:
    ctx = uuid.uuid4()

    def submit(_: int) -> int:
        tid = uuid.uuid4()
        st.submit_task(ctx, _message(tid, ctx))  # type: ignore[arg-type]
        return threading.get_ident()

    with ThreadPoolExecutor(4) as pool:
        callers = set(pool.map(submit, range(24)))
    assert len(callers) > 1
    assert st.count_tasks() == 24


async def test_works_inside_a_running_event_loop(st: bn.SyncStorage) -> None:
    running = asyncio.get_running_loop()
    ids = _seed(st, 2)  # blocking calls from a coroutine on this loop
    assert st.count_tasks() == 2
    assert st.run(_loop()) is bn.background_loop() is not running
    mine = InMemoryStorage()  # the async API on the caller's own loop, side by side
    await mine.submit_task(ids[0], _message(ids[0], ids[0]))  # type: ignore[arg-type]
    assert await mine.count_tasks() == 1
    assert [t["id"] for t in st.list_tasks()] == ids[::-1]


async def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_a_sync_call_from_the_facade_loop_itself_is_refused(st: bn.SyncStorage) -> None:
    async def nested() -> int:
        return st.count_tasks()

    with pytest.raises(RuntimeError, match="await the async API"):
        st.run(nested())
    assert st.count_tasks() == 0  # the loop is still serving


def test_close_is_idempotent_and_final(st: bn.SyncStorage) -> None:
    _seed(st, 1)
    st.close()
    st.close()
    assert st.closed
    with pytest.raises(StorageError, match="closed"):
        st.count_tasks()
    with pytest.raises(StorageError, match="closed"):
        st.tasks_frame()
    if isinstance(st.storage, PostgresStorage):
        assert st.storage.pool is None


# --- PostgreSQL specifics -----------------------------------------------------------------------

def test_repeated_calls_reuse_one_pool_on_one_loop(pg_url: str) -> None:
    st = _open("postgres", pg_url)
    try:
        assert isinstance(st.storage, PostgresStorage)
        pool = st.storage.pool
        assert pool is not None
        loops = set()
        for _ in range(3):
            _seed(st, 2)
            st.tasks_frame()
            st.find_tasks(metadata={"even": True})
            loops.add(id(st.run(_loop())))
            assert st.storage.pool is pool
        assert loops == {id(bn.background_loop())}
        assert st.count_tasks() == 6
        other = bn.open_storage("postgres", database_url=pg_url, run_migrations=False, pool_max=2)
        try:  # a second storage: its own pool, on the same loop
            assert other.storage.pool is not pool  # type: ignore[attr-defined]
            assert other.count_tasks() == 6
        finally:
            other.close()
    finally:
        st.close()


def test_an_unconnected_storage_connects_on_the_facade_loop(pg_url: str) -> None:
    asyncio.run(truncate(pg_url))
    with bn.SyncStorage(postgres_storage(pg_url)) as st:
        assert st.count_tasks() == 0
        assert st.storage.pool is not None  # type: ignore[attr-defined]
    assert st.storage.pool is None  # type: ignore[attr-defined]


async def test_a_storage_connected_elsewhere_is_refused(pg_storage: PostgresStorage) -> None:
    with pytest.raises(InvalidValueError, match="already connected"):
        bn.SyncStorage(pg_storage)
    with pytest.raises(InvalidTypeError):
        bn.SyncStorage("postgresql://x")  # type: ignore[arg-type]


def test_repr_hides_the_password(pg_url: str) -> None:
    password = urlsplit(pg_url).password
    assert password
    st = _open("postgres", pg_url)
    try:
        assert password not in repr(st)
        assert "SyncStorage(PostgresStorage(" in repr(st)
    finally:
        st.close()


def test_diagnostics_through_the_facade(pg_url: str) -> None:
    st = _open("postgres", pg_url)
    try:
        _seed(st, 2)
        report = st.health_report()
        assert report.findings
        assert urlsplit(pg_url).password not in str(report)
        with st.diagnostics() as diag:
            sizes = diag.table_sizes()
            assert isinstance(sizes, pd.DataFrame) and not sizes.empty
            assert diag.is_standby is False
        assert "closed" in repr(diag)
    finally:
        st.close()


# --- the loop helpers ---------------------------------------------------------------------------

def test_run_timeout_cancels_and_own_timeouts_pass_through() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="cancelled"):
        bn.run(slow(), timeout=0.05)
    assert cancelled.wait(5)

    mine = TimeoutError("the coroutine's own")

    async def raises() -> None:
        raise mine

    with pytest.raises(TimeoutError) as info:
        bn.run(raises(), timeout=5)
    assert info.value is mine
    with pytest.raises(InvalidTypeError):
        bn.run(42)  # type: ignore[arg-type]


def test_an_interrupt_cancels_the_work_on_the_loop() -> None:
    """Interrupting a notebook cell (SIGINT) while it waits stops the coroutine too."""
    started, cancelled = threading.Event(), threading.Event()

    async def long_read() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt() -> None:
        started.wait(5)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        bn.run(long_read())
    assert cancelled.wait(5)
    assert bn.run(_loop()) is bn.background_loop()  # still serving


# --- a plain script -----------------------------------------------------------------------------

SCRIPT = """
import atexit, json, uuid

state = {}
atexit.register(lambda: print("AT EXIT closed:", state["st"].closed,
                              getattr(state["st"].storage, "pool", None) is None, flush=True))

import bindu_storage.analysis.notebook as bn

st = bn.open_storage()  # STORAGE_BACKEND and DATABASE_URL from the environment
state["st"] = st
pool = getattr(st.storage, "pool", None)
ctx = uuid.uuid4()
for i in range(3):
    tid = uuid.uuid4()
    st.submit_task(ctx, {"message_id": str(uuid.uuid4()), "context_id": str(ctx), "task_id": str(tid),
                         "kind": "message", "role": "user", "parts": [{"kind": "text", "text": "x"}]})
    st.update_task(tid, "completed", metadata={"n": i})
frame = st.tasks_frame()
print(json.dumps({
    "backend": type(st.storage).__name__,
    "count": st.count_tasks(),
    "found": [t["metadata"]["n"] for t in st.find_tasks(metadata={"n": 1})],
    "frame_rows": len(frame),
    "same_pool": getattr(st.storage, "pool", None) is pool,
}))
# no close(): the exit hook closes the storage
"""


def test_plain_script(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(truncate(pg_url))
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {
        **os.environ, "STORAGE_BACKEND": "postgres", "DATABASE_URL": pg_url,
        "STORAGE__RUN_MIGRATIONS_ON_STARTUP": "false", "PYTHONPATH": str(REPO),
    }
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, at_exit = done.stdout.strip().splitlines()
    assert json.loads(first) == {
        "backend": "PostgresStorage", "count": 3, "found": [1], "frame_rows": 3, "same_pool": True,
    }
    assert at_exit == "AT EXIT closed: True True"
    assert done.stderr == ""

    env.pop("STORAGE_BACKEND"), env.pop("DATABASE_URL")
    memory = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert memory.returncode == 0, memory.stderr
    first, at_exit = memory.stdout.strip().splitlines()
    assert json.loads(first)["backend"] == "InMemoryStorage"
    assert at_exit == "AT EXIT closed: True True"
    assert memory.stderr == ""
