"""Frames on PostgreSQL against the fastest Arrow loaders, in one run, interleaved rounds.

Seeds ``--tasks`` synthetic tasks (``bindu_storage.synthetic``: default 200,000) into a
throwaway PostgreSQL (or the database at ``--database-url``, seeded only when it holds no task),
then runs, ``--rounds`` times (default 5) in a rotating order, each contender in a fresh process
(its imports not timed; its peak resident memory read from ``getrusage``):

* ours: ``tasks_frame``, ``feedback_frame(with_task=True)``, ``messages_frame`` from the URL;
  ``tasks_frame(metadata_columns=<every metadata key>)``; ``tasks_frame(chunksize=50_000)``;
* the peers, each with the projection pushed into SQL (the same rows and columns as our frame:
  counts, ratings and every flattened key computed by the server): ADBC
  (``adbc_driver_postgresql.dbapi`` → ``fetch_arrow_table()`` → ``to_pandas()``) and connectorx
  (``read_sql(..., return_type="arrow")`` → ``to_pandas()``).

Prints the median and best time, rows, peak memory, and each frame's median ÷ the fastest peer's
median (``x peer``), and where the CPU time went: the loading process's own (``client CPU``,
every thread) and the PostgreSQL server's (``server CPU``: every ``postgres`` process of this
machine, parallel workers included; measured only when the server runs here). On a quiet
2-core machine the sum bounds the wall time from below: CPU seconds ÷ 2.
Peers are benchmark-only dependencies: ``pip install adbc-driver-postgresql connectorx``.
``--baseline DIR`` also runs our frames imported from another checkout (say, main's
worktree), in the same rounds, for before/after ratios measured together. Run: ``python
benchmarks/bench_frames.py [--tasks 200000] [--rounds 5] [--only tasks,feedback,messages,metadata,chunked]
[--database-url URL] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

CHUNKSIZE = 50_000


@dataclass
class Contender:
    """One way of loading a frame, run in a child process."""

    group: str
    """The frame it loads: its time is compared with the fastest peer of the same group."""
    name: str
    how: str
    """``ours``, ``adbc`` or ``connectorx``."""
    frame: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    sql: str = ""
    times: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    rows: int = 0
    columns: int = 0
    pythonpath: str | None = None
    """Another checkout of bindu_storage to import (``--baseline``), else this interpreter's."""


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def extraction(doc: str, path: tuple[str, ...], kind: str) -> str:
    """SQL reading the value at ``path`` of ``doc`` as a column of ``kind`` (a peer's projection)."""
    head = "".join(f" -> {literal(k)}" for k in path[:-1])
    last = literal(path[-1])
    if kind == "object":
        return f"({doc}{head} -> {last})::text"
    text = f"({doc}{head} ->> {last})"
    cast = {"Int64": "::bigint", "int": "::bigint", "float": "::float8", "bool": "::boolean"}
    return text + cast.get(kind, "")


async def flat_sql(url: str, frame: str, doc: str, kwargs: dict[str, Any]) -> list[str]:
    """Select expressions for the flattened columns our frame gives (from our own planner, so
    the peers read the very same key paths)."""
    from bindu_storage.analysis.frames._options import TaskFilters
    from bindu_storage.analysis.frames._pg import statements
    from bindu_storage.analysis.frames._pg.read import plan
    from bindu_storage.analysis.frames._pg.reader import PgReader

    reader = PgReader("public", dsn=url)
    try:
        info = await reader.info()
        if frame == "tasks":
            query = statements.tasks_query(info, TaskFilters(), kwargs.get("metadata_columns"))
        else:
            query = statements.feedback_query(info, TaskFilters(), None, None, True, None, None)
        flat = await plan(reader, query, None)
    finally:
        await reader.close()
    exprs = []
    for _, col in flat:
        reads = [extraction(doc, path, col.kind) for path in col.paths]
        expr = reads[0] if len(reads) == 1 else f"coalesce({', '.join(reads)})"
        exprs.append(f'{expr} AS "{col.name}"')
    return exprs


def tasks_sql(flat: list[str]) -> str:
    """``tasks_frame`` as one statement."""
    return f"""
SELECT t.id::text AS id, t.context_id::text AS context_id, t.state, t.state_timestamp,
       t.created_at, t.updated_at,
       jsonb_array_length(t.history) AS history_len,
       jsonb_array_length(t.artifacts) AS artifact_count,
       coalesce(f.n, 0) AS feedback_count, f.mean AS mean_rating, t.owner_did,
       {', '.join(flat)}
FROM tasks t
LEFT JOIN (SELECT task_id, count(*) AS n, avg((feedback_data ->> 'rating')::float8) AS mean
           FROM task_feedback GROUP BY task_id) AS f ON f.task_id = t.id
ORDER BY t.seq"""


