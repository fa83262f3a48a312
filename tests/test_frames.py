"""DataFrames of tasks, messages, artifacts, contexts, feedback and events, on both backends.

The same content is written through the Storage API into each backend (``storage`` fixture) and
read back as frames; memory and PostgreSQL frames of the same data are compared column by column
and dtype by dtype; PostgreSQL-only behaviour (schemas, URL sources, streaming resume after a
killed backend or a hot-standby recovery conflict) runs on real servers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
from conftest import postgres_storage

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.analysis import frames as F
from bindu_storage.analysis.dtypes import STATE_DTYPE, STATES
from bindu_storage.analysis.frames._options import TaskFilters
from bindu_storage.analysis.frames._pg import query as frames_query
from bindu_storage.analysis.frames._pg import read as frames_read
from bindu_storage.analysis.frames._pg import statements as frames_sql
from bindu_storage.analysis.frames._pg.query import PAGE_MARK
from bindu_storage.analysis.frames._pg.reader import APPLICATION_NAME, PgReader
from bindu_storage.errors import InvalidTypeError, InvalidValueError, StorageConnectionError, StorageError
from bindu_storage.storage import migrate
from bindu_storage.storage.retry import is_resumable
from bindu_storage.testing import TemporaryPostgres

CTX_A, CTX_B, CTX_C = (uuid.UUID(int=0xA0 + i) for i in range(3))
T1, T2, T3, T4, T5 = (uuid.UUID(int=0x100 + i) for i in range(5))
SECRETS = ("sk-live-123", "tok-abc", "hunter2", "wh-secret", "cred-secret", "ctx-pass")
TS = "datetime64[us, UTC]"

LOADERS: dict[str, Callable[..., Any]] = {
    "tasks": F.tasks_frame, "messages": F.messages_frame, "artifacts": F.artifacts_frame,
    "contexts": F.contexts_frame, "feedback": F.feedback_frame, "events": F.events_frame,
    "webhooks": F.webhooks_frame,
}
CHUNKED = ("tasks", "messages", "artifacts", "contexts", "feedback", "events", "webhooks")


def msg(
    task: uuid.UUID, ctx: uuid.UUID, n: int, *parts: dict[str, Any], role: str = "user"
) -> dict[str, Any]:
    return {
        "message_id": str(uuid.UUID(int=task.int * 100 + n)), "task_id": str(task),
        "context_id": str(ctx), "kind": "message", "role": role,
        "parts": list(parts) or [{"kind": "text", "text": f"message {n}"}],
    }


def text(t: str) -> dict[str, Any]:
    return {"kind": "text", "text": t}


async def seed(st: Storage) -> None:
    """The content every test reads: 5 tasks in 3 contexts, feedback, a webhook."""
    await st.update_context(CTX_C, {"topic": "misc", "db": {"password": "ctx-pass", "port": 5432}})
    # T1: planner, completed, two feedbacks (5 and 4.0)
    first = msg(T1, CTX_A, 1, text("plan the trip"), text("to Rome"))
    await st.submit_task(CTX_A, first, caller_did="did:alice")
    await st.update_task(T1, "working", metadata={
        "agent": "planner", "model": {"name": "m1", "temperature": 0.5},
        "usage": {"prompt_tokens": 120, "completion_tokens": 30}, "cached": True, "tags": ["x", "y"],
        "api_key": "sk-live-123", "auth": {"token": "tok-abc", "kind": "bearer"}, "score": 1,
        "calls": [{"tool": "search", "token": "tok-abc"}],
    })
    await st.update_task(
        T1, "completed",
        new_messages=[
            msg(T1, CTX_A, 2, text("Day 1: Colosseum"), {"kind": "data", "data": {"d": 1}}, role="agent")
        ],
        new_artifacts=[{"artifact_id": "art-1", "name": "itinerary", "description": "the plan",
                        "parts": [text("day 1"), {"kind": "file", "file": {"uri": "s3://x"}},
                                  text("day 2")]}],
    )
    await st.store_task_feedback(
        T1, {"rating": 5, "comment": "great", "source": {"ui": "web"}, "password": "hunter2"}
    )
    await st.store_task_feedback(T1, {"rating": 4.0, "comment": "fine"})
    # T2: coder, failed, odd ratings and an upstream-shaped feedback
    await st.submit_task(CTX_A, msg(T2, CTX_A, 1), caller_did="did:alice")
    await st.update_task(T2, "failed", metadata={
        "agent": "coder", "model": {"name": "m2"}, "score": 2.5, "mixed": "a", "a.b": 1, "cached": False,
    })
    for rating in (4.5, "5", True):
        await st.store_task_feedback(T2, {"rating": rating})
    await st.store_task_feedback(T2, {
        "task_id": str(T2), "feedback": "meh", "rating": 2, "metadata": {"client": "cli"},
    })
    # T3: planner again, input-required, deep metadata, a webhook with secrets
    file_only = msg(T3, CTX_B, 1, {"kind": "file", "file": {"uri": "s3://in"}})
    await st.submit_task(CTX_B, file_only, caller_did="did:bob")
    await st.update_task(T3, "working", metadata={
        "agent": "planner", "mixed": 3, "a": {"b": 2}, "nested": {"deep": {"deeper": {"deepest": {"x": 7}}}},
        "usage": {"prompt_tokens": 2**40, "completion_tokens": 1},
    })
    await st.update_task(T3, "input-required", new_messages=[msg(T3, CTX_B, 2, text(""), role="agent")])
    await st.save_webhook_config(T3, {
        "id": "hook-1", "url": "https://hooks.example/t3", "token": "wh-secret",
        "authentication": {"schemes": ["Bearer", "Basic"], "credentials": "cred-secret"},
    })
    # T4: canceled at once, no metadata; T5: in the context created by update_context
    await st.submit_task(CTX_B, msg(T4, CTX_B, 1), caller_did="did:bob")
    await st.update_task(T4, "canceled")
    await st.submit_task(CTX_C, msg(T5, CTX_C, 1, text("a"), text("b")))


def ids(frame: pd.DataFrame, column: str = "id") -> list[str]:
    return [str(x) for x in frame[column]]


def s(*tasks: uuid.UUID) -> list[str]:
    return [str(t) for t in tasks]


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    await seed(storage)
    return storage


# --- content, both backends ------------------------------------------------------------------------


async def test_tasks_frame_rows_and_fixed_columns(seeded: Storage) -> None:
    df = await F.tasks_frame(seeded)
    assert ids(df) == s(T1, T2, T3, T4, T5)
    assert list(df.columns[:11]) == [
        "id", "context_id", "state", "state_timestamp", "created_at", "updated_at", "history_len",
        "artifact_count", "feedback_count", "mean_rating", "owner_did",
    ]
    assert df["state"].dtype == STATE_DTYPE and list(df["state"].cat.categories) == list(STATES)
    assert df["state"].tolist() == ["completed", "failed", "input-required", "canceled", "submitted"]
    for col in ("state_timestamp", "created_at", "updated_at"):
        assert str(df[col].dtype) == TS
    assert (df["updated_at"] >= df["created_at"]).all()
    assert df["history_len"].dtype == np.int64 and df["history_len"].tolist() == [2, 1, 2, 1, 1]
    assert df["artifact_count"].tolist() == [1, 0, 0, 0, 0]
    assert df["feedback_count"].tolist() == [2, 4, 0, 0, 0]
    assert df["mean_rating"].dtype == np.float64
    assert df["mean_rating"].iloc[:2].tolist() == [4.5, 2.0] and df["mean_rating"].iloc[2:].isna().all()
    assert df["owner_did"].dtype == "str"
    assert df["owner_did"].iloc[:4].tolist() == ["did:alice", "did:alice", "did:bob", "did:bob"]
    assert pd.isna(df["owner_did"].iloc[4])
    assert df["context_id"].tolist() == s(CTX_A, CTX_A, CTX_B, CTX_B, CTX_C)


async def test_metadata_flattened_like_json_normalize_with_typed_columns(seeded: Storage) -> None:
    df = await F.tasks_frame(seeded)
    meta = [c for c in df.columns if c.startswith("metadata.")]
    assert meta == sorted(meta)
    dtypes = {c: str(df[c].dtype) for c in meta}
    assert dtypes == {
        "metadata.a.b": "Int64",  # the key "a.b" and the nested a → b share the column
        "metadata.agent": "str",
        "metadata.api_key": "str",
        "metadata.auth": "str",  # "auth" is a secret key: its whole value is hidden (analysis.redact)
        "metadata.cached": "boolean",
        "metadata.calls": "object",
        "metadata.mixed": "object",
        "metadata.model.name": "str",
        "metadata.model.temperature": "float64",
        "metadata.nested.deep.deeper.deepest.x": "Int64",  # deeper than one discovery pass
        "metadata.score": "float64",
        "metadata.tags": "object",
        "metadata.usage.completion_tokens": "Int64",
        "metadata.usage.prompt_tokens": "Int64",
    }
    rows = df.set_index("id")
    t1, t2, t3 = rows.loc[str(T1)], rows.loc[str(T2)], rows.loc[str(T3)]
    assert t1["metadata.agent"] == "planner" and t2["metadata.agent"] == "coder"
    assert pd.isna(rows.loc[str(T4), "metadata.agent"])
    assert t1["metadata.usage.prompt_tokens"] == 120 and t3["metadata.usage.prompt_tokens"] == 2**40
    assert t1["metadata.model.temperature"] == 0.5 and pd.isna(t2["metadata.model.temperature"])
    assert t1["metadata.score"] == 1.0 and t2["metadata.score"] == 2.5
    assert bool(t1["metadata.cached"]) is True and bool(t2["metadata.cached"]) is False
    assert pd.isna(t3["metadata.cached"])
    assert t1["metadata.tags"] == ["x", "y"]
    assert t2["metadata.mixed"] == "a" and t3["metadata.mixed"] == 3
    assert t2["metadata.a.b"] == 1 and t3["metadata.a.b"] == 2
    assert t3["metadata.nested.deep.deeper.deepest.x"] == 7


async def test_metadata_columns_chooses_columns(seeded: Storage) -> None:
    df = await F.tasks_frame(seeded, metadata_columns=["usage", "agent", "missing.key"])
    assert [c for c in df.columns if c.startswith("metadata.")] == [
        "metadata.usage.completion_tokens", "metadata.usage.prompt_tokens", "metadata.agent",
        "metadata.missing.key",
    ]
    assert df["metadata.missing.key"].isna().all() and df["metadata.missing.key"].dtype == object
    none = await F.tasks_frame(seeded, metadata_columns=[])
    assert not [c for c in none.columns if c.startswith("metadata.")]


async def test_messages_frame(seeded: Storage) -> None:
    df = await F.messages_frame(seeded)
    assert list(df.columns) == [
        "task_id", "context_id", "position", "message_id", "role", "text", "part_kinds",
    ]
    assert df["task_id"].tolist() == s(T1, T1, T2, T3, T3, T4, T5)
    assert df["position"].dtype == np.int64 and df["position"].tolist() == [0, 1, 0, 0, 1, 0, 0]
    assert df["message_id"].tolist()[0] == str(uuid.UUID(int=T1.int * 100 + 1))
    assert df["role"].tolist() == ["user", "agent", "user", "user", "agent", "user", "user"]
    texts = df["text"].tolist()
    assert texts[0] == "plan the trip\nto Rome" and texts[1] == "Day 1: Colosseum"
    assert pd.isna(texts[3])  # a file part only: no text
    assert texts[4] == ""  # an empty text part is still a text
    assert texts[6] == "a\nb"
    assert df["part_kinds"].tolist()[:4] == ["text,text", "text,data", "text", "file"]
    assert all(str(df[c].dtype) == "str" for c in ("task_id", "message_id", "role", "text", "part_kinds"))
    only_t3 = await F.messages_frame(seeded, context_id=CTX_B, states="input-required")
    assert only_t3["task_id"].tolist() == s(T3, T3)


async def test_artifacts_frame(seeded: Storage) -> None:
    df = await F.artifacts_frame(seeded)
    assert list(df.columns) == [
        "task_id", "context_id", "position", "artifact_id", "name", "description", "part_kinds", "text",
    ]
    assert df.to_dict("records") == [{
        "task_id": str(T1), "context_id": str(CTX_A), "position": 0, "artifact_id": "art-1",
        "name": "itinerary", "description": "the plan", "part_kinds": "text,file,text",
        "text": "day 1\nday 2",
    }]


async def test_contexts_frame(seeded: Storage) -> None:
    df = await F.contexts_frame(seeded)
    assert df["context_id"].tolist() == s(CTX_C, CTX_A, CTX_B)
    assert df["task_count"].tolist() == [1, 2, 2] and df["task_count"].dtype == np.int64
    assert df["message_history_len"].tolist() == [0, 0, 0]
    assert df["owner_did"].tolist()[1:] == ["did:alice", "did:bob"]
    assert list(df.columns[6:]) == ["context_data.db.password", "context_data.db.port", "context_data.topic"]
    assert df["context_data.db.password"].tolist()[0] == "***"
    assert str(df["context_data.db.port"].dtype) == "Int64"
    assert (await F.contexts_frame(seeded, owner_did="did:bob"))["context_id"].tolist() == s(CTX_B)
    assert (await F.contexts_frame(seeded, context_data={"topic": "misc"}))["context_id"].tolist() == s(CTX_C)
    two = await F.contexts_frame(seeded, context_id=[CTX_B, CTX_A])
    assert two["context_id"].tolist() == s(CTX_A, CTX_B)


async def test_feedback_frame(seeded: Storage) -> None:
    df = await F.feedback_frame(seeded)
    assert list(df.columns) == [
        "id", "task_id", "created_at", "rating", "comment", "feedback.metadata.client",
        "feedback.password", "feedback.source.ui", "feedback.task_id",
    ]
    assert df["id"].dtype == np.int64 and df["id"].is_monotonic_increasing
    assert df["task_id"].tolist() == s(T1, T1, T2, T2, T2, T2)
    assert str(df["rating"].dtype) == "Int64"
    assert df["rating"].tolist() == [5, 4, pd.NA, pd.NA, pd.NA, 2]  # 4.5, "5" and true are no ratings
    assert df["comment"].tolist()[:2] == ["great", "fine"] and df["comment"].tolist()[5] == "meh"
    assert df["feedback.password"].tolist()[0] == "***"
    assert df["feedback.metadata.client"].tolist()[5] == "cli"
    joined = await F.feedback_frame(seeded, task_metadata_columns=["agent", "model"])
    assert list(joined.columns[5:7]) == ["context_id", "state"] and joined["state"].dtype == STATE_DTYPE
    assert joined["state"].tolist() == ["completed"] * 2 + ["failed"] * 4
    assert joined["metadata.agent"].tolist() == ["planner"] * 2 + ["coder"] * 4
    assert joined["metadata.model.name"].tolist() == ["m1"] * 2 + ["m2"] * 4
    assert list(joined.columns[-3:]) == [
        "metadata.agent", "metadata.model.name", "metadata.model.temperature",
    ]
    with_task = await F.feedback_frame(seeded, with_task=True, states="failed")
    assert "metadata.agent" not in with_task.columns and with_task["task_id"].tolist() == s(T2) * 4
    only = await F.feedback_frame(seeded, feedback_columns=["source"])
    assert list(only.columns[5:]) == ["feedback.source.ui"]


async def test_events_frame_times_each_state(seeded: Storage) -> None:
    df = await F.events_frame(seeded)
    assert list(df.columns) == ["id", "task_id", "from_state", "to_state", "at", "duration_s", "in_state_s"]
    assert df["from_state"].dtype == STATE_DTYPE and df["to_state"].dtype == STATE_DTYPE
    t1 = df[df["task_id"] == str(T1)]
    assert t1["to_state"].tolist() == ["submitted", "working", "completed"]
    assert pd.isna(t1["from_state"].iloc[0]) and t1["from_state"].tolist()[1:] == ["submitted", "working"]
    for _, events in df.groupby("task_id"):
        gaps = events["at"].diff().dt.total_seconds()
        assert np.allclose(events["duration_s"].iloc[1:], gaps.iloc[1:], rtol=0, atol=1e-9)
        assert pd.isna(events["duration_s"].iloc[0])
        assert np.allclose(events["in_state_s"].iloc[:-1], gaps.iloc[1:], rtol=0, atol=1e-9)
        assert pd.isna(events["in_state_s"].iloc[-1])  # still in its last state
    window = await F.events_frame(seeded, since=t1["at"].iloc[1], until=t1["at"].iloc[2], context_id=CTX_A)
    assert window["id"].tolist() == [t1["id"].iloc[1]]
    assert window["duration_s"].tolist() == [t1["duration_s"].iloc[1]]  # from events outside the window


async def test_webhooks_frame_redacts_token_and_credentials(seeded: Storage) -> None:
    df = await F.webhooks_frame(seeded)
    assert df.to_dict("records") == [{
        "task_id": str(T3), "config_id": "hook-1", "url": "https://hooks.example/t3", "token": "***",
        "schemes": "Bearer,Basic", "credentials": "***",
    }]


async def test_secrets_never_reach_a_frame(seeded: Storage) -> None:
    frames = [await load(seeded) for load in LOADERS.values()]
    frames.append(await F.feedback_frame(seeded, task_metadata_columns=["auth", "api_key", "calls"]))
    for frame in frames:
        shown = frame.to_json(orient="records", default_handler=str, date_format="iso")
        for secret in SECRETS:
            assert secret not in shown
    tasks = frames[0].set_index("id")
    assert tasks.loc[str(T1), "metadata.api_key"] == "***"
    assert tasks.loc[str(T1), "metadata.auth"] == "***"  # a secret key hides its whole value
    assert tasks.loc[str(T1), "metadata.calls"] == [{"tool": "search", "token": "***"}]
    assert tasks.loc[str(T1), "metadata.usage.prompt_tokens"] == 120  # *_tokens counters stay


# --- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"states": "failed"}, [T2]),
        ({"states": ["completed", "canceled"]}, [T1, T4]),
        ({"states": []}, []),
        ({"context_id": CTX_B}, [T3, T4]),
        ({"context_id": [str(CTX_A), CTX_C]}, [T1, T2, T5]),
        ({"metadata": {"agent": "planner"}}, [T1, T3]),
        ({"metadata": {"model": {"name": "m2"}}}, [T2]),
        ({"metadata": {"tags": ["y"]}}, [T1]),
        ({"metadata": {"score": 1.0}}, [T1]),  # 1 = 1.0 as in jsonb
        ({"metadata": {}}, [T1, T2, T3, T4, T5]),
        ({"owner_did": "did:bob"}, [T3, T4]),
        ({"owner_did": "did:nobody"}, []),
        ({"owner_did": "did:alice", "states": ["failed", "working"]}, [T2]),
    ],
)
async def test_task_filters(seeded: Storage, filters: dict[str, Any], expected: list[uuid.UUID]) -> None:
    assert ids(await F.tasks_frame(seeded, **filters)) == s(*expected)
    messages = await F.messages_frame(seeded, **filters)
    assert list(dict.fromkeys(messages["task_id"])) == s(*expected)


async def test_time_windows(seeded: Storage) -> None:
    df = await F.tasks_frame(seeded)
    created, updated = df["created_at"], df["updated_at"]
    after = await F.tasks_frame(seeded, created_after=created.iloc[2])
    assert ids(after) == s(T3, T4, T5)  # inclusive start
    before = await F.tasks_frame(seeded, created_before=created.iloc[2].to_pydatetime())
    assert ids(before) == s(T1, T2)  # exclusive end
    iso = created.iloc[1].isoformat()
    assert ids(await F.tasks_frame(seeded, created_after=iso, created_before=created.iloc[2])) == s(T2)
    naive = created.iloc[3].tz_convert(None)  # naive times are UTC
    assert ids(await F.tasks_frame(seeded, created_after=naive)) == s(T4, T5)
    latest = updated.max()
    assert ids(await F.tasks_frame(seeded, updated_after=latest)) == ids(df[updated == latest])
    assert ids(await F.tasks_frame(seeded, updated_before=latest + timedelta(days=1))) == ids(df)
    events = await F.events_frame(seeded, created_after=created.iloc[4])
    assert set(events["task_id"]) == {str(T5)}


async def test_limit_counts_rows_of_the_frame(seeded: Storage) -> None:
    assert ids(await F.tasks_frame(seeded, limit=2)) == s(T1, T2)
    assert len(await F.tasks_frame(seeded, limit=0)) == 0
    assert (await F.messages_frame(seeded, limit=3))["task_id"].tolist() == s(T1, T1, T2)
    assert len(await F.feedback_frame(seeded, limit=4)) == 4
    assert len(await F.events_frame(seeded, limit=5)) == 5
    assert len(await F.contexts_frame(seeded, limit=1)) == 1
    # discovery follows the limit: T3's keys do not appear when only T1 and T2 are read
    assert "metadata.nested.deep.deeper.deepest.x" not in (await F.tasks_frame(seeded, limit=2)).columns


async def test_empty_frames_keep_every_column_and_dtype(storage: Storage) -> None:
    for name, load in LOADERS.items():
        empty = await load(storage)
        assert len(empty) == 0, name
    await seed(storage)
    for name, load in LOADERS.items():
        full = await load(storage)
        nothing = await load(storage, owner_did="did:nobody")
        fixed = [c for c in full.columns if "." not in c]
        assert list(nothing.columns) == fixed, name
        assert [str(t) for t in nothing.dtypes] == [str(full[c].dtype) for c in fixed], name


async def test_bad_arguments_raise_typed_errors(storage: Storage) -> None:
    bad: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: F.tasks_frame(storage, states=["done"]), InvalidValueError, "done"),
        (lambda: F.tasks_frame(storage, states=7), InvalidTypeError, "states"),
        (lambda: F.tasks_frame(storage, context_id="not-a-uuid"), InvalidValueError, "not-a-uuid"),
        (lambda: F.tasks_frame(storage, context_id=12), InvalidTypeError, "context_id"),
        (lambda: F.tasks_frame(storage, created_after="yesterday-ish"), InvalidValueError, "yesterday-ish"),
        (lambda: F.tasks_frame(storage, updated_before=3), InvalidTypeError, "updated_before"),
        (lambda: F.tasks_frame(storage, metadata=["agent"]), InvalidTypeError, "metadata"),
        (lambda: F.tasks_frame(storage, metadata={"x": {1, 2}}), InvalidValueError, "metadata"),
        (lambda: F.tasks_frame(storage, owner_did=5), InvalidTypeError, "owner_did"),
        (lambda: F.tasks_frame(storage, limit=-1), InvalidValueError, "-1"),
        (lambda: F.tasks_frame(storage, limit=True), InvalidValueError, "limit"),
        (lambda: F.tasks_frame(storage, metadata_columns="agent"), InvalidTypeError, "metadata_columns"),
        (lambda: F.feedback_frame(storage, with_task="yes"), InvalidTypeError, "with_task"),
        (lambda: F.feedback_frame(storage, since="nope"), InvalidValueError, "nope"),
        (lambda: F.tasks_frame(storage, schema="bad-name; drop"), InvalidValueError, "bad-name"),
        (lambda: F.tasks_frame(42), InvalidTypeError, "int"),
        (lambda: F.tasks_frame("mysql://u:pw-xyz@h/db"), InvalidValueError, "a mysql:// URL is not"),
    ]
    for call, error, named in bad:
        with pytest.raises(error) as info:
            await call()
        assert named in str(info.value)
        assert "pw-xyz" not in str(info.value)
    with pytest.raises(InvalidValueError, match="chunksize"):
        F.tasks_frame(storage, chunksize=0)  # checked at the call, before any read
    if isinstance(storage, InMemoryStorage):
        with pytest.raises(InvalidValueError, match="PostgreSQL sources only"):
            await F.tasks_frame(storage, schema="public")


# --- streaming -------------------------------------------------------------------------------------


async def chunks(iterator: AsyncIterator[pd.DataFrame]) -> list[pd.DataFrame]:
    return [chunk async for chunk in iterator]


async def test_iterators_cut_frames_at_chunk_boundaries(seeded: Storage) -> None:
    for name in CHUNKED:
        whole = await LOADERS[name](seeded)
        for size in (1, 2, 3, 100):
            parts = await chunks(LOADERS[name](seeded, chunksize=size))
            assert [len(p) for p in parts][:-1] == [size] * (len(parts) - 1), (name, size)
            assert 0 < len(parts[-1]) <= size
            joined = pd.concat(parts, ignore_index=True)
            pd.testing.assert_frame_equal(joined, whole, check_exact=True, obj=f"{name} by {size}")
    limited = await chunks(F.messages_frame(seeded, chunksize=2, limit=5))
    assert [len(p) for p in limited] == [2, 2, 1]
    assert pd.concat(limited)["task_id"].tolist() == s(T1, T1, T2, T3, T3)  # cut inside T1's and T3's history


async def test_iterator_of_nothing_yields_one_empty_frame(storage: Storage) -> None:
    parts = await chunks(F.tasks_frame(storage, chunksize=10))
    assert len(parts) == 1 and len(parts[0]) == 0 and "mean_rating" in parts[0].columns


async def test_progress_bar(seeded: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    parts = await chunks(F.tasks_frame(seeded, chunksize=2, progress=True))
    assert sum(map(len, parts)) == 5
    assert "5/5" in capsys.readouterr().err


# --- memory and PostgreSQL, side by side -----------------------------------------------------------


class StepClock:
    """A clock advancing by irregular steps, so durations differ between events."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        self.n = 0

    def __call__(self) -> datetime:
        self.n += 1
        self.now += timedelta(seconds=self.n * 1.25, microseconds=self.n * 7)
        return self.now


