"""Storage operation latency, memory vs PostgreSQL, as ratios against floors measured in this run.

Floors: for PostgreSQL, one round trip of a trivial prepared statement (``SELECT $1::int``)
through the same asyncpg pool; for memory, an ``await`` of a coroutine that returns a small dict.
Run: ``python benchmarks/bench_storage.py [--ops 2000]`` (starts its own throwaway PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres


def message(task_id: uuid.UUID, context_id: uuid.UUID, text: str) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        await op(i)
        samples.append(time.perf_counter() - t0)
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(samples, n=100)
    return statistics.median(samples) * 1e6, qs[94] * 1e6, qs[98] * 1e6


async def run_backend(storage: Storage, n: int, floor: Callable[[int], Awaitable[Any]]) -> None:
    ids = [(uuid.uuid4(), uuid.uuid4()) for _ in range(n)]
    floor_p50 = summary(await timed(n, floor))[0]
    ops: dict[str, Callable[[int], Awaitable[Any]]] = {
        "submit_task": lambda i: storage.submit_task(ids[i][1], message(ids[i][0], ids[i][1], "hi")),
        "update_task (append)": lambda i: storage.update_task(
            ids[i][0], "working", new_messages=[message(ids[i][0], ids[i][1], "working on it")],
            metadata={"step": i},
        ),
        "load_task": lambda i: storage.load_task(ids[i][0]),
        "list_tasks(length=20)": lambda i: storage.list_tasks(length=20),
        "store_task_feedback": lambda i: storage.store_task_feedback(ids[i][0], {"rating": i % 5 + 1}),
    }
    print(f"  floor p50 {floor_p50:8.1f} µs")
    print(f"  {'operation':24} {'p50 µs':>9} {'p95 µs':>9} {'p99 µs':>9} {'ops/s':>9} {'p50/floor':>10}")
    for name, op in ops.items():
        p50, p95, p99 = summary(await timed(n, op))
        print(f"  {name:24} {p50:9.1f} {p95:9.1f} {p99:9.1f} {1e6 / p50:9.0f} {p50 / floor_p50:10.1f}")


async def main(n: int) -> None:
    print(f"{n} operations each, sequential\n\nmemory")

    async def memory_floor(i: int) -> dict[str, int]:
        return {"i": i}

    await run_backend(InMemoryStorage(), n, memory_floor)
    with TemporaryPostgres() as server:
        await migrate.upgrade(server.url)
        async with PostgresStorage(server.url, run_migrations=False, pool_min=2, pool_max=4) as pg:
            assert pg.pool is not None
            pool = pg.pool

            async def pg_floor(i: int) -> Any:
                return await pool.fetchval("SELECT $1::int", i)

            print("\npostgres (loopback, fsync off)")
            await run_backend(pg, n, pg_floor)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    asyncio.run(main(parser.parse_args().ops))
