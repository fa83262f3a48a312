"""Task fidelity and the change feed on both backends (issue 12, items 5 and 6).

``status.message`` (set, cleared, kept by a terminal task), artifact replace vs append, and
``changes``: kinds, resumable cursors, per task and per owner. The contract tests run on memory,
PostgreSQL and PostgreSQL behind PgBouncer; a differential test compares the backends on random
sequences; concurrent writers check that a reader following the feed sees every change once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from conftest import POOLED_BACKENDS, open_backend, postgres_storage, truncate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import OPERATIONS, TASKS, Target, artifacts, blank_times, call, messages

from bindu_storage import InMemoryStorage, InvalidTypeError, InvalidValueError, Storage
from bindu_storage.errors import TerminalTaskError


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


def message(task_id: UUID, context_id: UUID, text: str = "hi", role: str = "user") -> dict[str, Any]:
    """An A2A message of one text part."""
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}],
    }


def artifact(artifact_id: str, *texts: str) -> dict[str, Any]:
    """An artifact of text parts."""
    return {"artifact_id": artifact_id, "parts": [{"kind": "text", "text": t} for t in texts]}


async def new_task(storage: Storage, owner: str | None = None) -> tuple[UUID, UUID]:
    """Submit a new task in a new context; its id and the context's."""
    tid, cid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid), caller_did=owner)
    return tid, cid


async def everything(storage: Storage, **scope: Any) -> list[dict[str, Any]]:
    """Every change, read in pages of two (resuming from the last cursor each time)."""
    out: list[dict[str, Any]] = []
    since = None
    while page := await storage.changes(since, limit=2, **scope):
        out.extend(page)
        since = page[-1]["cursor"]
    return out


# --- status.message ----------------------------------------------------------------------------


async def test_status_message_is_stored_returned_and_cleared(storage: Storage) -> None:
    tid, cid = await new_task(storage)
    question = message(tid, cid, "which city?", role="agent")
    task = await storage.update_task(tid, "input-required", status_message=question)
    assert task["status"]["state"] == "input-required" and task["status"]["message"] == question
    loaded = await storage.load_task(tid)
    assert loaded is not None and loaded["status"]["message"] == question
    assert (await storage.list_tasks())[0]["status"]["message"] == question
    page = await storage.list_tasks_page()
    assert page["tasks"][0]["status"]["message"] == question
    assert question["message_id"] not in [m["message_id"] for m in loaded["history"]]  # not added
    # a new status without a message clears it (the protocol's status replaces the whole status)
    task = await storage.update_task(tid, "working")
    assert "message" not in task["status"]
    loaded = await storage.load_task(tid)
    assert loaded is not None and "message" not in loaded["status"]


async def test_continuing_or_moving_a_task_clears_its_status_message(storage: Storage) -> None:
    tid, cid = await new_task(storage)
    await storage.update_task(tid, "input-required", status_message=message(tid, cid, "?", "agent"))
    task = await storage.submit_task(cid, message(tid, cid, "Paris"))
    assert task["status"]["state"] == "submitted" and "message" not in task["status"]
    await storage.update_task(tid, "input-required", status_message=message(tid, cid, "?", "agent"))
    assert await storage.update_task_state_if(tid, "input-required", "working")
    loaded = await storage.load_task(tid)
    assert loaded is not None and "message" not in loaded["status"]


async def test_a_terminal_task_keeps_its_status_message(storage: Storage) -> None:
    tid, cid = await new_task(storage)
    why = message(tid, cid, "no such city", role="agent")
    await storage.update_task(tid, "failed", status_message=why)
    again = await storage.update_task(tid, "failed", status_message=why)  # a retry: no-op
    assert again["status"]["message"] == why
    kept = await storage.update_task(tid, "failed", metadata={"k": 1})  # metadata only: kept
    assert kept["status"]["message"] == why and kept["metadata"] == {"k": 1}
    with pytest.raises(TerminalTaskError, match="status message"):
        await storage.update_task(tid, "failed", status_message=message(tid, cid, "other"))
    loaded = await storage.load_task(tid)
    assert loaded is not None and loaded["status"]["message"] == why


async def test_a_status_message_is_validated_as_a_message(storage: Storage) -> None:
    tid, _ = await new_task(storage)
    with pytest.raises(InvalidValueError, match="message_id"):
        await storage.update_task(tid, "working", status_message={"role": "agent", "parts": []})
    with pytest.raises((InvalidTypeError, InvalidValueError)):
        await storage.update_task(tid, "working", status_message="hi")  # type: ignore[arg-type]


