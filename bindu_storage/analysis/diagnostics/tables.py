"""Tables of one schema: space (TOAST included) and maintenance (dead rows, scans, vacuum).

Each diagnostic's columns are the aliases of its statement below. ``table_bytes`` is the main heap
(free-space and visibility maps included), ``toast_bytes`` the TOAST table and its index (where
large JSONB values live), ``index_bytes`` every index, and ``total_bytes`` their sum (each measured
once, so the parts always add up). ``estimated_rows`` is the planner's estimate (empty until the
table was first analyzed). In ``table_stats`` the row counts and vacuum/analyze times are kept only
by the primary; on a standby they are empty, and scan counts are the standby's own reads.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import diagnostic
from bindu_storage.analysis.diagnostics.session import Session

TABLE_STATS_PRIMARY_ONLY: tuple[str, ...] = (
    "live_rows", "dead_rows", "dead_percent", "rows_inserted", "rows_updated", "rows_hot_updated",
    "rows_deleted", "modified_since_analyze", "last_vacuum", "last_autovacuum", "last_analyze",
    "last_autoanalyze",
)
"""Columns only a primary can fill (empty on a hot standby)."""

TABLE_SIZES = """
SELECT c.relname AS table_name,
       nullif(c.reltuples, -1)::bigint AS estimated_rows,
       size.heap + size.toast + size.indexes AS total_bytes,
       size.heap AS table_bytes,
       size.toast AS toast_bytes,
       size.indexes AS index_bytes,
       pg_size_pretty(size.heap + size.toast + size.indexes) AS total_size
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT pg_relation_size(c.oid, 'main') + pg_relation_size(c.oid, 'fsm')
             + pg_relation_size(c.oid, 'vm') + pg_relation_size(c.oid, 'init') AS heap,
           coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast,
           pg_indexes_size(c.oid) AS indexes
) AS size
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')
ORDER BY total_bytes DESC, table_name
"""

TABLE_STATS = """
SELECT relname AS table_name,
       n_live_tup AS live_rows,
       n_dead_tup AS dead_rows,
       round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1) AS dead_percent,
       seq_scan AS seq_scans,
       seq_tup_read AS seq_rows_read,
       idx_scan AS index_scans,
       round(100.0 * idx_scan / nullif(seq_scan + idx_scan, 0), 1) AS index_scan_percent,
       n_tup_ins AS rows_inserted,
       n_tup_upd AS rows_updated,
       n_tup_hot_upd AS rows_hot_updated,
       n_tup_del AS rows_deleted,
       n_mod_since_analyze AS modified_since_analyze,
       last_vacuum,
       last_autovacuum,
       last_analyze,
       last_autoanalyze
FROM pg_stat_user_tables
WHERE schemaname = $1
ORDER BY dead_rows DESC, table_name
"""


class TablesTopic(Session):
    """Tables of one schema: space and maintenance."""

    @diagnostic(TABLE_SIZES)
    async def table_sizes(self, schema: str | None = None) -> pd.DataFrame:
        """Space used by each table of ``schema``: heap, TOAST and indexes, largest first."""
        return await self._fetch(TABLE_SIZES, self._schema(schema))

    @diagnostic(TABLE_STATS)
    async def table_stats(self, schema: str | None = None) -> pd.DataFrame:
        """Live and dead rows, sequential vs index scans and the last (auto)vacuum/analyze."""
        return await self._fetch(TABLE_STATS, self._schema(schema), primary_only=TABLE_STATS_PRIMARY_ONLY)
