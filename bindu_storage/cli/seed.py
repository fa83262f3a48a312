"""``bindu-storage seed``: synthetic data into the configured PostgreSQL, by bulk COPY.

The database is reached (and migrated, if the settings say so) before any data is generated, so
a wrong URL fails in a second. ``--replace`` empties the schema first, after a confirmation
(``--yes`` where no terminal can answer).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from bindu_storage.cli.app import CliError
from bindu_storage.cli.common import Target, announce, resolve, settings, where
from bindu_storage.cli.table import fmt_int
from bindu_storage.errors import InvalidValueError
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


async def _empty(storage: PostgresStorage, target: Target, args: argparse.Namespace) -> None:
    """``--replace``: delete everything in the schema, once the user has confirmed it."""
    existing = await storage.count_tasks()
    if existing == 0:
        return
    what = f"{fmt_int(existing)} tasks (and their contexts, feedback and events) in {target.describe()}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"--replace would delete {what}; add --yes to confirm (no terminal to ask)")
        print(f"--replace deletes {what}.", file=sys.stderr)
        answer = input("Type 'yes' to delete them: ")
        if answer.strip().lower() != "yes":
            raise CliError("not confirmed; nothing was deleted")
    await storage.clear_all()
    print(f"Emptied {target.describe()}: {fmt_int(existing)} tasks deleted.", flush=True)


async def run_seed(args: argparse.Namespace) -> int:
    """The ``seed`` command."""
    if not 0 < args.days < 3660:
        raise CliError(f"--days must be between 0 and 3660, got {args.days}")
    start = _start(args)
    cfg = settings()
    target = resolve(args, cfg, needs="writes to")
    announce(args, target)
    assert target.url is not None and target.schema is not None
    storage = PostgresStorage(target.url, schema=target.schema, settings=cfg)
    try:
        await storage.connect()  # reach the database before spending time on the data
        if args.replace:
            await _empty(storage, target, args)
        from bindu_storage.synthetic import generate, load

        print(f"Generating {fmt_int(args.tasks)} tasks (seed {args.seed}, {args.days:g} days from "
              f"{start:%Y-%m-%d})...", flush=True)
        began = time.perf_counter()
        data = generate(args.tasks, seed=args.seed, start=start, days=args.days)
        generated = time.perf_counter() - began
        print(f"Loading {fmt_int(data.rows)} rows into {where(target.url, target.schema)}...", flush=True)
        try:
            result = await load(storage, data, progress=not args.no_progress)
        except InvalidValueError as exc:
            if not str(exc).startswith("the data of seed"):
                raise
            raise CliError(f"{exc}; `bindu-storage seed --replace` empties the schema first") from None
    finally:
        await storage.close()
    print(
        f"Seeded {fmt_int(result.tasks)} tasks, {fmt_int(result.contexts)} contexts, "
        f"{fmt_int(result.events)} events, {fmt_int(result.feedback)} feedback entries: "
        f"generated in {generated:.1f} s, loaded in {result.seconds:.1f} s "
        f"({fmt_int(result.tasks_per_second)} tasks/s)."
    )
    return 0
