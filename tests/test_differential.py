"""Differential test: random operation sequences give equal results on both backends.

Hypothesis draws a sequence of storage calls over a small pool of ids (so that calls collide:
continues, terminal refusals, ownership conflicts, replays) with JSON payloads that are
sometimes not storable (NaN, NUL, lone surrogates, non-string keys). Each sequence runs on a
fresh ``InMemoryStorage`` and on a ``PostgresStorage`` over emptied tables; every call must give
the same result or raise the same error with the same message. Timestamps legitimately differ in
value, so they are checked for presence and order within each backend and then blanked; serial
ids (events, feedback) are compared by rank.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime
from typing import Any

import pytest
from conftest import postgres_storage, truncate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindu_storage import InMemoryStorage, Storage
from bindu_storage.dsn import mask_url
from bindu_storage.types import TASK_STATES

CONTEXTS = [uuid.UUID(int=0xC0 + i) for i in range(3)]
TASKS = [uuid.UUID(int=0x7A + i) for i in range(5)]
MESSAGE_IDS = [f"m{i}" for i in range(8)]
ARTIFACT_IDS = [f"a{i}" for i in range(4)]
DIDS = [None, "did:a", "did:b"]
STATES = [*sorted(TASK_STATES), "bogus"]
TIME = "<time>"

# --- payloads --------------------------------------------------------------------------------



def rarely(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` nine times in ten, ``rare`` otherwise."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 0 else common)


UNSTORABLE = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", math.nan, math.inf, -math.inf])
texts = rarely(st.text(max_size=6), st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff"]))
keys = rarely(st.text(max_size=4), st.sampled_from(["k\x00", "\udc00"]))
# floats whose JSON text PostgreSQL keeps as an exact decimal: the backends must agree on them too
EDGE_NUMBERS = st.sampled_from([1e23, -1.5e300, 1.7976931348623157e308, 1e16, 5e-324, 0.1, -0.0, 2**63])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | EDGE_NUMBERS
    | texts
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(keys, inner, max_size=3)
    | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
).flatmap(lambda value: rarely(st.just(value), UNSTORABLE | st.just({1: value})))  # sometimes unstorable
json_objects = st.dictionaries(keys, json_values, max_size=3)
indexes = st.integers(0, 4)
lengths = st.none() | st.integers(0, 4)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message of one text part for a task of the pool (its id may be a replay)."""
    tid = draw(st.sampled_from(TASKS))
    message: dict[str, Any] = {
        "message_id": draw(st.sampled_from(MESSAGE_IDS)),
        "task_id": str(tid),
        "context_id": str(draw(st.sampled_from(CONTEXTS))),
        "kind": "message",
        "role": draw(st.sampled_from(["user", "agent"])),
        "parts": [{"kind": "text", "text": draw(texts)}],
    }
    if draw(st.integers(0, 5)) == 0:
        message["metadata"] = draw(json_objects)
    return message


@st.composite
def artifacts(draw: st.DrawFn) -> dict[str, Any]:
    """An artifact of one data part (its id may be a replay)."""
    return {
        "artifact_id": draw(st.sampled_from(ARTIFACT_IDS)),
        "name": draw(st.text(max_size=3)),
        "parts": [{"kind": "data", "data": draw(json_objects)}],
    }


task_ids = st.sampled_from(TASKS)
context_ids = st.sampled_from(CONTEXTS)
owners = st.sampled_from(DIDS)
states = st.sampled_from(STATES)

OPERATIONS = st.one_of(
    st.tuples(st.just("submit_task"), context_ids, messages(), owners),
    st.tuples(st.just("submit_task"), context_ids, messages(), owners),  # twice: drawn more often
    st.tuples(
        st.just("update_task"), task_ids, states,
        st.none() | st.lists(artifacts(), max_size=2),
        st.none() | st.lists(messages(), max_size=2),
        st.none() | json_objects,
    ),
    st.tuples(st.just("update_task_state_if"), task_ids, states, states),
    st.tuples(st.just("load_task"), task_ids, lengths),
    st.tuples(st.just("list_tasks"), lengths, indexes, owners),
    st.tuples(st.just("list_tasks_by_context"), context_ids, lengths, indexes, owners),
    st.tuples(st.just("list_contexts"), lengths, indexes, owners),
    st.tuples(st.just("count_tasks"), st.none() | states),
    st.tuples(st.just("get_task_owner"), task_ids),
    st.tuples(st.just("get_context_owner"), context_ids),
    st.tuples(st.just("load_context"), context_ids),
    st.tuples(st.just("update_context"), context_ids, json_objects),
    st.tuples(st.just("append_to_contexts"), context_ids, st.lists(messages(), max_size=2)),
    st.tuples(st.just("clear_context"), context_ids),
    st.tuples(st.just("store_task_feedback"), task_ids, json_objects),
    st.tuples(st.just("get_task_feedback"), task_ids),
    st.tuples(st.just("save_webhook_config"), task_ids, json_objects),
    st.tuples(st.just("load_webhook_config"), task_ids),
    st.tuples(st.just("delete_webhook_config"), task_ids),
    st.tuples(st.just("load_all_webhook_configs")),
    st.tuples(st.just("task_events"), st.none() | task_ids),
)


