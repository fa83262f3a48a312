"""Faults the network injects, through a real proxy in front of the real server.

The worst moment for a client is a reply lost after its write committed: the write happened,
the client saw only a broken connection. These tests make exactly that happen (``FaultProxy``
swallows the statement's completion and cuts the connection) and check what the storage then
tells its caller: the truth, or, when it cannot know, that it cannot know.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import postgres_storage, truncate
from faultproxy import FaultProxy

from bindu_storage import (
    OutcomeUnknownError,
    PostgresStorage,
    StorageConnectionError,
    StorageTimeoutError,
)


def message(task_id: uuid.UUID, context_id: uuid.UUID) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": "claim me"}],
    }


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[FaultProxy]:
    await truncate(pg_url)
    running = await FaultProxy.start(pg_url)
    try:
        yield running
    finally:
        await running.close()


async def through(proxy: FaultProxy, pg_url: str, **options: Any) -> PostgresStorage:
    storage = postgres_storage(proxy.url(pg_url), **{"retry_delay": 0.001, "max_retries": 3, **options})
    await storage.connect()
    return storage


async def submitted_tasks(storage: PostgresStorage, count: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        cid, tid = uuid.uuid4(), uuid.uuid4()
        await storage.submit_task(cid, message(tid, cid))
        ids.append(tid)
    return ids


async def test_a_claim_whose_reply_is_lost_after_commit_still_answers_true(
    proxy: FaultProxy, pg_url: str
) -> None:
    storage = await through(proxy, pg_url)
    try:
        [tid] = await submitted_tasks(storage, 1)
        proxy.drop_replies_after_commit(1)
        assert await storage.update_task_state_if(tid, "submitted", "working") is True
        assert proxy.replies_dropped == 1  # the first attempt really committed unheard
        assert (await storage.load_task(tid))["status"]["state"] == "working"
        events = [(e["from_state"], e["to_state"]) for e in await storage.task_events(tid)]
        assert events == [(None, "submitted"), ("submitted", "working")]
    finally:
        await storage.close()


async def test_claims_are_exact_when_every_first_reply_is_lost(proxy: FaultProxy, pg_url: str) -> None:
    storage = await through(proxy, pg_url, pool_max=4)
    try:
        tasks = await submitted_tasks(storage, 60)
        answers = []
        for tid in tasks:
            proxy.drop_replies_after_commit(1)
            answers.append(await storage.update_task_state_if(tid, "submitted", "working"))
        assert proxy.replies_dropped == len(tasks)
        assert answers == [True] * len(tasks)  # misreported: 0
        # and a claim of a task someone else took is still an honest False
        assert await storage.update_task_state_if(tasks[0], "submitted", "working") is False
    finally:
        await storage.close()


async def test_contested_claims_have_exactly_one_winner_under_lost_replies(
    proxy: FaultProxy, pg_url: str
) -> None:
    """Two workers race for each task while replies after commit keep getting lost."""
    # two drops are armed per round, so one call can meet several in a row: more retries than 3
    a = await through(proxy, pg_url, pool_max=3, max_retries=10)
    b = await through(proxy, pg_url, pool_max=3, max_retries=10)
    try:
        tasks = await submitted_tasks(a, 40)
        wins = {tid: 0 for tid in tasks}

        async def worker(storage: PostgresStorage) -> None:
            for tid in tasks:
                proxy.drop_replies_after_commit(1)
                if await storage.update_task_state_if(tid, "submitted", "working"):
                    wins[tid] += 1

        await asyncio.gather(worker(a), worker(b))
        assert proxy.replies_dropped > 0
        assert set(wins.values()) == {1}, "every task claimed exactly once"
    finally:
        await a.close()
        await b.close()


async def test_a_write_that_may_have_applied_says_so(proxy: FaultProxy, pg_url: str) -> None:
    storage = await through(proxy, pg_url, pool_min=1, pool_max=1)
    try:
        [tid] = await submitted_tasks(storage, 1)
        proxy.drop_replies_after_commit(1)
        proxy.refuse_new_connections = True  # the retries cannot reach the server any more
        with pytest.raises(OutcomeUnknownError, match="may have been applied") as raised:
            await storage.update_task(tid, "working", metadata={"step": 1})
        assert "calling it again is safe" in str(raised.value)
        proxy.refuse_new_connections = False
        task = await storage.load_task(tid)
        assert task["status"]["state"] == "working" and task["metadata"] == {"step": 1}  # it had
        # calling it again is indeed safe: the same result, no second event
        await storage.update_task(tid, "working", metadata={"step": 1})
        assert len(await storage.task_events(tid)) == 2
    finally:
        await storage.close()


async def test_a_read_that_fails_is_just_a_connection_error(proxy: FaultProxy, pg_url: str) -> None:
    storage = await through(proxy, pg_url, pool_min=1, pool_max=1)
    try:
        [tid] = await submitted_tasks(storage, 1)
        proxy.refuse_new_connections = True
        proxy.cut_all()
        with pytest.raises(StorageConnectionError) as raised:
            await storage.load_task(tid)
        assert not isinstance(raised.value, OutcomeUnknownError)
        assert "load_task failed after 4 attempt(s)" in str(raised.value)
    finally:
        await storage.close()


async def test_waiting_for_a_pool_connection_and_a_slow_statement_say_which(pg_url: str) -> None:
    await truncate(pg_url)
    storage = postgres_storage(pg_url, pool_min=1, pool_max=1, timeout=0.3, command_timeout=0.5)
    await storage.connect()
    try:
        busy = asyncio.create_task(storage.fetch("SELECT pg_sleep(0.45)"))
        await asyncio.sleep(0.05)
        with pytest.raises(StorageTimeoutError) as pool_wait:
            await storage.load_task(uuid.uuid4())
        assert "waiting for a pooled connection" in str(pool_wait.value)
        assert "STORAGE__POSTGRES_POOL_MAX" in str(pool_wait.value)
        await busy
        with pytest.raises(StorageTimeoutError) as slow:
            await storage.fetch("SELECT pg_sleep(5)")
        assert "command_timeout=0.5s" in str(slow.value)
        assert "STORAGE__POSTGRES_COMMAND_TIMEOUT" in str(slow.value)
        assert isinstance(slow.value, TimeoutError)  # still what callers catch today
    finally:
        await storage.close()
