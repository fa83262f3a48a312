"""A2A ``tasks/list`` on both backends: ``list_tasks_page``, owner-scoped ``load_task`` and
filtered ``count_tasks`` (issue 12, items 1 and 4).

The contract tests run on memory, PostgreSQL and PostgreSQL behind PgBouncer; a concurrent
writer checks the page-token guarantee; a differential test compares the backends on random
sequences; an EXPLAIN test shows the keyset index serving a page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from conftest import POOLED_BACKENDS, open_backend, postgres_storage, truncate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import CONTEXTS, DIDS, OPERATIONS, TASKS, Target, blank_times, call

from bindu_storage import (
    InMemoryStorage,
    InvalidTypeError,
    InvalidValueError,
    PostgresStorage,
    Storage,
)
from bindu_storage.errors import InvalidPageTokenError
from bindu_storage.storage.pages import MAX_PAGE_SIZE


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


# --- helpers ---------------------------------------------------------------------------------


def message(task_id: UUID, context_id: UUID, text: str = "hi") -> dict[str, Any]:
    """An A2A message of one text part."""
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


async def new_task(
    storage: Storage, *, context_id: UUID | None = None, owner: str | None = None
) -> UUID:
    """Submit a new task (in a new context unless given); return its id."""
    cid, tid = context_id or uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid), caller_did=owner)
    return tid


async def walk(storage: Storage, page_size: int, **filters: Any) -> list[dict[str, Any]]:
    """Every page of a listing, first to last."""
    pages = [await storage.list_tasks_page(page_size=page_size, **filters)]
    while pages[-1]["next_page_token"]:
        pages.append(await storage.list_tasks_page(
            page_size=page_size, page_token=pages[-1]["next_page_token"], **filters
        ))
    return pages


def listed(pages: list[dict[str, Any]]) -> list[UUID]:
    """The task ids of the pages, in order."""
    return [t["id"] for page in pages for t in page["tasks"]]


async def updated_at(storage: Storage) -> dict[UUID, datetime]:
    """Each task's ``updated_at``."""
    return {r["task"]["id"]: r["updated_at"] for r in await storage.task_records()}


def newest_first(times: dict[UUID, datetime]) -> list[UUID]:
    """Task ids most recently updated first, ties by id descending (the listing order)."""
    return sorted(times, key=lambda tid: (times[tid], tid), reverse=True)


# --- pages -----------------------------------------------------------------------------------


async def test_one_page_holds_every_task_most_recently_updated_first(storage: Storage) -> None:
    first, second, third = [await new_task(storage) for _ in range(3)]
    await storage.update_task(first, "working")  # now the most recently updated
    page = await storage.list_tasks_page()
    assert [t["id"] for t in page["tasks"]] == [first, third, second]
    assert page["next_page_token"] == ""
    assert page["page_size"] == 50 and page["total_size"] == 3
    assert all("artifacts" not in t for t in page["tasks"])
    assert page["tasks"][0]["status"]["state"] == "working"


async def test_an_empty_storage_lists_an_empty_page(storage: Storage) -> None:
    assert await storage.list_tasks_page() == {
        "tasks": [], "next_page_token": "", "page_size": 50, "total_size": 0,
    }


async def test_pages_walk_every_task_once_in_order(storage: Storage) -> None:
    for _ in range(23):
        await new_task(storage)
    pages = await walk(storage, 5)
    assert [len(p["tasks"]) for p in pages] == [5, 5, 5, 5, 3]
    assert {p["total_size"] for p in pages} == {23}
    assert listed(pages) == newest_first(await updated_at(storage))
    exact = await walk(storage, 4)  # a last page that is full still ends the walk
    assert len(exact) == 6 and exact[-1]["next_page_token"] == ""


async def test_page_size_may_change_between_pages(storage: Storage) -> None:
    for _ in range(7):
        await new_task(storage)
    first = await storage.list_tasks_page(page_size=2)
    rest = await storage.list_tasks_page(page_size=MAX_PAGE_SIZE, page_token=first["next_page_token"])
    assert [t["id"] for t in first["tasks"] + rest["tasks"]] == newest_first(await updated_at(storage))
    assert rest["page_size"] == MAX_PAGE_SIZE and rest["next_page_token"] == ""


