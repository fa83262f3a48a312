"""Frame loader throughput on PostgreSQL, each against the fastest raw read of its rows.

Seeds ``--tasks`` tasks (default 200,000) with ``INSERT ... SELECT generate_series`` into a
throwaway PostgreSQL: metadata with nested keys, a two-message history, an artifact, feedback on
every fifth task, three or two state changes per task, context data on every context. Then
times, best of ``--repeat`` runs each:

* for each loader, its floor: ``copy_from_query`` of the raw rows it is built from (every
  column it reads, JSONB as text) into a buffer: the bytes moved, nothing decoded;
* the loader from the URL (``tasks_frame``, ``messages_frame``, ``artifacts_frame``,
  ``contexts_frame``, ``feedback_frame``, ``events_frame``);
* for tasks also asyncpg ``fetch`` of the raw rows (JSONB left as text), ``tasks_frame`` in
  chunks of 50,000 (``chunksize=50_000``), ``tasks_frame(dtype_backend="pyarrow")`` (the Arrow
  arrays parsed from the CSV kept as they are), and the naive way: fetch whole JSONB rows,
  ``json.loads`` and ``pandas.json_normalize``.

Prints rows/s and each time as a ratio of its loader's floor. Run:
``python benchmarks/bench_frames.py [--tasks 200000] [--repeat 3] [--only tasks,events]
[--database-url URL]`` (without a URL it starts its own throwaway PostgreSQL, fsync off; with
one it reads the ``public`` schema there, migrating and seeding it first when it has no tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pandas as pd

from bindu_storage.analysis import frames as F
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

SEED = """
INSERT INTO contexts (id, context_data, created_at, updated_at)
SELECT md5('c' || g)::uuid,
       jsonb_build_object(
         'topic', (ARRAY['travel', 'code', 'billing', 'misc'])[1 + g % 4],
         'user', jsonb_build_object('tier', (ARRAY['free', 'pro'])[1 + g % 2], 'locale', 'en-' || (g % 7)),
         'turns', g % 40),
       now() - interval '30 days', now()
FROM generate_series(1, $1 / 4) AS g;

INSERT INTO tasks (id, context_id, state, state_timestamp, history, artifacts, metadata,
                   created_at, updated_at, owner_did)
SELECT md5('t' || g)::uuid,
       md5('c' || (1 + g % ($1 / 4)))::uuid,
       (ARRAY['completed', 'completed', 'completed', 'failed', 'working', 'canceled'])[1 + g % 6],
       now() - (g || ' seconds')::interval,
       jsonb_build_array(
         jsonb_build_object('message_id', md5('m1' || g), 'kind', 'message', 'role', 'user',
           'parts', jsonb_build_array(jsonb_build_object('kind', 'text', 'text', 'question ' || g))),
         jsonb_build_object('message_id', md5('m2' || g), 'kind', 'message', 'role', 'agent',
           'parts', jsonb_build_array(jsonb_build_object('kind', 'text', 'text', 'answer ' || g)))),
       jsonb_build_array(jsonb_build_object('artifact_id', md5('a' || g), 'name', 'result',
           'parts', jsonb_build_array(jsonb_build_object('kind', 'text', 'text', 'result ' || g)))),
       jsonb_build_object(
         'agent', (ARRAY['planner', 'coder', 'reviewer'])[1 + g % 3],
         'model', jsonb_build_object('name', 'm-' || (g % 4), 'temperature', (g % 10) / 10.0),
         'usage', jsonb_build_object('prompt_tokens', g % 900, 'completion_tokens', g % 400),
         'latency_ms', (g % 5000) + 0.5,
         'cached', g % 2 = 0,
         'tags', jsonb_build_array('t' || (g % 5))),
       now() - ((g + 60) || ' seconds')::interval,
       now() - (g || ' seconds')::interval,
       'did:bindu:user' || (g % 50)
FROM generate_series(1, $1) AS g
ORDER BY g;

INSERT INTO task_feedback (task_id, feedback_data)
SELECT md5('t' || g)::uuid, jsonb_build_object('rating', 1 + g % 5, 'comment', 'fine ' || g)
FROM generate_series(1, $1, 5) AS g;

INSERT INTO task_events (task_id, from_state, to_state, at)
SELECT t.id, e.from_state, e.to_state, e.at
FROM tasks t CROSS JOIN LATERAL (VALUES
  (1, NULL, 'submitted', t.created_at),
  (2, 'submitted', 'working', t.created_at + interval '7 seconds'),
  (3, 'working', t.state, t.updated_at)) AS e(n, from_state, to_state, at)
