"""The checks of the health report, each registered once: its name, topic and thresholds.

``@check(name, topic, *thresholds)`` registers the function below it. The function gets the
diagnostics of its topic and the values of the ``Thresholds`` fields it names (nothing else), and
returns a ``Verdict``; the report turns it into a ``Finding`` carrying the registered name and
topic. ``CHECKS`` holds them in registration order, which is the report's order. (A little over
400 lines: one short function per check, in that order, reads better than a split.)

The default thresholds are the table of :mod:`.model`. A check whose query fails (for example a
monitoring role without ``SELECT`` on the Bindu tables, or a statement timeout) becomes a
``skipped`` finding carrying the server's reason (see :mod:`.build`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bindu_storage.analysis.diagnostics import pool  # the pool topic (a module name, not a pool)
from bindu_storage.analysis.diagnostics.bindu import BinduTopic
from bindu_storage.analysis.diagnostics.connections import ConnectionsTopic
from bindu_storage.analysis.diagnostics.indexes import IndexesTopic
from bindu_storage.analysis.diagnostics.locks import LocksTopic
from bindu_storage.analysis.diagnostics.queries import QueriesTopic
from bindu_storage.analysis.diagnostics.replication import ReplicationTopic
from bindu_storage.analysis.diagnostics.report.measure import duration, grade, largest, levels, percent, size
from bindu_storage.analysis.diagnostics.report.model import Limit, Status, Verdict
from bindu_storage.analysis.diagnostics.retention import RetentionTopic
from bindu_storage.analysis.diagnostics.schema import SchemaTopic
from bindu_storage.analysis.diagnostics.tables import TablesTopic


@dataclass(frozen=True)
class Check:
    """One registered check of the health report."""

    name: str
    """What the finding is called (``connection usage``)."""
    topic: str
    """The diagnostics topic it reads (``connections``)."""
    thresholds: tuple[str, ...]
    """The ``Thresholds`` fields it judges by, passed to ``run`` in this order."""
    options: tuple[str, ...]
    """Options of the report run it takes as keywords (``jsonb_sample_percent``)."""
    run: Callable[..., Awaitable[Verdict]]


CHECKS: list[Check] = []
"""Every check, in the report's order."""


def check(
    name: str, topic: str, *thresholds: str, options: tuple[str, ...] = ()
) -> Callable[[Callable[..., Awaitable[Verdict]]], Callable[..., Awaitable[Verdict]]]:
    """Register the decorated coroutine function as the check ``name`` of ``topic``."""

    def register(run: Callable[..., Awaitable[Verdict]]) -> Callable[..., Awaitable[Verdict]]:
        if any(c.name == name for c in CHECKS):
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS.append(Check(name, topic, thresholds, options, run))
        return run

    return register


def _on_standby(why: str, threshold: str) -> Verdict:
    return Verdict("skipped", why, threshold)


# --- connections and locks -------------------------------------------------------------------------


@check("connection usage", "connections", "connection_usage_percent")
async def connection_usage(d: ConnectionsTopic, limit: Limit) -> Verdict:
    row = (await d.connection_usage()).iloc[0]
    usable = int(row["max_connections"]) - int(row["reserved_connections"])
    used = float(row["usage_percent"])
    return Verdict(
        grade(used, limit), f"{int(row['sessions'])} of {usable} client connections in use ({used:g} %)",
        levels(limit, percent),
        "put a pooler such as PgBouncer in front, lower pool_max per process, or raise max_connections",
    )


@check("long-running queries", "connections", "long_query_seconds")
async def long_running_queries(d: ConnectionsTopic, limit: Limit) -> Verdict:
    frame = await d.long_running_queries(min_seconds=limit.warn)
    longest = largest(frame, "running_seconds")
    seen = (f"{len(frame)} statement(s) running for up to {duration(longest)}" if len(frame)
            else f"no statement running longer than {duration(limit.warn)}")
    return Verdict(
        grade(longest, limit) if len(frame) else "ok", seen, levels(limit, duration),
        "see long_running_queries(); cancel with pg_cancel_backend(pid) if stuck, and set a "
        "statement_timeout for the application role",
    )


