"""Slow queries from ``pg_stat_statements``: top by total time and by mean time.

Statements of the current database only, grouped by normalised text (constants become ``$n``);
utility statements that keep their literals are redacted. Both diagnostics have the columns of
``TOP_QUERIES``.

When the extension is not usable the diagnostics return an empty frame whose ``attrs["note"]``
says what is missing and what to do, and :func:`statements_status` tells the health report the
same; nothing raises. It tells apart (reading only: ``current_setting``, ``pg_extension``,
privilege functions, one probe call of the extension's function):

- ``not preloaded``: the server did not load the library (``shared_preload_libraries``): add it
  and restart (then ``CREATE EXTENSION`` if that is missing too);
- ``not created``: the library is loaded but ``CREATE EXTENSION`` was not run in this database:
  run it on the primary, no restart;
- ``no permission``: the extension works but this role may not read it (no ``USAGE`` on its
  schema, ``SELECT`` on the view or ``EXECUTE`` on its function): grant them;
- ``own statements only``: readable, but the role is not a member of ``pg_read_all_stats``, so
  other roles' statements show as ``<insufficient privilege>``: the frames still fill
  (``available``), with a note, and the report warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, columns_of, diagnostic
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.sqlnames import quote_ident

PRELOAD = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf (or ALTER SYSTEM) and "
    "restart the server"
)
CREATE = (
    "run CREATE EXTENSION pg_stat_statements; in this database on the primary (standbys get it by "
    "replication)"
)
READ_ALL = "GRANT pg_read_all_stats (or pg_monitor) TO {role}"

EXTENSION_STATUS = """
SELECT e.extversion AS version,
       n.nspname AS extension_schema,
       CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
            THEN 'pg_stat_statements' = ANY (string_to_array(
                   replace(replace(current_setting('shared_preload_libraries'), ' ', ''), '"', ''), ','))
       END AS preloaded,
       CASE WHEN e.oid IS NOT NULL THEN
            has_schema_privilege(e.extnamespace, 'USAGE')
            AND coalesce((SELECT bool_and(has_function_privilege(p.oid, 'EXECUTE')) FROM pg_proc p
                          WHERE p.pronamespace = e.extnamespace AND p.proname = 'pg_stat_statements'),
                         false)
            AND coalesce((SELECT has_table_privilege(c.oid, 'SELECT') FROM pg_class c
                          WHERE c.relnamespace = e.extnamespace AND c.relname = 'pg_stat_statements'),
                         false)
       END AS readable,
       pg_has_role('pg_read_all_stats', 'USAGE') AS reads_all,
       current_user AS role_name
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

_TYPES = ("text", "int8", "float8", "float8", "float8", "int8", "float8", "float8", "text")
"""The PostgreSQL types of ``TOP_QUERIES``' columns, for the empty frame when it cannot run."""


Problem = Literal["", "not preloaded", "not created", "no permission", "own statements only"]
"""What keeps ``pg_stat_statements`` from being fully read (see the module docstring)."""


@dataclass(frozen=True)
class StatementsStatus:
    """Whether ``pg_stat_statements`` can be read here, and if not, what to do."""

    available: bool
    """Whether the top-queries frames can be filled."""
    reason: str
    """Empty when fully readable; else what is missing."""
    advice: str
    """Empty when fully readable; else what to do about it."""
    extension_schema: str | None = None
    problem: Problem = ""
    """Empty when fully readable; else one of the cases of the module docstring."""


def _name(identifier: str) -> str:
    """``identifier`` as SQL writes it: bare when it can be, else quoted."""
    plain = identifier.isidentifier() and identifier.isascii() and identifier == identifier.lower()
    return identifier if plain else quote_ident(identifier)


async def _loads(conn: asyncpg.Connection, extension_schema: str) -> bool:
    """Whether the extension's function runs (it refuses when the library was not preloaded)."""
    try:
        await conn.fetchval(
            f"SELECT 1 FROM {quote_ident(extension_schema)}.pg_stat_statements(false) LIMIT 1"
        )
    except asyncpg.ObjectNotInPrerequisiteStateError:
        return False
    return True