async def test_filters_and_their_totals(storage: Storage) -> None:
    shared = uuid.uuid4()
    a1 = await new_task(storage, context_id=shared, owner="did:a")
    a2 = await new_task(storage, owner="did:a")
    b1 = await new_task(storage, owner="did:b")
    anon = await new_task(storage, context_id=shared, owner="did:a")
    await storage.update_task(a2, "completed")
    await storage.update_task(b1, "working")
    cases: list[tuple[dict[str, Any], list[UUID]]] = [
        ({"owner_did": "did:a"}, [a2, anon, a1]),
        ({"owner_did": "did:nobody"}, []),
        ({"context_id": shared}, [anon, a1]),
        ({"context_id": str(shared), "owner_did": "did:a"}, [anon, a1]),
        ({"states": "completed"}, [a2]),
        ({"states": ["working", "completed"]}, [b1, a2]),
        ({"states": ("submitted",), "owner_did": "did:a"}, [anon, a1]),
    ]
    for filters, expected in cases:
        page = await storage.list_tasks_page(**filters)
        assert [t["id"] for t in page["tasks"]] == expected, filters
        assert page["total_size"] == len(expected) == await storage.count_tasks(**filters), filters
    times = await updated_at(storage)
    since = times[a2]
    later = [tid for tid in newest_first(times) if times[tid] >= since]
    page = await storage.list_tasks_page(updated_after=since)
    assert [t["id"] for t in page["tasks"]] == later and a2 in later  # at or after: inclusive
    assert await storage.count_tasks(updated_after=since) == len(later)
    assert await storage.count_tasks(updated_after=since + timedelta(days=1)) == 0


async def test_count_tasks_keeps_upstreams_positional_status(storage: Storage) -> None:
    done = await new_task(storage, owner="did:a")
    await new_task(storage, owner="did:b")
    await storage.update_task(done, "completed")
    assert await storage.count_tasks() == 2
    assert await storage.count_tasks("completed") == 1
    assert await storage.count_tasks("completed", owner_did="did:b") == 0
    assert await storage.count_tasks("submitted", owner_did="did:b") == 1
    with pytest.raises(InvalidValueError, match="status or states"):
        await storage.count_tasks("completed", states=["completed"])
    with pytest.raises(InvalidValueError, match="status"):
        await storage.count_tasks("bogus")


async def test_history_length_and_artifacts(storage: Storage) -> None:
    tid = await new_task(storage)
    cid = (await storage.load_task(tid))["context_id"]  # type: ignore[index]
    art = {"artifact_id": "a1", "parts": [{"kind": "text", "text": "out"}]}
    await storage.update_task(tid, "working", new_artifacts=[art],
                              new_messages=[message(tid, cid, "two"), message(tid, cid, "three")])
    full = await storage.load_task(tid)
    assert full is not None
    page = await storage.list_tasks_page(history_length=2, include_artifacts=True)
    (task,) = page["tasks"]
    assert task["history"] == full["history"][-2:] and task["artifacts"] == [art]
    (bare,) = (await storage.list_tasks_page(history_length=0))["tasks"]
    assert bare["history"] == [] and "artifacts" not in bare
    (whole,) = (await storage.list_tasks_page())["tasks"]
    assert whole["history"] == full["history"] and whole["metadata"] == full["metadata"]


BAD_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"page_size": 0}, InvalidValueError, "page_size"),
    ({"page_size": MAX_PAGE_SIZE + 1}, InvalidValueError, "page_size"),
    ({"page_size": "5"}, InvalidTypeError, "page_size"),
    ({"page_size": 2.0}, InvalidTypeError, "page_size"),
    ({"page_size": True}, InvalidTypeError, "page_size"),
    ({"history_length": -1}, InvalidValueError, "history_length"),
    ({"include_artifacts": "yes"}, InvalidTypeError, "include_artifacts"),
    ({"states": "bogus"}, InvalidValueError, "states"),
    ({"states": []}, InvalidValueError, "states"),
    ({"states": ["working", "bogus"]}, InvalidValueError, "states"),
    ({"states": 3}, InvalidTypeError, "states"),
    ({"updated_after": datetime(2026, 1, 1)}, InvalidValueError, "timezone-aware"),
    ({"updated_after": "2026-01-01"}, InvalidTypeError, "updated_after"),
    ({"context_id": "not-a-uuid"}, InvalidValueError, "context_id"),
    ({"owner_did": 7}, InvalidTypeError, "owner_did"),
    ({"page_token": 12}, InvalidTypeError, "page_token"),
    ({"page_token": "not a token"}, InvalidPageTokenError, "not a token this storage issued"),
    ({"page_token": "e30"}, InvalidPageTokenError, "not a token this storage issued"),
    ({"page_token": base64.urlsafe_b64encode(json.dumps([9, "x", "y", "z"]).encode()).decode()},
     InvalidPageTokenError, "not a token this storage issued"),
]


