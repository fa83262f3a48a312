"""delete_task and purge (issue 12, item 3), proved on both backends and differentially.

The rules: "Deletion and retention" in ``storage/base.py`` and the policy in
``storage/retention.py`` (which tasks, and which contexts left empty, a purge removes).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from conftest import POOLED_BACKENDS, open_backend, postgres_storage, truncate

from bindu_storage import InMemoryStorage, InvalidValueError, OwnershipError, Storage
from bindu_storage.errors import InvalidTypeError

TABLES = ("tasks", "feedback", "events", "push_configs", "contexts")


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


def message(task_id: UUID) -> dict[str, Any]:
    return {"message_id": str(uuid.uuid4()), "task_id": str(task_id), "role": "user",
            "parts": [{"kind": "text", "text": "hi"}], "kind": "message"}


async def new_task(
    storage: Storage, context_id: UUID | None = None, caller_did: str | None = None,
    state: str | None = None, extras: bool = True,
) -> tuple[UUID, UUID]:
    tid, cid = uuid.uuid4(), context_id or uuid.uuid4()
    await storage.submit_task(cid, message(tid), caller_did)  # type: ignore[arg-type]
    if state is not None:
        await storage.update_task(tid, state)
    if extras:
        await storage.store_task_feedback(tid, {"rating": 5})
        await storage.set_push_config(tid, {"id": "a", "url": "https://hooks.example/a"})
        await storage.set_push_config(tid, {"url": "https://hooks.example/b"})
    return tid, cid


async def task_ids(storage: Storage) -> set[UUID]:
    return {r["task"]["id"] for r in await storage.task_records()}


async def context_ids(storage: Storage) -> set[UUID]:
    return {r["context_id"] for r in await storage.context_records()}


# --- delete_task -----------------------------------------------------------------------------


async def test_delete_task_takes_its_attachments_and_leaves_the_context(storage: Storage) -> None:
    doomed, cid = await new_task(storage, state="completed")
    sibling, _ = await new_task(storage, context_id=cid)
    await storage.update_context(cid, {"topic": "kept"})
    await storage.append_to_contexts(cid, [message(doomed)])  # type: ignore[list-item]

    assert await storage.delete_task(doomed) is True
    assert await storage.load_task(doomed) is None
    assert await storage.get_task_feedback(doomed) is None
    assert await storage.task_events(doomed) == []
    assert await storage.list_push_configs(doomed) == []
    assert await storage.get_task_owner(doomed) is None
    assert await storage.load_context(cid) == {"topic": "kept"}
    assert [t["id"] for t in await storage.list_tasks_by_context(cid)] == [sibling]
    assert [c["task_ids"] for c in await storage.list_contexts()] == [[sibling]]
    assert len(await storage.context_records()) == 1
    assert {e["task_id"] for e in await storage.task_events()} == {sibling}
    assert {f["task_id"] for f in await storage.feedback_records()} == {sibling}
    assert await storage.delete_task(doomed) is False  # twice: a no-op
    assert await storage.delete_task(uuid.uuid4()) is False


async def test_delete_task_is_owner_scoped(storage: Storage) -> None:
    alice, _ = await new_task(storage, caller_did="did:alice", extras=False)
    with pytest.raises(OwnershipError):
        await storage.delete_task(alice, owner_did="did:bob")
    assert await storage.load_task(alice) is not None
    assert await storage.delete_task(uuid.uuid4(), owner_did="did:bob") is False
    assert await storage.delete_task(alice, owner_did="did:alice") is True


# --- purge -----------------------------------------------------------------------------------


async def test_purge_by_state_counts_every_table_and_dry_run_changes_nothing(storage: Storage) -> None:
    done, done_ctx = await new_task(storage, state="completed")
    failed, shared_ctx = await new_task(storage, state="failed")
    working, _ = await new_task(storage, context_id=shared_ctx, state="working")
    empty_ctx = uuid.uuid4()
    await storage.update_context(empty_ctx, {"never": "had tasks"})

    expected = {"tasks": 2, "feedback": 2, "events": 4, "push_configs": 4, "contexts": 1}
    before = (await task_ids(storage), await context_ids(storage))
    assert await storage.purge(states=["completed", "failed"], dry_run=True) == expected
    assert (await task_ids(storage), await context_ids(storage)) == before
    assert await storage.purge(states=["completed", "failed"]) == expected
    assert await task_ids(storage) == {working}
    # done's context was emptied: gone; the shared one keeps a task; one never emptied stays
    assert await context_ids(storage) == {shared_ctx, empty_ctx}
    assert await storage.load_context(done_ctx) is None
    assert await storage.purge(states=["completed", "failed"]) == dict.fromkeys(TABLES, 0)
    assert done and failed


async def test_purge_by_age_uses_updated_at(storage: Storage) -> None:
    old, old_ctx = await new_task(storage, extras=False)
    touched, _ = await new_task(storage, extras=False)
    await asyncio.sleep(0.05)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await storage.update_task(touched, "working")  # updated after the cutoff: still in use
    fresh, _ = await new_task(storage, extras=False)

    assert (await storage.purge(older_than=cutoff, dry_run=True))["tasks"] == 1
    counts = await storage.purge(older_than=cutoff)
    assert counts == {"tasks": 1, "feedback": 0, "events": 1, "push_configs": 0, "contexts": 1}
    assert await task_ids(storage) == {touched, fresh}
    assert old_ctx not in await context_ids(storage) and old
    assert (await storage.purge(older_than=timedelta(days=30)))["tasks"] == 0
    assert (await storage.purge(older_than=timedelta(0)))["tasks"] == 2


async def test_purge_by_owner_erases_everything_of_one_caller(storage: Storage) -> None:
    await new_task(storage, caller_did="did:alice", state="working")
    await new_task(storage, caller_did="did:alice", state="completed")
    bob, bob_ctx = await new_task(storage, caller_did="did:bob")
    alice_empty = uuid.uuid4()
    await storage.submit_task(alice_empty, message(uuid.uuid4()), "did:alice")  # type: ignore[arg-type]
    counts = await storage.purge(owner_did="did:alice")
    assert counts == {"tasks": 3, "feedback": 2, "events": 5, "push_configs": 4, "contexts": 3}
    assert await task_ids(storage) == {bob}
    assert await context_ids(storage) == {bob_ctx}


async def test_purge_filters_combine(storage: Storage) -> None:
    keep_state, _ = await new_task(storage, caller_did="did:alice", state="working", extras=False)
    other_owner, _ = await new_task(storage, caller_did="did:bob", state="completed", extras=False)
    gone, _ = await new_task(storage, caller_did="did:alice", state="completed", extras=False)
    counts = await storage.purge(older_than=timedelta(0), states=["completed"], owner_did="did:alice")
    assert counts["tasks"] == 1 and counts["contexts"] == 1
    assert await task_ids(storage) == {keep_state, other_owner} and gone


async def test_purge_refuses_a_policy_without_filters_and_bad_arguments(storage: Storage) -> None:
    await new_task(storage, extras=False)
    with pytest.raises(InvalidValueError, match="clear_all"):
        await storage.purge()
    with pytest.raises(InvalidValueError):
        await storage.purge(states=["done"])
    with pytest.raises(InvalidValueError):
        await storage.purge(states=[])
    with pytest.raises(InvalidTypeError):
        await storage.purge(states="completed")
    with pytest.raises(InvalidTypeError):
        await storage.purge(older_than=30)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        await storage.purge(older_than=timedelta(days=-1))
    with pytest.raises(InvalidValueError):
        await storage.purge(older_than=datetime(2026, 1, 1))  # naive
    assert len(await task_ids(storage)) == 1


async def test_purge_in_batches_on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bindu_storage.storage import postgres

    monkeypatch.setattr(postgres, "PURGE_BATCH", 3)
    await truncate(pg_url)
    storage = postgres_storage(pg_url)
    async with storage:
        cid = uuid.uuid4()
        for _ in range(7):
            await new_task(storage, context_id=cid, state="completed")
        kept, _ = await new_task(storage, state="working")
        expected = {"tasks": 7, "feedback": 7, "events": 14, "push_configs": 14, "contexts": 1}
        assert await storage.purge(states=["completed"], dry_run=True) == expected
        assert await storage.purge(states=["completed"]) == expected
        assert await task_ids(storage) == {kept}


# --- differential: the same operations, the same rows removed --------------------------------


async def _replay(storage: Storage, plan: list[tuple[Any, ...]]) -> list[Any]:
    outcomes: list[Any] = []
    for step in plan:
        kind = step[0]
        if kind == "task":
            _, tid, cid, owner, state, n_configs = step
            await storage.submit_task(cid, message(tid), owner)
            if state != "submitted":
                await storage.update_task(tid, state)
            for n in range(n_configs):
                await storage.set_push_config(tid, {"id": f"c{n}", "url": "https://h.example"})
            await storage.store_task_feedback(tid, {"n": n_configs})
        elif kind == "delete":
            outcomes.append(await storage.delete_task(step[1]))
        else:
            _, states, owner, dry = step
            outcomes.append(await storage.purge(states=states, owner_did=owner, dry_run=dry))
    outcomes.append((await task_ids(storage), await context_ids(storage),
                     len(await storage.task_events()), len(await storage.push_config_records())))
    return outcomes


@pytest.mark.parametrize("seed", range(4))
async def test_memory_and_postgres_remove_the_same_rows(seed: int, pg_url: str) -> None:
    rng = random.Random(seed)
    owners = [None, "did:a", "did:b"]
    states = ["submitted", "working", "completed", "failed", "canceled"]
    contexts: list[tuple[UUID, str | None]] = []
    tasks: list[UUID] = []
    plan: list[tuple[Any, ...]] = []
    for _ in range(40):
        roll = rng.random()
        if roll < 0.7 or not tasks:
            if contexts and rng.random() < 0.4:
                cid, owner = rng.choice(contexts)
            else:
                cid, owner = uuid.uuid4(), rng.choice(owners)
                contexts.append((cid, owner))
            tid = uuid.uuid4()
            tasks.append(tid)
            plan.append(("task", tid, cid, owner, rng.choice(states), rng.randrange(3)))
        elif roll < 0.8:
            plan.append(("delete", rng.choice([*tasks, uuid.uuid4()])))
        else:
            chosen = rng.sample(states, rng.randrange(1, 3)) if rng.random() < 0.7 else None
            owner = rng.choice(owners[1:]) if chosen is None or rng.random() < 0.3 else None
            plan.append(("purge", chosen, owner, rng.random() < 0.3))
    memory = await _replay(InMemoryStorage(), plan)
    await truncate(pg_url)
    pg = postgres_storage(pg_url)
    async with pg:
        assert await _replay(pg, plan) == memory


# --- bindu-storage purge ---------------------------------------------------------------------


def test_cli_purge_is_a_dry_run_unless_yes(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bindu_storage.cli import main

    async def seed() -> None:
        await truncate(pg_url)
        async with postgres_storage(pg_url) as storage:
            for state in ("completed", "completed", "working"):
                await new_task(storage, state=state)
            await storage.set_push_config(
                (await storage.list_tasks())[-1]["id"],  # the oldest: a completed one
                {"id": "s", "url": "https://h.example", "token": "tok-Sx3Hv8Qa"},
            )

    async def remaining() -> int:
        async with postgres_storage(pg_url) as storage:
            return await storage.count_tasks()

    asyncio.run(seed())
    base = ["purge", "--database-url", pg_url, "--state", "completed", "--older-than", "0s"]
    assert main(base) == 0
    out, err = capsys.readouterr()
    assert "Dry run" in out
    assert "would remove 2 tasks, 2 feedback, 4 events, 5 push configs, 2 contexts" in out
    assert "add --yes" in out and "postgres" in err
    assert asyncio.run(remaining()) == 3
    assert main([*base, "--yes", "--dry-run"]) == 0
    assert "Dry run" in capsys.readouterr().out and asyncio.run(remaining()) == 3
    assert main([*base, "--yes"]) == 0
    out, err = capsys.readouterr()
    assert "Purged tasks not updated for 0 seconds and in state completed: removed 2 tasks" in out
    assert asyncio.run(remaining()) == 1
    for text in (out, err):
        assert "Sx3Hv8Qa" not in text and "password" not in text.lower()

    assert main(["purge", "--database-url", pg_url]) == 1
    assert "--older-than, --state or --owner" in capsys.readouterr().err
    assert main(["purge", "--database-url", pg_url, "--state", "done"]) == 1
    assert "states must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["purge", "--older-than", "30 days"])
    assert "expected an age like 30d" in capsys.readouterr().err


# --- the retention diagnostic and its health-report check ------------------------------------


async def test_retention_diagnostic_counts_what_a_purge_would_remove(pg_url: str) -> None:
    from conftest import execute

    from bindu_storage.analysis.diagnostics import DIAGNOSTICS, Diagnostics, health_report

    await truncate(pg_url)
    async with postgres_storage(pg_url) as storage:
        old, _ = await new_task(storage, state="completed")
        await new_task(storage, state="working")
    await execute(pg_url, f"UPDATE tasks SET updated_at = now() - interval '200 days' WHERE id = '{old}'",
                  "UPDATE contexts SET updated_at = now() - interval '200 days'")
    async with Diagnostics(pg_url) as diag:
        frame = (await diag.retention(older_than_days=100)).set_index("table_name")
        done = (await diag.retention(older_than_days=100, states=["completed"]))["purge_would_remove"]
    assert list(frame.index) == ["tasks", "contexts", "task_feedback", "task_events", "webhook_configs"]
    assert frame["rows"].tolist() == [2, 2, 2, 4, 4]
    assert frame["purge_would_remove"].tolist() == [1, 1, 1, 2, 2]
    assert done.tolist() == [1, 1, 1, 2, 2]
    assert tuple(frame.reset_index().columns) == DIAGNOSTICS["retention"]
    assert (frame["total_bytes"] > 0).all() and frame.loc["tasks", "oldest_updated"] < frame.loc[
        "tasks", "newest_updated"]
    async with postgres_storage(pg_url) as storage:  # the storage's own dry run agrees
        counts = await storage.purge(older_than=timedelta(days=100), dry_run=True)
    assert list(counts.values()) == [1, 1, 2, 2, 1]  # tasks, feedback, events, push configs, contexts

    report = await health_report(pg_url)
    finding = next(f for f in report.findings if f.check == "data retention")
    assert finding.status == "warn" and finding.topic == "retention"
    assert "oldest task last updated 200.0 days ago" in finding.seen
    removed = "would remove 1 tasks, 1 contexts, 1 task_feedback, 2 task_events, 2 webhook_configs"
    assert removed in finding.seen