async def copy_timestamps(memory: InMemoryStorage, url: str) -> None:
    """Give the PostgreSQL rows the timestamps the memory clock recorded for the same rows."""
    conn = await asyncpg.connect(url)
    try:
        for r in await memory.task_records():
            await conn.execute(
                "UPDATE tasks SET created_at = $2, updated_at = $3, state_timestamp = $4 WHERE id = $1",
                r["task"]["id"], r["created_at"], r["updated_at"],
                datetime.fromisoformat(r["task"]["status"]["timestamp"]),
            )
        for c in await memory.context_records():
            await conn.execute(
                "UPDATE contexts SET created_at = $2, updated_at = $3 WHERE id = $1",
                c["context_id"], c["created_at"], c["updated_at"],
            )
        for f in await memory.feedback_records():
            await conn.execute(
                "UPDATE task_feedback SET created_at = $2 WHERE id = $1", f["id"], f["created_at"]
            )
        for e in await memory.task_events():
            await conn.execute("UPDATE task_events SET at = $2 WHERE id = $1", e["id"], e["at"])
    finally:
        await conn.close()


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("tasks", {}),
    ("tasks", {"states": ["completed", "failed", "working"], "metadata": {"agent": "planner"}}),
    ("tasks", {"metadata_columns": ["usage", "nope"], "limit": 3}),
    ("messages", {}),
    ("messages", {"context_id": CTX_B}),
    ("artifacts", {}),
    ("contexts", {}),
    ("contexts", {"context_data_columns": ["db"]}),
    ("feedback", {}),
    ("feedback", {"with_task": True, "task_metadata_columns": ["agent", "cached", "calls", "score"]}),
    ("events", {}),
    ("events", {"owner_did": "did:bob"}),
    ("webhooks", {}),
]


