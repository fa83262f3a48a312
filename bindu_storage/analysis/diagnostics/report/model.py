"""What a health report is made of: thresholds, findings, and the report itself.

A finding says what was checked, its status (``ok``, ``warn``, ``critical``, or ``skipped``
when it cannot be judged here, e.g. vacuum figures on a standby), what was seen, the threshold,
and what to do. The report's status is the worst finding (skipped ones do not count) and
``exit_code`` maps it to 0 (ok), 1 (warn), 2 (critical) for scripts and cron jobs. It shows as a
table in a notebook (``_repr_html_``, naming only the database: no host or user in a shared
notebook), as plain text in a terminal (``str``, with the full password-free target), and as a
dict or JSON for machines (the rendering is in :mod:`.render`).

Default thresholds (change them with :class:`Thresholds`; the checks are in :mod:`.checks`):

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
data retention         days since the oldest task was last updated          >= 90 days   >= 365 days
=====================  ===================================================  ===========  ============
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import pandas as pd

from bindu_storage.analysis.diagnostics.report import render
from bindu_storage.errors import InvalidValueError

Status = Literal["ok", "warn", "critical", "skipped"]
"""The verdict of one finding."""

RANK: dict[str, int] = {"skipped": -1, "ok": 0, "warn": 1, "critical": 2}
"""How bad each status is (skipped counts for nothing)."""

MiB = 1024**2
GiB = 1024**3


class Limit(NamedTuple):
    """A warn and a critical level of one measure."""

    warn: float
    critical: float


_CONNECTION_USAGE_PERCENT = Limit(70, 90)
_LONG_QUERY_SECONDS = Limit(300, 1800)
_IDLE_IN_TRANSACTION_SECONDS = Limit(60, 600)
_LOCK_WAIT_SECONDS = Limit(10, 60)
_POOL_SATURATION_PERCENT = Limit(80, 100)
_SLOW_QUERY_MEAN_MS = Limit(100, 1000)
_DEAD_ROWS_PERCENT = Limit(20, 50)
_CACHE_HIT_PERCENT = Limit(99, 95)
_REPLICATION_LAG_SECONDS = Limit(30, 300)
_SLOT_RETAINED_BYTES = Limit(GiB, 10 * GiB)
_STUCK_TASK_SECONDS = Limit(900, 3600)
_JSONB_VALUE_BYTES = Limit(MiB, 16 * MiB)
_RETENTION_DAYS = Limit(90, 365)


@dataclass(frozen=True)
class Thresholds:
    """The levels the health report judges by; the defaults are the module's table."""

    connection_usage_percent: Limit = _CONNECTION_USAGE_PERCENT
    long_query_seconds: Limit = _LONG_QUERY_SECONDS
    idle_in_transaction_seconds: Limit = _IDLE_IN_TRANSACTION_SECONDS
    lock_wait_seconds: Limit = _LOCK_WAIT_SECONDS
    pool_saturation_percent: Limit = _POOL_SATURATION_PERCENT
    slow_query_mean_ms: Limit = _SLOW_QUERY_MEAN_MS
    slow_query_min_calls: int = 100
    dead_rows_percent: Limit = _DEAD_ROWS_PERCENT
    dead_rows_min_rows: int = 1000
    cache_hit_percent: Limit = _CACHE_HIT_PERCENT
    cache_min_blocks: int = 1000
    unused_index_min_bytes: int = MiB
    replication_lag_seconds: Limit = _REPLICATION_LAG_SECONDS
    slot_retained_bytes: Limit = _SLOT_RETAINED_BYTES
    stuck_task_seconds: Limit = _STUCK_TASK_SECONDS
    jsonb_value_bytes: Limit = _JSONB_VALUE_BYTES
    retention_days: Limit = _RETENTION_DAYS

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


class Verdict(NamedTuple):
    """What one check concludes; the report adds the check's registered name and topic."""

    status: Status
    seen: str
    threshold: str
    advice: str = ""


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
        worst = max((RANK[f.status] for f in self.findings), default=0)
        return ("ok", "warn", "critical")[max(worst, 0)]

    @property
    def exit_code(self) -> int:
        """0 when ok, 1 on a warning, 2 when critical."""
        return RANK[self.status]

    @property
    def database(self) -> str:
        """The database name alone (what the notebook view shows: no host, no user)."""
        return self.target.rpartition("/")[2] or self.target

    def counts(self) -> dict[str, int]:
        """How many findings have each status."""
        return {s: sum(f.status == s for f in self.findings) for s in ("ok", "warn", "critical", "skipped")}

    def worst_first(self) -> list[Finding]:
        """The findings, the worst first (in registration order within a status)."""
        return sorted(self.findings, key=lambda f: -RANK[f.status])

    def heading(self, where: str, *, status: bool = True) -> str:
        """One line: the status, ``where``, the schema and role, the counts and the time."""
        counts = self.counts()
        return (
            (f"{self.status.upper()}: " if status else "") + f"{where}, schema {self.schema} ({self.role}); "
            f"{counts['critical']} critical, {counts['warn']} warn, {counts['ok']} ok, "
            f"{counts['skipped']} skipped; {self.generated_at:%Y-%m-%d %H:%M:%S} UTC"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "target": self.target, "schema": self.schema, "role": self.role,
            "generated_at": self.generated_at.isoformat(), "status": self.status,
            "exit_code": self.exit_code, "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return render.as_json(self.to_dict(), indent)

    def to_frame(self) -> pd.DataFrame:
        """One row per finding."""
        columns = [f.name for f in fields(Finding)]
        return pd.DataFrame([asdict(f) for f in self.findings], columns=columns).astype("str")

    def to_text(self) -> str:
        """The report for a terminal: the worst findings first, advice under each problem."""
        return render.as_text(self.heading(self.target), self.worst_first())

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (f"<HealthReport {self.status} {self.target} schema={self.schema!r} "
                f"findings={len(self.findings)}>")

    def _repr_html_(self) -> str:
        heading = self.heading(f"database {self.database}", status=False)
        return render.as_html(self.status, heading, self.worst_first())