@check("idle in transaction", "connections", "idle_in_transaction_seconds")
async def idle_in_transaction(d: ConnectionsTopic, limit: Limit) -> Verdict:
    frame = await d.idle_in_transaction()
    longest = largest(frame, "idle_seconds")
    seen = (f"{len(frame)} session(s) idle in a transaction, longest {duration(longest)}" if len(frame)
            else "no session idle in a transaction")
    return Verdict(
        grade(longest, limit) if len(frame) else "ok", seen, levels(limit, duration),
        "an open transaction holds locks and stops vacuum: fix the application (commit or roll back "
        "promptly), end it with pg_terminate_backend(pid), and set idle_in_transaction_session_timeout",
    )


@check("blocked sessions", "locks", "lock_wait_seconds")
async def blocked_sessions(d: LocksTopic, limit: Limit) -> Verdict:
    frame = await d.blocked_sessions()
    longest = largest(frame, "waiting_seconds")
    blocked = frame["blocked_pid"].nunique()
    seen = (f"{blocked} session(s) waiting for a lock, longest {duration(longest)}" if blocked
            else "no session waiting for a lock")
    return Verdict(
        grade(longest, limit) if blocked else "ok", seen, levels(limit, duration),
        "see blocked_sessions(): the blocking session (often idle in transaction) must finish; "
        "keep transactions short and set lock_timeout for migrations",
    )


# --- the pool and the queries ------------------------------------------------------------------------


@check("pool saturation", "pool", "pool_saturation_percent")
async def pool_saturation(d: pool.PoolTopic, limit: Limit) -> Verdict:
    row = (await d.pool_stats()).iloc[0]
    threshold = levels(limit, percent)
    if not bool(row["connected"]):
        reason = "no PostgresStorage given" if d.storage is None else "the storage is not connected"
        return Verdict("skipped", f"{reason}: no pool to describe", threshold)
    used = float(row["saturation_percent"])
    return Verdict(
        grade(used, limit),
        f"{int(row['in_use'])} of max {int(row['max_size'])} pool connections in use ({used:g} %)",
        threshold, "raise pool_max (within max_connections) or find what holds connections",
    )


@check("pg_stat_statements", "queries")
async def statements(d: QueriesTopic) -> Verdict:
    status = await d.statements_status()
    threshold = "warn when not preloaded, not created or not readable by this role"
    if status.available and not status.problem:
        return Verdict("ok", "preloaded, created here and readable", threshold)
    return Verdict("warn", status.reason, threshold, status.advice)


@check("slow queries", "queries", "slow_query_mean_ms", "slow_query_min_calls")
async def slow_queries(d: QueriesTopic, limit: Limit, min_calls: int) -> Verdict:
    threshold = levels(limit, lambda v: f"{v:g} ms") + f" (>= {min_calls} calls)"
    frame = await d.queries_by_mean_time(limit=1, min_calls=min_calls)
    if not len(frame) and "note" in frame.attrs and not (await d.statements_status()).available:
        return Verdict("skipped", "pg_stat_statements is not available", threshold,
                       "enable pg_stat_statements (see its finding)")
    if not len(frame):
        return Verdict("ok", f"no statement called {min_calls}+ times yet", threshold)
    mean = float(frame["mean_ms"].iloc[0])
    return Verdict(
        grade(mean, limit),
        f"slowest statement averages {mean:g} ms over {int(frame['calls'].iloc[0])} calls",
        threshold, "see queries_by_mean_time() and EXPLAIN (ANALYZE, BUFFERS) the statement; a missing "
        "index is the usual cause",
    )


# --- tables and indexes ------------------------------------------------------------------------------