class QueriesTopic(Session):
    """Slow queries from ``pg_stat_statements``, and whether it can be read here."""

    async def statements_status(self) -> StatementsStatus:
        """Find out whether ``pg_stat_statements`` is preloaded, created here and readable by this role.

        Reads only (settings, catalogs, privilege functions and one call of the extension's function),
        so it runs on a hot standby and as a monitoring role.
        """
        conn = await self._open_connection()
        row = await conn.fetchrow(EXTENSION_STATUS)
        assert row is not None
        role, schema = row["role_name"], row["extension_schema"]
        if row["version"] is None:
            if row["preloaded"] is False:
                return StatementsStatus(
                    False, "pg_stat_statements is not in shared_preload_libraries and the extension is not "
                    "created in this database", f"{PRELOAD}, then {CREATE}", None, "not preloaded",
                )
            if row["preloaded"] is None:  # this role may not read shared_preload_libraries
                return StatementsStatus(
                    False, "the pg_stat_statements extension is not created in this database",
                    f"{CREATE}; if the server does not load the library yet (this role cannot read "
                    f"shared_preload_libraries), first {PRELOAD}", None, "not created",
                )
            return StatementsStatus(
                False, "pg_stat_statements is preloaded but the extension is not created in this database",
                f"{CREATE}; no restart needed, the server already loads the library", None, "not created",
            )
        read_all = READ_ALL.format(role=_name(role))
        if not row["readable"]:
            on = _name(schema)
            who = _name(role)
            grants = (f"as the extension's owner, on the primary: GRANT USAGE ON SCHEMA {on} TO {who}; "
                      f"GRANT SELECT ON {on}.pg_stat_statements TO {who}; GRANT EXECUTE ON FUNCTION "
                      f"{on}.pg_stat_statements(boolean) TO {who}")
            return StatementsStatus(
                False, f"role {role} may not read pg_stat_statements (a privilege on its schema, view or "
                "function is missing)", grants + ("" if row["reads_all"] else f"; and {read_all}"),
                schema, "no permission",
            )
        if row["preloaded"] is False or not await _loads(conn, schema):
            return StatementsStatus(
                False, "the pg_stat_statements extension is created but the server did not load the library "
                "(not in shared_preload_libraries)", f"{PRELOAD}; the extension is already created here",
                schema, "not preloaded",
            )
        if not row["reads_all"]:
            return StatementsStatus(
                True, f"role {role} is not a member of pg_read_all_stats: other roles' statements show as "
                "<insufficient privilege>", read_all, schema, "own statements only",
            )
        return StatementsStatus(True, "", "", schema)

    async def _top(self, order: str, limit: int, min_calls: int) -> pd.DataFrame:
        check_number(limit, "limit", 1, integer=True)
        check_number(min_calls, "min_calls", 0, integer=True)
        status = await self.statements_status()
        if status.available:
            assert status.extension_schema is not None
            view = f"{quote_ident(status.extension_schema)}.pg_stat_statements"
            try:
                frame = await self._fetch(
                    TOP_QUERIES.format(view=view, order=order), limit, min_calls, redact=["query"]
                )
            except asyncpg.ObjectNotInPrerequisiteStateError:  # the library went away since the check
                status = StatementsStatus(
                    False, "the server did not load pg_stat_statements", PRELOAD, None, "not preloaded"
                )
            else:
                if status.reason:
                    frame.attrs["note"] = f"{status.reason}: {status.advice}"
                return frame
        frame = self._records([], columns_of(TOP_QUERIES), _TYPES)
        frame.attrs["note"] = f"{status.reason}: {status.advice}"
        return frame

    @diagnostic(TOP_QUERIES)
    async def queries_by_total_time(self, limit: int = 10, min_calls: int = 1) -> pd.DataFrame:
        """The statements that used the most execution time in total (where the server's time goes)."""
        return await self._top("s.total_exec_time", limit, min_calls)

    @diagnostic(TOP_QUERIES)
    async def queries_by_mean_time(self, limit: int = 10, min_calls: int = 1) -> pd.DataFrame:
        """The statements slowest on average per call (what users wait for)."""
        return await self._top("s.mean_exec_time", limit, min_calls)
