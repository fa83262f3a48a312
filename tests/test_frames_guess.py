"""Whole reads typed from a sampled guess (``frames._pg.guess``), and their fallback to full discovery.

A whole read whose flattened documents' sample is flat reads each sampled key as JSON text and
types it on the client; a page showing a key or an object the sample missed is read again
after full discovery. Each case compares the PostgreSQL frame with the in-memory backend's
(which walks every document) and with a chunked read (which always discovers in full), and
checks which path ran.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from test_frames import assert_same_frames, chunks, msg

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.analysis import frames as F
from bindu_storage.analysis.frames._pg import read as frames_read

CTX = uuid.UUID(int=0xE0)
TASKS = [uuid.UUID(int=0x300 + i) for i in range(6)]
CLOCKS = ("state_timestamp", "created_at", "updated_at")
ESCAPED = 'quote " backslash \\ tab \t newline \n é ✓ "q"'


async def seed_docs(st: Storage, metadata: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
    for task, meta in zip(TASKS, metadata, strict=False):
        await st.submit_task(CTX, msg(task, CTX, 1))
        await st.update_task(task, "working", metadata=meta)
    for task, data in zip(TASKS, feedback, strict=False):
        await st.store_task_feedback(task, data)


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a read ran: ``guess`` for a page read on a guess, ``full`` for a full discovery
    (``plan``: a chunked read's, or a whole read's after a failed guess); with a one-document
    sample, so that later documents hold what the sample lacks, and no limit on the keys guessed)."""
    monkeypatch.setattr(frames_read, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(frames_read, "GUESS_MAX_KEYS", 256)  # these documents' keys all guessed
    calls: list[str] = []
    full, guessed = frames_read.plan, frames_read._read_guessed

    async def counted_plan(*args: Any, **kwargs: Any) -> Any:
        calls.append("full")
        return await full(*args, **kwargs)

    async def counted_guess(*args: Any, **kwargs: Any) -> Any:
        calls.append("guess")
        return await guessed(*args, **kwargs)

    monkeypatch.setattr(frames_read, "plan", counted_plan)
    monkeypatch.setattr(frames_read, "_read_guessed", counted_guess)
    return calls


async def compare(
    pg: PostgresStorage, memory: InMemoryStorage, fallbacks: list[str], loader: Any, **kwargs: Any
) -> pd.DataFrame:
    """The PostgreSQL frame, checked against the memory backend's and a chunked read's
    (``fallbacks`` then counts the whole read's full discoveries only)."""
    parts = await chunks(loader(pg, chunksize=2, **kwargs)) if "limit" not in kwargs else []
    fallbacks.clear()
    left, right = await loader(memory, **kwargs), await loader(pg, **kwargs)
    clocks = [c for c in left.columns if c in CLOCKS]  # each backend's own clock
    assert_same_frames(left.drop(columns=clocks), right.drop(columns=clocks), loader.__name__)
    if parts:
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), right, check_exact=True)
    return right


async def both(
    metadata: list[dict[str, Any]], pg: PostgresStorage, feedback: list[dict[str, Any]] | None = None
) -> InMemoryStorage:
    """The same documents in a new in-memory storage and in ``pg``."""
    memory = InMemoryStorage()
    for store in (memory, pg):
        await seed_docs(store, metadata, feedback or [])
    return memory


async def test_types_the_sample_lacks_come_from_the_page(
    pg_storage: PostgresStorage, fallbacks: list[str]
) -> None:
    """Same keys everywhere, other types later: typed on the client, no second read."""
    metadata = [
        {"v": 1, "s": "plain", "b": True, "m": 1, "arr": [1, "x"], "api_key": "sk-1", "big": 1, "n": None},
        {
            "v": 2.5,
            "s": ESCAPED,
            "b": None,
            "m": "two",
            "arr": None,
            "api_key": None,
            "big": 2**63,
            "n": None,
        },
        {
            "v": -(2**63),
            "s": "",
            "b": False,
            "m": [3],
            "arr": [{"token": "t", "k": 1}],
            "api_key": "sk-2",
            "big": 10**18,
            "n": None,
        },
        {
            "v": 10**18,
            "s": "https://u:pw@host/x?access_token=abc",
            "b": True,
            "m": None,
            "arr": [],
            "api_key": "k",
            "big": 1,
            "n": None,
        },
    ]
    memory = await both(metadata, pg_storage)
    frame = await compare(pg_storage, memory, fallbacks, F.tasks_frame)
    assert fallbacks == ["guess"], "the guess held"
    dtypes = {c: str(frame[c].dtype) for c in frame.columns if c.startswith("metadata.")}
    assert dtypes == {
        "metadata.api_key": "str",
        "metadata.arr": "object",
        "metadata.b": "boolean",
        "metadata.big": "float64",
        "metadata.m": "object",
        "metadata.n": "object",
        "metadata.s": "str",
        "metadata.v": "float64",
    }
    assert frame["metadata.s"].tolist()[:3] == ["plain", ESCAPED, ""]
    assert frame["metadata.s"].iloc[3] == "https://u:***@host/x?access_token=***"
    assert frame["metadata.api_key"].iloc[0] == "***" and pd.isna(frame["metadata.api_key"].iloc[1])
    assert frame["metadata.arr"].iloc[2] == [{"token": "***", "k": 1}]
    assert frame["metadata.m"].tolist()[:3] == [1, "two", [3]]
    for kwargs in (
        {"metadata_columns": ["v", "nope", "s.x", "api_key"]},
        {"limit": 3},
        {"dtype_backend": "pyarrow"},
        {"columns": ["id", "metadata.b"]},
    ):
        await compare(pg_storage, memory, fallbacks, F.tasks_frame, **kwargs)
        assert fallbacks == ["guess"], kwargs


