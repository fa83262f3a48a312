"""Synthetic data: deterministic, plausible, and loaded identically into both backends."""

from __future__ import annotations

import itertools
import statistics
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg
import pytest
from conftest import postgres_storage

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.errors import InvalidValueError, StorageClosedError, StorageError
from bindu_storage.storage.clock import Clocked, clock_set_to
from bindu_storage.synthetic import AGENTS, DEFAULT_START, SyntheticData, generate, load
from bindu_storage.types import TASK_STATES, TERMINAL_STATES

TRANSITIONS = {
    (None, "submitted"), ("submitted", "working"), ("submitted", "rejected"),
    ("working", "input-required"), ("working", "completed"), ("working", "failed"),
    ("working", "canceled"), ("input-required", "submitted"), ("input-required", "canceled"),
}
"""The moves an A2A task makes here (continuing a task goes back through submitted)."""


@pytest.fixture(scope="module")
def big() -> SyntheticData:
    return generate(6000, seed=1)


def _events_by_task(data: SyntheticData) -> dict[uuid.UUID, list]:
    out: dict[uuid.UUID, list] = defaultdict(list)
    for e in data.events:
        out[e["task_id"]].append(e)
    return out


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_data_ids_included() -> None:
    a, b = generate(300, seed=7), generate(300, seed=7)
    assert a == b
    assert [r["task"]["id"] for r in a.tasks] == [r["task"]["id"] for r in b.tasks]
    other = generate(300, seed=8)
    assert {r["task"]["id"] for r in a.tasks}.isdisjoint(r["task"]["id"] for r in other.tasks)


def test_a_week_later_start_moves_the_timeline_only() -> None:
    a = generate(50, seed=3)
    b = generate(50, seed=3, start=DEFAULT_START + timedelta(days=7))
    assert [r["task"]["id"] for r in a.tasks] == [r["task"]["id"] for r in b.tasks]
    assert all(rb["created_at"] - ra["created_at"] == timedelta(days=7)
               for ra, rb in zip(a.tasks, b.tasks, strict=True))


