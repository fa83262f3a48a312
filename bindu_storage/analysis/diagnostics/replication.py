"""Replication: is this server a primary or a standby, how far behind, who streams from it.

==================  =================================================================
diagnostic          columns
==================  =================================================================
replication_status  role, replay_paused, received_lsn, replayed_lsn, replay_lag_bytes,
                    replay_lag_seconds, last_replayed_at, connected_standbys
replicas            pid, application, client_address, state, sync_state, sent_lsn,
                    replayed_lsn, lag_bytes, write_lag_seconds, flush_lag_seconds,
                    replay_lag_seconds
replication_slots   slot_name, slot_type, database, active, retained_wal_bytes,
                    retained_wal
==================  =================================================================

``replication_status`` has one row. On a standby the lag columns are filled (on a primary they
are empty): ``replay_lag_seconds`` is the age of the last replayed transaction, or 0 when the
standby has replayed everything it received (an idle primary sends nothing new, which is not
lag). ``replicas`` lists ``pg_stat_replication``: the standbys streaming from this server (on
a primary; on a standby only cascading standbys). ``replication_slots`` shows how much WAL each
slot keeps on disk: an inactive slot retains WAL without limit.
"""

from __future__ import annotations

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import fetch_frame

COLUMNS: dict[str, tuple[str, ...]] = {
    "replication_status": (
        "role", "replay_paused", "received_lsn", "replayed_lsn", "replay_lag_bytes",
        "replay_lag_seconds", "last_replayed_at", "connected_standbys",
    ),
    "replicas": (
        "pid", "application", "client_address", "state", "sync_state", "sent_lsn", "replayed_lsn",
        "lag_bytes", "write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds",
    ),
    "replication_slots": (
        "slot_name", "slot_type", "database", "active", "retained_wal_bytes", "retained_wal",
    ),
}
"""The documented columns of each diagnostic of this topic."""

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


async def replication_status(conn: asyncpg.Connection) -> pd.DataFrame:
    """One row: primary or standby, and on a standby how far replay is behind."""
    return await fetch_frame(conn, REPLICATION_STATUS, columns=COLUMNS["replication_status"])


async def replicas(conn: asyncpg.Connection) -> pd.DataFrame:
    """The standbys streaming from this server, with their lag in bytes and seconds."""
    return await fetch_frame(conn, REPLICAS, columns=COLUMNS["replicas"])


async def replication_slots(conn: asyncpg.Connection) -> pd.DataFrame:
    """Replication slots and the WAL each keeps on disk, most first."""
    return await fetch_frame(conn, REPLICATION_SLOTS, columns=COLUMNS["replication_slots"])
