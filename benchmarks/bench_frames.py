"""tasks_frame throughput on PostgreSQL, against the fastest raw reads of the same rows.

Seeds ``--tasks`` tasks (default 200,000) with ``INSERT ... SELECT generate_series`` into a
throwaway PostgreSQL (metadata with nested keys, a two-message history, an artifact, feedback
on every fifth task), then times, best of ``--repeat`` runs each:

* floor ``COPY``: ``copy_from_query`` of the task rows (every column the frame is built from)
  into a buffer: the bytes moved, nothing decoded;
* floor ``fetch``: asyncpg ``fetch`` of the same rows (JSONB left as text, not parsed);
* ``tasks_frame`` and ``iter_tasks_frame`` (chunks of 50,000) from the URL;
* for comparison, the naive way: fetch whole JSONB rows, ``json.loads`` and
  ``pandas.json_normalize``.

Prints rows/s and each time as a ratio of the fastest floor. Run:
``python benchmarks/bench_frames.py [--tasks 200000] [--repeat 3]``.
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

from bindu_storage.analysis.frames import iter_tasks_frame, tasks_frame
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

SEED = """
INSERT INTO contexts (id, created_at, updated_at)
SELECT md5('c' || g)::uuid, now() - interval '30 days', now()
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
"""

RAW_COLUMNS = (
    "id, context_id, state, state_timestamp, created_at, updated_at, history, artifacts, "
    "metadata, owner_did"
)


async def seed(url: str, n: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in SEED.split(";\n"):
            if statement.strip():
                await conn.execute(statement.replace("$1", str(n)))
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def best(repeat: int, run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - t0)
    return min(times), result


async def main(n: int, repeat: int) -> None:
    with TemporaryPostgres() as server:
        url = server.url
        await migrate.upgrade(url)
        t0 = time.perf_counter()
        await seed(url, n)
        print(f"seeded {n:,} tasks in {time.perf_counter() - t0:.1f} s")
        await measure(url, n, repeat)


async def measure(url: str, n: int, repeat: int) -> None:
    """Time the reads of the ``n`` tasks seeded at ``url``."""
    if True:
        conn = await asyncpg.connect(url)

        async def copy_floor() -> int:
            buf = io.BytesIO()
            await conn.copy_from_query(f"SELECT {RAW_COLUMNS} FROM tasks ORDER BY seq", output=buf)
            return len(buf.getvalue())

        async def fetch_floor() -> int:
            return len(await conn.fetch(f"SELECT {RAW_COLUMNS} FROM tasks ORDER BY seq"))

        async def naive() -> pd.DataFrame:
            rows = await conn.fetch(f"SELECT {RAW_COLUMNS} FROM tasks ORDER BY seq")
            return pd.json_normalize([{**dict(r), "metadata": json.loads(r["metadata"])} for r in rows])

        async def frame() -> pd.DataFrame:
            return await tasks_frame(url)

        async def chunked() -> int:
            return sum([len(c) async for c in iter_tasks_frame(url, chunksize=50_000)])

        results = {}
        for name, run in (
            ("floor: COPY to a buffer", copy_floor),
            ("floor: asyncpg fetch", fetch_floor),
            ("tasks_frame", frame),
            ("iter_tasks_frame (50k chunks)", chunked),
            ("naive: fetch + json_normalize", naive),
        ):
            results[name], value = await best(repeat, run)
            if name == "tasks_frame":
                print(f"tasks_frame shape {value.shape}; columns: {', '.join(value.columns)}")
        await conn.close()
        floor = min(results["floor: COPY to a buffer"], results["floor: asyncpg fetch"])
        print(f"\n{'read of ' + format(n, ',') + ' tasks':34} {'seconds':>8} {'rows/s':>11} {'x floor':>8}")
        for name, seconds in results.items():
            print(f"{name:34} {seconds:8.3f} {n / seconds:11,.0f} {seconds / floor:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.repeat))