@check("dead rows", "tables", "dead_rows_percent", "dead_rows_min_rows")
async def dead_rows(d: TablesTopic, limit: Limit, min_rows: int) -> Verdict:
    threshold = levels(limit, percent) + f" (tables with >= {min_rows} rows)"
    if d.is_standby:
        return _on_standby("a standby keeps no vacuum statistics; check the primary", threshold)
    frame = await d.table_stats()
    big = frame[(frame["live_rows"] + frame["dead_rows"]) >= min_rows]
    if not len(big):
        return Verdict("ok", "no table large enough to judge", threshold)
    worst = big.sort_values("dead_percent", ascending=False).iloc[0]
    dead = 0.0 if pd.isna(worst["dead_percent"]) else float(worst["dead_percent"])
    return Verdict(
        grade(dead, limit), f"{worst['table_name']}: {int(worst['dead_rows'])} dead rows ({dead:g} %)",
        threshold, "autovacuum is not keeping up: look for long transactions (they hold dead rows back), "
        "run VACUUM (ANALYZE) on the table, or lower autovacuum_vacuum_scale_factor for it",
    )


async def _cache_hit_ratio(d: IndexesTopic, kind: str, limit: Limit, min_blocks: int) -> Verdict:
    frame = await d.cache_hit_ratios()
    row = frame[frame["object_type"] == kind].iloc[0]
    blocks = int(row["hits"]) + int(row["reads"])
    threshold = levels(limit, percent, low_is_bad=True) + f" (>= {min_blocks} reads)"
    if blocks < min_blocks:
        return Verdict("ok", f"only {blocks} block reads so far, too few to judge", threshold)
    hit = float(row["hit_percent"])
    return Verdict(
        grade(hit, limit, low_is_bad=True),
        f"{hit:g} % of {blocks} {kind} block reads served from shared buffers", threshold,
        "the working set does not fit in memory: raise shared_buffers (about 25 % of RAM) or add RAM",
    )


@check("table cache hit ratio", "indexes", "cache_hit_percent", "cache_min_blocks")
async def table_cache_hit_ratio(d: IndexesTopic, limit: Limit, min_blocks: int) -> Verdict:
    return await _cache_hit_ratio(d, "table", limit, min_blocks)


@check("index cache hit ratio", "indexes", "cache_hit_percent", "cache_min_blocks")
async def index_cache_hit_ratio(d: IndexesTopic, limit: Limit, min_blocks: int) -> Verdict:
    return await _cache_hit_ratio(d, "index", limit, min_blocks)


@check("invalid indexes", "indexes")
async def invalid_indexes(d: IndexesTopic) -> Verdict:
    frame = await d.invalid_indexes()
    names = ", ".join(str(name) for name in frame["index_name"])
    return Verdict(
        "warn" if len(frame) else "ok", f"{len(frame)} invalid: {names}" if len(frame) else "none",
        "warn >= 1",
        "DROP INDEX CONCURRENTLY the invalid index, then build it again (or REINDEX INDEX CONCURRENTLY)",
    )


@check("duplicate indexes", "indexes")
async def duplicate_indexes(d: IndexesTopic) -> Verdict:
    frame = await d.duplicate_indexes()
    declared = frame["declared"].fillna(False).astype(bool)
    names = ", ".join(f"{r.index_name} (covered by {r.covered_by})" for r in frame[~declared].itertuples())
    kept = ", ".join(f"{r.index_name} (covered by {r.covered_by})" for r in frame[declared].itertuples())
    seen = (names or "none") + (f"; kept, declared by the migrations: {kept}" if kept else "")
    return Verdict(
        "warn" if names else "ok", seen, "warn >= 1 not declared by the migrations",
        "drop the covered index (DROP INDEX CONCURRENTLY) after checking no query needs it; never one "
        "the migrations declare",
    )


_STANDBY_SCANS = "scan counts on a standby cover only its own reads; check the primary"


@check("unused indexes", "indexes", "unused_index_min_bytes")
async def unused_indexes(d: IndexesTopic, min_bytes: int) -> Verdict:
    threshold = f"warn >= 1 never-scanned index of >= {size(min_bytes)}"
    if d.is_standby:
        return _on_standby(_STANDBY_SCANS, threshold)
    frame = await d.unused_indexes()
    big = frame[(frame["size_bytes"] >= min_bytes) & ~frame["declared"].fillna(False)]
    names = ", ".join(f"{r.index_name} ({r.size})" for r in big.itertuples())
    return Verdict(
        "warn" if len(big) else "ok", names or "none", threshold + " not declared by the migrations",
        "an index never scanned since the statistics were reset only slows writes: after checking the "
        "standbys too, drop it with DROP INDEX CONCURRENTLY (never one the migrations declare: see the "
        "declared indexes finding)",
    )


