"""Slow queries from ``pg_stat_statements``: top by total time and by mean time.

Statements of the current database only, grouped by normalised text (constants become ``$n``);
utility statements that keep their literals are redacted. Columns of both diagnostics:
``query, calls, total_ms, mean_ms, max_ms, rows, percent_of_total_time, cache_hit_percent,
user_name``.

When the extension is not usable (not in ``shared_preload_libraries``, or ``CREATE EXTENSION``
not run in this database) the diagnostics return an empty frame whose ``attrs["note"]`` says
how to enable it, and :func:`statements_status` tells the health report the same; nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, fetch_frame, records_frame
from bindu_storage.sqlnames import quote_ident

COLUMNS: dict[str, tuple[str, ...]] = {
    name: (
        "query", "calls", "total_ms", "mean_ms", "max_ms", "rows", "percent_of_total_time",
        "cache_hit_percent", "user_name",
    )
    for name in ("queries_by_total_time", "queries_by_mean_time")
}
"""The documented columns of each diagnostic of this topic."""

_TYPES = ("text", "int8", "float8", "float8", "float8", "int8", "float8", "float8", "text")

HOW_TO_ENABLE = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart the server, "
    "then run CREATE EXTENSION pg_stat_statements; in this database on the primary (standbys "
    "get it by replication); a pg_monitor role can then read every statement"
)

EXTENSION_STATUS = """
SELECT e.extversion AS version,
       n.nspname AS extension_schema,
       (SELECT 'pg_stat_statements' = ANY (string_to_array(replace(setting, ' ', ''), ','))
          FROM pg_settings WHERE name = 'shared_preload_libraries') AS preloaded
FROM (SELECT 1) AS one
LEFT JOIN pg_extension e ON e.extname = 'pg_stat_statements'
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
"""

TOP_QUERIES = """
SELECT s.query,
       s.calls,
       round(s.total_exec_time::numeric, 2) AS total_ms,
       round(s.mean_exec_time::numeric, 2) AS mean_ms,
       round(s.max_exec_time::numeric, 2) AS max_ms,
       s.rows,
       round((100 * s.total_exec_time / nullif(sum(s.total_exec_time) OVER (), 0))::numeric, 1)
         AS percent_of_total_time,
       round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 1)
         AS cache_hit_percent,
       r.rolname AS user_name
FROM {view} s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.calls >= $2
ORDER BY {order} DESC
LIMIT $1
"""


@dataclass(frozen=True)
class StatementsStatus:
    """Whether ``pg_stat_statements`` can be read here, and if not, what to do."""

    available: bool
    reason: str
    """Empty when available; else what is missing."""
    advice: str
    """Empty when available; else how to enable the extension."""
    extension_schema: str | None = None


async def statements_status(conn: asyncpg.Connection) -> StatementsStatus:
    """Find out whether ``pg_stat_statements`` is created here and loaded by the server."""
    row = await conn.fetchrow(EXTENSION_STATUS)
    assert row is not None
    if row["version"] is None:
        return StatementsStatus(
            False, "the pg_stat_statements extension is not created in this database", HOW_TO_ENABLE
        )
    if row["preloaded"] is False:
        return StatementsStatus(
            False, "pg_stat_statements is not in shared_preload_libraries", HOW_TO_ENABLE,
            row["extension_schema"],
        )
    return StatementsStatus(True, "", "", row["extension_schema"])


async def _top(conn: asyncpg.Connection, order: str, name: str, limit: int, min_calls: int) -> pd.DataFrame:
    check_number(limit, "limit", 1, integer=True)
    check_number(min_calls, "min_calls", 0, integer=True)
    status = await statements_status(conn)
    if status.available:
        assert status.extension_schema is not None
        view = f"{quote_ident(status.extension_schema)}.pg_stat_statements"
        try:
            return await fetch_frame(
                conn, TOP_QUERIES.format(view=view, order=order), limit, min_calls,
                columns=COLUMNS[name], redact=["query"],
            )
        except asyncpg.ObjectNotInPrerequisiteStateError:  # created, but the library is not loaded
            status = StatementsStatus(
                False, "pg_stat_statements is not in shared_preload_libraries", HOW_TO_ENABLE
            )
    frame = records_frame([], COLUMNS[name], _TYPES)
    frame.attrs["note"] = f"{status.reason}: {status.advice}"
    return frame


async def queries_by_total_time(
    conn: asyncpg.Connection, limit: int = 10, min_calls: int = 1
) -> pd.DataFrame:
    """The statements that used the most execution time in total (where the server's time goes)."""
    return await _top(conn, "s.total_exec_time", "queries_by_total_time", limit, min_calls)


async def queries_by_mean_time(
    conn: asyncpg.Connection, limit: int = 10, min_calls: int = 1
) -> pd.DataFrame:
    """The statements slowest on average per call (what users wait for)."""
    return await _top(conn, "s.mean_exec_time", "queries_by_mean_time", limit, min_calls)

