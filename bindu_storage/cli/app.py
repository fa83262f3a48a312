"""The ``bindu-storage`` command line: the parser, the dispatch, and one-line errors.

Every failure prints one line on stderr, ``bindu-storage <command>: error: <what went wrong>``,
with any database password masked, and exits non-zero: 1, or 2 for ``diagnose`` (an
unreachable database is critical to a health check). Usage errors exit 2, as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from bindu_storage import __version__

Handler = Callable[[argparse.Namespace], Awaitable[int]]

_DESCRIPTION = """\
Storage for A2A agent tasks, contexts and feedback (in memory or PostgreSQL), with a data
toolkit for notebooks. With no command, runs the demo.

backend: STORAGE_BACKEND=memory (default) | postgres (with DATABASE_URL) | embedded
(a local PostgreSQL in your data folder, from the [embedded] extra). Unset, it is memory even
when DATABASE_URL is set, as in upstream Bindu; --database-url overrides it for one command.
Every command names its target on stderr first (no password)."""


_SQLALCHEMY_NOISE = re.compile(r"\s*(\[SQL: .*?\]|\(Background on this error at: [^)]*\))", re.S)
"""What SQLAlchemy appends to a driver's message: the statement and a link, not news to a user."""


class CliError(Exception):
    """A failure the user can act on; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse that prints its one-line usage error with the command's name."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _age(text: str) -> timedelta:
    """``purge --older-than``: a number and a unit, ``90s``, ``15m``, ``12h``, ``30d`` or ``2w``."""
    found = _AGE.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"expected an age like 30d, 12h, 15m, 90s or 2w, got {text!r}")
    return timedelta(**{_AGE_UNITS[found.group(2)]: float(found.group(1))})


def _lazy(module: str, name: str) -> Handler:
    """A handler imported on use, so ``--help`` stays fast."""

    async def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Handler = getattr(importlib.import_module(f"bindu_storage.cli.{module}"), name)
        return await handler(args)

    return run


def _add_database_options(parser: argparse.ArgumentParser, *, url: bool = True) -> None:
    if url:
        parser.add_argument(
            "--database-url", metavar="URL",
            help="PostgreSQL URL for this run (default: DATABASE_URL when STORAGE_BACKEND=postgres, "
                 "the embedded server when STORAGE_BACKEND=embedded)",
        )
    parser.add_argument(
        "--schema", metavar="NAME", help="PostgreSQL schema (default: STORAGE__POSTGRES_SCHEMA or public)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bindu-storage`` and its subcommands."""
    parser = _Parser(
        prog="bindu-storage", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"bindu-storage {__version__}")
    parser.set_defaults(command="demo", handler=_lazy("demo", "run_demo"), tasks=2000, seed=0,
                        schema=None, error_status=1)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="seed synthetic data, run a task lifecycle live, print what matters (default)",
        description="Seed the configured backend with synthetic data (in memory by default), run one "
                    "task lifecycle end to end, and print tasks by state, feedback by agent, lifecycle "
                    "timings and the JSONB filter in action. On PostgreSQL the demo works in a schema of "
                    "its own (bindu_demo unless --schema), which it empties first.",
    )
    demo.add_argument("--tasks", type=_positive_int, default=2000, help="synthetic tasks (default 2000)")
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    demo.add_argument("--schema", metavar="NAME", help="PostgreSQL schema of the demo (default bindu_demo)")
    demo.set_defaults(command="demo", handler=_lazy("demo", "run_demo"))

    seed = sub.add_parser(
        "seed", help="load synthetic data into the configured database (bulk COPY)",
        description="Generate realistic synthetic tasks, contexts, events and feedback and bulk-load them "
                    "(COPY) into the configured PostgreSQL (STORAGE_BACKEND=postgres or embedded, or "
                    "--database-url). The same --seed always gives the same data, ids included; "
                    "--replace empties the schema first.",
    )
    seed.add_argument("--tasks", type=_positive_int, default=10_000, help="how many tasks (default 10000)")
    seed.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    seed.add_argument("--days", type=float, default=14.0, help="timeline length in days (default 14)")
    seed.add_argument("--start", metavar="DATE",
                      help="first day of the timeline, YYYY-MM-DD, UTC (default: --days before today)")
    _add_database_options(seed)
    seed.add_argument("--replace", action="store_true",
                      help="delete every task, context, feedback entry and event of the schema first "
                           "(asks for confirmation)")
    seed.add_argument("--yes", action="store_true", help="confirm --replace without asking")
    seed.add_argument("--no-progress", action="store_true", help="no progress bar")
    seed.set_defaults(command="seed", handler=_lazy("seed", "run_seed"))

    diagnose = sub.add_parser(
        "diagnose", help="read-only health report of a database (exit 0 ok, 1 warn, 2 critical)",
        description="Run the read-only health report (connections, queries, indexes, space, replication, "
                    "maintenance, migrations, stuck tasks) against a database, e.g. a production replica. "
                    "Writes nothing. Exit status: 0 ok, 1 warnings, 2 critical or unreachable.",
    )
    _add_database_options(diagnose)
    diagnose.add_argument("--format", choices=("text", "html", "json"), default="text",
                          help="output format (default text)")
    diagnose.set_defaults(command="diagnose", handler=_lazy("ops", "run_diagnose"), error_status=2)

    export = sub.add_parser(
        "export", help="stream tasks, contexts, messages, feedback or events to Parquet or CSV",
        description="Stream one table of the database to a Parquet or CSV file in chunks (constant memory), "
                    "with a progress bar. Reads only.",
    )
    export.add_argument("kind", choices=("tasks", "contexts", "messages", "feedback", "events"),
                        help="what to export")
    export.add_argument("--to", required=True, metavar="FILE", help="output file: .parquet or .csv")
    export.add_argument("--chunksize", type=_positive_int, default=50_000,
                        help="rows per chunk (default 50000)")
    _add_database_options(export)
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(command="export", handler=_lazy("export", "run_export"))

    migrate = sub.add_parser(
        "migrate", help="apply or inspect the schema migrations (alembic)",
        description="Apply or inspect the alembic migrations of one schema. Refuses to change a hot "
                    "standby (read-only replica): migrate the primary.",
    )
    migrate.add_argument("action", choices=("upgrade", "downgrade", "current", "history", "to-upstream"),
                         help="upgrade (default to head; adopts a schema upstream Bindu made), downgrade "
                              "(default one step), current, history, to-upstream (hand the schema back "
                              "to upstream Bindu, keeping every task)")
    migrate.add_argument("--revision", metavar="R",
                         help="target revision (upgrade: head; downgrade: -1; 'base' removes everything)")
    _add_database_options(migrate)
    migrate.add_argument("--did", metavar="DID",
                         help="an agent DID: the schema upstream Bindu names after it (not with --schema)")
    migrate.set_defaults(command="migrate", handler=_lazy("ops", "run_migrate"))

    purge = sub.add_parser(
        "purge", help="retention: delete old tasks (a dry run unless --yes)",
        description="Delete the tasks a retention policy selects, with their feedback, events and push "
                    "configs, and the contexts left without tasks that match the policy too. Filters "
                    "combine: every one given must hold. Without --yes, only counts what would go.",
    )
    purge.add_argument("--older-than", type=_age, metavar="AGE",
                       help="tasks not updated for this long: 30d, 12h, 15m, 90s, 2w")
    purge.add_argument("--state", action="append", metavar="STATE",
                       help="tasks in this state (repeat for several), e.g. --state completed")
    purge.add_argument("--owner", metavar="DID", help="tasks of this caller DID (an erasure request)")
    _add_database_options(purge)
    purge.add_argument("--yes", action="store_true", help="delete (without it: a dry run)")
    purge.add_argument("--dry-run", action="store_true", help="only count, even with --yes")
    purge.set_defaults(command="purge", handler=_lazy("retention", "run_purge"))

    push = sub.add_parser(
        "push-configs", help="maintain push-notification configs (re-encrypt after a key rotation)",
        description="reencrypt: encrypt every push config holding a token or credentials with the "
                    "first key of STORAGE__PUSH_CONFIG_KEY (list the new key first, the old one after "
                    "it; once done, drop the old key).",
    )
    push.add_argument("action", choices=("reencrypt",), help="what to do")
    _add_database_options(push)
    push.set_defaults(command="push-configs", handler=_lazy("retention", "run_reencrypt"))
    return parser