@check("declared indexes", "indexes", "unused_index_min_bytes")
async def declared_indexes(d: IndexesTopic, min_bytes: int) -> Verdict:
    threshold = "never advised away: the migrations create them and the storage's queries use them"
    if d.is_standby:
        return _on_standby(_STANDBY_SCANS, threshold)
    frame = await d.unused_indexes()
    ours = frame[(frame["size_bytes"] >= min_bytes) & frame["declared"].fillna(False)]
    if not len(ours):
        return Verdict("ok", f"every index of ours of {size(min_bytes)} or more was scanned", threshold)
    kept = "; ".join(f"{r.index_name} ({r.size}) {r.purpose}" for r in ours.itertuples())
    return Verdict(
        "ok", f"{len(ours)} not scanned yet, kept: {kept}", threshold,
        "keep them: they serve queries not run yet here; dropping one makes the schema drift check flag it",
    )


# --- replication -------------------------------------------------------------------------------------


@check("replication lag", "replication", "replication_lag_seconds")
async def replication_lag(d: ReplicationTopic, limit: Limit) -> Verdict:
    threshold = levels(limit, duration)
    advice = ("replay is behind: check the standby's disk and CPU, long queries on it (recovery "
              "conflicts), and the network from the primary")
    if d.is_standby:
        row = (await d.replication_status()).iloc[0]
        if bool(row["replay_paused"]) is True:
            return Verdict("critical", "WAL replay is paused on this standby", threshold,
                           "resume it with SELECT pg_wal_replay_resume()")
        lag = 0.0 if pd.isna(row["replay_lag_seconds"]) else float(row["replay_lag_seconds"])
        return Verdict(grade(lag, limit), f"standby replays {duration(lag)} behind the primary", threshold,
                       advice)
    frame = await d.replicas()
    if not len(frame):
        return Verdict("ok", "primary with no standby streaming from it", threshold)
    lag = largest(frame, "replay_lag_seconds")
    return Verdict(grade(lag, limit), f"{len(frame)} standby(s) streaming, worst replay lag {duration(lag)}",
                   threshold, advice)


@check("replication slots", "replication", "slot_retained_bytes")
async def replication_slots(d: ReplicationTopic, limit: Limit) -> Verdict:
    frame = await d.replication_slots()
    threshold = levels(limit, size) + "; warn for any inactive slot"
    if not len(frame):
        return Verdict("ok", "no replication slot", threshold)
    retained = largest(frame, "retained_wal_bytes")
    inactive = frame[~frame["active"].fillna(False).astype(bool)]
    status = grade(retained, limit)
    if len(inactive) and status == "ok":
        status = "warn"
    seen = f"{len(frame)} slot(s), {len(inactive)} inactive, up to {size(retained)} of WAL kept"
    return Verdict(status, seen, threshold, "an inactive slot keeps WAL until the disk fills: reconnect its "
                   "consumer or drop it with pg_drop_replication_slot()")


# --- schema ------------------------------------------------------------------------------------------


_MIGRATION_STATUS: dict[str, Status] = {"up to date": "ok", "not migrated": "critical"}


@check("migrations", "schema")
async def migrations(d: SchemaTopic) -> Verdict:
    row = (await d.migration_status()).iloc[0]
    verdict = str(row["status"])
    current = row["database_revision"] if not pd.isna(row["database_revision"]) else "none"
    return Verdict(
        _MIGRATION_STATUS.get(verdict, "warn"), f"{verdict}: revision {current}, head {row['head_revision']}",
        "warn when behind or unknown, critical when not migrated",
        "run `alembic upgrade head` (or start the storage with migrations on startup) against the "
        "primary; an unknown revision means a newer bindu-storage migrated this schema",
    )