def feedback_sql(flat: list[str]) -> str:
    """``feedback_frame(with_task=True)`` as one statement."""
    return f"""
SELECT fb.id, fb.task_id::text AS task_id, fb.created_at,
       (fb.feedback_data ->> 'rating')::bigint AS rating,
       coalesce(fb.feedback_data ->> 'comment', fb.feedback_data ->> 'feedback') AS comment,
       t.context_id::text AS context_id, t.state{''.join(', ' + e for e in flat)}
FROM task_feedback fb JOIN tasks t ON t.id = fb.task_id
ORDER BY fb.id"""


MESSAGES_SQL = """
SELECT t.id::text AS task_id, t.context_id::text AS context_id, h.o - 1 AS position,
       h.m ->> 'message_id' AS message_id, h.m ->> 'role' AS role,
       array_to_string(ARRAY(SELECT jsonb_path_query(h.m -> 'parts',
         'strict $[*] ? (@.kind == "text").text') #>> '{}'), E'\\n') AS text,
       array_to_string(ARRAY(SELECT jsonb_path_query(h.m -> 'parts',
         'strict $[*].kind') #>> '{}'), ',') AS part_kinds
FROM tasks t CROSS JOIN LATERAL jsonb_array_elements(t.history) WITH ORDINALITY AS h(m, o)
ORDER BY t.seq, h.o"""


# --- the child: one load, timed ------------------------------------------------------------------