def known_urls(args: argparse.Namespace | None = None) -> list[str]:
    """Every database URL this run may print a part of (their passwords get masked)."""
    urls = [os.environ.get("DATABASE_URL"), os.environ.get("STORAGE__POSTGRES_URL")]
    if args is not None:
        urls.append(getattr(args, "database_url", None))
    return [u for u in urls if u]


def one_line(exc: BaseException, urls: Sequence[str] = ()) -> str:
    """``exc`` as one password-free line."""
    from bindu_storage.dsn import mask_secrets

    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        ValidationError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "storage")
            message = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
        text = "invalid settings: " + "; ".join(parts)
    else:
        text = str(exc) or type(exc).__name__
        if not _is_ours(exc) and type(exc).__name__ not in text:
            text = f"{type(exc).__name__}: {text}"
    text = _SQLALCHEMY_NOISE.sub("", text)
    return " ".join(mask_secrets(text, *urls).split())


def _is_ours(exc: BaseException) -> bool:
    from bindu_storage.errors import StorageError

    return isinstance(exc, StorageError | CliError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bindu-storage`` with ``argv`` (default: the process arguments); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(args.handler(args))
    except KeyboardInterrupt:
        print(f"bindu-storage {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # every failure is one line, never a traceback
        print(f"bindu-storage {args.command}: error: {one_line(exc, known_urls(args))}", file=sys.stderr)
        return int(args.error_status)