@pytest.mark.parametrize(("arguments", "error", "says"), BAD_ARGUMENTS)
async def test_bad_arguments_raise_typed_errors(
    storage: Storage, arguments: dict[str, Any], error: type[Exception], says: str
) -> None:
    await new_task(storage)
    with pytest.raises(error, match=says):
        await storage.list_tasks_page(**arguments)


async def test_a_token_is_refused_under_other_filters(storage: Storage) -> None:
    for _ in range(3):
        await new_task(storage, owner="did:a")
    token = (await storage.list_tasks_page(page_size=1, owner_did="did:a"))["next_page_token"]
    assert token
    for other in ({}, {"owner_did": "did:b"}, {"owner_did": "did:a", "states": "submitted"}):
        with pytest.raises(InvalidPageTokenError, match="other filters"):
            await storage.list_tasks_page(page_token=token, **other)
    # the options that only shape the page may change
    page = await storage.list_tasks_page(
        page_token=token, owner_did="did:a", page_size=7, history_length=0, include_artifacts=True
    )
    assert len(page["tasks"]) == 2


async def test_arguments_are_checked_before_the_database_is_asked(pg_url: str) -> None:
    closed = postgres_storage(pg_url)
    await closed.connect()
    await closed.close()
    with pytest.raises(InvalidValueError, match="page_size"):
        await closed.list_tasks_page(page_size=0)
    with pytest.raises(InvalidPageTokenError):
        await closed.list_tasks_page(page_token="junk")


# --- owner-scoped reads ----------------------------------------------------------------------


async def test_load_task_scoped_to_its_owner(storage: Storage) -> None:
    mine = await new_task(storage, owner="did:a")
    anonymous = await new_task(storage)
    loaded = await storage.load_task(mine, owner_did="did:a")
    assert loaded is not None and loaded == await storage.load_task(mine)
    assert await storage.load_task(mine, owner_did="did:b") is None
    assert await storage.load_task(anonymous, owner_did="did:a") is None
    assert await storage.load_task(uuid.uuid4(), owner_did="did:a") is None
    assert (await storage.load_task(mine, 0, owner_did="did:a"))["history"] == []  # type: ignore[index]
    assert (await storage.load_task(mine, 0))["history"] == []  # type: ignore[index]  # upstream's call
    with pytest.raises(InvalidTypeError, match="owner_did"):
        await storage.load_task(mine, owner_did=7)  # type: ignore[arg-type]


# --- concurrent writers ----------------------------------------------------------------------


async def test_tokens_hold_while_tasks_are_created_and_updated(storage: Storage) -> None:
    """Every task that existed at the start and was not written during the walk is listed
    exactly once; no task at all is listed twice."""
    before = [await new_task(storage, owner="did:a") for _ in range(40)]
    movers = set(before[::7])  # updated during the walk: they may be missed, never repeated
    created: list[UUID] = []
    reading = True

    updated: set[UUID] = set()

    async def writer() -> None:
        pending = sorted(movers)
        while reading:
            created.append(await new_task(storage, owner="did:a"))
            if pending:
                mover = pending.pop()
                await storage.update_task(mover, "working")
                updated.add(mover)
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    pages: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while True:
            await asyncio.sleep(0.005)
            page = await storage.list_tasks_page(page_size=3, page_token=token, owner_did="did:a")
            pages.append(page)
            token = page["next_page_token"]
            if not token:
                break
    finally:
        reading = False
        await task
    seen = listed(pages)
    assert len(seen) == len(set(seen)), "a task was listed twice"
    untouched = [tid for tid in before if tid not in updated]
    assert set(untouched) <= set(seen)
    assert created, "the writer ran during the walk"
    assert len(pages) > 5 and len(updated) > 0


# --- the index (PostgreSQL) ------------------------------------------------------------------


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    return [plan, *(n for child in plan.get("Plans", []) for n in plan_nodes(child))]


