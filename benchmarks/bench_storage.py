"""Storage operations against the hand-written asyncpg floor, in one run on one server.

The workload and both implementations are the shared benchmark's (``storage_bench.py``, found
through ``--bench`` or ``$STORAGE_BENCH``; this runner only orchestrates it): ``--impl raw`` is
the floor (each operation one autocommit asyncpg statement, JSONB through orjson in asyncpg's
binary format, no reset query on release), ``--impl bindu_storage`` is this package. Both run
against one throwaway PostgreSQL (``TemporaryPostgres``, migrated once), as subprocesses that
alternate which goes first, for ``--rounds`` rounds, sequentially and with 32 calls in flight.
Per operation it prints the median ratio ours ÷ floor (ops/s over ops/s, so 1.0 is parity and
higher is faster), then the in-memory backend's ops/s (median over the same rounds) and the
cost of ``list_tasks(100)`` against 100 single ``load_task`` calls.

Run: ``python benchmarks/bench_storage.py [--n 1200] [--rounds 5] [--memory-n 20000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres

DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "storage_bench.py"
OPS = [
    "submit_task", "update_working", "update_completed", "load_task", "load_task_h1",
    "list_tasks_100", "list_tasks_by_context", "store_task_feedback", "get_task_feedback",
]


def run_bench(bench: Path, *args: str) -> dict[str, float]:
    """ops/s per operation of one run of the shared benchmark (its JSON lines on stdout)."""
    env = {**os.environ, "STORAGE__RUN_MIGRATIONS_ON_STARTUP": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(bench), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{bench.name} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    rates: dict[str, float] = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        if row.get("op") in OPS:
            if row["errors"]:
                raise SystemExit(f"{row['op']}: {row['errors']} errors, first {row['first_error']}")
            rates[row["op"]] = row["ops_per_s"]
    return rates


def postgres_table(bench: Path, url: str, n: int, rounds: int, concurrency: int) -> None:
    """Print the median ratio ours ÷ floor per operation over interleaved rounds."""
    ratios: dict[str, list[float]] = {op: [] for op in OPS}
    ours_rates: dict[str, list[float]] = {op: [] for op in OPS}
    floor_rates: dict[str, list[float]] = {op: [] for op in OPS}
    common = ["--backend", "postgres", "--database-url", url, "--n", str(n),
              "--concurrency", str(concurrency)]
    for r in range(rounds):
        order = ["raw", "bindu_storage"] if r % 2 == 0 else ["bindu_storage", "raw"]
        got = {impl: run_bench(bench, "--impl", impl, *common) for impl in order}
        for op in OPS:
            ours_rates[op].append(got["bindu_storage"][op])
            floor_rates[op].append(got["raw"][op])
            ratios[op].append(got["bindu_storage"][op] / got["raw"][op])
        print(f"  round {r + 1}/{rounds} done ({' then '.join(order)})", file=sys.stderr)
    label = "sequential" if concurrency == 1 else f"{concurrency} in flight"
    print(f"\nPostgreSQL, {label}: n={n}, {rounds} rounds, median of per-round ratios")
    print(f"  {'operation':24} {'ours ops/s':>11} {'floor ops/s':>12} {'ours ÷ floor':>13} {'min-max':>12}")
    for op in OPS:
        rs = ratios[op]
        print(f"  {op:24} {statistics.median(ours_rates[op]):11.0f} "
              f"{statistics.median(floor_rates[op]):12.0f} {statistics.median(rs):13.2f} "
              f"{min(rs):5.2f}-{max(rs):<5.2f}")


def memory_table(bench: Path, n: int, rounds: int) -> None:
    """Print the in-memory backend's median ops/s per operation."""
    runs = [run_bench(bench, "--impl", "bindu_storage", "--backend", "memory", "--n", str(n))
            for _ in range(rounds)]
    print(f"\nInMemoryStorage: n={n}, median ops/s of {rounds} runs")
    for op in OPS:
        print(f"  {op:24} {statistics.median(run[op] for run in runs):11.0f}")
    per_round = [run["load_task"] / (100 * run["list_tasks_100"]) for run in runs]
    print(f"  list_tasks(100) time over 100 loads: {statistics.median(per_round):.2f} (target ≤ 10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path(os.environ.get("STORAGE_BENCH", DEFAULT_BENCH)))
    parser.add_argument("--n", type=int, default=1200, help="task lifecycles per PostgreSQL run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", default="1,32", help="comma-separated; 1 = sequential")
    parser.add_argument("--memory-n", type=int, default=20000, help="0 skips the memory table")
    parser.add_argument("--database-url", help="a migrated database instead of a throwaway server")
    args = parser.parse_args()
    if not args.bench.is_file():
        raise SystemExit(f"no shared benchmark at {args.bench} (give --bench or $STORAGE_BENCH)")
    levels = [int(c) for c in args.concurrency.split(",") if c]
    if args.database_url:
        for c in levels:
            postgres_table(args.bench, args.database_url, args.n, args.rounds, c)
    elif levels:
        import asyncio

        with TemporaryPostgres() as server:
            asyncio.run(migrate.upgrade(server.url))
            for c in levels:
                postgres_table(args.bench, server.url, args.n, args.rounds, c)
    if args.memory_n:
        memory_table(args.bench, args.memory_n, args.rounds)


if __name__ == "__main__":
    main()