def peak_rss_mib() -> float:
    """The peak resident memory of this process (``VmHWM``: unlike ``ru_maxrss``, not inherited
    from the parent across ``exec``)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


TICK = os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """CPU seconds used so far by this machine's PostgreSQL: every live ``postgres`` process,
    plus what the postmaster's exited children used (``cutime``/``cstime``: parallel workers and
    closed backends). NaN when no PostgreSQL runs here."""
    total, found = 0, False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if name != "postgres":
            continue
        fields = rest.split()  # fields[0] is the state (field 3 of proc(5))
        found = True
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1" or not _is_postgres(int(fields[1])):  # the postmaster: its children's time
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / TICK if found else float("nan")


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except OSError:
        return False


def child(spec: dict[str, Any], url: str) -> None:
    """Load once as ``spec`` says; print seconds, shape and peak memory as JSON."""
    import pandas  # noqa: F401 - imported before the timer, as by any caller
    import pyarrow  # noqa: F401

    how = spec["how"]
    if how == "ours":
        from bindu_storage.analysis import frames

        load = getattr(frames, f"{spec['frame']}_frame")

        async def ours() -> tuple[int, int]:
            if "chunksize" in spec["kwargs"]:
                rows = cols = 0
                async for chunk in load(url, **spec["kwargs"]):
                    rows, cols = rows + len(chunk), chunk.shape[1]
                return rows, cols
            df = await load(url, **spec["kwargs"])
            return df.shape

        run = lambda: asyncio.run(ours())  # noqa: E731
    elif how == "adbc":
        import adbc_driver_postgresql.dbapi as adbc

        def run() -> tuple[int, int]:
            with adbc.connect(url) as conn, conn.cursor() as cur:
                cur.execute(spec["sql"])
                return cur.fetch_arrow_table().to_pandas().shape

    else:
        import connectorx as cx

        def run() -> tuple[int, int]:
            return cx.read_sql(url, spec["sql"], return_type="arrow").to_pandas().shape

    base = peak_rss_mib()
    server_before, client_before = server_cpu(), time.process_time()
    started = time.perf_counter()
    rows, cols = run()
    seconds = time.perf_counter() - started
    client = time.process_time() - client_before
    time.sleep(0.3)  # the postmaster reaps the closed backend and its workers: their time moves to it
    server = server_cpu() - server_before
    peak = peak_rss_mib()
    print(json.dumps({"seconds": seconds, "rows": rows, "columns": cols, "peak": peak, "base": base,
                      "client_cpu": client, "server_cpu": server}))


# --- the parent: seed, plan, interleave ----------------------------------------------------------


async def prepare(url: str, n: int) -> int:
    """Migrate and seed the database when it has no tasks; the number of tasks it holds."""
    from bindu_storage import PostgresStorage
    from bindu_storage.storage import migrate
    from bindu_storage.synthetic import generate, load

    await migrate.upgrade(url)
    conn = await asyncpg.connect(url)
    try:
        held = int(await conn.fetchval("SELECT count(*) FROM tasks"))
        if held:
            return held
        started = time.perf_counter()
        storage = PostgresStorage(url)
        try:
            await load(storage, generate(n))
        finally:
            await storage.close()
        await conn.execute("VACUUM ANALYZE")
        print(f"seeded {n:,} tasks in {time.perf_counter() - started:.1f} s", flush=True)
        return n
    finally:
        await conn.close()


async def contenders(url: str, only: list[str], baseline: str | None = None) -> list[Contender]:
    """Every contender of the groups asked for (with ``baseline``, our frames from that checkout too)."""
    meta = await flat_sql(url, "tasks", "t.metadata", {})
    keys = [e.rsplit(' AS "metadata.', 1)[1].rstrip('"') for e in meta]
    fb = await flat_sql(url, "feedback", "fb.feedback_data", {})
    groups: dict[str, list[Contender]] = {
        "tasks": [Contender("tasks", "tasks_frame", "ours", "tasks")],
        "metadata": [
            Contender("metadata", f"tasks_frame(metadata_columns=<{len(keys)} keys>)", "ours", "tasks",
                      {"metadata_columns": keys}),
        ],
        "chunked": [
            Contender("chunked", f"tasks_frame(chunksize={CHUNKSIZE:,})", "ours", "tasks",
                      {"chunksize": CHUNKSIZE}),
        ],
        "feedback": [
            Contender("feedback", "feedback_frame(with_task=True)", "ours", "feedback", {"with_task": True}),
        ],
        "messages": [Contender("messages", "messages_frame", "ours", "messages")],
    }
    peers = {"tasks": tasks_sql(meta), "feedback": feedback_sql(fb), "messages": MESSAGES_SQL}
    for group, sql in peers.items():
        for how in ("adbc", "connectorx"):
            groups[group].append(Contender(group, f"  {how} -> pandas", how, sql=sql))
    if baseline is not None:
        for cs in groups.values():
            ours = [c for c in cs if c.how == "ours"]
            cs[len(ours):len(ours)] = [
                Contender(c.group, f"{c.name} [baseline]", "ours", c.frame, c.kwargs, pythonpath=baseline)
                for c in ours
            ]
    return [c for name, cs in groups.items() if not only or name in only for c in cs]


def run_child(contender: Contender, url: str) -> None:
    """One round of ``contender`` in a fresh process."""
    spec = {"how": contender.how, "frame": contender.frame, "kwargs": contender.kwargs, "sql": contender.sql}
    env = None
    if contender.pythonpath is not None:
        env = {**os.environ, "PYTHONPATH": contender.pythonpath}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec), "--database-url", url],
        check=True, capture_output=True, text=True, env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    contender.times.append(result["seconds"])
    contender.peak_mib.append(result["peak"])
    contender.client_cpu.append(result["client_cpu"])
    contender.server_cpu.append(result["server_cpu"])
    contender.rows, contender.columns = result["rows"], result["columns"]


def report(n: int, all_: list[Contender]) -> None:
    """The table: medians, and each of ours ÷ the fastest peer of its frame."""
    peer_best: dict[str, float] = {}
    for c in all_:
        if c.how != "ours":
            peer_best[c.group] = min(peer_best.get(c.group, float("inf")), statistics.median(c.times))
    peer_best.setdefault("metadata", peer_best.get("tasks", float("nan")))
    peer_best.setdefault("chunked", peer_best.get("tasks", float("nan")))
    print(f"\n{f'frames ({n:,} tasks)':44} {'rows':>9} {'cols':>4} {'median s':>8} {'best s':>7}"
          f" {'peak MiB':>8} {'x peer':>6} {'client CPU':>10} {'server CPU':>10}")
    for c in all_:
        median = statistics.median(c.times)
        ratio = median / peer_best[c.group]
        print(f"{c.name:44} {c.rows:9,} {c.columns:4} {median:8.3f} {min(c.times):7.3f}"
              f" {max(c.peak_mib):8.0f} {ratio:6.2f} {statistics.median(c.client_cpu):10.2f}"
              f" {statistics.median(c.server_cpu):10.2f}")


async def main(n: int, rounds: int, only: list[str], url: str | None, baseline: str | None = None) -> None:
    if url is None:
        from bindu_storage.testing import TemporaryPostgres

        with TemporaryPostgres() as server:
            await main(n, rounds, only, server.url, baseline)
        return
    held = await prepare(url, n)
    everyone = await contenders(url, only, baseline)
    for r in range(rounds):
        shift = r % len(everyone)
        for contender in everyone[shift:] + everyone[:shift]:
            run_child(contender, url)
        print(f"round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
    report(held, everyone)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="groups: tasks,feedback,messages,metadata,chunked")
    parser.add_argument("--database-url", help="an existing database (default: a throwaway server)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run our frames from this checkout (its PYTHONPATH), e.g. main's worktree")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child), args.database_url)
        sys.exit(0)
    only = [x for x in args.only.split(",") if x]
    asyncio.run(main(args.tasks, args.rounds, only, args.database_url, args.baseline))