# --- artifact replace vs append ----------------------------------------------------------------


async def test_artifact_updates_append_or_replace(storage: Storage) -> None:
    tid, _ = await new_task(storage)
    await storage.append_artifact_chunk(tid, artifact("a", "one"))
    await storage.append_artifact_chunk(tid, artifact("b", "other"))
    await storage.append_artifact_chunk(tid, artifact("a", "two"))  # append=True: extend the parts
    await storage.append_artifact_chunk(tid, artifact("b", "new"), append=False)  # replace b
    await storage.append_artifact_chunk(tid, artifact("c", "first"), append=False)  # new: added
    task = await storage.load_task(tid)
    assert task is not None
    assert task["artifacts"] == [artifact("a", "one", "two"), artifact("b", "new"), artifact("c", "first")]
    await storage.update_task(tid, "completed")
    with pytest.raises(TerminalTaskError):
        await storage.append_artifact_chunk(tid, artifact("a", "late"), append=False)
    with pytest.raises(InvalidTypeError, match="append"):
        await storage.append_artifact_chunk(tid, artifact("a", "x"), append="no")  # type: ignore[arg-type]


# --- the change feed ---------------------------------------------------------------------------


async def test_every_change_is_in_the_feed_in_order(storage: Storage) -> None:
    tid, cid = await new_task(storage)
    first = (await storage.load_task(tid))["history"][0]  # type: ignore[index]
    question = message(tid, cid, "which city?", role="agent")
    reply = message(tid, cid, "working on it", role="agent")
    await storage.update_task(tid, "working", new_messages=[reply])
    await storage.update_task(tid, "working", metadata={"only": "metadata"})  # not a change
    await storage.update_task(tid, "input-required", status_message=question)
    await storage.append_artifact_chunk(tid, artifact("a", "one"))
    await storage.append_artifact_chunk(tid, artifact("a", "two"))
    await storage.append_artifact_chunk(tid, artifact("a", "whole"), append=False)
    await storage.update_task(tid, "completed", new_artifacts=[artifact("z", "done")])
    await storage.update_task(tid, "completed", metadata={"after": True})  # not a change

    found = await storage.changes()
    assert [c["cursor"] for c in found] == sorted(c["cursor"] for c in found)
    assert len({c["cursor"] for c in found}) == len(found)
    shape = [(c["kind"], c["from_state"], c["state"], c["status_message"], c["messages"], c["artifacts"])
             for c in found]
    assert shape == [
        ("status", None, "submitted", None, [first], []),
        ("status", "submitted", "working", None, [reply], []),
        ("status", "working", "input-required", question, [], []),
        ("artifact", "input-required", "input-required", None, [], [artifact("a", "one")]),
        ("artifact-chunk", "input-required", "input-required", None, [], [artifact("a", "two")]),
        ("artifact", "input-required", "input-required", None, [], [artifact("a", "whole")]),
        ("status", "input-required", "completed", None, [], [artifact("z", "done")]),
    ]
    assert all(c["task_id"] == tid and c["at"].tzinfo is not None for c in found)
    # the state changes of task_events are unchanged by the feed's other rows
    events = await storage.task_events(tid)
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "submitted"), ("submitted", "working"), ("working", "input-required"),
        ("input-required", "completed")]


