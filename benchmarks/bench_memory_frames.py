"""Frames of an InMemoryStorage against the same frames from PostgreSQL, in one run.

The same synthetic data (``synthetic.generate``) is loaded into a throwaway PostgreSQL (COPY)
and into an ``InMemoryStorage`` (an API replay); then each frame is read from both, alternating
which goes first, for ``--rounds`` rounds. Prints the median seconds of each and the ratio
memory ÷ PostgreSQL (the target: at most 1.0).

Run: ``python benchmarks/bench_memory_frames.py [--tasks 200000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bindu_storage import InMemoryStorage, PostgresStorage, Storage
from bindu_storage.analysis import frames as F
from bindu_storage.storage import migrate
from bindu_storage.synthetic import generate, load
from bindu_storage.testing import TemporaryPostgres

FRAMES: dict[str, Callable[[Storage], Awaitable[Any]]] = {
    "tasks_frame": lambda s: F.tasks_frame(s),
    "feedback_frame(with_task=True)": lambda s: F.feedback_frame(s, with_task=True),
    "messages_frame": lambda s: F.messages_frame(s),
}


async def seconds(frame: Callable[[Storage], Awaitable[Any]], storage: Storage) -> float:
    gc.collect()
    started = time.perf_counter()
    await frame(storage)
    return time.perf_counter() - started


async def main(url: str, n_tasks: int, rounds: int) -> None:
    data = generate(n_tasks, seed=1)
    await migrate.upgrade(url)
    memory = InMemoryStorage()
    async with PostgresStorage(url, run_migrations=False) as pg:
        started = time.perf_counter()
        await load(pg, data)
        await load(memory, data)
        print(f"{n_tasks} tasks loaded into both in {time.perf_counter() - started:.0f} s")
        times: dict[str, dict[str, list[float]]] = {name: {"memory": [], "postgres": []} for name in FRAMES}
        for r in range(rounds):
            for name, frame in FRAMES.items():
                order = [("memory", memory), ("postgres", pg)]
                for label, storage in order if r % 2 == 0 else order[::-1]:
                    times[name][label].append(await seconds(frame, storage))
    print(f"\nframes of {n_tasks} tasks, median seconds of {rounds} interleaved rounds")
    print(f"  {'frame':32} {'memory s':>9} {'postgres s':>11} {'memory ÷ pg':>12}")
    for name, by in times.items():
        mem, pgs = statistics.median(by["memory"]), statistics.median(by["postgres"])
        print(f"  {name:32} {mem:9.2f} {pgs:11.2f} {mem / pgs:12.2f}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with TemporaryPostgres() as server:
        asyncio.run(main(server.url, args.tasks, args.rounds))


if __name__ == "__main__":
    run()
