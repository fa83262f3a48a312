"""Indexes of one schema: usage, size, unused, duplicate and invalid ones; cache hit ratios.

Each diagnostic's columns are the aliases of its statement below. Scan counts are per server: on a
hot standby they count the standby's own reads, so an index "unused" there may serve the primary
(check both before dropping anything). Unique and constraint indexes are never reported as unused:
they enforce rules, not speed.

``declared`` marks an index the migrations create (``schema.EXPECTED``, matched by table and
index name, as the drift check does) and ``purpose`` says what uses it: such an index is the
storage's own, so the health report never advises dropping it (the drift check would then flag
it missing), even while it is not scanned yet (a fresh or just seeded database).

An index is a *duplicate* when another valid index of the same table and access method starts
with the same key columns and operator classes (same expressions and predicate, no INCLUDE
columns): a B-tree whose keys are a leading prefix of another's, or an exact twin (the newer of
two twins is reported, a unique index is never reported in favour of a non-unique one).
An *invalid* index is one a failed ``CREATE INDEX CONCURRENTLY`` left behind: never used for
reads, but still maintained on writes while ``still_maintained``.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, diagnostic
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.storage.schema import EXPECTED

_DECLARED = tuple(list(column) for column in zip(*((i.table, i.name, i.purpose) for i in EXPECTED.indexes),
                                                  strict=True))
"""The indexes the migrations declare, as arrays for the queries: tables, names, purposes."""

INDEX_USAGE = """
SELECT s.relname AS table_name,
       s.indexrelname AS index_name,
       s.idx_scan AS scans,
       s.idx_tup_read AS tuples_read,
       s.idx_tup_fetch AS tuples_fetched,
       pg_relation_size(s.indexrelid) AS size_bytes,
       pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary_key,
       i.indisvalid AS is_valid,
       pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = $1
ORDER BY table_name, index_name
"""

UNUSED_INDEXES = """
SELECT s.relname AS table_name,
       s.indexrelname AS index_name,
       s.idx_scan AS scans,
       pg_relation_size(s.indexrelid) AS size_bytes,
       pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
       pg_get_indexdef(s.indexrelid) AS definition,
       d.index_name IS NOT NULL AS declared,
       d.purpose
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
LEFT JOIN unnest($3::text[], $4::text[], $5::text[]) AS d(table_name, index_name, purpose)
       ON d.table_name = s.relname AND d.index_name = s.indexrelname
WHERE s.schemaname = $1
  AND s.idx_scan <= $2
  AND NOT i.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
ORDER BY size_bytes DESC, table_name, index_name
"""

DUPLICATE_INDEXES = """
SELECT t.relname AS table_name,
       ic.relname AS index_name,
       cc.relname AS covered_by,
       pg_relation_size(i.indexrelid) AS size_bytes,
       pg_get_indexdef(i.indexrelid) AS definition,
       pg_get_indexdef(c.indexrelid) AS covering_definition,
       (t.relname, ic.relname) IN (SELECT * FROM unnest($2::text[], $3::text[])) AS declared
FROM pg_index i
JOIN pg_index c ON c.indrelid = i.indrelid AND c.indexrelid <> i.indexrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class cc ON cc.oid = c.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1
  AND i.indisvalid AND c.indisvalid
  AND NOT i.indisprimary
  AND ic.relam = cc.relam
  AND i.indnatts = i.indnkeyatts
  AND coalesce(pg_get_expr(i.indexprs, i.indrelid), '') = coalesce(pg_get_expr(c.indexprs, c.indrelid), '')
  AND coalesce(pg_get_expr(i.indpred, i.indrelid), '') = coalesce(pg_get_expr(c.indpred, c.indrelid), '')
  AND (string_to_array(c.indkey::text, ' '))[1:i.indnkeyatts] = string_to_array(i.indkey::text, ' ')
  AND (string_to_array(c.indclass::text, ' '))[1:i.indnkeyatts] = string_to_array(i.indclass::text, ' ')
  AND (
        (i.indnkeyatts < c.indnkeyatts AND NOT i.indisunique
         AND ic.relam = (SELECT oid FROM pg_am WHERE amname = 'btree'))
     OR (i.indnkeyatts = c.indnkeyatts
         AND ((c.indisunique AND NOT i.indisunique)
              OR (c.indisunique = i.indisunique AND (c.indisprimary OR i.indexrelid > c.indexrelid))))
  )
ORDER BY size_bytes DESC, table_name, index_name
"""

INVALID_INDEXES = """
SELECT t.relname AS table_name,
       ic.relname AS index_name,
       pg_relation_size(i.indexrelid) AS size_bytes,
       i.indisready AS still_maintained,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND NOT i.indisvalid
ORDER BY table_name, index_name
"""

CACHE_HIT_RATIOS = """
SELECT 'table' AS object_type,
       coalesce(sum(heap_blks_hit), 0)::bigint AS hits,
       coalesce(sum(heap_blks_read), 0)::bigint AS reads,
       round(100.0 * sum(heap_blks_hit) / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0), 2)
         AS hit_percent
FROM pg_statio_user_tables
WHERE schemaname = $1
UNION ALL
SELECT 'index' AS object_type,
       coalesce(sum(idx_blks_hit), 0)::bigint AS hits,
       coalesce(sum(idx_blks_read), 0)::bigint AS reads,
       round(100.0 * sum(idx_blks_hit) / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0), 2)
         AS hit_percent
FROM pg_statio_user_indexes
WHERE schemaname = $1
ORDER BY object_type DESC
"""


class IndexesTopic(Session):
    """Indexes of one schema: usage, unused, duplicate and invalid ones; cache hit ratios."""

    @diagnostic(INDEX_USAGE)
    async def index_usage(self, schema: str | None = None) -> pd.DataFrame:
        """Every index of ``schema``: how often it was scanned, its size and its definition."""
        return await self._fetch(INDEX_USAGE, self._schema(schema))

    @diagnostic(UNUSED_INDEXES)
    async def unused_indexes(self, schema: str | None = None, max_scans: int = 0) -> pd.DataFrame:
        """Non-unique indexes scanned at most ``max_scans`` times, largest first; ``declared`` ones are
        the migrations' own (keep them: ``purpose`` says what uses them)."""
        scans = int(check_number(max_scans, "max_scans", integer=True))
        return await self._fetch(UNUSED_INDEXES, self._schema(schema), scans, *_DECLARED)

    @diagnostic(DUPLICATE_INDEXES)
    async def duplicate_indexes(self, schema: str | None = None) -> pd.DataFrame:
        """Indexes made redundant by another index of the same table (see the module docstring)."""
        return await self._fetch(DUPLICATE_INDEXES, self._schema(schema), *_DECLARED[:2])

    @diagnostic(INVALID_INDEXES)
    async def invalid_indexes(self, schema: str | None = None) -> pd.DataFrame:
        """Indexes left invalid by a failed concurrent build."""
        return await self._fetch(INVALID_INDEXES, self._schema(schema))

    @diagnostic(CACHE_HIT_RATIOS)
    async def cache_hit_ratios(self, schema: str | None = None) -> pd.DataFrame:
        """Share of table and index block reads of ``schema`` served from shared buffers."""
        return await self._fetch(CACHE_HIT_RATIOS, self._schema(schema))
