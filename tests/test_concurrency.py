"""Concurrent calls on one task: nothing lost, nothing doubled, one winner, on both backends.

The Postgres storage of the ``storage`` fixture has a pool of up to 10 connections, so the
``asyncio.gather`` calls below really run as concurrent transactions on the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import POOLED_BACKENDS, open_backend, postgres_storage, truncate

from bindu_storage import OwnershipError, Storage


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


def message(task_id: uuid.UUID, context_id: uuid.UUID, text: str, role: str = "user") -> dict[str, Any]:
    """A one-part text message with a fresh id."""
    return {
        "message_id": str(uuid.uuid4()),
        "task_id": str(task_id),
        "context_id": str(context_id),
        "kind": "message",
        "role": role,
        "parts": [{"kind": "text", "text": text}],
    }


async def test_concurrent_update_task_appends_lose_nothing(storage: Storage) -> None:
    cid, tid = uuid.uuid4(), uuid.uuid4()
    first = message(tid, cid, "start")
    await storage.submit_task(cid, first)
    replies = [message(tid, cid, f"reply {i}", role="agent") for i in range(100)]
    artifacts = [{"artifact_id": f"a{i}", "parts": [{"kind": "text", "text": str(i)}]} for i in range(100)]

    results = await asyncio.gather(*(
        storage.update_task(tid, "working", new_messages=[reply], new_artifacts=[art], metadata={f"k{i}": i})
        for i, (reply, art) in enumerate(zip(replies, artifacts, strict=True))
    ))

    assert all(r["status"]["state"] == "working" for r in results)
    task = await storage.load_task(tid)
    assert task is not None
    history_ids = [m["message_id"] for m in task["history"]]
    assert history_ids[0] == first["message_id"]
    assert Counter(history_ids[1:]) == Counter(r["message_id"] for r in replies)
    stored_artifacts = Counter(a["artifact_id"] for a in task["artifacts"])
    assert stored_artifacts == Counter(a["artifact_id"] for a in artifacts)
    assert task["metadata"] == {f"k{i}": i for i in range(100)}
    # each call returned the task with its own append applied
    for reply, result in zip(replies, results, strict=True):
        assert reply["message_id"] in {m["message_id"] for m in result["history"]}
    # the state changed once: one event besides the creation
    events = await storage.task_events(tid)
    transitions = [(e["from_state"], e["to_state"]) for e in events]
    assert transitions == [(None, "submitted"), ("submitted", "working")]


async def test_concurrent_appends_and_continues_mixed(storage: Storage) -> None:
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid, "start"))
    user_turns = [message(tid, cid, f"user {i}") for i in range(25)]
    agent_turns = [message(tid, cid, f"agent {i}", role="agent") for i in range(25)]
    calls = [storage.submit_task(cid, m) for m in user_turns]
    calls += [storage.update_task(tid, "working", new_messages=[m]) for m in agent_turns]
    await asyncio.gather(*calls)
    task = await storage.load_task(tid)
    assert task is not None
    stored = Counter(m["message_id"] for m in task["history"][1:])
    assert stored == Counter(m["message_id"] for m in user_turns + agent_turns)


async def test_concurrent_submits_of_one_new_task_all_succeed(storage: Storage) -> None:
    cid, tid = uuid.uuid4(), uuid.uuid4()
    turns = [message(tid, cid, f"turn {i}") for i in range(30)]

    results = await asyncio.gather(*(storage.submit_task(cid, m, caller_did="did:one") for m in turns))

    assert all(r["id"] == tid and r["status"]["state"] == "submitted" for r in results)
    assert await storage.count_tasks() == 1
    task = await storage.load_task(tid)
    assert task is not None
    assert Counter(m["message_id"] for m in task["history"]) == Counter(m["message_id"] for m in turns)
    # exactly one of them created the task: one creation event, no other state change
    events = await storage.task_events(tid)
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "submitted")]
    # and one context, owned by the caller
    assert [c["context_id"] for c in await storage.list_contexts()] == [cid]
    assert await storage.get_context_owner(cid) == "did:one"
    assert await storage.get_task_owner(tid) == "did:one"


async def test_concurrent_submits_of_distinct_tasks_into_one_new_context(storage: Storage) -> None:
    cid = uuid.uuid4()
    tids = [uuid.uuid4() for _ in range(30)]
    await asyncio.gather(*(storage.submit_task(cid, message(t, cid, "hi"), caller_did="did:a") for t in tids))
    (context,) = await storage.list_contexts()
    assert context["context_id"] == cid and context["task_count"] == 30
    assert set(context["task_ids"]) == set(tids)
    assert len(await storage.task_events()) == 30


async def test_concurrent_callers_racing_for_a_new_context_one_owns_it(storage: Storage) -> None:
    cid = uuid.uuid4()
    callers = [f"did:caller:{i}" for i in range(12)]
    tids = [uuid.uuid4() for _ in callers]

    outcomes = await asyncio.gather(
        *(
            storage.submit_task(cid, message(t, cid, "mine"), caller_did=c)
            for t, c in zip(tids, callers, strict=True)
        ),
        return_exceptions=True,
    )

    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(outcomes[i], OwnershipError) for i in range(len(callers)) if i not in winners)
    owner = callers[winners[0]]
    assert await storage.get_context_owner(cid) == owner
    assert [t["id"] for t in await storage.list_tasks()] == [tids[winners[0]]]


async def test_concurrent_state_if_has_exactly_one_winner(storage: Storage) -> None:
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid, "go"))
    targets = ["working", "canceled", "failed", "input-required", "completed"] * 8

    won = await asyncio.gather(*(storage.update_task_state_if(tid, "submitted", t) for t in targets))

    assert won.count(True) == 1
    winner = targets[won.index(True)]
    task = await storage.load_task(tid)
    assert task is not None and task["status"]["state"] == winner
    events = await storage.task_events(tid)
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "submitted"), ("submitted", winner)]


async def test_concurrent_state_if_claims_each_task_once(storage: Storage) -> None:
    """Workers claiming tasks (submitted -> working): every task is claimed exactly once."""
    cid = uuid.uuid4()
    tids = [uuid.uuid4() for _ in range(10)]
    for t in tids:
        await storage.submit_task(cid, message(t, cid, "job"))

    claims = await asyncio.gather(*(
        storage.update_task_state_if(t, "submitted", "working") for t in tids for _ in range(5)
    ))

    assert claims.count(True) == len(tids)
    per_task = [claims[i * 5:(i + 1) * 5] for i in range(len(tids))]
    assert all(c.count(True) == 1 for c in per_task)
    assert await storage.count_tasks("working") == len(tids)


async def test_concurrent_feedback_and_context_appends_lose_nothing(storage: Storage) -> None:
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid, "rate me"))
    notes = [message(tid, cid, f"note {i}") for i in range(40)]
    await asyncio.gather(
        *(storage.store_task_feedback(tid, {"rating": i}) for i in range(40)),
        *(storage.append_to_contexts(cid, [n]) for n in notes),
    )
    feedback = await storage.get_task_feedback(tid)
    assert feedback is not None and sorted(f["rating"] for f in feedback) == list(range(40))
    (record,) = await storage.context_records()
    assert Counter(m["message_id"] for m in record["message_history"]) == Counter(
        n["message_id"] for n in notes
    )


async def test_concurrent_submits_into_one_new_context_need_no_retry(pg_url: str) -> None:
    """No lock-order deadlock between submits creating tasks in one new context.

    With retries off, a deadlock (which the server breaks by aborting one transaction) would
    surface as an error instead of being hidden by a retry.
    """
    await truncate(pg_url)
    async with postgres_storage(pg_url, max_retries=0, pool_max=10) as storage:
        for _ in range(5):
            cid = uuid.uuid4()
            tids = [uuid.uuid4() for _ in range(10)]
            await asyncio.gather(*(storage.submit_task(cid, message(t, cid, "hi")) for t in tids))
            assert [t["id"] for t in await storage.list_tasks_by_context(cid)] != []
            assert await storage.count_tasks() % 10 == 0
