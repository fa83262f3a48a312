"""What several commands need: the settings, the target they work on, and saying which it is.

The backend rule is the one of ``bindu_storage.settings``: ``STORAGE_BACKEND`` (or
``STORAGE_TYPE``) decides, and unset it is memory, also when ``DATABASE_URL`` is set; an explicit
``--database-url`` makes that one run use PostgreSQL at that URL. Every command names its target
on stderr before it starts (``announce``), with no password.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from bindu_storage.cli.app import CliError
from bindu_storage.dsn import describe_target, validate_url
from bindu_storage.settings import Backend, StorageSettings, load_settings
from bindu_storage.sqlnames import validate_schema_name


def settings() -> StorageSettings:
    """The storage settings from the environment (a bad value fails here, naming its variable)."""
    return load_settings().storage


@dataclass(frozen=True)
class Target:
    """What a command works on: the backend, and on PostgreSQL its URL and schema."""

    backend: Backend
    url: str | None = None
    schema: str | None = None
    note: str | None = None
    """Why the target is not what the user may expect (a DATABASE_URL left unused), if so."""

    def describe(self) -> str:
        """``memory``, or ``postgres user@host:5432/db schema=public``: never a password."""
        if self.url is None:
            return self.backend if self.note is None else f"{self.backend} ({self.note})"
        where = describe_target(self.url).removeprefix("postgresql://")
        return f"{self.backend} {where} schema={self.schema}"


def resolve(
    args: argparse.Namespace,
    cfg: StorageSettings,
    *,
    needs: str | None = None,
    default_schema: str | None = None,
) -> Target:
    """The target of a command under the backend rule.

    ``needs`` says what the command does with a database (``"writes to"``, ``"reads"``...); when
    given, the memory backend is refused with what to set instead. ``default_schema`` replaces
    ``STORAGE__POSTGRES_SCHEMA`` as the default of ``--schema`` (the demo's own schema).
    """
    given = getattr(args, "database_url", None)
    schema = schema_of(args, cfg) if default_schema is None or args.schema else default_schema
    if given and given.strip():
        return Target("postgres", validate_url(given.strip(), "--database-url"), schema)
    if cfg.backend == "embedded":
        from bindu_storage.embedded import embedded_database_url

        return Target("embedded", embedded_database_url(cfg.embedded_data_dir), schema)
    if cfg.backend == "postgres":
        assert cfg.postgres_url is not None  # the settings refuse postgres without DATABASE_URL
        return Target("postgres", cfg.postgres_url, schema)
    if needs is not None:
        fix = (
            cfg.unused_url_note
            or "set STORAGE_BACKEND=postgres with DATABASE_URL, or STORAGE_BACKEND=embedded"
        )
        raise CliError(
            f"no database to use: {args.command} {needs} PostgreSQL and the backend is memory; "
            f"{fix}, or pass --database-url"
        )
    return Target("memory", note=cfg.unused_url_note)


def announce(args: argparse.Namespace, target: Target) -> None:
    """Say on stderr which target this command works on: ``bindu-storage seed: postgres ...``."""
    print(f"bindu-storage {args.command}: {target.describe()}", file=sys.stderr, flush=True)


def schema_of(args: argparse.Namespace, cfg: StorageSettings) -> str:
    """``--schema``, else ``STORAGE__POSTGRES_SCHEMA`` (default public)."""
    return validate_schema_name(args.schema, "--schema") if args.schema else cfg.postgres_schema


def where(url: str, schema: str) -> str:
    """A password-free description of a database and schema, for messages."""
    return f"{describe_target(url)} (schema {schema})"
