"""Key server settings, from ``pg_settings``.

``server_settings`` has the columns of its statement below. ``value`` is the setting as PostgreSQL
prints it (``128MB``), ``setting`` and ``unit`` the raw figure (``16384`` of ``8kB``). ``source``
says where it was set (default, configuration file, …); ``pending_restart`` that the file was
changed but the server not restarted. A ``pg_monitor`` role (member of ``pg_read_all_settings``)
sees every row.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import diagnostic
from bindu_storage.analysis.diagnostics.session import Session

KEY_SETTINGS: tuple[str, ...] = (
    "server_version",
    "max_connections",
    "superuser_reserved_connections",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "max_wal_size",
    "checkpoint_timeout",
    "random_page_cost",
    "effective_io_concurrency",
    "autovacuum",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
    "track_io_timing",
    "shared_preload_libraries",
    "wal_level",
    "synchronous_commit",
    "max_wal_senders",
    "hot_standby",
    "hot_standby_feedback",
    "max_standby_streaming_delay",
    "jit",
)
"""The settings shown, in this order: connections, memory, timeouts, WAL, vacuum, replication."""

SERVER_SETTINGS = """
SELECT s.name,
       current_setting(s.name) AS value,
       s.setting,
       s.unit,
       s.source,
       s.pending_restart,
       s.category,
       s.short_desc AS description
FROM unnest($1::text[]) WITH ORDINALITY AS wanted(name, position)
JOIN pg_settings s ON s.name = wanted.name
ORDER BY wanted.position
"""


class SettingsTopic(Session):
    """Key server settings."""

    @diagnostic(SERVER_SETTINGS)
    async def server_settings(self, names: tuple[str, ...] | list[str] = KEY_SETTINGS) -> pd.DataFrame:
        """The settings named in ``names`` (by default :data:`KEY_SETTINGS`), in that order."""
        return await self._fetch(SERVER_SETTINGS, list(names))
