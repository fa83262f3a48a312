"""The health report: every diagnostic judged against explicit thresholds, as findings.

Each finding says what was checked, its status (``ok``, ``warn``, ``critical``, or
``skipped`` when it cannot be judged here, e.g. vacuum figures on a standby), what was seen, the
threshold, and what to do. The report's status is the worst finding (skipped ones do not count)
and ``exit_code`` maps it to 0 (ok), 1 (warn), 2 (critical) for scripts and cron jobs. It shows
as a table in a notebook (``_repr_html_``, naming only the database: no host or user in a shared
notebook), as plain text in a terminal (``str``, with the full password-free target), and as a
dict or JSON for machines.

Default thresholds (change them with :class:`Thresholds`):

=====================  ===================================================  ===========  ============
check                  measure                                              warn         critical
=====================  ===================================================  ===========  ============
connection usage       client sessions / (max_connections - reserved)       >= 70 %      >= 90 %
long-running queries   longest running statement                            >= 5 min     >= 30 min
idle in transaction    longest session idle inside a transaction            >= 1 min     >= 10 min
blocked sessions       longest wait for a lock                              >= 10 s      >= 60 s
pool saturation        connections in use / pool max_size                   >= 80 %      >= 100 %
pg_stat_statements     preloaded, created here, readable by this role       missing      -
slow queries           slowest mean time, statements with >= 100 calls      >= 100 ms    >= 1 s
dead rows              worst dead share, tables of >= 1,000 rows (primary)  >= 20 %      >= 50 %
table cache hit ratio  heap blocks served from shared buffers (>= 1,000)   < 99 %       < 95 %
index cache hit ratio  index blocks served from shared buffers (>= 1,000)  < 99 %       < 95 %
invalid indexes        left invalid by a failed concurrent build            >= 1         -
duplicate indexes      covered by another index of the table                >= 1         -
unused indexes         never scanned, non-unique, >= 1 MiB, not declared    >= 1         -
declared indexes       ours (the migrations'), not scanned yet, >= 1 MiB   never        -
replication lag        standby: replay lag; primary: worst standby's lag    >= 30 s      >= 5 min
replication slots      WAL kept by a slot (an inactive slot warns)          >= 1 GiB     >= 10 GiB
migrations             schema revision vs head                              behind or    not migrated
                                                                            unknown
schema drift           differences from the declared schema                 any other    missing table,
                                                                                         column or
                                                                                         constraint
stuck tasks            oldest task in submitted/working/unknown             >= 15 min    >= 1 h
JSONB sizes            largest stored JSONB value                           >= 1 MiB     >= 16 MiB
=====================  ===================================================  ===========  ============

A check whose query fails (for example a monitoring role without ``SELECT`` on the Bindu tables,
or a statement timeout) becomes a ``skipped`` finding carrying the server's reason.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.connection import Diagnostics
from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.storage.postgres import PostgresStorage

Status = Literal["ok", "warn", "critical", "skipped"]
"""The verdict of one finding."""

_RANK: dict[str, int] = {"skipped": -1, "ok": 0, "warn": 1, "critical": 2}
_MiB = 1024**2
_GiB = 1024**3


class Limit(NamedTuple):
    """A warn and a critical level of one measure."""

    warn: float
    critical: float


_CONNECTIONS, _LONG_QUERY, _IDLE_TX = Limit(70, 90), Limit(300, 1800), Limit(60, 600)
_LOCK_WAIT, _POOL, _SLOW_QUERY = Limit(10, 60), Limit(80, 100), Limit(100, 1000)
_DEAD_ROWS, _CACHE, _LAG = Limit(20, 50), Limit(99, 95), Limit(30, 300)
_SLOTS, _STUCK, _JSONB = Limit(_GiB, 10 * _GiB), Limit(900, 3600), Limit(_MiB, 16 * _MiB)


@dataclass(frozen=True)
class Thresholds:
    """The levels the health report judges by; the defaults are the module's table."""

    connection_usage_percent: Limit = _CONNECTIONS
    long_query_seconds: Limit = _LONG_QUERY
    idle_in_transaction_seconds: Limit = _IDLE_TX
    lock_wait_seconds: Limit = _LOCK_WAIT
    pool_saturation_percent: Limit = _POOL
    slow_query_mean_ms: Limit = _SLOW_QUERY
    slow_query_min_calls: int = 100
    dead_rows_percent: Limit = _DEAD_ROWS
    dead_rows_min_rows: int = 1000
    cache_hit_percent: Limit = _CACHE
    cache_min_blocks: int = 1000
    unused_index_min_bytes: int = _MiB
    replication_lag_seconds: Limit = _LAG
    slot_retained_bytes: Limit = _SLOTS
    stuck_task_seconds: Limit = _STUCK
    jsonb_value_bytes: Limit = _JSONB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            pair = isinstance(f.default, tuple)
            parts = value if pair and isinstance(value, tuple) else (value,)
            if pair and (not isinstance(value, tuple) or len(value) != 2):
                raise InvalidValueError(f"threshold {f.name} needs (warn, critical), got {value!r}")
            if not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in parts):
                raise InvalidValueError(f"threshold {f.name} must be non-negative numbers, got {value!r}")
            if pair:
                limit = Limit(*value)
                low_is_bad = f.name == "cache_hit_percent"
                if (limit.warn < limit.critical) if low_is_bad else (limit.warn > limit.critical):
                    order = "above" if low_is_bad else "below"
                    raise InvalidValueError(
                        f"threshold {f.name}: warn must be {order} critical (or equal), got {value!r}"
                    )
                object.__setattr__(self, f.name, limit)


