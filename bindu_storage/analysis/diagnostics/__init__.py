"""Read-only PostgreSQL diagnostics, split by topic the way PgHero splits its dashboard.

Each diagnostic is one readable SQL statement whose column aliases are plain words, returned as
a pandas DataFrame, and declared once: a method of its topic class, marked with the statement it
runs (its columns are that statement's aliases). ``Diagnostics`` is every topic at once:

- ``connections``: connection usage, sessions by state and source, long queries, idle transactions
- ``pool``: the storage's own pool (size, idle, in use, saturation)
- ``queries``: ``pg_stat_statements`` top by total and by mean time
- ``tables``: sizes (TOAST included), live/dead rows, scans, vacuum and analyze times
- ``indexes``: usage, unused, duplicate, invalid; table and index cache hit ratios
- ``locks``: blocked and blocking sessions
- ``replication``: primary or standby, replay lag, streaming standbys, slots
- ``schema``: migration status and drift from the declared schema
- ``bindu``: tasks stuck in non-terminal states, JSONB column sizes
- ``retention``: per table rows, size, oldest data, and what a purge policy would remove
- ``settings``: key server settings
- ``report``: the health report — findings against explicit thresholds

Underneath: ``session`` (the read-only connection and the lifecycle every topic shares) and
``query`` (a statement into a typed frame; declaring a diagnostic). Start with
:class:`Diagnostics` (an async context manager over a read-only connection)::

    async with Diagnostics(url, schema="public") as diag:
        sizes = await diag.table_sizes()
        print(await diag.health_report())
"""

from __future__ import annotations

from bindu_storage.analysis.diagnostics.client import Diagnostics, health_report
from bindu_storage.analysis.diagnostics.queries import StatementsStatus
from bindu_storage.analysis.diagnostics.query import diagnostics_of
from bindu_storage.analysis.diagnostics.report import Finding, HealthReport, Limit, Thresholds
from bindu_storage.analysis.diagnostics.session import APPLICATION_NAME, open_diagnostics_connection
from bindu_storage.analysis.diagnostics.tables import TABLE_STATS_PRIMARY_ONLY
from bindu_storage.analysis.redact import redact_sql

DIAGNOSTICS: dict[str, tuple[str, ...]] = diagnostics_of(Diagnostics)
"""Every diagnostic (a ``Diagnostics`` method of that name) and the columns of its frame."""

PRIMARY_ONLY: dict[str, tuple[str, ...]] = {"table_stats": TABLE_STATS_PRIMARY_ONLY}
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