async def test_a_page_is_an_index_scan_of_the_keyset_index(pg_storage: PostgresStorage) -> None:
    async with pg_storage.connection() as conn:
        await conn.execute(
            """
            INSERT INTO contexts (id, owner_did)
            SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid, 'did:' || (g % 50)
              FROM generate_series(1, 200) g;
            INSERT INTO tasks (id, context_id, state, state_timestamp, history, owner_did, updated_at)
            SELECT gen_random_uuid(),
                   ('00000000-0000-0000-0000-' || lpad(to_hex(g % 200 + 1), 12, '0'))::uuid,
                   (ARRAY['submitted', 'working', 'completed'])[g % 3 + 1], now(), '[]',
                   'did:' || ((g % 200 + 1) % 50), now() - g * interval '1 second'
              FROM generate_series(1, 20000) g;
            ANALYZE tasks;
            """
        )
        some = await conn.fetchrow(
            "SELECT updated_at, id, context_id FROM tasks ORDER BY updated_at DESC OFFSET 500 LIMIT 1"
        )
        scopes = {
            "idx_tasks_updated_id": (None, None),
            "idx_tasks_context_updated_id": (some["context_id"], None),
            "idx_tasks_owner_updated_id": (None, "did:7"),
        }
        for index, (context_id, owner) in scopes.items():
            for after in ((None, None), (some["updated_at"], some["id"])):
                plan = await conn.fetchval(
                    "EXPLAIN (FORMAT JSON) " + pg_storage.sql.list_tasks_page,
                    context_id, None, None, owner, *after, 51, None, False,
                )
                plan = json.loads(plan) if isinstance(plan, str) else plan  # the pool decodes JSON
                nodes = plan_nodes(plan[0]["Plan"])
                scans = [n for n in nodes if n.get("Index Name") == index]
                assert scans and scans[0]["Node Type"] in ("Index Scan", "Index Only Scan"), (index, nodes)
                assert not any(n["Node Type"] == "Sort" for n in nodes), (index, nodes)
                if after[0] is not None:  # the keyset condition is an index condition
                    assert "updated_at" in scans[0].get("Index Cond", ""), scans[0]


# --- the backends agree ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_target(pg_url: str) -> Target:
    """The migrated test database, for the hypothesis test."""
    return Target(pg_url)


filters = st.fixed_dictionaries({}, optional={
    "context_id": st.sampled_from(CONTEXTS),
    "states": st.sampled_from(["submitted", "working", "completed", ["working", "canceled"]]),
    "owner_did": st.sampled_from([d for d in DIDS if d]),
    "updated_after": st.integers(0, 5),  # the n-th oldest update on each backend
})
READS = st.one_of(
    st.tuples(st.just("walk"), filters, st.integers(1, 4), st.none() | st.integers(0, 2), st.booleans()),
    st.tuples(st.just("count"), filters),
    st.tuples(st.just("load_owned"), st.sampled_from(TASKS), st.sampled_from(DIDS)),
)


async def read(storage: Storage, op: tuple[Any, ...]) -> Any:
    """Run one of READS; tokens become whether there was one (their text differs by backend)."""
    name, *args = op
    if name == "load_owned":
        try:
            return blank_times(await storage.load_task(args[0], owner_did=args[1]))
        except Exception as exc:
            return ("error", type(exc).__name__, str(exc))
    chosen = dict(args[0])
    if "updated_after" in chosen:
        times = sorted(r["updated_at"] for r in await storage.task_records())
        nth = chosen["updated_after"]
        chosen["updated_after"] = times[nth] if nth < len(times) else None
    if name == "count":
        return await storage.count_tasks(**chosen)
    page_size, history_length, include_artifacts = args[1:]
    pages = await walk(storage, page_size, history_length=history_length,
                       include_artifacts=include_artifacts, **chosen)
    return blank_times([{**p, "next_page_token": bool(p["next_page_token"])} for p in pages])


async def run_both(url: str, steps: list[tuple[Any, ...]]) -> None:
    """Apply ``steps`` to both backends; every read must give the same answer."""
    await truncate(url)
    memory = InMemoryStorage()
    async with postgres_storage(url, pool_max=2) as pg:
        for step, op in enumerate(steps):
            run = read if op[0] in ("walk", "count", "load_owned") else call
            expected, actual = await run(memory, op), await run(pg, op)
            assert actual == expected, f"step {step}: {op!r}\n memory:   {expected!r}\n postgres: {actual!r}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(OPERATIONS | READS | READS, min_size=1, max_size=25))
def test_backends_agree_on_pages_counts_and_scoped_loads(
    pg_target: Target, steps: list[tuple[Any, ...]]
) -> None:
    asyncio.run(run_both(pg_target.url, steps))
