"""Blocked and blocking sessions, paired through ``pg_blocking_pids``.

Columns of ``blocked_sessions`` (one row per blocked/blocking pair): ``blocked_pid,
blocked_user, blocked_application, waiting_seconds, waiting_for, blocked_query, blocking_pid,
blocking_user, blocking_application, blocking_state, blocking_transaction_seconds,
blocking_query``. ``waiting_for`` names the lock type and mode asked for; query texts are redacted.
A blocking session that is ``idle in transaction`` is the usual culprit: its transaction holds
locks while the application does something else.
"""

from __future__ import annotations

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import fetch_frame

COLUMNS: dict[str, tuple[str, ...]] = {
    "blocked_sessions": (
        "blocked_pid", "blocked_user", "blocked_application", "waiting_seconds", "waiting_for",
        "blocked_query", "blocking_pid", "blocking_user", "blocking_application", "blocking_state",
        "blocking_transaction_seconds", "blocking_query",
    ),
}
"""The documented columns of each diagnostic of this topic."""

BLOCKED_SESSIONS = """
SELECT blocked.pid AS blocked_pid,
       blocked.usename AS blocked_user,
       blocked.application_name AS blocked_application,
       round(extract(epoch FROM now() - coalesce(waiting.since, blocked.query_start)), 1) AS waiting_seconds,
       waiting.lock AS waiting_for,
       blocked.query AS blocked_query,
       blocking.pid AS blocking_pid,
       blocking.usename AS blocking_user,
       blocking.application_name AS blocking_application,
       blocking.state AS blocking_state,
       round(extract(epoch FROM now() - blocking.xact_start), 1) AS blocking_transaction_seconds,
       blocking.query AS blocking_query
FROM pg_stat_activity blocked
CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS blocker(pid)
JOIN pg_stat_activity blocking ON blocking.pid = blocker.pid
LEFT JOIN LATERAL (
    SELECT min(l.waitstart) AS since, string_agg(DISTINCT l.locktype || ' ' || l.mode, ', ') AS lock
    FROM pg_locks l
    WHERE l.pid = blocked.pid AND NOT l.granted
) AS waiting ON true
WHERE blocked.wait_event_type = 'Lock'
ORDER BY waiting_seconds DESC, blocked_pid, blocking_pid
"""


async def blocked_sessions(conn: asyncpg.Connection) -> pd.DataFrame:
    """Sessions waiting for a lock, each with the session that holds it, longest wait first."""
    return await fetch_frame(
        conn, BLOCKED_SESSIONS, columns=COLUMNS["blocked_sessions"],
        redact=["blocked_query", "blocking_query"],
    )