# --- normalising what legitimately differs ---------------------------------------------------


def blank_times(value: Any) -> Any:
    """Replace every timestamp with a marker, after checking it is a timezone-aware value."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("created_at", "updated_at", "at"):
                assert isinstance(item, datetime) and item.tzinfo is not None, (key, item)
                out[key] = TIME
            elif key == "status" and isinstance(item, dict):
                stamp = datetime.fromisoformat(item["timestamp"])
                assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
                out[key] = {**item, "timestamp": TIME}
            else:
                out[key] = blank_times(item)
        return out
    if isinstance(value, list):
        return [blank_times(v) for v in value]
    if isinstance(value, tuple):
        return tuple(blank_times(v) for v in value)
    return value


def rank_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace serial ``id`` values by their rank (sequences may differ, order may not)."""
    order = {v: i for i, v in enumerate(sorted(r["id"] for r in records))}
    return [{**r, "id": order[r["id"]]} for r in records]


def check_times_in_order(records: list[dict[str, Any]], key: str) -> None:
    """Timestamps of records listed oldest first never go backwards."""
    stamps = [r[key] for r in records]
    assert stamps == sorted(stamps), f"{key} out of order"


# --- running a sequence ----------------------------------------------------------------------


class Target:
    """The test database URL, shown masked (hypothesis prints the arguments of a failing example)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"Target({mask_url(self.url)!r})"


@pytest.fixture(scope="session")
def pg_target(pg_url: str) -> Target:
    """The migrated test database, for the hypothesis tests."""
    return Target(pg_url)


async def call(storage: Storage, op: tuple[Any, ...]) -> Any:
    """Run one operation; return ("ok", result) or ("error", type, message)."""
    name, *args = op
    try:
        result = await getattr(storage, name)(*args)
    except Exception as exc:  # every failure must match too, whatever its type
        return ("error", type(exc).__name__, str(exc))
    if name == "task_events":
        check_times_in_order(result, "at")
        result = rank_ids(result)
    return ("ok", blank_times(result))


async def state_of(storage: Storage) -> dict[str, Any]:
    """Everything stored, through the read API, normalised."""
    tasks = await storage.task_records()
    contexts = await storage.context_records()
    feedback = await storage.feedback_records()
    events = await storage.task_events()
    for record in tasks + contexts:
        assert record["created_at"] <= record["updated_at"]
    check_times_in_order(tasks, "created_at")
    check_times_in_order(contexts, "created_at")
    check_times_in_order(feedback, "created_at")
    check_times_in_order(events, "at")
    return blank_times({
        "tasks": tasks,
        "contexts": contexts,
        "feedback": rank_ids(feedback),
        "events": rank_ids(events),
        "webhooks": await storage.load_all_webhook_configs(),
        "listed": await storage.list_tasks(),
        "contexts_listed": await storage.list_contexts(),
    })


async def run_both(pg_url: str, ops: list[tuple[Any, ...]]) -> None:
    """Apply ``ops`` to both backends, comparing every result and the final state."""
    await truncate(pg_url)
    memory = InMemoryStorage()
    async with postgres_storage(pg_url, pool_max=2) as pg:
        for step, op in enumerate(ops):
            expected = await call(memory, op)
            actual = await call(pg, op)
            assert actual == expected, f"step {step}: {op!r}\n memory:   {expected!r}\n postgres: {actual!r}"
        assert await state_of(pg) == await state_of(memory)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.lists(OPERATIONS, min_size=1, max_size=30))
def test_backends_agree_on_random_sequences(pg_target: Target, ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_both(pg_target.url, ops))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(OPERATIONS, max_size=12),
    after=st.lists(OPERATIONS, max_size=12),
)
def test_backends_agree_around_clear_all(
    pg_target: Target, before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]
) -> None:
    asyncio.run(run_both(pg_target.url, [*before, ("clear_all",), *after]))
