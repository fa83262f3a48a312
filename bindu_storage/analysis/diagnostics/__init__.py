"""Read-only PostgreSQL diagnostics, split by topic the way PgHero splits its dashboard.

Each diagnostic is one readable SQL query whose column aliases are plain words, returned as a
pandas DataFrame; the topic modules document their columns:

- ``connections``: connection usage, sessions by state and source, long queries, idle transactions
- ``pool``: the storage's own asyncpg pool (size, idle, in use, saturation)
- ``queries``: ``pg_stat_statements`` top by total and by mean time
- ``tables``: sizes (TOAST included), live/dead rows, scans, vacuum and analyze times
- ``indexes``: usage, unused, duplicate, invalid; table and index cache hit ratios
- ``locks``: blocked and blocking sessions
- ``replication``: primary or standby, replay lag, streaming standbys, slots
- ``schema``: migration status and drift from the declared schema
- ``bindu``: tasks stuck in non-terminal states, JSONB column sizes
- ``settings``: key server settings
- ``report``: ``health_report`` — findings against explicit thresholds

Start with :class:`Diagnostics` (an async context manager over a read-only connection)::

    async with Diagnostics(url, schema="public") as diag:
        sizes = await diag.table_sizes()
        print(await diag.health_report())
"""

from __future__ import annotations

from bindu_storage.analysis.diagnostics import (
    bindu,
    connections,
    indexes,
    locks,
    pool,
    queries,
    replication,
    settings,
    tables,
)
from bindu_storage.analysis.diagnostics import schema as schema_checks
from bindu_storage.analysis.diagnostics.connection import (
    APPLICATION_NAME,
    Diagnostics,
    open_diagnostics_connection,
)
from bindu_storage.analysis.diagnostics.queries import StatementsStatus
from bindu_storage.analysis.diagnostics.redact import redact_sql
from bindu_storage.analysis.diagnostics.report import (
    Finding,
    HealthReport,
    Limit,
    Thresholds,
    health_report,
)

DIAGNOSTICS: dict[str, tuple[str, ...]] = {
    **connections.COLUMNS,
    **pool.COLUMNS,
    **queries.COLUMNS,
    **tables.COLUMNS,
    **indexes.COLUMNS,
    **locks.COLUMNS,
    **replication.COLUMNS,
    **schema_checks.COLUMNS,
    **bindu.COLUMNS,
    **settings.COLUMNS,
}
"""Every diagnostic (a ``Diagnostics`` method of that name) and the columns of its frame."""

PRIMARY_ONLY: dict[str, tuple[str, ...]] = dict(tables.PRIMARY_ONLY)
"""Columns left empty on a hot standby, per diagnostic (only a primary keeps these figures)."""

__all__ = [
    "APPLICATION_NAME",
    "DIAGNOSTICS",
    "PRIMARY_ONLY",
    "Diagnostics",
    "Finding",
    "HealthReport",
    "Limit",
    "StatementsStatus",
    "Thresholds",
    "health_report",
    "open_diagnostics_connection",
    "redact_sql",
]