@dataclass(frozen=True)
class Finding:
    """One check of the report: what was seen against which threshold, and what to do."""

    check: str
    status: Status
    seen: str
    threshold: str
    advice: str = ""
    topic: str = ""


@dataclass
class HealthReport:
    """Findings of one database and schema; ``status`` is the worst of them."""

    target: str
    schema: str
    role: str
    findings: list[Finding]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def status(self) -> Status:
        """``ok``, ``warn`` or ``critical``: the worst finding (skipped ones do not count)."""
        worst = max((_RANK[f.status] for f in self.findings), default=0)
        return ("ok", "warn", "critical")[max(worst, 0)]  # type: ignore[return-value]

    @property
    def exit_code(self) -> int:
        """0 when ok, 1 on a warning, 2 when critical."""
        return _RANK[self.status]

    def counts(self) -> dict[str, int]:
        """How many findings have each status."""
        return {s: sum(f.status == s for f in self.findings) for s in ("ok", "warn", "critical", "skipped")}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "target": self.target, "schema": self.schema, "role": self.role,
            "generated_at": self.generated_at.isoformat(), "status": self.status,
            "exit_code": self.exit_code, "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per finding."""
        columns = [f.name for f in fields(Finding)]
        return pd.DataFrame([asdict(f) for f in self.findings], columns=columns).astype("string")

    @property
    def database(self) -> str:
        """The database name alone (what the notebook view shows: no host, no user)."""
        return self.target.rpartition("/")[2] or self.target

    def _heading(self, where: str, *, status: bool = True) -> str:
        counts = self.counts()
        return (
            (f"{self.status.upper()}: " if status else "") + f"{where}, schema {self.schema} ({self.role}); "
            f"{counts['critical']} critical, {counts['warn']} warn, {counts['ok']} ok, "
            f"{counts['skipped']} skipped; {self.generated_at:%Y-%m-%d %H:%M:%S} UTC"
        )

    def to_text(self) -> str:
        """The report for a terminal: the worst findings first, advice under each problem."""
        order = sorted(self.findings, key=lambda f: -_RANK[f.status])
        width = max((len(f.check) for f in order), default=0)
        lines = [self._heading(self.target)]
        for f in order:
            lines.append(f"  {f.status.upper():<8}  {f.check:<{width}}  {f.seen}  [{f.threshold}]")
            if f.advice and f.status != "ok":
                lines.append(f"  {'':<8}  {'':<{width}}  -> {f.advice}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (f"<HealthReport {self.status} {self.target} schema={self.schema!r} "
                f"findings={len(self.findings)}>")

    def _repr_html_(self) -> str:
        colours = {"ok": "#1a7f37", "warn": "#9a6700", "critical": "#cf222e", "skipped": "#6e7781"}

        def badge(status: str) -> str:
            return (f'<span style="color:#fff;background:{colours[status]};padding:1px 6px;'
                    f'border-radius:3px;font-weight:600">{html.escape(status.upper())}</span>')

        def cells(f: Finding) -> str:
            advice = f.advice if f.status != "ok" else ""
            texts = (f.check, f.seen, f.threshold, advice)
            return f"<td>{badge(f.status)}</td>" + "".join(f"<td>{html.escape(t)}</td>" for t in texts)

        rows = "".join(f"<tr>{cells(f)}</tr>" for f in sorted(self.findings, key=lambda f: -_RANK[f.status]))
        return (
            f'<div class="bindu-health-report"><p>{badge(self.status)} '
            f"{html.escape(self._heading(f'database {self.database}', status=False))}</p>"
            '<table><thead><tr><th>status</th><th>check</th><th>seen</th><th>threshold</th>'
            f"<th>advice</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )


# --- formatting --------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _bytes(n: float) -> str:
    for unit, size in (("GiB", _GiB), ("MiB", _MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _grade(value: float, limit: Limit, *, low_is_bad: bool = False) -> Status:
    if low_is_bad:
        return "critical" if value < limit.critical else "warn" if value < limit.warn else "ok"
    return "critical" if value >= limit.critical else "warn" if value >= limit.warn else "ok"


def _levels(limit: Limit, fmt: Callable[[float], str], *, low_is_bad: bool = False) -> str:
    sign = "<" if low_is_bad else ">="
    return f"warn {sign} {fmt(limit.warn)}, critical {sign} {fmt(limit.critical)}"


def _pct(value: float) -> str:
    return f"{value:g} %"


def _max(frame: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.max()) if len(values) else 0.0


# --- the checks ----------------------------------------------------------------------------------


Check = Callable[[Diagnostics, Thresholds], Awaitable[Finding]]


async def _connection_usage(d: Diagnostics, t: Thresholds) -> Finding:
    row = (await d.connection_usage()).iloc[0]
    usable = int(row["max_connections"]) - int(row["reserved_connections"])
    percent = float(row["usage_percent"])
    return Finding(
        "connection usage", _grade(percent, t.connection_usage_percent),
        f"{int(row['sessions'])} of {usable} client connections in use ({percent:g} %)",
        _levels(t.connection_usage_percent, _pct),
        "put a pooler such as PgBouncer in front, lower pool_max per process, or raise max_connections",
        "connections",
    )


async def _long_queries(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.long_running_queries(min_seconds=t.long_query_seconds.warn)
    longest = _max(frame, "running_seconds")
    seen = (f"{len(frame)} statement(s) running for up to {_duration(longest)}" if len(frame)
            else f"no statement running longer than {_duration(t.long_query_seconds.warn)}")
    return Finding(
        "long-running queries", _grade(longest, t.long_query_seconds) if len(frame) else "ok", seen,
        _levels(t.long_query_seconds, _duration),
        "see long_running_queries(); cancel with pg_cancel_backend(pid) if stuck, and set a "
        "statement_timeout for the application role", "connections",
    )


async def _idle_in_transaction(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.idle_in_transaction()
    longest = _max(frame, "idle_seconds")
    seen = (f"{len(frame)} session(s) idle in a transaction, longest {_duration(longest)}" if len(frame)
            else "no session idle in a transaction")
    return Finding(
        "idle in transaction", _grade(longest, t.idle_in_transaction_seconds) if len(frame) else "ok",
        seen, _levels(t.idle_in_transaction_seconds, _duration),
        "an open transaction holds locks and stops vacuum: fix the application (commit or roll back "
        "promptly), end it with pg_terminate_backend(pid), and set idle_in_transaction_session_timeout",
        "connections",
    )


async def _blocked(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.blocked_sessions()
    longest = _max(frame, "waiting_seconds")
    blocked = frame["blocked_pid"].nunique()
    seen = (f"{blocked} session(s) waiting for a lock, longest {_duration(longest)}" if blocked
            else "no session waiting for a lock")
    return Finding(
        "blocked sessions", _grade(longest, t.lock_wait_seconds) if blocked else "ok", seen,
        _levels(t.lock_wait_seconds, _duration),
        "see blocked_sessions(): the blocking session (often idle in transaction) must finish; "
        "keep transactions short and set lock_timeout for migrations", "locks",
    )


async def _pool(d: Diagnostics, t: Thresholds) -> Finding:
    row = (await d.pool_stats()).iloc[0]
    threshold = _levels(t.pool_saturation_percent, _pct)
    if not bool(row["connected"]):
        reason = "no PostgresStorage given" if d.storage is None else "the storage is not connected"
        return Finding("pool saturation", "skipped", f"{reason}: no pool to describe", threshold, "", "pool")
    percent = float(row["saturation_percent"])
    return Finding(
        "pool saturation", _grade(percent, t.pool_saturation_percent),
        f"{int(row['in_use'])} of max {int(row['max_size'])} pool connections in use ({percent:g} %)",
        threshold, "raise pool_max (within max_connections) or find what holds connections", "pool",
    )


async def _statements(d: Diagnostics, t: Thresholds) -> Finding:
    status = await d.statements_status()
    threshold = "warn when not preloaded, not created or not readable by this role"
    if status.available and not status.problem:
        return Finding("pg_stat_statements", "ok", "preloaded, created here and readable", threshold,
                       "", "queries")
    return Finding("pg_stat_statements", "warn", status.reason, threshold, status.advice, "queries")


async def _slow_queries(d: Diagnostics, t: Thresholds) -> Finding:
    threshold = _levels(t.slow_query_mean_ms, lambda v: f"{v:g} ms") + f" (>= {t.slow_query_min_calls} calls)"
    frame = await d.queries_by_mean_time(limit=1, min_calls=t.slow_query_min_calls)
    if not len(frame) and "note" in frame.attrs and not (await d.statements_status()).available:
        return Finding("slow queries", "skipped", "pg_stat_statements is not available", threshold,
                       "enable pg_stat_statements (see its finding)", "queries")
    if not len(frame):
        return Finding("slow queries", "ok", f"no statement called {t.slow_query_min_calls}+ times yet",
                       threshold, "", "queries")
    mean = float(frame["mean_ms"].iloc[0])
    return Finding(
        "slow queries", _grade(mean, t.slow_query_mean_ms),
        f"slowest statement averages {mean:g} ms over {int(frame['calls'].iloc[0])} calls", threshold,
        "see queries_by_mean_time() and EXPLAIN (ANALYZE, BUFFERS) the statement; a missing index is "
        "the usual cause", "queries",
    )


async def _dead_rows(d: Diagnostics, t: Thresholds) -> Finding:
    threshold = _levels(t.dead_rows_percent, _pct) + f" (tables with >= {t.dead_rows_min_rows} rows)"
    if d.is_standby:
        return Finding("dead rows", "skipped", "a standby keeps no vacuum statistics; check the primary",
                       threshold, "", "tables")
    frame = await d.table_stats()
    big = frame[(frame["live_rows"] + frame["dead_rows"]) >= t.dead_rows_min_rows]
    if not len(big):
        return Finding("dead rows", "ok", "no table large enough to judge", threshold, "", "tables")
    worst = big.sort_values("dead_percent", ascending=False).iloc[0]
    percent = 0.0 if pd.isna(worst["dead_percent"]) else float(worst["dead_percent"])
    return Finding(
        "dead rows", _grade(percent, t.dead_rows_percent),
        f"{worst['table_name']}: {int(worst['dead_rows'])} dead rows ({percent:g} %)", threshold,
        "autovacuum is not keeping up: look for long transactions (they hold dead rows back), run "
        "VACUUM (ANALYZE) on the table, or lower autovacuum_vacuum_scale_factor for it", "tables",
    )


def _cache_check(kind: str) -> Check:
    async def check(d: Diagnostics, t: Thresholds) -> Finding:
        frame = await d.cache_hit_ratios()
        row = frame[frame["object_type"] == kind].iloc[0]
        blocks = int(row["hits"]) + int(row["reads"])
        threshold = _levels(t.cache_hit_percent, _pct, low_is_bad=True) + f" (>= {t.cache_min_blocks} reads)"
        if blocks < t.cache_min_blocks:
            return Finding(f"{kind} cache hit ratio", "ok",
                           f"only {blocks} block reads so far, too few to judge", threshold, "", "indexes")
        percent = float(row["hit_percent"])
        return Finding(
            f"{kind} cache hit ratio", _grade(percent, t.cache_hit_percent, low_is_bad=True),
            f"{percent:g} % of {blocks} {kind} block reads served from shared buffers", threshold,
            "the working set does not fit in memory: raise shared_buffers (about 25 % of RAM) or add RAM",
            "indexes",
        )

    return check


async def _invalid_indexes(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.invalid_indexes()
    names = ", ".join(frame["index_name"].astype(str))
    return Finding(
        "invalid indexes", "warn" if len(frame) else "ok",
        f"{len(frame)} invalid: {names}" if len(frame) else "none", "warn >= 1",
        "DROP INDEX CONCURRENTLY the invalid index, then build it again (or REINDEX INDEX CONCURRENTLY)",
        "indexes",
    )


async def _duplicate_indexes(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.duplicate_indexes()
    declared = frame["declared"].fillna(False).astype(bool)
    names = ", ".join(f"{r.index_name} (covered by {r.covered_by})" for r in frame[~declared].itertuples())
    kept = ", ".join(f"{r.index_name} (covered by {r.covered_by})" for r in frame[declared].itertuples())
    seen = (names or "none") + (f"; kept, declared by the migrations: {kept}" if kept else "")
    return Finding(
        "duplicate indexes", "warn" if names else "ok", seen, "warn >= 1 not declared by the migrations",
        "drop the covered index (DROP INDEX CONCURRENTLY) after checking no query needs it; never one "
        "the migrations declare", "indexes",
    )


async def _unused_indexes(d: Diagnostics, t: Thresholds) -> Finding:
    threshold = f"warn >= 1 never-scanned index of >= {_bytes(t.unused_index_min_bytes)}"
    if d.is_standby:
        return Finding("unused indexes", "skipped",
                       "scan counts on a standby cover only its own reads; check the primary", threshold,
                       "", "indexes")
    frame = await d.unused_indexes()
    big = frame[(frame["size_bytes"] >= t.unused_index_min_bytes) & ~frame["declared"].fillna(False)]
    names = ", ".join(f"{r.index_name} ({r.size})" for r in big.itertuples())
    return Finding(
        "unused indexes", "warn" if len(big) else "ok", names or "none", threshold + " not declared by "
        "the migrations", "an index never scanned since the statistics were reset only slows writes: after "
        "checking the standbys too, drop it with DROP INDEX CONCURRENTLY (never one the migrations declare: "
        "see the declared indexes finding)", "indexes",
    )


async def _declared_indexes(d: Diagnostics, t: Thresholds) -> Finding:
    threshold = "never advised away: the migrations create them and the storage's queries use them"
    if d.is_standby:
        return Finding("declared indexes", "skipped",
                       "scan counts on a standby cover only its own reads; check the primary", threshold,
                       "", "indexes")
    frame = await d.unused_indexes()
    ours = frame[(frame["size_bytes"] >= t.unused_index_min_bytes) & frame["declared"].fillna(False)]
    if not len(ours):
        return Finding("declared indexes", "ok", f"every index of ours of {_bytes(t.unused_index_min_bytes)} "
                       "or more was scanned", threshold, "", "indexes")
    kept = "; ".join(f"{r.index_name} ({r.size}) {r.purpose}" for r in ours.itertuples())
    return Finding(
        "declared indexes", "ok", f"{len(ours)} not scanned yet, kept: {kept}", threshold,
        "keep them: they serve queries not run yet here; dropping one makes the schema drift check flag it",
        "indexes",
    )


async def _replication_lag(d: Diagnostics, t: Thresholds) -> Finding:
    threshold = _levels(t.replication_lag_seconds, _duration)
    advice = ("replay is behind: check the standby's disk and CPU, long queries on it (recovery "
              "conflicts), and the network from the primary")
    if d.is_standby:
        row = (await d.replication_status()).iloc[0]
        if bool(row["replay_paused"]) is True:
            return Finding("replication lag", "critical", "WAL replay is paused on this standby", threshold,
                           "resume it with SELECT pg_wal_replay_resume()", "replication")
        lag = 0.0 if pd.isna(row["replay_lag_seconds"]) else float(row["replay_lag_seconds"])
        return Finding("replication lag", _grade(lag, t.replication_lag_seconds),
                       f"standby replays {_duration(lag)} behind the primary", threshold, advice,
                       "replication")
    frame = await d.replicas()
    if not len(frame):
        return Finding("replication lag", "ok", "primary with no standby streaming from it", threshold,
                       "", "replication")
    lag = _max(frame, "replay_lag_seconds")
    return Finding("replication lag", _grade(lag, t.replication_lag_seconds),
                   f"{len(frame)} standby(s) streaming, worst replay lag {_duration(lag)}", threshold,
                   advice, "replication")


async def _slots(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.replication_slots()
    threshold = _levels(t.slot_retained_bytes, _bytes) + "; warn for any inactive slot"
    if not len(frame):
        return Finding("replication slots", "ok", "no replication slot", threshold, "", "replication")
    retained = _max(frame, "retained_wal_bytes")
    inactive = frame[~frame["active"].fillna(False).astype(bool)]
    status = _grade(retained, t.slot_retained_bytes)
    if len(inactive) and status == "ok":
        status = "warn"
    seen = f"{len(frame)} slot(s), {len(inactive)} inactive, up to {_bytes(retained)} of WAL kept"
    return Finding("replication slots", status, seen, threshold,
                   "an inactive slot keeps WAL until the disk fills: reconnect its consumer or drop it "
                   "with pg_drop_replication_slot()", "replication")


async def _migrations(d: Diagnostics, t: Thresholds) -> Finding:
    row = (await d.migration_status()).iloc[0]
    verdict = str(row["status"])
    status: Status = {"up to date": "ok", "not migrated": "critical"}.get(verdict, "warn")  # type: ignore[assignment]
    current = row["database_revision"] if not pd.isna(row["database_revision"]) else "none"
    return Finding(
        "migrations", status, f"{verdict}: revision {current}, head {row['head_revision']}",
        "warn when behind or unknown, critical when not migrated",
        "run `alembic upgrade head` (or start the storage with migrations on startup) against the "
        "primary; an unknown revision means a newer bindu-storage migrated this schema", "schema",
    )


async def _drift(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.schema_drift()
    threshold = "critical for a missing table, column or constraint; warn for any other difference"
    if "note" in frame.attrs:
        return Finding("schema drift", "skipped", frame.attrs["note"], threshold, "", "schema")
    if not len(frame):
        return Finding("schema drift", "ok", "the schema matches the migrations", threshold, "", "schema")
    essential = frame["object_type"].isin(["table", "column", "constraint"])
    severe = frame[(frame["kind"] == "missing") & essential]
    listed = "; ".join(
        f"{r.kind} {r.object_type} {r.table_name}.{r.name}" for r in frame.head(5).itertuples()
    )
    more = f" (+{len(frame) - 5} more)" if len(frame) > 5 else ""
    return Finding(
        "schema drift", "critical" if len(severe) else "warn", f"{len(frame)} difference(s): {listed}{more}",
        threshold, "see schema_drift(); recreate what is missing as the revisions declare it (for an index: "
        "CREATE INDEX CONCURRENTLY with the expected definition)", "schema",
    )


async def _stuck(d: Diagnostics, t: Thresholds) -> Finding:
    frame = await d.stuck_tasks(older_than_seconds=t.stuck_task_seconds.warn)
    agent = frame[frame["waiting_on"] == "agent"]
    caller = int(frame.loc[frame["waiting_on"] == "caller", "stuck_tasks"].sum())
    waiting = f"; {caller} task(s) waiting on their caller (not judged)" if caller else ""
    threshold = _levels(t.stuck_task_seconds, _duration) + " (submitted, working, unknown)"
    if not len(agent):
        return Finding("stuck tasks", "ok", f"no task waiting on the agent for over "
                       f"{_duration(t.stuck_task_seconds.warn)}{waiting}", threshold, "", "bindu")
    oldest = _max(agent, "oldest_seconds")
    per_state = ", ".join(f"{int(r.stuck_tasks)} {r.state}" for r in agent.itertuples())
    return Finding(
        "stuck tasks", _grade(oldest, t.stuck_task_seconds),
        f"{per_state}; oldest for {_duration(oldest)}{waiting}", threshold,
        "the agent lost these tasks (crash or lost worker): check its logs, then fail or retry them",
        "bindu",
    )


def _jsonb_check(sample_percent: float | None) -> Check:
    async def check(d: Diagnostics, t: Thresholds) -> Finding:
        frame = await d.jsonb_sizes(sample_percent=sample_percent)
        threshold = _levels(t.jsonb_value_bytes, _bytes)
        if not len(frame) or _max(frame, "max_bytes") == 0:
            return Finding("JSONB sizes", "ok", "no JSONB values stored", threshold, "", "bindu")
        worst = frame.sort_values("max_bytes", ascending=False).iloc[0]
        largest = float(worst["max_bytes"])
        return Finding(
            "JSONB sizes", _grade(largest, t.jsonb_value_bytes),
            f"largest value {_bytes(largest)} in {worst['table_name']}.{worst['column_name']} "
            f"(average {_bytes(float(worst['avg_bytes']))})", threshold,
            "very large histories or artifacts slow every read of the row: trim history or store big "
            "artifacts elsewhere and keep a reference", "bindu",
        )

    return check


def _checks(jsonb_sample_percent: float | None) -> list[tuple[str, str, Check]]:
    return [
        ("connection usage", "connections", _connection_usage),
        ("long-running queries", "connections", _long_queries),
        ("idle in transaction", "connections", _idle_in_transaction),
        ("blocked sessions", "locks", _blocked),
        ("pool saturation", "pool", _pool),
        ("pg_stat_statements", "queries", _statements),
        ("slow queries", "queries", _slow_queries),
        ("dead rows", "tables", _dead_rows),
        ("table cache hit ratio", "indexes", _cache_check("table")),
        ("index cache hit ratio", "indexes", _cache_check("index")),
        ("invalid indexes", "indexes", _invalid_indexes),
        ("duplicate indexes", "indexes", _duplicate_indexes),
        ("unused indexes", "indexes", _unused_indexes),
        ("declared indexes", "indexes", _declared_indexes),
        ("replication lag", "replication", _replication_lag),
        ("replication slots", "replication", _slots),
        ("migrations", "schema", _migrations),
        ("schema drift", "schema", _drift),
        ("stuck tasks", "bindu", _stuck),
        ("JSONB sizes", "bindu", _jsonb_check(jsonb_sample_percent)),
    ]


def _advice_for(exc: BaseException, diag: Diagnostics) -> str:
    if isinstance(exc, asyncpg.UndefinedTableError):
        return (f"schema {diag.schema!r} has no Bindu tables: pick the schema holding the agent's "
                "tables (schema=...) or run the migrations")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return "grant the monitoring role pg_monitor, USAGE on the schema and SELECT on the Bindu tables"
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ("the statement timeout (or a recovery conflict on a standby) cancelled it: raise "
                "statement_timeout_ms, or sample large tables (jsonb_sample_percent)")
    return "see the server's reason"


async def build_report(
    diag: Diagnostics, thresholds: Thresholds | None = None, *, jsonb_sample_percent: float | None = None
) -> HealthReport:
    """Run every check on an open ``Diagnostics``; a check whose query fails is ``skipped``."""
    limits = thresholds if thresholds is not None else Thresholds()
    if not isinstance(limits, Thresholds):
        raise InvalidTypeError(f"thresholds must be a Thresholds, got {type(limits).__name__}")
    findings = []
    for name, topic, check in _checks(jsonb_sample_percent):
        try:
            findings.append(await check(diag, limits))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = diag.mask(str(exc) or type(exc).__name__)
            findings.append(
                Finding(name, "skipped", f"could not run: {reason}", "-", _advice_for(exc, diag), topic)
            )
    return HealthReport(diag.target, diag.schema, "standby" if diag.is_standby else "primary", findings)


async def health_report(
    target: str | PostgresStorage | Diagnostics,
    *,
    schema: str | None = None,
    thresholds: Thresholds | None = None,
    jsonb_sample_percent: float | None = None,
) -> HealthReport:
    """Open read-only diagnostics of ``target`` (URL, storage, or an open ``Diagnostics``) and
    judge every check against ``thresholds`` (default: the module's table)."""
    if isinstance(target, Diagnostics):
        if schema is not None and schema != target.schema:
            raise InvalidValueError(
                f"schema={schema!r} differs from the Diagnostics' schema {target.schema!r}; "
                "open a Diagnostics for that schema"
            )
        await target.open()
        return await build_report(target, thresholds, jsonb_sample_percent=jsonb_sample_percent)
    async with Diagnostics(target, schema=schema) as diag:
        return await build_report(diag, thresholds, jsonb_sample_percent=jsonb_sample_percent)


__all__ = ["Finding", "HealthReport", "Limit", "Status", "Thresholds", "build_report", "health_report"]
