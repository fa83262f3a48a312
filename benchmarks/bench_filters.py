"""``find_tasks`` with a selective (~1%) and a broad (~60%) metadata filter, against the raw ``@>`` query.

Uses the database ``bench_frames.py`` seeds (``--tasks`` synthetic tasks, seeded when it holds
none). Picks, from the seeded metadata, the ``{key: value}`` fragments matching the share of
tasks closest to 1% and to 60%. Then, ``--rounds`` times (default 9: past the five custom plans
after which PostgreSQL may switch a prepared statement to a generic plan), interleaved:

* ours: ``find_tasks(storage, metadata=fragment)``;
* the floor: the very statement ``find_tasks`` runs (``filters.tasks_query``), fetched by asyncpg
  on a connection of the same pool, its fragment bound, decoded by the same ``task_from_row``;
  that connection has ``plan_cache_mode = force_custom_plan`` for the run, so the floor is always
  planned for its value (the best plan PostgreSQL finds), in one round trip.

Each timed call includes freeing its own result (one turn of the event loop after it returns;
see ``measure``), so no call pays for the previous one's rows.

Prints medians and ``x floor``. Run: ``python benchmarks/bench_filters.py [--tasks 200000]
[--rounds 9] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_frames import prepare

from bindu_storage import PostgresStorage
from bindu_storage.analysis.filters import find_tasks, tasks_query
from bindu_storage.storage.rows import task_from_row

SHARES = """
SELECT k.key, t.metadata -> k.key AS value, count(*)::float8 / (SELECT count(*) FROM tasks) AS share
FROM tasks t CROSS JOIN LATERAL jsonb_each(t.metadata) AS k
WHERE jsonb_typeof(k.value) IN ('string', 'boolean')
GROUP BY 1, 2
"""


async def fragments(storage: PostgresStorage) -> dict[str, tuple[dict[str, Any], float]]:
    """The fragments closest to 1% and to 60% of the tasks, with their shares."""
    rows = await storage.fetch(SHARES)
    picked = {}
    for name, target in (("selective", 0.01), ("broad", 0.60)):
        best = min(rows, key=lambda r: abs(r["share"] - target))
        picked[name] = ({best["key"]: best["value"]}, best["share"])
    return picked


async def measure(url: str, rounds: int) -> None:
    """Time ours and the floor for each fragment, interleaved."""
    storage = PostgresStorage(url, run_migrations=False, pool_min=2, pool_max=2)
    await storage.connect()
    try:
        assert storage.pool is not None
        floor_conn = await storage.pool.acquire()
        await floor_conn.execute("SET plan_cache_mode = force_custom_plan")
        times: dict[tuple[str, str], list[float]] = {}
        counts: dict[str, int] = {}
        chosen = await fragments(storage)
        for _ in range(rounds):
            for name, (fragment, _) in chosen.items():
                sql, args = tasks_query(storage.schema, metadata=fragment)

                async def floor(sql: str = sql, args: list[Any] = args) -> list[Any]:
                    return [task_from_row(r) for r in await floor_conn.fetch(sql, *args)]

                async def ours(fragment: dict[str, Any] = fragment) -> list[Any]:
                    return await find_tasks(storage, metadata=fragment)

                for how, run in (("ours", ours), ("floor", floor)):
                    gc.collect()  # cyclic garbage of the previous call collected outside the timing
                    started = time.perf_counter()
                    found = await run()
                    counts[name] = len(found)
                    del found
                    # Each call pays for freeing its own result. The event loop keeps the last
                    # callback it ran, and with it the future holding the rows of a call's last
                    # await, until the task next yields: without this turn of the loop, the
                    # floor's 130k rows (one await) were freed inside the next timed call, up
                    # to 1.4 s charged to the selective find_tasks that followed the broad floor.
                    await asyncio.sleep(0)
                    times.setdefault((name, how), []).append(time.perf_counter() - started)
        await storage.pool.release(floor_conn)
    finally:
        await storage.close()
    print(f"\n{'filter':44} {'tasks':>8} {'median s':>8} {'x floor':>7}")
    for name, (fragment, share) in chosen.items():
        floor_s = statistics.median(times[(name, "floor")])
        for how, label in (("floor", "floor: raw @> query, same decoding"), ("ours", "find_tasks")):
            median = statistics.median(times[(name, how)])
            print(
                f"{f'{name} {fragment} ({share:.1%}): {label}':44} {counts[name]:8,} {median:8.3f}"
                f" {median / floor_s:7.2f}"
            )


async def main(n: int, rounds: int, url: str | None) -> None:
    if url is None:
        from bindu_storage.testing import TemporaryPostgres

        with TemporaryPostgres() as server:
            await main(n, rounds, server.url)
        return
    await prepare(url, n)
    await measure(url, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--database-url", help="an existing database (default: a throwaway server)")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.rounds, args.database_url))
