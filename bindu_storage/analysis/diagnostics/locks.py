"""Blocked and blocking sessions, paired through ``pg_blocking_pids``.

``blocked_sessions`` has one row per blocked/blocking pair, with the columns of its statement
below. ``waiting_for`` names the lock type and mode asked for; query texts are redacted.
A blocking session that is ``idle in transaction`` is the usual culprit: its transaction holds
locks while the application does something else.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import diagnostic
from bindu_storage.analysis.diagnostics.session import Session

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


class LocksTopic(Session):
    """Blocked and blocking sessions."""

    @diagnostic(BLOCKED_SESSIONS)
    async def blocked_sessions(self) -> pd.DataFrame:
        """Sessions waiting for a lock, each with the session that holds it, longest wait first."""
        return await self._fetch(BLOCKED_SESSIONS, redact=["blocked_query", "blocking_query"])
