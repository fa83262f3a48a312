"""``bindu-storage purge`` (retention) and ``bindu-storage push-configs reencrypt`` (key rotation).

``purge`` removes the tasks a retention policy selects (``storage.retention``: ``--older-than``,
``--state``, ``--owner``), with their feedback, events and push configs, and the contexts it
leaves empty. Without ``--yes`` it only counts what it would remove (a dry run) and says so;
``--yes`` deletes, unless ``--dry-run`` is given too. It prints counts only: no row, no secret.

``push-configs reencrypt`` re-encrypts every push config holding secrets with the newest key of
``STORAGE__PUSH_CONFIG_KEY`` (the first of the keys listed), the step of a key rotation between
listing the new key first and dropping the old one.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from bindu_storage.cli.app import CliError
from bindu_storage.cli.common import announce, resolve, settings
from bindu_storage.cli.table import fmt_int
from bindu_storage.storage.postgres import PostgresStorage
from bindu_storage.storage.retention import PURGED_TABLES


def _storage(args: argparse.Namespace, needs: str) -> PostgresStorage:
    cfg = settings()
    target = resolve(args, cfg, needs=needs)
    announce(args, target)
    assert target.url is not None and target.schema is not None
    return PostgresStorage(target.url, schema=target.schema, settings=cfg)


def _duration(age: timedelta) -> str:
    seconds = age.total_seconds()
    for unit, size in (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


def _policy(args: argparse.Namespace) -> str:
    parts = []
    if args.older_than is not None:
        parts.append(f"not updated for {_duration(args.older_than)}")
    if args.state:
        parts.append(f"in state {', '.join(sorted(set(args.state)))}")
    if args.owner is not None:
        parts.append(f"owned by {args.owner}")
    return "tasks " + " and ".join(parts)


async def run_purge(args: argparse.Namespace) -> int:
    """The ``purge`` command."""
    if args.older_than is None and not args.state and args.owner is None:
        raise CliError("say what to purge: --older-than, --state or --owner (any combination)")
    dry_run = args.dry_run or not args.yes
    storage = _storage(args, "removes rows from" if not dry_run else "reads")
    async with storage:
        counts = await storage.purge(
            older_than=args.older_than, states=args.state or None, owner_did=args.owner, dry_run=dry_run
        )
    summary = ", ".join(f"{fmt_int(counts[t])} {t.replace('_', ' ')}" for t in PURGED_TABLES)  # type: ignore[literal-required]
    if dry_run:
        print(f"Dry run: purging {_policy(args)} would remove {summary}.")
        if not args.yes:
            print("Nothing was deleted; add --yes to delete them.")
    else:
        print(f"Purged {_policy(args)}: removed {summary}.")
    return 0


async def run_reencrypt(args: argparse.Namespace) -> int:
    """The ``push-configs reencrypt`` command."""
    storage = _storage(args, "rewrites push configs in")
    async with storage:
        rewritten = await storage.reencrypt_push_configs()
    print(f"Re-encrypted {fmt_int(rewritten)} push configs with the newest STORAGE__PUSH_CONFIG_KEY.")
    return 0