async def test_the_feed_resumes_per_task_and_per_owner(storage: Storage) -> None:
    a, _ = await new_task(storage, owner="did:a")
    b, _ = await new_task(storage, owner="did:b")
    await storage.update_task(a, "working")
    await storage.update_task(b, "working")
    head = await storage.changes()
    assert len(head) == 4
    assert await everything(storage) == head  # page by page, from each last cursor
    assert await storage.changes(head[-1]["cursor"]) == []
    assert await storage.changes(head[1]["cursor"]) == head[2:]
    assert [c["task_id"] for c in await storage.changes(task_id=a)] == [a, a]
    assert [c["task_id"] for c in await everything(storage, owner_did="did:b")] == [b, b]
    assert await storage.changes(owner_did="did:nobody") == []
    await storage.update_task(a, "completed")
    later = await storage.changes(head[-1]["cursor"])
    assert [(c["task_id"], c["state"]) for c in later] == [(a, "completed")]
    await storage.delete_task(a)  # a deleted task's changes go with it
    assert {c["task_id"] for c in await storage.changes()} == {b}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"since": -1}, InvalidValueError), ({"since": "3"}, InvalidTypeError),
     ({"since": True}, InvalidTypeError), ({"limit": 0}, InvalidValueError),
     ({"limit": 10_001}, InvalidValueError), ({"limit": 1.5}, InvalidTypeError),
     ({"task_id": "not a uuid"}, InvalidValueError)],
)
async def test_bad_feed_arguments_raise_typed_errors(
    storage: Storage, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await storage.changes(**kwargs)


async def test_concurrent_writers_never_make_a_follower_skip_or_repeat(storage: Storage) -> None:
    """Writers update tasks while a follower reads on from its cursor: it sees each change once."""
    tasks = [(await new_task(storage))[0] for _ in range(6)]
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def writer(tid: UUID) -> None:
        for i in range(8):
            await storage.append_artifact_chunk(tid, artifact(f"a{i % 2}", f"part {i}"))
            await storage.update_task(tid, "working" if i % 2 else "input-required")

    async def follower() -> None:
        since = None
        while True:
            finished = done.is_set()
            page = await storage.changes(since, limit=7)
            seen.extend(page)
            if page:
                since = page[-1]["cursor"]
            elif finished:
                return
            await asyncio.sleep(0)

    reader = asyncio.create_task(follower())
    await asyncio.gather(*(writer(t) for t in tasks))
    done.set()
    await reader
    everything_now = await storage.changes(limit=10_000)
    assert [c["cursor"] for c in seen] == [c["cursor"] for c in everything_now]
    assert len(everything_now) == 6 * (1 + 16)
    for tid in tasks:  # one task's changes come in the order they were made
        mine = [c for c in seen if c["task_id"] == tid]
        assert [c["kind"] for c in mine[1:3]] == ["artifact", "status"]
        assert [c["artifacts"][0]["parts"][0]["text"] for c in mine if c["kind"] != "status"] == [
            f"part {i}" for i in range(8)]


# --- the backends agree --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_target(pg_url: str) -> Target:
    """The migrated test database, for the hypothesis test."""
    return Target(pg_url)


FEED_OPERATIONS = st.one_of(
    OPERATIONS,
    st.tuples(st.just("status"), st.sampled_from(TASKS), st.sampled_from(["working", "input-required",
                                                                        "completed"]),
              st.none() | messages()),
    st.tuples(st.just("chunk"), st.sampled_from(TASKS), artifacts(), st.booleans()),
    st.tuples(st.just("changes"), st.integers(0, 6), st.none() | st.sampled_from(TASKS)),
)


async def step(storage: Storage, op: tuple[Any, ...]) -> Any:
    """Run one operation; the feed's cursors become their rank (their values differ by backend)."""
    name, *args = op
    try:
        if name == "status":
            return blank_times(await storage.update_task(args[0], args[1], status_message=args[2]))
        if name == "chunk":
            return await storage.append_artifact_chunk(args[0], args[1], append=args[2])
        if name == "changes":
            found = await storage.changes(task_id=args[1])
            since = found[args[0] - 1]["cursor"] if 0 < args[0] <= len(found) else None
            after = await storage.changes(since, task_id=args[1])
            return [blank_times({**c, "cursor": None}) for c in after]
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))
    return await call(storage, op)


async def run_both(url: str, steps: list[tuple[Any, ...]]) -> None:
    """Apply ``steps`` to both backends; every answer and the whole feed must agree."""
    await truncate(url)
    memory = InMemoryStorage()
    async with postgres_storage(url, pool_max=2) as pg:
        for n, op in enumerate(steps):
            expected, actual = await step(memory, op), await step(pg, op)
            assert actual == expected, f"step {n}: {op!r}\n memory:   {expected!r}\n postgres: {actual!r}"
        final = [await step(s, ("changes", 0, None)) for s in (memory, pg)]
        assert final[0] == final[1]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(FEED_OPERATIONS, min_size=1, max_size=25))
def test_backends_agree_on_status_messages_artifacts_and_the_feed(
    pg_target: Target, steps: list[tuple[Any, ...]]
) -> None:
    asyncio.run(run_both(pg_target.url, steps))
