"""The pandas-shaped frame API: ``chunksize=``, ``columns=``, ``dtype_backend=``, the deprecated
spellings, and the public names of ``bindu_storage.analysis``, on both backends.

The seeded content is ``test_frames``' (5 tasks in 3 contexts, feedback, a webhook).
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from test_frames import LOADERS, T1, T3, copy_timestamps, seed

import bindu_storage.analysis
from bindu_storage import InMemoryStorage, InvalidValueError, PostgresStorage, Storage
from bindu_storage.analysis import frames as F
from bindu_storage.analysis.filters import feedback_query, find_feedback, find_tasks, tasks_query

FRAMES = list(LOADERS)


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    await seed(storage)
    return storage


async def chunks(iterator: AsyncIterator[pd.DataFrame]) -> list[pd.DataFrame]:
    return [chunk async for chunk in iterator]


async def test_chunksize_none_is_a_frame_and_an_int_an_iterator_of_the_same_rows(seeded: Storage) -> None:
    for name, load in LOADERS.items():
        call = load(seeded)
        assert inspect.iscoroutine(call), name
        whole = await call
        chunked = load(seeded, chunksize=2)
        assert isinstance(chunked, AsyncIterator), name
        parts = await chunks(chunked)
        assert all(len(p) <= 2 for p in parts) and len(parts) >= 1, name
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True, obj=name)


async def test_columns_picks_and_orders(seeded: Storage) -> None:
    wanted = ["state", "metadata.agent", "id", "metadata.model.name"]
    picked = await F.tasks_frame(seeded, columns=wanted)
    full = await F.tasks_frame(seeded)
    assert list(picked.columns) == wanted
    pd.testing.assert_frame_equal(picked, full[wanted], check_exact=True)
    parts = await chunks(F.tasks_frame(seeded, columns=wanted, chunksize=2))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), picked, check_exact=True)
    assert list((await F.messages_frame(seeded, columns=["text", "task_id"])).columns) == ["text", "task_id"]
    fb = await F.feedback_frame(seeded, columns=["rating", "state", "metadata.agent"])
    assert list(fb.columns) == ["rating", "state", "metadata.agent"]  # task columns join the task
    assert fb["metadata.agent"].tolist()[:2] == ["planner", "planner"]
    ctx = await F.contexts_frame(seeded, columns=["context_data.topic"])
    assert list(ctx.columns) == ["context_data.topic"] and len(ctx) == 3
    assert list((await F.tasks_frame(seeded, columns=[])).columns) == []


async def test_columns_on_both_backends_agree(pg_storage: PostgresStorage, pg_url: str) -> None:
    memory = InMemoryStorage()
    await seed(memory)
    await seed(pg_storage)
    await copy_timestamps(memory, pg_url)
    for name, columns in [
        ("tasks", ["id", "metadata.usage", "metadata.nothing", "mean_rating"]),
        ("feedback", ["id", "context_id", "feedback.source.ui"]),
        ("contexts", ["task_count", "context_data.db"]),
        ("events", ["to_state", "duration_s"]),
        ("webhooks", ["token", "url"]),
    ]:
        left = await LOADERS[name](memory, columns=columns)
        right = await LOADERS[name](pg_storage, columns=columns)
        assert list(left.columns) == columns == list(right.columns), name
        pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)


async def test_bad_columns_name_the_culprit(storage: Storage) -> None:
    for name, load in LOADERS.items():
        with pytest.raises(InvalidValueError, match=r"'nope'") as info:
            load(storage, columns=["nope"])  # checked at the call
        assert f"{name}_frame" in str(info.value)
    with pytest.raises(InvalidValueError, match=r"metadata\.x"):
        F.messages_frame(storage, columns=["metadata.x"])  # messages flatten no document
    with pytest.raises(InvalidValueError, match="more than once"):
        F.tasks_frame(storage, columns=["id", "id"])
    with pytest.raises(InvalidValueError, match="metadata_columns"):
        F.tasks_frame(storage, columns=["metadata.model"], metadata_columns=["agent"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'colums'"):
        F.tasks_frame(storage, colums=["id"])


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_dtype_backend_on_both_backends(
    pg_storage: PostgresStorage, pg_url: str, backend: str
) -> None:
    memory = InMemoryStorage()
    await seed(memory)
    await seed(pg_storage)
    await copy_timestamps(memory, pg_url)
    for name, load in LOADERS.items():
        default = await load(memory)
        left, right = await load(memory, dtype_backend=backend), await load(pg_storage, dtype_backend=backend)
        assert list(left.dtypes.astype(str)) == list(right.dtypes.astype(str)), name
        pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)
        parts = await chunks(load(pg_storage, dtype_backend=backend, chunksize=2))
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), right, check_exact=True, obj=name)
        for column in default.columns:
            before, after = str(default[column].dtype), right[column].dtype
            kept = ("category", "object") + (("datetime64[us, UTC]",) if backend == "numpy_nullable" else ())
            if before in kept:
                assert str(after) == before, (name, column)
            elif backend == "pyarrow":
                assert isinstance(after, pd.ArrowDtype), (name, column, after)
            else:
                assert isinstance(after, pd.api.extensions.ExtensionDtype), (name, column, after)
    tasks = await F.tasks_frame(pg_storage, dtype_backend="pyarrow")
    assert tasks["history_len"].dtype == pd.ArrowDtype(pa.int64())
    assert tasks["created_at"].dtype == pd.ArrowDtype(pa.timestamp("us", tz="UTC"))
    assert str(tasks["mean_rating"].dtype) == "double[pyarrow]"  # whole numbers stay floats


async def test_bad_dtype_backend(storage: Storage) -> None:
    for load in LOADERS.values():
        with pytest.raises(InvalidValueError, match="dtype_backend"):
            load(storage, dtype_backend="arrow")


async def test_deprecated_iterators_warn_and_give_the_same_chunks(seeded: Storage) -> None:
    for name in ("tasks", "messages", "artifacts", "contexts", "feedback", "events"):
        old: Callable[..., Any] = getattr(F, f"iter_{name}_frame")
        with pytest.warns(DeprecationWarning, match=f"{name}_frame\\(..., chunksize=2\\)"):
            parts = old(seeded, chunksize=2)
        expected = await chunks(LOADERS[name](seeded, chunksize=2))
        got = await chunks(parts)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        with pytest.warns(DeprecationWarning):
            whole = pd.concat(await chunks(old(seeded)), ignore_index=True)  # 50,000 rows a chunk
        pd.testing.assert_frame_equal(whole, await LOADERS[name](seeded), check_exact=True)


async def test_deprecated_argument_names_warn_and_mean_the_same(seeded: Storage) -> None:
    with pytest.warns(DeprecationWarning, match="task_metadata_columns="):
        old = await F.feedback_frame(seeded, task_metadata=["agent"])
    pd.testing.assert_frame_equal(old, await F.feedback_frame(seeded, task_metadata_columns=["agent"]))
    with pytest.warns(DeprecationWarning, match="use metadata="):
        old = await F.feedback_frame(seeded, task_metadata={"agent": "planner"})
    pd.testing.assert_frame_equal(old, await F.feedback_frame(seeded, metadata={"agent": "planner"}))
    with pytest.warns(DeprecationWarning, match="use states="):
        tasks = await find_tasks(seeded, state="failed")
    assert tasks == await find_tasks(seeded, states="failed") and len(tasks) == 1
    with pytest.warns(DeprecationWarning, match="use metadata="):
        entries = await find_feedback(seeded, task_metadata={"agent": "planner"})
    assert entries == await find_feedback(seeded, metadata={"agent": "planner"}) and len(entries) == 2
    with pytest.warns(DeprecationWarning):
        assert tasks_query("s", state="failed") == tasks_query("s", states="failed")
    with pytest.warns(DeprecationWarning):
        assert feedback_query("s", task_metadata={"a": 1}) == feedback_query("s", metadata={"a": 1})
    with warnings.catch_warnings(), pytest.raises(Exception, match="both"):
        warnings.simplefilter("ignore", DeprecationWarning)
        await find_tasks(seeded, state="failed", states="completed")
    with pytest.raises(TypeError, match="unexpected keyword argument 'stat'"):
        await find_tasks(seeded, stat="failed")


async def test_frames_carry_the_task_filters_everywhere(seeded: Storage) -> None:
    hooks = await F.webhooks_frame(seeded, states="input-required", created_after="2000-01-01", limit=5)
    assert hooks["task_id"].tolist() == [str(T3)]
    assert (await F.events_frame(seeded, states=["completed"]))["task_id"].unique().tolist() == [str(T1)]


def test_the_public_api_imports_from_the_analysis_package() -> None:
    from bindu_storage.analysis import (  # noqa: F401
        Diagnostics,
        find_tasks,
        health_report,
        jsonb_contains,
        list_schemas,
        open_storage,
        tasks_frame,
    )

    for name in bindu_storage.analysis.__all__:
        value = getattr(bindu_storage.analysis, name)
        assert value is not None, name
        exec(f"from bindu_storage.analysis import {name}", {})
    assert tasks_frame is F.tasks_frame
    assert jsonb_contains is importlib.import_module("bindu_storage.analysis.jsonb").jsonb_contains
    with pytest.raises(AttributeError):
        bindu_storage.analysis.no_such_name  # noqa: B018


def test_importing_the_analysis_package_loads_no_heavy_library() -> None:
    from test_imports import loaded_by

    assert loaded_by("import bindu_storage.analysis") == []
