"""What several commands need: the settings, the database they target, the schema."""

from __future__ import annotations

import argparse

from bindu_storage.cli.app import CliError
from bindu_storage.dsn import describe_target, validate_url
from bindu_storage.settings import StorageSettings, load_settings
from bindu_storage.sqlnames import validate_schema_name


def settings() -> StorageSettings:
    """The storage settings from the environment (a bad value fails here, naming its variable)."""
    return load_settings().storage


def target_url(args: argparse.Namespace, cfg: StorageSettings) -> str:
    """The database a command reads or changes: ``--database-url``, else the configured one."""
    given = getattr(args, "database_url", None)
    if given:
        return validate_url(given, "--database-url")
    if cfg.backend == "embedded":
        from bindu_storage.embedded import embedded_database_url

        return embedded_database_url(cfg.embedded_data_dir)
    if cfg.postgres_url:
        return cfg.postgres_url
    raise CliError(
        "no database to use: pass --database-url, set DATABASE_URL, or set STORAGE_BACKEND=embedded"
    )


def schema_of(args: argparse.Namespace, cfg: StorageSettings) -> str:
    """``--schema``, else ``STORAGE__POSTGRES_SCHEMA`` (default public)."""
    return validate_schema_name(args.schema, "--schema") if args.schema else cfg.postgres_schema


def where(url: str, schema: str) -> str:
    """A password-free description of a database and schema, for messages."""
    return f"{describe_target(url)} (schema {schema})"