def assert_same_frames(left: pd.DataFrame, right: pd.DataFrame, name: str) -> None:
    """Same columns, dtypes and values, column by column."""
    assert list(left.columns) == list(right.columns), name
    for column in left.columns:
        assert left[column].dtype == right[column].dtype, (name, column)
        pd.testing.assert_series_equal(left[column], right[column], check_exact=True, obj=f"{name}.{column}")


@pytest.mark.parametrize(
    "tuning",
    [
        {},
        {(frames_read, "SAMPLE_ROWS"): 1},  # discovery verifies a one-document guess against all documents
        # filtered reads never pick rows by key
        {(frames_query, "PICK_MIN"): 0, (frames_query, "PICK_MAX"): 0},
    ],
    ids=["defaults", "discovery-sample-1", "filters-in-the-copy"],
)
async def test_memory_and_postgres_give_identical_frames(
    pg_storage: PostgresStorage,
    pg_url: str,
    tuning: dict[tuple[Any, str], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for (module, name), value in tuning.items():
        monkeypatch.setattr(module, name, value)
    memory = InMemoryStorage(clock=StepClock())
    await seed(memory)
    await seed(pg_storage)
    await copy_timestamps(memory, pg_url)
    for name, kwargs in CALLS:
        left, right = await LOADERS[name](memory, **kwargs), await LOADERS[name](pg_storage, **kwargs)
        assert_same_frames(left, right, name)
    # windows on the copied timestamps select the same rows
    created = (await F.tasks_frame(memory))["created_at"]
    for kwargs in ({"created_after": created.iloc[1]}, {"updated_before": created.iloc[3]},
                   {"since": created.iloc[2]}):
        loader = F.events_frame if "since" in kwargs else F.tasks_frame
        pd.testing.assert_frame_equal(await loader(memory, **kwargs), await loader(pg_storage, **kwargs))


async def test_numbers_read_as_postgresql_stores_them(pg_storage: PostgresStorage) -> None:
    memory = InMemoryStorage()
    values = [0, -1, 2**63 - 1, -(2**63), 1e16, 1.5e16, 3.0, 1e-05, 2**64]
    values += [10**18 - 1, 1 - 10**18, 10**18, 12.0]
    for store in (memory, pg_storage):
        for i, value in enumerate(values):
            task = uuid.UUID(int=0x900 + i)
            await store.submit_task(CTX_A, msg(task, CTX_A, 1))
            await store.update_task(task, "working", metadata={"v": value, f"only{i}": value})
            await store.store_task_feedback(task, {"rating": value})
    left, right = await F.tasks_frame(memory), await F.tasks_frame(pg_storage)
    meta = [c for c in left.columns if c.startswith("metadata.")]
    assert meta == [c for c in right.columns if c.startswith("metadata.")]
    for column in [*meta, "mean_rating"]:
        assert left[column].dtype == right[column].dtype, column
        pd.testing.assert_series_equal(left[column], right[column], check_exact=True)
    assert str(left["metadata.only4"].dtype) == "Int64"  # 1e16 is stored as 10000000000000000
    assert str(left["metadata.only6"].dtype) == "float64"  # 3.0 keeps its ".0"
    assert str(left["metadata.only8"].dtype) == "float64"  # beyond int64
    fb_left, fb_right = await F.feedback_frame(memory), await F.feedback_frame(pg_storage)
    assert fb_left["rating"].tolist() == fb_right["rating"].tolist()
    assert fb_left["rating"].tolist()[6:8] == [3, pd.NA]
    assert fb_left["rating"].tolist()[9:] == [10**18 - 1, 1 - 10**18, pd.NA, 12]  # ratings stay below 10^18


# --- documents that test the PostgreSQL read path ---------------------------------------------------

T6, T7, T8, T9 = (uuid.UUID(int=0x200 + i) for i in range(4))
CTX_D, CTX_E, CTX_F = (uuid.UUID(int=0xD0 + i) for i in range(3))
ODD_TEXT = 'a,b "quoted"\r\nsecond line\\ with \\. and \u00e9 \u2713'


async def seed_odd(st: Storage) -> None:
    """Documents whose paths, types and texts take every branch of discovery and CSV decoding.

    Later tasks hold what the first lacks: a scalar path that becomes an object, an object path
    that becomes a scalar, new keys at every depth, an array where an object held key "0".
    """
    first = msg(T6, CTX_D, 1, text(ODD_TEXT), text(""), {"kind": ["text"], "text": "kind is a list"})
    await st.submit_task(CTX_D, first)
    await st.update_task(T6, "working", metadata={
        "v": 1, "arr": {"0": "x"}, "e": {}, "s": ODD_TEXT, "empty": "", "dot": {"x.y": 1},
        "n": None, "f": 0.1, "tiny": 1e-300, "neg": -(2**63), "obj": {"a": 1, "b": "two"},
        "flag": False, "list": [1, "two", {"password": "hunter2"}],
    })
    odd_parts: list[Any] = [
        "not a part", {"kind": "text", "text": 5}, {"kind": "text"}, {"text": "no kind"},
        [{"kind": "text", "text": "nested"}], {"kind": "file", "file": {}}, text("last\\n"),
    ]
    await st.submit_task(CTX_E, msg(T7, CTX_E, 1, *odd_parts))
    await st.update_task(T7, "working", metadata={
        "v": {"w": 2}, "arr": ["y"], "e": {"later": True}, "s": "", "dot": 3, "x.y": 4,
        "n": {"deep": [1, {"token": "sekret"}]}, "f": 2, "obj": "scalar now", "flag": None,
        "late": {"a": {"b": {"c": {"d": 1.5}}}},
    })
    await st.submit_task(CTX_F, msg(T8, CTX_F, 1, text("plain")))
    await st.update_task(T8, "working", metadata={"late": {"a": {"b": {"c": {"d": 2, "e": [None]}}}}})
    await st.submit_task(CTX_F, msg(T9, CTX_F, 1, text("x")))
    await st.update_task(T9, "working", metadata={"big": 2**64, "s": "\\."})
    await st.store_task_feedback(T6, {"rating": 3, "tags": {"ux": "ok"}, "note": ODD_TEXT})
    await st.store_task_feedback(T7, {"rating": 4.0, "tags": {"ux": 1, "extra": [True]}, "api_key": "k"})
    await st.update_context(CTX_F, {"topic": ODD_TEXT, "nested": {"depth": {"x": None}}})


@pytest.mark.parametrize("sample_rows", [1, 2, None], ids=["sample-1", "sample-2", "sample-default"])
async def test_odd_documents_read_identically(
    pg_storage: PostgresStorage, sample_rows: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sample_rows is not None:
        monkeypatch.setattr(frames_read, "SAMPLE_ROWS", sample_rows)
    memory = InMemoryStorage()
    await seed_odd(memory)
    await seed_odd(pg_storage)
    for name in ("tasks", "messages", "feedback", "contexts"):
        left, right = await LOADERS[name](memory), await LOADERS[name](pg_storage)
        clocks = [c for c in left.columns if str(left[c].dtype) == TS]  # the two backends' own clocks
        assert_same_frames(left.drop(columns=clocks), right.drop(columns=clocks), name)
        parts = await chunks(LOADERS[name](pg_storage, chunksize=1))
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), right, check_exact=True)
    tasks = (await F.tasks_frame(pg_storage)).set_index("id")
    t6, t7 = tasks.loc[str(T6)], tasks.loc[str(T7)]
    assert t6["metadata.s"] == ODD_TEXT and t7["metadata.s"] == ""
    assert pd.isna(tasks.loc[str(T8), "metadata.s"])
    assert tasks.loc[str(T9), "metadata.s"] == "\\."
    assert t6["metadata.v"] == 1 and pd.isna(t7["metadata.v"]) and t7["metadata.v.w"] == 2
    assert t6["metadata.arr.0"] == "x" and pd.isna(t7["metadata.arr.0"])  # keys never index arrays
    assert str(tasks["metadata.late.a.b.c.d"].dtype) == "float64"
    assert tasks["metadata.late.a.b.c.d"].tolist()[1:3] == [1.5, 2.0]
    assert t6["metadata.dot.x.y"] == 1 and t7["metadata.dot"] == 3 and t7["metadata.x.y"] == 4
    assert t6["metadata.list"] == [1, "two", {"password": "***"}]
    assert t6["metadata.tiny"] == 1e-300 and str(tasks["metadata.neg"].dtype) == "Int64"
    assert str(tasks["metadata.flag"].dtype) == "boolean" and str(tasks["metadata.big"].dtype) == "float64"
    assert "metadata.e" not in tasks.columns and "metadata.n.deep" in tasks.columns
    messages = await F.messages_frame(pg_storage)
    assert messages["text"].tolist()[:2] == [ODD_TEXT + "\n", "last\\n"]
    assert messages["part_kinds"].tolist()[:2] == ["text,text", "text,text,file,text"]


async def test_discovery_from_a_sample_equals_a_walk_of_every_document(
    pg_storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(pg_storage)
    await seed_odd(pg_storage)
    reader = PgReader(pg_storage.schema, storage=pg_storage)
    info = await reader.info()

    for source in (*frames_sql.tasks_query(info, TaskFilters(), None).flats,
                   *frames_sql.feedback_query(info, TaskFilters(), None, None, False, None, None).flats):
        expected = sorted((await frames_read.walk(reader, source, frames_query.DocRows())).infos(), key=repr)
        assert expected
        for sample_rows in range(1, 10):
            monkeypatch.setattr(frames_read, "SAMPLE_ROWS", sample_rows)
            found = sorted(await frames_read.discover(reader, source, None), key=repr)
            assert found == expected, (source.prefix, sample_rows)


async def test_parameters_never_enter_the_sql_text(fresh_database: str) -> None:
    """Frames read through COPY, which takes no bound parameters: values travel as settings."""
    url, schema = fresh_database, "frames$1"  # asyncpg's copy_from_query(query, *args) rewrites "$1"
    await migrate.upgrade(url, schema)
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE EXTENSION pg_stat_statements")
    two = postgres_storage(url, schema=schema)
    await two.connect()
    marker = uuid.uuid4().hex
    needle = f"needle-'\"$1-{marker}"
    try:
        await two.submit_task(CTX_A, msg(T1, CTX_A, 1))
        await two.update_task(T1, "working", metadata={"q": needle, needle: 1})
        df = await F.tasks_frame(url, schema=schema, metadata={"q": needle}, states=["working"])
        assert ids(df) == s(T1) and df["metadata.q"].tolist() == [needle]
        assert df[f"metadata.{needle}"].tolist() == [1]
        chunked = await chunks(F.tasks_frame(url, schema=schema, metadata={"q": needle}, chunksize=1))
        pd.testing.assert_frame_equal(pd.concat(chunked, ignore_index=True), df)
        texts = [r["query"] for r in await conn.fetch(
            "SELECT query FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )]
        assert any(PAGE_MARK in t and t.startswith("COPY") for t in texts)
        assert not [t for t in texts if marker in t]
    finally:
        await two.close()
        await conn.close()


# --- PostgreSQL sources ----------------------------------------------------------------------------


async def test_url_source_reads_through_a_read_only_connection(
    pg_storage: PostgresStorage, pg_url: str
) -> None:
    await seed(pg_storage)
    from_url = await F.tasks_frame(pg_url)
    pd.testing.assert_frame_equal(from_url, await F.tasks_frame(pg_storage))
    reader = PgReader("public", dsn=pg_url)
    try:
        settings = await reader.fetch("SELECT current_setting('default_transaction_read_only') AS ro,"
                                      " current_setting('application_name') AS app")
        assert (settings[0]["ro"], settings[0]["app"]) == ("on", APPLICATION_NAME)
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await reader.fetch("DELETE FROM tasks")
    finally:
        await reader.close()
    assert len(await F.tasks_frame(pg_url)) == 5


async def test_url_source_errors_name_the_target_not_the_password(pg_url: str) -> None:
    wrong = pg_url.replace("://postgres:", "://postgres:not-the-password-", 1)
    with pytest.raises(StorageConnectionError) as info:
        await F.tasks_frame(wrong)
    assert "not-the-password" not in str(info.value) and "127.0.0.1" in str(info.value)
    with pytest.raises(StorageError, match="no_such_schema"):
        await F.tasks_frame(pg_url, schema="no_such_schema")


@pytest.fixture
async def other_schemas(pg_url: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(pg_url)
    await conn.execute("DROP SCHEMA IF EXISTS agent_two CASCADE; DROP SCHEMA IF EXISTS not_bindu CASCADE")
    await migrate.upgrade(pg_url, "agent_two")
    await conn.execute("CREATE SCHEMA not_bindu; CREATE TABLE not_bindu.tasks (id int, name text)")
    try:
        yield "agent_two"
    finally:
        await conn.execute("DROP SCHEMA agent_two CASCADE; DROP SCHEMA not_bindu CASCADE")
        await conn.close()


async def test_list_schemas_lists_only_schemas_the_schema_argument_accepts(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute('CREATE SCHEMA "Odd-Name"; CREATE TABLE "Odd-Name".tasks (LIKE public.tasks)')
        assert "Odd-Name" not in await F.list_schemas(pg_url)
        for listed in await F.list_schemas(pg_url):
            await F.tasks_frame(pg_url, schema=listed)  # each one can be read
    finally:
        await conn.execute('DROP SCHEMA "Odd-Name" CASCADE')
        await conn.close()


async def test_list_schemas_and_the_schema_argument(
    pg_storage: PostgresStorage, pg_url: str, other_schemas: str
) -> None:
    found = await F.list_schemas(pg_url)
    assert "public" in found and other_schemas in found and "not_bindu" not in found
    assert await F.list_schemas(pg_storage) == found
    assert await F.list_schemas(InMemoryStorage()) == []
    two = postgres_storage(pg_url, schema=other_schemas)
    await two.connect()
    try:
        await two.submit_task(CTX_A, msg(T5, CTX_A, 1))
        assert ids(await F.tasks_frame(pg_url, schema=other_schemas)) == s(T5)
        assert ids(await F.tasks_frame(pg_storage, schema=other_schemas)) == s(T5)  # overrides its own
        assert ids(await F.tasks_frame(two)) == s(T5)
        assert len(await F.tasks_frame(pg_url)) == 0  # public is empty
    finally:
        await two.close()


# --- surviving interrupted reads -------------------------------------------------------------------


def test_which_interruptions_a_read_survives() -> None:
    conflict = asyncpg.exceptions.QueryCanceledError("canceling statement due to conflict with recovery")
    timeout = asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")
    assert is_resumable(asyncpg.exceptions.SerializationError("could not serialize access"))
    assert is_resumable(conflict)
    assert is_resumable(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert is_resumable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert is_resumable(ConnectionResetError())
    assert not is_resumable(timeout)
    assert not is_resumable(TimeoutError())  # an OSError, but final
    assert not is_resumable(asyncpg.exceptions.UndefinedColumnError("column x does not exist"))
    assert not is_resumable(InvalidValueError("bad"))
    assert is_resumable(StorageConnectionError("reconnect failed"))


async def _terminate_readers(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = ANY($1::text[]) AND pid <> pg_backend_pid()"
            " AND datname = current_database()",
            [APPLICATION_NAME, "bindu-storage"],
        ))
    finally:
        await conn.close()


@pytest.mark.parametrize("through", ["url", "storage"])
async def test_stream_resumes_after_its_backend_is_killed_between_chunks(
    pg_storage: PostgresStorage, pg_url: str, through: str, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(pg_storage)
    whole = await F.messages_frame(pg_storage)
    source: Any = pg_url if through == "url" else pg_storage
    parts = []
    with caplog.at_level(logging.WARNING, logger="bindu_storage.analysis.frames"):
        async for chunk in F.messages_frame(source, chunksize=2):
            parts.append(chunk)
            if len(parts) == 2:
                assert await _terminate_readers(pg_url) >= 1
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)  # every row, once
    assert [len(p) for p in parts] == [2, 2, 2, 1]
    if through == "url":  # (a pool replaces a dead connection before handing it out)
        assert "resuming from the last completed chunk" in caplog.text


async def test_stream_on_a_hot_standby_survives_a_recovery_conflict(caplog: pytest.LogCaptureFixture) -> None:
    """A real conflict: the primary vacuums rows the standby's running chunk query may need."""
    n = 30_000
    with TemporaryPostgres() as primary:
        await migrate.upgrade(primary.url)
        conn = await asyncpg.connect(primary.url)
        await conn.execute(
            f"INSERT INTO contexts (id) VALUES ('{CTX_A}');"
            "CREATE TABLE junk (id int); ALTER TABLE junk SET (autovacuum_enabled = off)"
        )
        await conn.execute(
            "INSERT INTO tasks (id, context_id, state, state_timestamp, metadata)"
            f" SELECT md5(g::text)::uuid, '{CTX_A}', 'completed', now(),"
            " jsonb_build_object('a', g, 'b', 'x' || g, 'c', jsonb_build_object('d', g % 7, 'e', g % 2 = 0),"
            "   'f', g / 3.0, 'g', jsonb_build_array(g), 'h', 'y', 'i', g, 'j', g, 'k', g)"
            f" FROM generate_series(1, {n}) AS g ORDER BY g"
        )
        standby = primary.replica()
        try:
            admin = await asyncpg.connect(standby.url)
            await admin.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
            await admin.execute("SELECT pg_reload_conf()")
            lsn = await conn.fetchval("SELECT pg_current_wal_lsn()")
            while not await admin.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn):
                await asyncio.sleep(0.05)
            for _ in range(100):  # the reload reaches backends asynchronously
                if await admin.fetchval("SHOW max_standby_streaming_delay") == "0":
                    break
                await asyncio.sleep(0.05)
            assert await admin.fetchval("SHOW max_standby_streaming_delay") == "0"
            expected = [str(r["id"]) for r in await admin.fetch("SELECT id FROM tasks ORDER BY seq")]
            assert len(expected) == n
            resumed = 0
            for _attempt in range(5):  # the conflict must hit while the chunk query runs
                caplog.clear()
                with caplog.at_level(logging.WARNING, logger="bindu_storage.analysis.frames"):
                    reading = asyncio.ensure_future(chunks(F.tasks_frame(standby.url, chunksize=n)))
                    while not reading.done() and not await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                        " AND state = 'active' AND strpos(query, $2) > 0", APPLICATION_NAME, PAGE_MARK,
                    ):
                        await asyncio.sleep(0.005)
                    await conn.execute("INSERT INTO junk SELECT generate_series(1, 1000)")
                    await conn.execute("DELETE FROM junk")
                    await conn.execute("VACUUM junk")
                    parts = await reading
                got = pd.concat(parts, ignore_index=True)
                assert got["id"].tolist() == expected  # every row, once, in order
                assert got["metadata.a"].tolist() == list(range(1, n + 1))
                if "conflict with recovery" in caplog.text:
                    resumed += 1
                    break
            assert resumed, "no recovery conflict hit a running chunk query in 5 attempts"
            await admin.close()
        finally:
            await conn.close()
            standby.stop()
