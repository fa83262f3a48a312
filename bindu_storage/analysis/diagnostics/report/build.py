"""Running every registered check on an open ``Diagnostics`` into a ``HealthReport``."""

from __future__ import annotations

from typing import Any

import asyncpg

from bindu_storage.analysis.diagnostics.report.checks import CHECKS, Check
from bindu_storage.analysis.diagnostics.report.model import Finding, HealthReport, Thresholds
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.errors import InvalidTypeError


def _advice_for(exc: BaseException, diag: Session) -> str:
    if isinstance(exc, asyncpg.UndefinedTableError):
        return (f"schema {diag.schema!r} has no Bindu tables: pick the schema holding the agent's "
                "tables (schema=...) or run the migrations")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return "grant the monitoring role pg_monitor, USAGE on the schema and SELECT on the Bindu tables"
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ("the statement timeout (or a recovery conflict on a standby) cancelled it: raise "
                "statement_timeout_ms, or sample large tables (jsonb_sample_percent)")
    return "see the server's reason"


async def _finding(registered: Check, diag: Session, limits: Thresholds, options: dict[str, Any]) -> Finding:
    thresholds = [getattr(limits, name) for name in registered.thresholds]
    keywords = {name: options[name] for name in registered.options}
    try:
        verdict = await registered.run(diag, *thresholds, **keywords)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = diag.mask(str(exc) or type(exc).__name__)
        return Finding(registered.name, "skipped", f"could not run: {reason}", "-", _advice_for(exc, diag),
                       registered.topic)
    return Finding(registered.name, *verdict, topic=registered.topic)


async def build_report(
    diag: Session, thresholds: Thresholds | None = None, *, jsonb_sample_percent: float | None = None
) -> HealthReport:
    """Run every check on an open ``Diagnostics`` (every topic); a check whose query fails is
    ``skipped``."""
    limits = thresholds if thresholds is not None else Thresholds()
    if not isinstance(limits, Thresholds):
        raise InvalidTypeError(f"thresholds must be a Thresholds, got {type(limits).__name__}")
    options = {"jsonb_sample_percent": jsonb_sample_percent}
    findings = [await _finding(registered, diag, limits, options) for registered in CHECKS]
    return HealthReport(diag.target, diag.schema, "standby" if diag.is_standby else "primary", findings)