@check("schema drift", "schema")
async def schema_drift(d: SchemaTopic) -> Verdict:
    frame = await d.schema_drift()
    threshold = "critical for a missing table, column or constraint; warn for any other difference"
    if "note" in frame.attrs:
        return Verdict("skipped", frame.attrs["note"], threshold)
    if not len(frame):
        return Verdict("ok", "the schema matches the migrations", threshold)
    essential = frame["object_type"].isin(["table", "column", "constraint"])
    severe = frame[(frame["kind"] == "missing") & essential]
    listed = "; ".join(
        f"{r.kind} {r.object_type} {r.table_name}.{r.name}" for r in frame.head(5).itertuples()
    )
    more = f" (+{len(frame) - 5} more)" if len(frame) > 5 else ""
    return Verdict(
        "critical" if len(severe) else "warn", f"{len(frame)} difference(s): {listed}{more}", threshold,
        "see schema_drift(); recreate what is missing as the revisions declare it (for an index: "
        "CREATE INDEX CONCURRENTLY with the expected definition)",
    )


# --- Bindu -------------------------------------------------------------------------------------------


@check("stuck tasks", "bindu", "stuck_task_seconds")
async def stuck_tasks(d: BinduTopic, limit: Limit) -> Verdict:
    frame = await d.stuck_tasks(older_than_seconds=limit.warn)
    agent = frame[frame["waiting_on"] == "agent"]
    caller = int(frame.loc[frame["waiting_on"] == "caller", "stuck_tasks"].sum())
    waiting = f"; {caller} task(s) waiting on their caller (not judged)" if caller else ""
    threshold = levels(limit, duration) + " (submitted, working, unknown)"
    if not len(agent):
        seen = f"no task waiting on the agent for over {duration(limit.warn)}{waiting}"
        return Verdict("ok", seen, threshold)
    oldest = largest(agent, "oldest_seconds")
    per_state = ", ".join(
        f"{int(count)} {state}" for state, count in zip(agent["state"], agent["stuck_tasks"], strict=True)
    )
    return Verdict(
        grade(oldest, limit), f"{per_state}; oldest for {duration(oldest)}{waiting}", threshold,
        "the agent lost these tasks (crash or lost worker): check its logs, then fail or retry them",
    )


@check("JSONB sizes", "bindu", "jsonb_value_bytes", options=("jsonb_sample_percent",))
async def jsonb_sizes(d: BinduTopic, limit: Limit, *, jsonb_sample_percent: float | None) -> Verdict:
    frame = await d.jsonb_sizes(sample_percent=jsonb_sample_percent)
    threshold = levels(limit, size)
    if not len(frame) or largest(frame, "max_bytes") == 0:
        return Verdict("ok", "no JSONB values stored", threshold)
    worst = frame.sort_values("max_bytes", ascending=False).iloc[0]
    biggest = float(worst["max_bytes"])
    return Verdict(
        grade(biggest, limit),
        f"largest value {size(biggest)} in {worst['table_name']}.{worst['column_name']} "
        f"(average {size(float(worst['avg_bytes']))})", threshold,
        "very large histories or artifacts slow every read of the row: trim history or store big "
        "artifacts elsewhere and keep a reference",
    )


@check("data retention", "retention", "retention_days")
async def data_retention(d: RetentionTopic, limit: Limit) -> Verdict:
    frame = (await d.retention(older_than_days=limit.warn)).set_index("table_name")
    threshold = f"warn >= {limit.warn:g} days, critical >= {limit.critical:g} days"
    oldest: Any = frame.at["tasks", "oldest_updated"]
    if pd.isna(oldest):
        return Verdict("ok", "no task stored", threshold)
    days = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(oldest)).total_seconds() / 86400
    would = ", ".join(
        f"{int(n)} {name}" for name, n in frame["purge_would_remove"].items() if int(n)
    ) or "nothing"
    return Verdict(
        grade(days, limit),
        f"oldest task last updated {days:.1f} days ago; {size(float(frame['total_bytes'].sum()))} in "
        f"the Bindu tables; a purge of tasks not updated for {limit.warn:g} days would remove {would}",
        threshold,
        f"see retention(); `bindu-storage purge --older-than {limit.warn:g}d` (a dry run without --yes), "
        "or schedule it",
    )