def test_ids_are_version_4_uuids(big: SyntheticData) -> None:
    ids = [r["task"]["id"] for r in big.tasks] + [c["context_id"] for c in big.contexts]
    assert all(isinstance(i, uuid.UUID) and i.version == 4 for i in ids)
    messages = [m["message_id"] for r in big.tasks for m in r["task"]["history"]]
    assert all(str(uuid.UUID(m)) == m and uuid.UUID(m).version == 4 for m in messages)
    assert len(set(messages)) == len(messages)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_tasks": -1}, "n_tasks"),
        ({"n_tasks": 1.5}, "n_tasks"),
        ({"n_tasks": 10, "seed": "x"}, "seed"),
        ({"n_tasks": 10, "start": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"n_tasks": 10, "days": 0}, "days"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(InvalidValueError, match=needle):
        generate(**kwargs)


# --- plausibility --------------------------------------------------------------------------------


def test_lifecycles_follow_the_state_machine(big: SyntheticData) -> None:
    events = _events_by_task(big)
    for rec in big.tasks:
        task = rec["task"]
        chain = events[task["id"]]
        assert chain[0]["from_state"] is None and chain[0]["to_state"] == "submitted"
        for prev, ev in itertools.pairwise(chain):
            assert ev["from_state"] == prev["to_state"]
            assert ev["at"] >= prev["at"]
            assert prev["to_state"] not in TERMINAL_STATES, "nothing happens after a terminal state"
        for ev in chain:
            assert (ev["from_state"], ev["to_state"]) in TRANSITIONS
        assert task["status"]["state"] == chain[-1]["to_state"]
        assert rec["created_at"] == chain[0]["at"]
        assert rec["updated_at"] == chain[-1]["at"]
        assert datetime.fromisoformat(task["status"]["timestamp"]) == chain[-1]["at"]


def test_histories_are_conversations(big: SyntheticData) -> None:
    events = _events_by_task(big)
    for rec in big.tasks:
        task = rec["task"]
        history = task["history"]
        assert history[0]["role"] == "user"
        assert all(m["task_id"] == str(task["id"]) and m["context_id"] == str(task["context_id"])
                   for m in history)
        answers = sum(e["from_state"] == "input-required" and e["to_state"] == "submitted"
                      for e in events[task["id"]])
        questions = sum(e["to_state"] == "input-required" for e in events[task["id"]])
        assert sum(m["role"] == "user" for m in history) == 1 + answers
        assert sum(m["role"] == "agent" for m in history) >= questions
    kinds = {p["kind"] for r in big.tasks for m in r["task"]["history"] for p in m["parts"]}
    assert kinds == {"text", "data", "file"}


def test_state_mix_and_metadata(big: SyntheticData) -> None:
    states = defaultdict(int)
    for rec in big.tasks:
        states[rec["task"]["status"]["state"]] += 1
        meta = rec["task"]["metadata"]
        assert {"agent", "skill", "priority", "model", "tokens_in", "tokens_out", "cost_usd"} <= set(meta)
        state = rec["task"]["status"]["state"]
        if state in TERMINAL_STATES:
            assert meta["duration_s"] == pytest.approx(
                (rec["updated_at"] - rec["created_at"]).total_seconds(), abs=1e-3)
        if state == "completed":
            assert rec["task"]["artifacts"]
        if state == "failed":
            assert meta["error_type"]
        if meta["skill"] in ("deep-research", "book-trip") and state == "completed":
            assert meta["x402.payment.status"] == "payment-completed"
            assert meta["x402.payment.asset"] == "USDC"
    assert set(states) <= TASK_STATES
    assert 0.75 < states["completed"] / len(big.tasks) < 0.95
    for state in ("failed", "canceled", "rejected", "input-required", "working"):
        assert states[state] > 0, state
    assert {r["task"]["metadata"]["agent"] for r in big.tasks} == {a.name for a in AGENTS}


def test_ratings_depend_on_agent_and_duration(big: SyntheticData) -> None:
    tasks = {r["task"]["id"]: r["task"] for r in big.tasks}
    updated = {r["task"]["id"]: r["updated_at"] for r in big.tasks}
    by_agent: dict[str, list[int]] = defaultdict(list)
    by_speed: dict[str, list[int]] = defaultdict(list)
    per_skill: dict[str, list[float]] = defaultdict(list)
    for rec in big.tasks:
        meta = rec["task"]["metadata"]
        if rec["task"]["status"]["state"] == "completed":
            per_skill[meta["skill"]].append(meta["duration_s"])
    medians = {skill: statistics.median(d) for skill, d in per_skill.items()}
    for f in big.feedback:
        rating = f["feedback_data"]["rating"]
        assert rating in (1, 2, 3, 4, 5)
        task = tasks[f["task_id"]]
        by_agent[task["metadata"]["agent"]].append(rating)
        if task["status"]["state"] == "completed":
            meta = task["metadata"]
            slow = meta["duration_s"] > 2 * medians[meta["skill"]]
            by_speed["slow" if slow else "usual"].append(rating)
        assert f["created_at"] >= updated[f["task_id"]]
    means = {agent: statistics.mean(r) for agent, r in by_agent.items()}
    assert means["translator"] - means["support-agent"] > 0.5
    assert statistics.mean(by_speed["usual"]) - statistics.mean(by_speed["slow"]) > 0.3
    failed = [f["feedback_data"]["rating"] for f in big.feedback
              if tasks[f["task_id"]]["status"]["state"] == "failed"]
    assert statistics.mean(failed) < 2.5
    assert any("comment" in f["feedback_data"] for f in big.feedback)
    assert any("tags" in f["feedback_data"] for f in big.feedback)


def test_contexts_gather_their_tasks(big: SyntheticData) -> None:
    tasks_of: dict[uuid.UUID, list] = defaultdict(list)
    for rec in big.tasks:
        tasks_of[rec["task"]["context_id"]].append(rec)
    assert [c["context_id"] for c in big.contexts] == list(dict.fromkeys(
        r["task"]["context_id"] for r in big.tasks))
    for ctx in big.contexts:
        mine = tasks_of[ctx["context_id"]]
        assert ctx["created_at"] == mine[0]["created_at"]
        assert all(r["owner_did"] == ctx["owner_did"] for r in mine)
        finished = [m for r in mine if r["task"]["status"]["state"] in TERMINAL_STATES
                    for m in r["task"]["history"]]
        assert ctx["message_history"] == finished


# --- loading -------------------------------------------------------------------------------------


async def _snapshot(storage: Storage, data: SyntheticData) -> dict:
    some = [c["context_id"] for c in data.contexts[:: max(1, len(data.contexts) // 7)]]
    return {
        "task_records": await storage.task_records(),
        "context_records": await storage.context_records(),
        "feedback_records": await storage.feedback_records(),
        "task_events": await storage.task_events(),
        "list_tasks": await storage.list_tasks(length=40, offset=15),
        "list_contexts": await storage.list_contexts(length=30, offset=5),
        "counts": {s: await storage.count_tasks(s) for s in sorted(TASK_STATES)},
        "by_context": [await storage.list_tasks_by_context(c) for c in some],
        "feedback": [await storage.get_task_feedback(f["task_id"]) for f in data.feedback[:20]],
        "owners": [await storage.get_task_owner(r["task"]["id"]) for r in data.tasks[:20]],
    }


async def test_both_backends_load_the_same_data(pg_storage: PostgresStorage) -> None:
    data = generate(400, seed=11)
    memory = InMemoryStorage()
    replayed = await load(memory, data)
    copied = await load(pg_storage, data)
    assert (replayed.method, copied.method) == ("replay", "copy")
    assert (copied.tasks, copied.contexts, copied.events, copied.feedback) == (
        len(data.tasks), len(data.contexts), len(data.events), len(data.feedback))
    mem, pg = await _snapshot(memory, data), await _snapshot(pg_storage, data)
    for key in mem:
        assert mem[key] == pg[key], key
    assert mem["task_records"] == data.tasks, "the generated timestamps are kept, in memory too"
    assert [{k: c[k] for k in c} for c in mem["context_records"]] == data.contexts
    keys = ("task_id", "from_state", "to_state", "at")
    assert [{k: e[k] for k in keys} for e in pg["task_events"]] == data.events
    assert memory.clock() > data.tasks[-1]["updated_at"], "the replay gives the clock back"


async def test_postgres_bulk_load(pg_storage: PostgresStorage, pg_url: str) -> None:
    data = generate(5000, seed=2)
    result = await load(pg_storage, data, chunk_rows=1000)
    assert result.method == "copy" and result.tasks == 5000 and result.tasks_per_second > 0
    assert await pg_storage.count_tasks() == 5000
    assert await pg_storage.count_tasks("completed") == sum(
        r["task"]["status"]["state"] == "completed" for r in data.tasks)
    conn = await asyncpg.connect(pg_url)
    try:
        row = await conn.fetchrow(
            "SELECT min(created_at) AS first, max(updated_at) AS last, count(*) AS n,"
            " bool_and(seq IS NOT NULL) AS seq FROM tasks")
        assert row["first"] == data.tasks[0]["created_at"]
        assert row["last"] == max(r["updated_at"] for r in data.tasks)
        assert row["seq"]
        # the planner's (and the diagnostics') row estimate matches, not double-counted
        live = await conn.fetchval(
            "SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'tasks'::regclass")
        assert live == 5000
        assert await conn.fetchval("SELECT count(*) FROM task_events") == len(data.events)
        assert await conn.fetchval("SELECT count(*) FROM task_feedback") == len(data.feedback)
        high = await conn.fetchval("""SELECT count(*) FROM tasks WHERE metadata @> '{"priority":"high"}'""")
        assert high == sum(r["task"]["metadata"]["priority"] == "high" for r in data.tasks)
        # newest first means creation order, as in memory
        newest = await pg_storage.list_tasks(length=3)
        assert [t["id"] for t in newest] == [r["task"]["id"] for r in data.tasks[-1:-4:-1]]
    finally:
        await conn.close()


async def test_loading_the_same_seed_twice_writes_nothing(pg_storage: PostgresStorage) -> None:
    data = generate(200, seed=4)
    await load(pg_storage, data)
    more = generate(50, seed=5)
    clash = SyntheticData(seed=4, start=data.start, contexts=more.contexts + data.contexts[:1],
                          tasks=more.tasks, events=more.events, feedback=more.feedback)
    with pytest.raises(InvalidValueError, match="seed 4 is already in schema 'public'"):
        await load(pg_storage, clash)
    assert await pg_storage.count_tasks() == 200, "the failed load wrote nothing"
    assert len(await pg_storage.context_records()) == len(data.contexts)


async def test_unmigrated_schema_is_a_clear_error(pg_url: str) -> None:
    storage = postgres_storage(pg_url, schema="nowhere_synthetic")
    try:
        with pytest.raises(StorageError, match="has no Bindu tables; run migrations first"):
            await load(storage, generate(5, seed=0))
    finally:
        await storage.close()


async def test_a_closed_storage_is_not_reopened_by_a_load(pg_storage: PostgresStorage) -> None:
    memory = InMemoryStorage()
    for storage in (memory, pg_storage):
        await storage.close()
        with pytest.raises(StorageClosedError):
            await load(storage, generate(5, seed=3))
        assert storage.closed
    assert pg_storage.pool is None


def test_the_replay_clock_is_set_for_the_block_only() -> None:
    memory = InMemoryStorage()
    original = memory.clock
    assert isinstance(memory, Clocked) and not isinstance(object(), Clocked)
    fixed = datetime(2020, 1, 1, tzinfo=DEFAULT_START.tzinfo)
    with pytest.raises(RuntimeError), clock_set_to(memory, lambda: fixed) as set_:
        assert set_ and memory.clock() == fixed
        raise RuntimeError("the replay failed")
    assert memory.clock is original, "given back after a failure too"
    with clock_set_to(postgres_storage("postgresql://u@h/db"), lambda: fixed) as set_:
        assert not set_, "PostgreSQL stamps with the server's now()"


async def test_bad_load_arguments() -> None:
    with pytest.raises(InvalidValueError, match="SyntheticData"):
        await load(InMemoryStorage(), [])  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="chunk_rows"):
        await load(InMemoryStorage(), generate(1), chunk_rows=0)


async def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    await load(InMemoryStorage(), generate(30, seed=9), progress=True)
    assert "loading" in capsys.readouterr().err
