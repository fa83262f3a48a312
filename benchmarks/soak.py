"""Soak: 64 concurrent clients of mixed traffic on a pool of 10, with the network cutting
connections and losing replies after commit, against the same traffic without faults.

Each client loops over one task's life: submit, claim it with ``update_task_state_if``, append a
message (working), finish it with an artifact (completed), read it back, leave feedback, and
now and then list tasks. A chaos loop cuts every open connection every ``--cut-every`` seconds
and loses the reply of a committed statement in between (``tests/faultproxy.py``). Afterwards
every acknowledged task is checked in the database.

Printed: throughput and p50/p99 per phase (the clean phase is the floor: same traffic, same
pool, no faults), errors that reached a client by type, and the audit: acknowledged, lost,
duplicated, misreported claims. Process memory (RSS) is sampled every 5 s.

Run: ``python benchmarks/soak.py [--seconds 180] [--clients 64] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from faultproxy import FaultProxy

from bindu_storage import PostgresStorage
from bindu_storage.storage import migrate
from bindu_storage.testing import TemporaryPostgres


def rss_mib() -> float:
    """This process's resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def message(task_id: uuid.UUID, context_id: uuid.UUID, n: int, role: str = "user") -> dict[str, Any]:
    return {
        "message_id": f"{task_id}-{n}", "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": role, "parts": [{"kind": "text", "text": "soak " * 40}],
    }


