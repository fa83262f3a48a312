"""``bindu-storage export tasks --to x.parquet`` against an ADBC → ``pyarrow.parquet.write_table`` floor.

Uses the database ``bench_frames.py`` seeds (``--tasks`` synthetic tasks, seeded when it holds
none). Then, ``--rounds`` times (default 5), interleaved, each in a fresh process:

* in process: the export (``cli.app.main([...])``) timed after its imports (the frames package
  and ``pyarrow.parquet``, which the command imports lazily), as the floor is; the floor: ADBC
  reads the same rows and columns (the projection of ``bench_frames.tasks_sql``) as one Arrow
  table and ``pyarrow.parquet.write_table`` writes it with the same compression (zstd);
* as a command: ``bindu-storage export tasks --to x.parquet --no-progress`` (the console
  script's own two lines, run by this interpreter) and the floor as a ``python -c`` command,
  each timed from the outside (interpreter start and imports included).

Prints medians and ``x floor``; ``--baseline DIR`` also runs our export imported from another
checkout (say, main's worktree) in the same rounds. ADBC is a benchmark-only dependency (``pip install
adbc-driver-postgresql``). Run: ``python benchmarks/bench_export.py [--tasks 200000]
[--rounds 5] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_frames import flat_sql, prepare, tasks_sql

FLOOR = """
import sys, time
started = time.perf_counter()
import adbc_driver_postgresql.dbapi as adbc
import pyarrow.parquet as pq
imported = time.perf_counter()
with adbc.connect(sys.argv[1]) as conn, conn.cursor() as cur:
    cur.execute(open(sys.argv[2]).read())
    pq.write_table(cur.fetch_arrow_table(), sys.argv[3], compression="zstd")
print(time.perf_counter() - imported)
"""

OURS = """
import sys, time
from bindu_storage.cli.app import main
import bindu_storage.analysis.frames, pyarrow.parquet  # the export's own imports, as the floor's are
started = time.perf_counter()
code = main(["export", "tasks", "--to", sys.argv[3], "--database-url", sys.argv[1], "--no-progress"])
assert code == 0
print(time.perf_counter() - started)
"""


def timed(command: list[str], pythonpath: str | None = None) -> tuple[float, float]:
    """(Seconds from the outside, seconds the command reports after its imports); ``pythonpath``:
    the checkout of bindu_storage the command imports."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath is not None else None
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    outside = time.perf_counter() - started
    try:
        inside = float(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        inside = float("nan")
    return outside, inside


def measure(url: str, rounds: int, baseline: str | None = None) -> None:
    """Time ours and the floor, in process and as commands, interleaved (with ``baseline``, ours
    from that checkout too)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        sql_file = folder / "tasks.sql"
        sql_file.write_text(tasks_sql(asyncio.run(flat_sql(url, "tasks", "t.metadata", {}))))
        cli = [sys.executable, "-c", "import sys; from bindu_storage.cli.app import main; sys.exit(main())"]
        out = {name: str(folder / f"{name}.parquet") for name in "abc"}
        runs = {
            "in process: export tasks": [sys.executable, "-c", OURS, url, str(sql_file), out["a"]],
            "in process: floor (ADBC -> write_table)":
                [sys.executable, "-c", FLOOR, url, str(sql_file), out["b"]],
            "command: bindu-storage export tasks":
                [*cli, "export", "tasks", "--to", out["c"], "--database-url", url, "--no-progress"],
        }
        paths: dict[str, str | None] = {name: None for name in runs}
        if baseline is not None:
            for name in ("in process: export tasks", "command: bindu-storage export tasks"):
                runs[f"{name} [baseline]"] = [*runs[name][:-1], runs[name][-1]]
                paths[f"{name} [baseline]"] = baseline
        times: dict[str, list[float]] = {name: [] for name in [*runs, "command: floor (python -c)"]}
        for r in range(rounds):
            order = list(runs.items())
            shift = r % len(order)
            for name, command in order[shift:] + order[:shift]:
                outside, inside = timed(command, paths[name])
                if name.startswith("in process"):
                    times[name].append(inside)
                    if "floor" in name:
                        times["command: floor (python -c)"].append(outside)
                else:
                    times[name].append(outside)
            print(f"round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
        sizes = {p.name: p.stat().st_size for p in folder.glob("*.parquet")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    floors = {"in process": medians["in process: floor (ADBC -> write_table)"],
              "command": medians["command: floor (python -c)"]}
    print(f"\n{'export of the tasks to Parquet':55} {'median s':>8} {'x floor':>7}")
    for name, median in medians.items():
        print(f"{name:55} {median:8.3f} {median / floors[name.split(':')[0]]:7.2f}")
    print("file sizes:", json.dumps(sizes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="an existing database (default: a throwaway server)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run our export from this checkout (its PYTHONPATH), e.g. main's worktree")
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(prepare(args.database_url, args.tasks))
        measure(args.database_url, args.rounds, args.baseline)
    else:
        from bindu_storage.testing import TemporaryPostgres

        with TemporaryPostgres() as server:
            asyncio.run(prepare(server.url, args.tasks))
            measure(server.url, args.rounds, args.baseline)
