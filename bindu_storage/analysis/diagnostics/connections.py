"""Connections: how many sessions, in which state, from where; long queries; idle transactions.

All from ``pg_stat_activity`` (client backends only; the diagnostics session itself is left
out). A ``pg_monitor`` role sees every session's query text; query texts are redacted.
Each diagnostic's columns are the aliases of its statement below.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import check_number, diagnostic
from bindu_storage.analysis.diagnostics.session import Session

CONNECTION_USAGE = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved_connections,
       count(*) AS sessions,
       round(100.0 * count(*) / (current_setting('max_connections')::int
                                  - current_setting('superuser_reserved_connections')::int), 1)
         AS usage_percent
FROM pg_stat_activity
WHERE backend_type = 'client backend'
"""

SESSIONS_BY_STATE = """
SELECT coalesce(state, 'unknown') AS state,
       count(*) AS sessions,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_lock,
       round(extract(epoch FROM max(now() - state_change)), 1) AS longest_in_state_seconds
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1
ORDER BY sessions DESC, state
"""

CONNECTION_SOURCES = """
SELECT datname AS database,
       usename AS user_name,
       application_name AS application,
       coalesce(host(client_addr), 'local socket') AS client_address,
       count(*) AS sessions
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3, 4
ORDER BY sessions DESC, database, user_name, application
"""

LONG_RUNNING_QUERIES = """
SELECT pid,
       datname AS database,
       usename AS user_name,
       application_name AS application,
       host(client_addr) AS client_address,
       round(extract(epoch FROM now() - query_start), 1) AS running_seconds,
       wait_event_type,
       wait_event,
       query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state = 'active' AND now() - query_start >= make_interval(secs => $1)
ORDER BY running_seconds DESC
"""

IDLE_IN_TRANSACTION = """
SELECT pid,
       datname AS database,
       usename AS user_name,
       application_name AS application,
       host(client_addr) AS client_address,
       round(extract(epoch FROM now() - xact_start), 1) AS transaction_seconds,
       round(extract(epoch FROM now() - state_change), 1) AS idle_seconds,
       query AS last_query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND now() - state_change >= make_interval(secs => $1)
ORDER BY idle_seconds DESC
"""


class ConnectionsTopic(Session):
    """Connections: usage, sessions by state and source, long queries, idle transactions."""

    @diagnostic(CONNECTION_USAGE)
    async def connection_usage(self) -> pd.DataFrame:
        """One row: client sessions against ``max_connections`` (minus the superuser reserve)."""
        return await self._fetch(CONNECTION_USAGE)

    @diagnostic(SESSIONS_BY_STATE)
    async def sessions_by_state(self) -> pd.DataFrame:
        """Client sessions per state (active, idle, idle in transaction…), with lock waiters."""
        return await self._fetch(SESSIONS_BY_STATE)

    @diagnostic(CONNECTION_SOURCES)
    async def connection_sources(self) -> pd.DataFrame:
        """Client sessions per database, user, application and client address."""
        return await self._fetch(CONNECTION_SOURCES)

    @diagnostic(LONG_RUNNING_QUERIES)
    async def long_running_queries(self, min_seconds: float = 60.0) -> pd.DataFrame:
        """Statements running for at least ``min_seconds``, longest first."""
        seconds = float(check_number(min_seconds, "min_seconds"))
        return await self._fetch(LONG_RUNNING_QUERIES, seconds, redact=["query"])

    @diagnostic(IDLE_IN_TRANSACTION)
    async def idle_in_transaction(self, min_seconds: float = 0.0) -> pd.DataFrame:
        """Sessions idle inside an open transaction for at least ``min_seconds``, longest first.

        Such a session holds its locks and its snapshot, which keeps vacuum from removing dead rows.
        """
        seconds = float(check_number(min_seconds, "min_seconds"))
        return await self._fetch(IDLE_IN_TRANSACTION, seconds, redact=["last_query"])
