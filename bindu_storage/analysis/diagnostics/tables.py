"""Tables of one schema: space (TOAST included) and maintenance (dead rows, scans, vacuum).

==============  =====================================================================
diagnostic      columns
==============  =====================================================================
table_sizes     table_name, estimated_rows, total_bytes, table_bytes, toast_bytes,
                index_bytes, total_size
table_stats     table_name, live_rows, dead_rows, dead_percent, seq_scans,
                seq_rows_read, index_scans, index_scan_percent, rows_inserted,
                rows_updated, rows_hot_updated, rows_deleted, modified_since_analyze,
                last_vacuum, last_autovacuum, last_analyze, last_autoanalyze
==============  =====================================================================

``table_bytes`` is the main heap (free-space and visibility maps included), ``toast_bytes`` the
TOAST table and its index (where large JSONB values live), ``index_bytes`` every index, and
``total_bytes`` their sum (each measured once, so the parts always add up).
``estimated_rows`` is the planner's estimate (empty until the table was first analyzed).
In ``table_stats`` the row counts and vacuum/analyze times are kept only by the primary; on a
standby they are empty, and scan counts are the standby's own reads.
"""

from __future__ import annotations

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import fetch_frame
from bindu_storage.sqlnames import validate_schema_name

COLUMNS: dict[str, tuple[str, ...]] = {
    "table_sizes": (
        "table_name", "estimated_rows", "total_bytes", "table_bytes", "toast_bytes", "index_bytes",
        "total_size",
    ),
    "table_stats": (
        "table_name", "live_rows", "dead_rows", "dead_percent", "seq_scans", "seq_rows_read",
        "index_scans", "index_scan_percent", "rows_inserted", "rows_updated", "rows_hot_updated",
        "rows_deleted", "modified_since_analyze", "last_vacuum", "last_autovacuum", "last_analyze",
        "last_autoanalyze",
    ),
}
"""The documented columns of each diagnostic of this topic."""

PRIMARY_ONLY: dict[str, tuple[str, ...]] = {
    "table_stats": (
        "live_rows", "dead_rows", "dead_percent", "rows_inserted", "rows_updated", "rows_hot_updated",
        "rows_deleted", "modified_since_analyze", "last_vacuum", "last_autovacuum", "last_analyze",
        "last_autoanalyze",
    ),
}
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


async def table_sizes(conn: asyncpg.Connection, schema: str = "public") -> pd.DataFrame:
    """Space used by each table of ``schema``: heap, TOAST and indexes, largest first."""
    return await fetch_frame(
        conn, TABLE_SIZES, validate_schema_name(schema), columns=COLUMNS["table_sizes"]
    )


async def table_stats(conn: asyncpg.Connection, schema: str = "public") -> pd.DataFrame:
    """Live and dead rows, sequential vs index scans and the last (auto)vacuum/analyze."""
    return await fetch_frame(
        conn, TABLE_STATS, validate_schema_name(schema),
        columns=COLUMNS["table_stats"], primary_only=PRIMARY_ONLY["table_stats"],
    )
