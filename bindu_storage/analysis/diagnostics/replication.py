"""Replication: is this server a primary or a standby, how far behind, who streams from it.

Each diagnostic's columns are the aliases of its statement below. ``replication_status`` has
one row. On a standby the lag columns are filled (on a primary they
are empty): ``replay_lag_seconds`` is the age of the last replayed transaction, or 0 when the
standby has replayed everything it received (an idle primary sends nothing new, which is not
lag). ``replicas`` lists ``pg_stat_replication``: the standbys streaming from this server (on
a primary; on a standby only cascading standbys). ``replication_slots`` shows how much WAL each
slot keeps on disk: an inactive slot retains WAL without limit.
"""

from __future__ import annotations

import pandas as pd

from bindu_storage.analysis.diagnostics.query import diagnostic
from bindu_storage.analysis.diagnostics.session import Session

# Every function that fails on one kind of server sits in the CASE branch of the other kind.
REPLICATION_STATUS = """
SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END AS role,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,
       pg_last_wal_receive_lsn()::text AS received_lsn,
       pg_last_wal_replay_lsn()::text AS replayed_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_lag_bytes,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 1)
       END AS replay_lag_seconds,
       pg_last_xact_replay_timestamp() AS last_replayed_at,
       (SELECT count(*) FROM pg_stat_replication) AS connected_standbys
"""

REPLICAS = """
SELECT pid,
       application_name AS application,
       host(client_addr) AS client_address,
       state,
       sync_state,
       sent_lsn::text AS sent_lsn,
       replay_lsn::text AS replayed_lsn,
       pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
         replay_lsn)::bigint AS lag_bytes,
       round(extract(epoch FROM write_lag), 3) AS write_lag_seconds,
       round(extract(epoch FROM flush_lag), 3) AS flush_lag_seconds,
       round(extract(epoch FROM replay_lag), 3) AS replay_lag_seconds
FROM pg_stat_replication
ORDER BY application, pid
"""

REPLICATION_SLOTS = """
SELECT slot_name::text AS slot_name,
       slot_type,
       database::text AS database,
       active,
       pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
         restart_lsn)::bigint AS retained_wal_bytes,
       pg_size_pretty(pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
         restart_lsn)) AS retained_wal
FROM pg_replication_slots
ORDER BY retained_wal_bytes DESC NULLS LAST, slot_name
"""


class ReplicationTopic(Session):
    """Replication: this server's role and lag, its standbys, its slots."""

    @diagnostic(REPLICATION_STATUS)
    async def replication_status(self) -> pd.DataFrame:
        """One row: primary or standby, and on a standby how far replay is behind."""
        return await self._fetch(REPLICATION_STATUS)

    @diagnostic(REPLICAS)
    async def replicas(self) -> pd.DataFrame:
        """The standbys streaming from this server, with their lag in bytes and seconds."""
        return await self._fetch(REPLICAS)

    @diagnostic(REPLICATION_SLOTS)
    async def replication_slots(self) -> pd.DataFrame:
        """Replication slots and the WAL each keeps on disk, most first."""
        return await self._fetch(REPLICATION_SLOTS)
