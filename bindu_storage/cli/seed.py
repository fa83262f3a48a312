"""``bindu-storage seed``: synthetic data into the configured PostgreSQL, by bulk COPY."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from bindu_storage.cli.app import CliError
from bindu_storage.cli.common import schema_of, settings, target_url, where
from bindu_storage.cli.table import fmt_int
from bindu_storage.storage.postgres import PostgresStorage


def _start(args: argparse.Namespace) -> datetime:
    if args.start:
        try:
            day = datetime.strptime(args.start, "%Y-%m-%d")
        except ValueError:
            raise CliError(f"--start must be a date like 2025-03-03, got {args.start!r}") from None
        return day.replace(tzinfo=UTC)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=args.days)


async def run_seed(args: argparse.Namespace) -> int:
    """The ``seed`` command."""
    from bindu_storage.synthetic import generate, load

    cfg = settings()
    if cfg.backend == "memory" and not args.database_url and not cfg.postgres_url:
        raise CliError(
            "seed writes to PostgreSQL: set STORAGE_BACKEND=postgres with DATABASE_URL, or "
            "STORAGE_BACKEND=embedded (the in-memory store would vanish when this command exits; "
            "`bindu-storage demo` seeds it for a look)"
        )
    if not 0 < args.days < 3660:
        raise CliError(f"--days must be between 0 and 3660, got {args.days}")
    start = _start(args)
    url = target_url(args, cfg)
    schema = schema_of(args, cfg)
    progress = not args.no_progress
    print(f"Generating {fmt_int(args.tasks)} tasks (seed {args.seed}, {args.days:g} days from "
          f"{start:%Y-%m-%d})...", flush=True)
    began = time.perf_counter()
    data = generate(args.tasks, seed=args.seed, start=start, days=args.days)
    generated = time.perf_counter() - began
    storage = PostgresStorage(url, schema=schema, settings=cfg)
    try:
        await storage.connect()
        print(f"Loading {fmt_int(data.rows)} rows into {where(url, schema)}...", flush=True)
        result = await load(storage, data, progress=progress)
    finally:
        await storage.close()
    print(
        f"Seeded {fmt_int(result.tasks)} tasks, {fmt_int(result.contexts)} contexts, "
        f"{fmt_int(result.events)} events, {fmt_int(result.feedback)} feedback entries: "
        f"generated in {generated:.1f} s, loaded in {result.seconds:.1f} s "
        f"({fmt_int(result.tasks_per_second)} tasks/s)."
    )
    return 0
