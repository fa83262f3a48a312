"""Server time per statement, ours and the floor's, from ``pg_stat_statements``.

Runs the write-heavy steps of the shared benchmark's lifecycle (submit, update to working, update
to completed, list by context, feedback) through ``PostgresStorage`` and through the shared
benchmark's raw asyncpg floor on one throwaway server, then prints every statement's calls and
mean execution time. It tells how much of a gap is work on the server (what the statement does)
and how much is the client (round trips, decoding, Python).

Run: ``python benchmarks/storage_server_time.py [--n 1000]`` (``--bench`` as in bench_storage.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
from pathlib import Path
from typing import Any

import asyncpg

from bindu_storage import PostgresStorage
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "storage_bench.py"


def shared_bench(path: Path) -> Any:
    """The shared benchmark as a module (its workload and its raw floor)."""
    spec = importlib.util.spec_from_file_location("storage_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def lifecycle(storage: Any, workload: Any, n: int) -> None:
    for i in range(n):
        await storage.submit_task(workload.ctx_of[i], workload.user_message(i))
    for i in range(n):
        await storage.update_task(workload.task_ids[i], "working")
    for i in range(n):
        await storage.update_task(workload.task_ids[i], "completed", new_artifacts=[workload.artifact(i)],
                                  new_messages=[workload.agent_message(i)])
    for i in range(n):
        await storage.list_tasks_by_context(workload.ctx_of[i])
    for i in range(n):
        await storage.store_task_feedback(workload.task_ids[i], workload.feedback(i))


async def main(url: str, bench: Any, n: int) -> None:
    await migrate.upgrade(url)
    admin = await asyncpg.connect(url)
    await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    ours = PostgresStorage(url, run_migrations=False, pool_min=2, pool_max=10)
    await ours.connect()
    raw = bench.RawAsyncpgStorage(url, 10)
    await raw.connect()
    try:
        for warm in (True, False):
            if not warm:
                await admin.execute("SELECT pg_stat_statements_reset()")
            count = 200 if warm else n
            await lifecycle(ours, bench.Workload(count, 4, "str"), count)
            await lifecycle(raw, bench.Workload(count, 4, "uuid"), count)
        rows = await admin.fetch(
            "SELECT calls, mean_exec_time * 1000 AS us, regexp_replace(query, '\\s+', ' ', 'g') AS q"
            "  FROM pg_stat_statements WHERE calls >= $1 ORDER BY calls DESC, us DESC", n // 2
        )
        print(f"{'calls':>6} {'mean µs':>8}  statement (ours start with a '-- $1' comment)")
        for r in rows:
            print(f"{r['calls']:6} {r['us']:8.1f}  {r['q'][:100]}")
    finally:
        await ours.close()
        await raw.close()
        await admin.close()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path(os.environ.get("STORAGE_BENCH", DEFAULT_BENCH)))
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with TemporaryPostgres() as server:
        asyncio.run(main(server.url, shared_bench(args.bench), args.n))


if __name__ == "__main__":
    run()