WHERE e.n < 3 OR t.state <> 'working'
ORDER BY t.seq, e.n;
"""

RAW_COLUMNS = (
    "id, context_id, state, state_timestamp, created_at, updated_at, history, artifacts, "
    "metadata, owner_did"
)
RAW_TASKS = f"SELECT {RAW_COLUMNS} FROM tasks ORDER BY seq"

LOADERS: dict[str, tuple[Callable[..., Awaitable[pd.DataFrame]], str]] = {
    "tasks": (F.tasks_frame, RAW_TASKS),
    "messages": (F.messages_frame, "SELECT id, context_id, history FROM tasks ORDER BY seq"),
    "artifacts": (F.artifacts_frame, "SELECT id, context_id, artifacts FROM tasks ORDER BY seq"),
    "contexts": (
        F.contexts_frame,
        "SELECT id, context_data, message_history, created_at, updated_at, owner_did"
        " FROM contexts ORDER BY seq",
    ),
    "feedback": (
        F.feedback_frame, "SELECT id, task_id, created_at, feedback_data FROM task_feedback ORDER BY id"
    ),
    "events": (F.events_frame, "SELECT id, task_id, from_state, to_state, at FROM task_events ORDER BY id"),
}
"""Loader name → (loader, the floor: a raw read of the rows it is built from)."""


async def seed(url: str, n: int) -> None:
    """Insert ``n`` tasks and what belongs to them."""
    conn = await asyncpg.connect(url)
    try:
        for statement in SEED.split(";\n"):
            if statement.strip():
                await conn.execute(statement.replace("$1", str(n)))
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def best(repeat: int, run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """The shortest of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - t0)
    return min(times), result


async def prepare(url: str, n: int) -> int:
    """Migrate and seed the database when it has no tasks; the number of tasks it holds."""
    await migrate.upgrade(url)
    conn = await asyncpg.connect(url)
    try:
        held = int(await conn.fetchval("SELECT count(*) FROM tasks"))
    finally:
        await conn.close()
    if held:
        return held
    t0 = time.perf_counter()
    await seed(url, n)
    print(f"seeded {n:,} tasks in {time.perf_counter() - t0:.1f} s")
    return n


async def main(n: int, repeat: int, only: list[str], url: str | None) -> None:
    if url is not None:
        await measure(url, await prepare(url, n), repeat, only)
        return
    with TemporaryPostgres() as server:
        await measure(server.url, await prepare(server.url, n), repeat, only)


async def measure(url: str, n: int, repeat: int, only: list[str] | None = None) -> None:
    """Time the loaders (``only`` those named) on the ``n`` tasks seeded at ``url``."""
    conn = await asyncpg.connect(url)

    def copy(sql: str) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            buf = io.BytesIO()
            await conn.copy_from_query(sql, output=buf)
            return len(buf.getvalue())

        return run

    async def fetch_floor() -> int:
        return len(await conn.fetch(RAW_TASKS))

    async def naive() -> pd.DataFrame:
        rows = await conn.fetch(RAW_TASKS)
        return pd.json_normalize([{**dict(r), "metadata": json.loads(r["metadata"])} for r in rows])

    async def chunked() -> int:
        return sum([len(c) async for c in F.tasks_frame(url, chunksize=50_000)])

    async def arrow() -> pd.DataFrame:
        return await F.tasks_frame(url, dtype_backend="pyarrow")

    lines: list[tuple[str, int, float, float]] = []
    try:
        for name, (load, raw) in LOADERS.items():
            if only and name not in only:
                continue
            floor, _ = await best(repeat, copy(raw))
            seconds, frame = await best(repeat, lambda load=load: load(url))  # type: ignore[misc]
            lines.append((f"floor: COPY of the {name} rows", len(frame), floor, floor))
            lines.append((f"{name}_frame", len(frame), seconds, floor))
            if name != "tasks":
                continue
            print(f"tasks_frame shape {frame.shape}; columns: {', '.join(frame.columns)}")
            fetched, _ = await best(repeat, fetch_floor)
            floor = min(floor, fetched)
            lines.append(("floor: asyncpg fetch of the tasks", n, fetched, floor))
            lines.append(("tasks_frame, chunksize=50_000", n, (await best(repeat, chunked))[0], floor))
            lines.append(("tasks_frame, dtype_backend=pyarrow", n, (await best(repeat, arrow))[0], floor))
            lines.append(("naive: fetch + json_normalize", n, (await best(repeat, naive))[0], floor))
    finally:
        await conn.close()
    title = f"read ({n:,} tasks)"
    print(f"\n{title:36} {'rows':>9} {'seconds':>8} {'rows/s':>11} {'x floor':>8}")
    for name, rows, seconds, floor in lines:
        print(f"{name:36} {rows:9,} {seconds:8.3f} {rows / seconds:11,.0f} {seconds / floor:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="loader names, e.g. tasks,events (default: all)")
    parser.add_argument("--database-url", help="an existing database (default: a throwaway server)")
    args = parser.parse_args()
    only = [x.removesuffix("_frame") for x in args.only.split(",") if x]
    if unknown := sorted(set(only) - set(LOADERS)):
        parser.error(f"unknown loader(s) {', '.join(unknown)}; choose from {', '.join(LOADERS)}")
    asyncio.run(main(args.tasks, args.repeat, only, args.database_url))
