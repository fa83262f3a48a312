"""Retention: how much each Bindu table holds, how old it is, and what a purge would remove.

``retention`` gives one row per table (tasks, contexts, task_feedback, task_events,
webhook_configs): its ``rows``, ``total_bytes`` (heap, TOAST and indexes), the oldest and newest
``created_at`` and ``updated_at`` (``at`` for events; feedback and events are never updated),
and ``purge_would_remove``: the rows ``storage.purge(older_than=..., states=...)`` would remove
under that policy, counted with the storage's own rules (``storage.retention``: the task's
feedback, events and push configs with it, and the contexts it leaves without tasks that are
themselves that old). ``bindu-storage purge --older-than <days>d`` is what removes them.

The row counts read whole tables (``count(*)``); the purge counts go through the ``updated_at``
and ``task_id`` indexes. It needs ``SELECT`` on the Bindu tables.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, diagnostic
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.sqlnames import quote_ident
from bindu_storage.storage import validate

RETENTION = """
WITH doomed AS (  -- the tasks the purge policy selects
    SELECT t.id, t.context_id
      FROM {schema}.tasks t
     WHERE t.updated_at < now() - make_interval(secs => $1)
       AND ($2::text[] IS NULL OR t.state = ANY ($2))
)
SELECT 'tasks' AS table_name,
       count(*) AS rows,
       pg_total_relation_size('{schema}.tasks') AS total_bytes,
       min(created_at) AS oldest_created,
       max(created_at) AS newest_created,
       min(updated_at) AS oldest_updated,
       max(updated_at) AS newest_updated,
       (SELECT count(*) FROM doomed) AS purge_would_remove
  FROM {schema}.tasks
UNION ALL
SELECT 'contexts', count(*), pg_total_relation_size('{schema}.contexts'),
       min(created_at), max(created_at), min(updated_at), max(updated_at),
       (SELECT count(*)
          FROM {schema}.contexts c
         WHERE NOT EXISTS (SELECT 1 FROM {schema}.tasks t
                            WHERE t.context_id = c.id
                              AND t.id NOT IN (SELECT id FROM doomed))
           AND c.updated_at < now() - make_interval(secs => $1)
           AND ($2::text[] IS NULL OR c.id IN (SELECT context_id FROM doomed)))
  FROM {schema}.contexts
UNION ALL
SELECT 'task_feedback', count(*), pg_total_relation_size('{schema}.task_feedback'),
       min(created_at), max(created_at), min(created_at), max(created_at),
       (SELECT count(*) FROM {schema}.task_feedback f WHERE f.task_id IN (SELECT id FROM doomed))
  FROM {schema}.task_feedback
UNION ALL
SELECT 'task_events', count(*), pg_total_relation_size('{schema}.task_events'),
       min(at), max(at), min(at), max(at),
       (SELECT count(*) FROM {schema}.task_events e WHERE e.task_id IN (SELECT id FROM doomed))
  FROM {schema}.task_events
UNION ALL
SELECT 'webhook_configs', count(*), pg_total_relation_size('{schema}.webhook_configs'),
       min(created_at), max(created_at), min(updated_at), max(updated_at),
       (SELECT count(*) FROM {schema}.webhook_configs w WHERE w.task_id IN (SELECT id FROM doomed))
  FROM {schema}.webhook_configs
"""

RETENTION_COLUMNS = (
    "table_name", "rows", "total_bytes", "oldest_created", "newest_created", "oldest_updated",
    "newest_updated", "purge_would_remove",
)
"""The columns of ``retention`` (the aliases after the statement's ``WITH``)."""


def _qualified(schema: str) -> str:
    """The statement for one schema; the quoted name also sits inside the regclass literals."""
    quoted = quote_ident(schema)
    return RETENTION.replace("'{schema}.", "'" + quoted.replace("'", "''") + ".").replace("{schema}", quoted)


class RetentionTopic(Session):
    """Retention: table growth, oldest data, and what a purge policy would remove."""

    @diagnostic(columns=RETENTION_COLUMNS)  # the aliases of the statement's first table
    async def retention(
        self,
        schema: str | None = None,
        older_than_days: float = 90.0,
        states: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Per Bindu table: rows, size, oldest and newest timestamps, and the rows a purge of
        tasks not updated for ``older_than_days`` (in ``states``, when given) would remove."""
        days = float(check_number(older_than_days, "older_than_days"))
        chosen = None if states is None else sorted({validate.check_state(s, "states") for s in states})
        return await self._fetch(_qualified(self._schema(schema)), days * 86400, chosen)