@pytest.mark.parametrize(
    "later",
    [
        {"v": 2, "new": "key"},  # a key the sample lacks
        {"v": {"w": 2, "x": [1]}},  # an object where the sample saw a number
        {"v": {}},  # an empty object: no column of its own
    ],
    ids=["new-key", "object", "empty-object"],
)
async def test_what_the_sample_missed_is_read_again_after_full_discovery(
    pg_storage: PostgresStorage, fallbacks: list[str], later: dict[str, Any]
) -> None:
    memory = await both([{"v": 1}, later, {"v": 3}], pg_storage)
    frame = await compare(pg_storage, memory, fallbacks, F.tasks_frame)
    assert fallbacks == ["guess", "full"]
    if "new" in later:
        assert frame["metadata.new"].tolist()[1] == "key"
    if later["v"] == {"w": 2, "x": [1]}:
        assert frame["metadata.v.w"].tolist()[1] == 2 and frame["metadata.v.x"].tolist()[1] == [1]


async def test_an_object_under_a_key_with_its_own_column_is_found(
    pg_storage: PostgresStorage, fallbacks: list[str]
) -> None:
    """``feedback_frame`` does not flatten ``rating``: an object there is still discovered."""
    feedback = [
        {"rating": 4, "channel": "web"},
        {"rating": {"score": 5}, "channel": "app"},
        {"rating": 3, "channel": "web", "comment": "ok"},
    ]
    memory = await both([{"v": 1}] * 3, pg_storage, feedback)
    frame = await compare(pg_storage, memory, fallbacks, F.feedback_frame)
    assert fallbacks == ["guess", "full"]
    assert frame["feedback.rating.score"].tolist()[1] == 5
    await compare(
        pg_storage, memory, fallbacks, F.feedback_frame, with_task=True, task_metadata_columns=["v"]
    )
    assert fallbacks == ["guess", "full"]  # the rating's object again (task metadata: other rows, in full)


async def test_a_flat_guess_holds_for_feedback(pg_storage: PostgresStorage, fallbacks: list[str]) -> None:
    feedback = [
        {"rating": 4, "channel": "web", "tags": ["a"], "comment": "c", "feedback": None},
        {"rating": 5.0, "channel": 7, "comment": "c"},
        {"rating": 1, "tags": None, "feedback": "f"},
    ]
    memory = await both([{"v": 1}] * 3, pg_storage, feedback)
    frame = await compare(pg_storage, memory, fallbacks, F.feedback_frame, with_task=True)
    assert fallbacks == ["guess"]
    assert str(frame["feedback.channel"].dtype) == "object" and frame["rating"].tolist() == [4, 5, 1]


async def test_documents_with_many_keys_are_verified_not_guessed(
    pg_storage: PostgresStorage, fallbacks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``GUESS_MAX_KEYS`` sampled keys the read verifies the sample's keys before the page."""
    monkeypatch.setattr(frames_read, "GUESS_MAX_KEYS", 4)
    many = {f"k{i}": i for i in range(5)}
    memory = await both([many, {**many, "k0": "zero"}, {"k9": True}], pg_storage)
    frame = await compare(pg_storage, memory, fallbacks, F.tasks_frame)
    assert fallbacks == [], "neither a guessed page nor a second read"
    assert frame["metadata.k0"].tolist() == [0, "zero", None] and frame["metadata.k9"].tolist()[2] is True
