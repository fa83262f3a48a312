"""Seeding throughput: generate synthetic tasks, bulk-load them with COPY, against two references.

Figures, all measured in this run on the same server:

* generate — ``synthetic.generate(N)`` in Python;
* load — ``synthetic.load`` into a migrated schema: one transaction of COPY into contexts, tasks,
  task_events and task_feedback (B-tree and GIN indexes, foreign keys), then ANALYZE;
* floor — the very same COPY bytes into temporary tables of text columns with no index, key or
  JSON parsing: what the server and the wire cost at least (load / floor is the ratio printed);
* naive — the same kind of data written the ordinary way, one Storage call per step
  (submit_task, update_task, ... as an agent server does), on a sample, extrapolated.

Run: ``python benchmarks/bench_seed.py [--tasks 200000] [--database-url URL]`` (without a URL it
starts its own throwaway PostgreSQL, fsync off).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bindu_storage import PostgresStorage
from bindu_storage.storage import migrate
from bindu_storage.synthetic import generate, load
from bindu_storage.synthetic import loader as synthetic_loader
from bindu_storage.testing import TemporaryPostgres


class _Quiet:
    def update(self, n: int) -> None:
        """No progress bar in a benchmark."""


async def _floor(storage: PostgresStorage, data: Any) -> float:
    assert storage.pool is not None
    async with storage.pool.acquire() as conn:
        started = time.perf_counter()
        async with conn.transaction():
            for table, columns, rows in synthetic_loader.copy_rows(data):
                name = f"floor_{table}"
                await conn.execute(
                    f"CREATE TEMP TABLE {name} ({', '.join(f'c{i} text' for i in range(len(columns)))})"
                    " ON COMMIT DROP"
                )
                await conn.copy_to_table(name, source=synthetic_loader._chunks(rows, 5000, _Quiet()),
                                         format="text", timeout=3600)
        return time.perf_counter() - started


async def main(n: int, url: str | None, sample: int) -> None:
    server = None if url else TemporaryPostgres().start()
    target = url or server.url  # type: ignore[union-attr]
    try:
        await migrate.upgrade(target, "bench_seed")
        await migrate.upgrade(target, "bench_naive")
        async with PostgresStorage(target, schema="bench_seed", run_migrations=False, pool_max=2) as pg:
            await pg.clear_all()
            started = time.perf_counter()
            data = generate(n, seed=0)
            gen_s = time.perf_counter() - started

            started = time.perf_counter()
            for _table, _columns, rows in synthetic_loader.copy_rows(data):
                for _row in rows:
                    pass
            encode_s = time.perf_counter() - started

            floor_s = await _floor(pg, data)
            result = await load(pg, data)
        async with PostgresStorage(target, schema="bench_naive", run_migrations=False, pool_max=2) as naive:
            await naive.clear_all()
            small = generate(sample, seed=1)
            started = time.perf_counter()
            await synthetic_loader._replay(naive, small, _Quiet())
            naive_per_task = (time.perf_counter() - started) / sample
    finally:
        if server is not None:
            server.stop()

    per_task = result.seconds / n
    print(f"{n:,} tasks -> {len(data.contexts):,} contexts, {len(data.events):,} events, "
          f"{len(data.feedback):,} feedback entries ({data.rows:,} rows)\n")
    print(f"  {'step':42} {'seconds':>8} {'tasks/s':>10} {'ratio':>8}")
    print(f"  {'generate (Python)':42} {gen_s:8.1f} {n / gen_s:10,.0f}")
    print(f"  {'encode COPY text (Python, part of load)':42} {encode_s:8.1f} {n / encode_s:10,.0f}")
    print(f"  {'floor: same bytes, bare temp tables':42} {floor_s:8.1f} {n / floor_s:10,.0f} {1.0:8.2f}")
    print(f"  {'load: COPY + indexes + ANALYZE':42} {result.seconds:8.1f} {n / result.seconds:10,.0f} "
          f"{result.seconds / floor_s:8.2f}  x floor")
    print(f"  {f'naive: Storage calls ({sample:,} sampled)':42} {naive_per_task * n:8.1f} "
          f"{1 / naive_per_task:10,.0f} {naive_per_task / per_task:8.1f}  x slower than load")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--database-url", help="an existing server (default: a throwaway one)")
    parser.add_argument("--naive-sample", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.database_url, args.naive_sample))
