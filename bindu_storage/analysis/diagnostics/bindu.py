"""Bindu-specific checks: tasks stuck in a non-terminal state, and how big the JSONB columns get.

Each diagnostic's columns are the aliases of its statement below. ``stuck_tasks`` counts, per
non-terminal state, the tasks that entered it (``state_timestamp``) longer than
``older_than_seconds`` ago. ``waiting_on`` says whose move it is: ``agent`` for ``submitted``,
``working`` and ``unknown`` (the agent should be progressing the task), ``caller`` for
``input-required`` and ``auth-required`` (the task waits for its user, a long wait is normal).

``jsonb_sizes`` measures the stored (possibly compressed) size of each JSONB value with
``pg_column_size``, for every JSONB column of the Bindu tables present in the schema. It reads
whole tables; ``sample_percent`` reads a random share of the pages instead (``TABLESAMPLE
SYSTEM``), which is what to use on a large production table. Largest total first.

Both need ``SELECT`` on the Bindu tables (grant it to the monitoring role).
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, columns_of, diagnostic
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.errors import InvalidValueError
from bindu_storage.sqlnames import quote_ident
from bindu_storage.types import TASK_STATES, TERMINAL_STATES

WAITING_ON_CALLER: frozenset[str] = frozenset({"input-required", "auth-required"})
"""Non-terminal states in which the task waits for its caller, not for the agent."""

OPEN_STATES: tuple[str, ...] = tuple(sorted(TASK_STATES - TERMINAL_STATES))
"""The non-terminal states a task can be stuck in."""

BINDU_TABLES: tuple[str, ...] = ("tasks", "contexts", "task_feedback", "task_events", "webhook_configs")
"""The tables of a Bindu schema."""

STUCK_TASKS = """
SELECT state,
       CASE WHEN state = ANY ($3::text[]) THEN 'caller' ELSE 'agent' END AS waiting_on,
       count(*) AS stuck_tasks,
       min(state_timestamp) AS oldest_since,
       round(extract(epoch FROM now() - min(state_timestamp)), 1) AS oldest_seconds
FROM {schema}.tasks
WHERE state = ANY ($1::text[])
  AND state_timestamp < now() - make_interval(secs => $2)
GROUP BY state
ORDER BY oldest_seconds DESC, state
"""

JSONB_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p')
  AND a.atttypid = 'jsonb'::regtype AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY array_position($2::text[], c.relname::text), a.attnum
"""

JSONB_SIZE_OF_ONE_COLUMN = """
SELECT {table_label}::text AS table_name,
       {column_label}::text AS column_name,
       count({column}) AS values_counted,
       round(avg(pg_column_size({column})), 1)::float8 AS avg_bytes,
       max(pg_column_size({column}))::bigint AS max_bytes,
       coalesce(sum(pg_column_size({column})), 0)::bigint AS total_bytes
FROM {schema}.{table} {sample}"""

_JSONB_SIZE_TYPES = ("text", "text", "int8", "float8", "int8", "int8")
"""The PostgreSQL types of ``JSONB_SIZE_OF_ONE_COLUMN``' columns, for the frame of no column."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class BinduTopic(Session):
    """Bindu-specific checks: stuck tasks and JSONB sizes."""

    @diagnostic(STUCK_TASKS)
    async def stuck_tasks(self, schema: str | None = None, older_than_seconds: float = 900.0) -> pd.DataFrame:
        """Tasks in a non-terminal state entered more than ``older_than_seconds`` ago, by state."""
        sql = STUCK_TASKS.format(schema=quote_ident(self._schema(schema)))
        seconds = float(check_number(older_than_seconds, "older_than_seconds"))
        return await self._fetch(sql, list(OPEN_STATES), seconds, sorted(WAITING_ON_CALLER))

    @diagnostic(JSONB_SIZE_OF_ONE_COLUMN)
    async def jsonb_sizes(
        self, schema: str | None = None, sample_percent: float | None = None
    ) -> pd.DataFrame:
        """Average, largest and total stored size of every JSONB column of the Bindu tables."""
        name = self._schema(schema)
        sample = ""
        if sample_percent is not None:
            number = isinstance(sample_percent, int | float) and not isinstance(sample_percent, bool)
            if not number or not 0 < sample_percent <= 100:
                raise InvalidValueError(
                    f"sample_percent must be a number in (0, 100], got {sample_percent!r}"
                )
            sample = f"TABLESAMPLE SYSTEM ({float(sample_percent)!r})"
        found = await (await self._open_connection()).fetch(JSONB_COLUMNS, name, list(BINDU_TABLES))
        if not found:
            return self._records([], columns_of(JSONB_SIZE_OF_ONE_COLUMN), _JSONB_SIZE_TYPES)
        parts = [
            JSONB_SIZE_OF_ONE_COLUMN.format(
                table_label=_literal(row["table_name"]), column_label=_literal(row["column_name"]),
                column=quote_ident(row["column_name"]), schema=quote_ident(name),
                table=quote_ident(row["table_name"]), sample=sample,
            )
            for row in found
        ]
        sql = "\nUNION ALL\n".join(parts) + "\nORDER BY total_bytes DESC, table_name, column_name"
        return await self._fetch(sql)
