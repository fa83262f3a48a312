"""Server time per statement, ours and the floor's, from ``pg_stat_statements``.

Runs the write-heavy steps of the shared benchmark's lifecycle (submit, update to working, update
to completed, list by context, feedback) through ``PostgresStorage`` and through the shared
benchmark's raw asyncpg floor on one throwaway server, then prints every statement's calls and
mean execution time. It tells how much of a gap is work on the server (what the statement does)
and how much is the client (round trips, decoding, Python).

Run: ``python benchmarks/storage_server_time.py [--n 1000]`` (``--bench`` as in bench_storage.py).

``--parts`` profiles the write statements part by part instead: ``update_task`` (to working, then to
completed with an artifact and a message) and ``submit_task`` run as bare statements on one
connection, as shipped and with one part taken out at a time (the event row in ``task_events``,
the ``FOR UPDATE`` row lock, the de-duplication of messages and artifacts, the context touch),
beside the floor's statement; batches of ``--batch`` calls in shuffled order for ``--rounds``
rounds. It prints the median wall time per call (everything the server does for the call: bind,
executor start, run, triggers, commit, the reply) and the ``pg_stat_statements`` execution time
(run and finish only). A statement with a part taken out is not a correct statement: it only
shows what that part costs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bindu_storage import PostgresStorage
from bindu_storage.storage import migrate
from bindu_storage.storage.codec import init_connection
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
        await storage.update_task(
            workload.task_ids[i],
            "completed",
            new_artifacts=[workload.artifact(i)],
            new_messages=[workload.agent_message(i)],
        )
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
            "  FROM pg_stat_statements WHERE calls >= $1 ORDER BY calls DESC, us DESC",
            n // 2,
        )
        print(f"{'calls':>6} {'mean µs':>8}  statement (ours start with a '-- $1' comment)")
        for r in rows:
            print(f"{r['calls']:6} {r['us']:8.1f}  {r['q'][:100]}")
    finally:
        await ours.close()
        await raw.close()
        await admin.close()


def without_cte(statement: str, name: str) -> str:
    """``statement`` without its data-modifying CTE ``name`` (for the profile only)."""
    out = re.sub(rf",\s*{name} AS \(.*?\n\)(?=\n)", "", statement, flags=re.S)
    assert out != statement, name
    return out


def part_variants(storage: PostgresStorage, bench: Any) -> dict[str, dict[str, str]]:
    """Per operation: our statement, the same without one part at a time, and the floor's."""
    update, submit = storage.sql.update_task, storage.sql.submit_task
    no_dedup = re.sub(
        r"add_h AS \(.*?\n\),\nadd_a AS \(.*?\n\),",
        "add_h AS (SELECT $3::jsonb AS v),\nadd_a AS (SELECT $4::jsonb AS v),",
        update,
        flags=re.S,
    )
    assert no_dedup != update
    floor_update = (
        "UPDATE tasks SET state = $2, state_timestamp = now(), artifacts = artifacts || $3, "
        "history = history || $4 WHERE id = $1 RETURNING " + bench.RawAsyncpgStorage.COLS
    )
    return {
        "update": {
            "ours": update,
            "- event row": without_cte(update, "ev"),
            "- row lock": update.replace("FOR UPDATE", ""),
            "- de-duplication": no_dedup,
            "floor": floor_update,
        },
        "submit": {
            "ours": submit,
            "- event row": without_cte(submit, "ev"),
            "- context touch": without_cte(submit, "touch"),
            "floor": bench.RawAsyncpgStorage.SQL_SUBMIT,
        },
    }


async def parts(url: str, bench: Any, batch: int, rounds: int) -> None:
    """Wall and execution time per call of each statement variant (see the module docstring)."""
    await migrate.upgrade(url)
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    storage = PostgresStorage(url, run_migrations=False, pool_min=1, pool_max=1)
    variants = part_variants(storage, bench)
    jobs = [(op, name) for op, named in variants.items() for name in named]
    workload = bench.Workload(batch * rounds * len(jobs), 4, "str")
    message, artifact = workload.agent_message(0), workload.artifact(0)
    wall: dict[tuple[str, str], list[float]] = {}
    server: dict[tuple[str, str], list[float]] = {}

    async def timed(key: tuple[str, str], statement: str, calls: list[tuple[Any, ...]]) -> None:
        await conn.execute("SELECT pg_stat_statements_reset()")
        started = time.perf_counter()
        for args in calls:
            await conn.fetchrow(statement, *args)
        wall.setdefault(key, []).append((time.perf_counter() - started) / len(calls) * 1e6)
        spent = await conn.fetchval(
            "SELECT sum(total_exec_time) * 1000 FROM pg_stat_statements"
            " WHERE toplevel AND query NOT LIKE '%pg_stat_statements%'"
        )
        server.setdefault(key, []).append(spent / len(calls))

    try:
        await storage.connect()
        n = 0
        for _ in range(rounds):
            random.shuffle(jobs)
            for op, name in jobs:
                statement, floor = variants[op][name], name == "floor"
                i = range(n, n + batch)
                n += batch
                ids = [workload.task_ids[k] for k in i]
                key_of = uuid.UUID if floor else str
                if op == "submit":
                    calls = [
                        (key_of(ids[j]), key_of(workload.ctx_of[k]), workload.user_message(k))
                        for j, k in enumerate(i)
                    ]
                    calls = [
                        (*c[:2], [c[2]], list(bench.TERMINAL_STATES)) if floor else (*c, None) for c in calls
                    ]
                    await timed((op, name), statement, calls)
                    continue
                for k in i:
                    await storage.submit_task(workload.ctx_of[k], workload.user_message(k))
                if floor:
                    working = (
                        statement.split(", artifacts =")[0]
                        + " WHERE id = $1 RETURNING "
                        + bench.RawAsyncpgStorage.COLS
                    )
                    await timed(("update → working", name), working, [(key_of(t), "working") for t in ids])
                    await timed(
                        ("update → completed", name),
                        statement,
                        [(key_of(t), "completed", [artifact], [message]) for t in ids],
                    )
                else:
                    await timed(
                        ("update → working", name), statement, [(t, "working", [], [], {}, None) for t in ids]
                    )
                    await timed(
                        ("update → completed", name),
                        statement,
                        [(t, "completed", [message], [artifact], {}, None) for t in ids],
                    )
    finally:
        await storage.close()
        await conn.close()
    print(f"{'statement':36} {'wall µs':>8} {'- floor':>8} {'exec µs':>8} {'- floor':>8}")
    for op in ("update → working", "update → completed", "submit"):
        floor_wall = statistics.median(wall[(op, "floor")])
        floor_exec = statistics.median(server[(op, "floor")])
        for name in variants["submit" if op == "submit" else "update"]:
            w, e = statistics.median(wall[(op, name)]), statistics.median(server[(op, name)])
            print(f"{op + ': ' + name:36} {w:8.0f} {w - floor_wall:+8.0f} {e:8.0f} {e - floor_exec:+8.0f}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path(os.environ.get("STORAGE_BENCH", DEFAULT_BENCH)))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--parts", action="store_true", help="profile the write statements part by part")
    parser.add_argument("--batch", type=int, default=100, help="calls per batch (--parts)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of batches (--parts)")
    args = parser.parse_args()
    with TemporaryPostgres() as server:
        if args.parts:
            asyncio.run(parts(server.url, shared_bench(args.bench), args.batch, args.rounds))
        else:
            asyncio.run(main(server.url, shared_bench(args.bench), args.n))


if __name__ == "__main__":
    run()