class Phase:
    """What one phase saw: latencies per operation, errors, acknowledged tasks, claim answers."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.acknowledged: list[uuid.UUID] = []
        self.claims_false = 0
        self.rss: list[float] = []


async def client(storage: PostgresStorage, phase: Phase, until: float, rng: random.Random) -> None:
    async def timed(name: str, call: Any) -> Any:
        t0 = time.perf_counter()
        result = await call
        phase.latency[name].append(time.perf_counter() - t0)
        return result

    while time.monotonic() < until:
        cid, tid = uuid.uuid4(), uuid.uuid4()
        try:
            await timed("submit_task", storage.submit_task(cid, message(tid, cid, 0), caller_did="did:soak"))
            if not await timed("claim", storage.update_task_state_if(tid, "submitted", "working")):
                phase.claims_false += 1  # nobody else claims this task: a False is a misreport
                continue
            await timed("update_task", storage.update_task(
                tid, "working", new_messages=[message(tid, cid, 1, "agent")], metadata={"step": 1}))
            await timed("complete", storage.update_task(tid, "completed", new_artifacts=[
                {"artifact_id": f"{tid}-a", "parts": [{"kind": "text", "text": "done"}]}]))
            await timed("load_task", storage.load_task(tid))
            await timed("feedback", storage.store_task_feedback(tid, {"rating": rng.randint(1, 5)}))
            if rng.random() < 0.1:
                await timed("list_tasks", storage.list_tasks(length=20, owner_did="did:soak"))
            phase.acknowledged.append(tid)
        except Exception as exc:  # counted, reported: the soak's verdict
            phase.errors[type(exc).__name__] += 1


async def chaos(proxy: FaultProxy, until: float, cut_every: float) -> int:
    cuts = 0
    while time.monotonic() < until:
        await asyncio.sleep(cut_every / 2)
        proxy.drop_replies_after_commit(1)
        await asyncio.sleep(cut_every / 2)
        proxy.cut_all()
        cuts += 1
    return cuts


async def sample_memory(phase: Phase, until: float) -> None:
    while time.monotonic() < until:
        phase.rss.append(rss_mib())
        await asyncio.sleep(5)


async def run_phase(url: str, seconds: float, clients: int, faults: bool, cut_every: float) -> Phase:
    proxy = await FaultProxy.start(url)
    storage = PostgresStorage(proxy.url(url), run_migrations=False, pool_min=10, pool_max=10,
                              max_retries=5, retry_delay=0.01)
    await storage.connect()
    phase = Phase()
    until = time.monotonic() + seconds
    rng = random.Random(7)
    jobs = [client(storage, phase, until, rng) for _ in range(clients)]
    jobs.append(sample_memory(phase, until))
    started = time.perf_counter()
    results = await asyncio.gather(*jobs, chaos(proxy, until, cut_every) if faults else asyncio.sleep(0))
    phase.latency["_elapsed"] = [time.perf_counter() - started]
    phase.errors["_cuts"] = results[-1] or 0
    phase.errors["_replies_lost"] = proxy.replies_dropped
    await storage.close()
    await proxy.close()
    return phase


async def audit(url: str, acknowledged: list[uuid.UUID]) -> tuple[int, int]:
    """(lost, duplicated): acknowledged tasks not completed whole, and duplicated events."""
    async with PostgresStorage(url, run_migrations=False, pool_min=1, pool_max=2) as storage:
        rows = await storage.fetch(
            "SELECT t.id, t.state, jsonb_array_length(t.history) AS messages,"
            " jsonb_array_length(t.artifacts) AS artifacts,"
            " (SELECT count(*) FROM public.task_events e WHERE e.task_id = t.id) AS events,"
            " (SELECT count(*) FROM public.task_feedback f WHERE f.task_id = t.id) AS feedback"
            " FROM public.tasks t WHERE t.id = ANY($1::uuid[])", acknowledged)
    whole = {r["id"] for r in rows if (r["state"], r["messages"], r["artifacts"]) == ("completed", 2, 1)}
    duplicated = sum(1 for r in rows if r["events"] != 3 or r["feedback"] != 1)
    return len(set(acknowledged) - whole), duplicated


def report(name: str, phase: Phase) -> float:
    elapsed = phase.latency["_elapsed"][0]
    calls = sum(len(v) for k, v in phase.latency.items() if not k.startswith("_"))
    everything = [x for k, v in phase.latency.items() if not k.startswith("_") for x in v]
    q = statistics.quantiles(everything, n=100)
    print(f"\n{name}: {calls} calls in {elapsed:.0f} s = {calls / elapsed:,.0f} calls/s; "
          f"p50 {statistics.median(everything) * 1e3:.1f} ms, p99 {q[98] * 1e3:.1f} ms; "
          f"tasks acknowledged {len(phase.acknowledged)}")
    for op, samples in sorted(phase.latency.items()):
        if not op.startswith("_"):
            oq = statistics.quantiles(samples, n=100)
            print(f"  {op:12} n={len(samples):6}  p50 {statistics.median(samples) * 1e3:6.1f} ms"
                  f"  p99 {oq[98] * 1e3:7.1f} ms")
    errors = {k: v for k, v in phase.errors.items() if not k.startswith("_")}
    print(f"  connection cuts {phase.errors['_cuts']}, replies lost after commit "
          f"{phase.errors['_replies_lost']}, errors reaching clients {sum(errors.values())} {errors or ''}")
    print(f"  claims answered False (misreported) {phase.claims_false}")
    if len(phase.rss) >= 3:
        print(f"  RSS MiB: {phase.rss[1]:.0f} after warm-up, {phase.rss[-1]:.0f} at the end "
              f"(min {min(phase.rss[1:]):.0f}, max {max(phase.rss[1:]):.0f})")
    return calls / elapsed


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("bindu_storage").setLevel(logging.ERROR)  # retries are counted, not logged
    server = None if args.database_url else TemporaryPostgres()
    url = args.database_url or server.__enter__().url  # type: ignore[union-attr]
    try:
        await migrate.upgrade(url)
        print(f"{args.clients} clients, pool of 10, {args.seconds:.0f} s per phase")
        clean = await run_phase(url, args.seconds, args.clients, False, args.cut_every)
        clean_rate = report("floor: no faults", clean)
        faulted = await run_phase(url, args.seconds, args.clients, True, args.cut_every)
        title = f"faults: all connections cut every {args.cut_every:g} s, a reply lost between"
        rate = report(title, faulted)
        lost, duplicated = await audit(url, faulted.acknowledged + clean.acknowledged)
        print(f"\naudit of {len(faulted.acknowledged) + len(clean.acknowledged)} acknowledged tasks: "
              f"lost {lost}, duplicated {duplicated}; throughput under faults ÷ floor = "
              f"{rate / clean_rate:.2f}")
    finally:
        if server is not None:
            server.__exit__(None, None, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--cut-every", type=float, default=2.0)
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
