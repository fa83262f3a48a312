"""How the checks grade a measure against a ``Limit`` and phrase it for people."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bindu_storage.analysis.diagnostics.report.model import GiB, Limit, MiB, Status


def duration(seconds: float) -> str:
    """``42 s``, ``5 min``, ``1.5 h``, ``2.0 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 MiB``, ``1.2 GiB``."""
    for unit, bytes_in_unit in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= bytes_in_unit:
            return f"{n / bytes_in_unit:.1f} {unit}"
    return f"{n:.0f} B"


def percent(value: float) -> str:
    """``12.5 %``."""
    return f"{value:g} %"


def grade(value: float, limit: Limit, *, low_is_bad: bool = False) -> Status:
    """``ok``, ``warn`` or ``critical`` for ``value`` against ``limit``."""
    if low_is_bad:
        return "critical" if value < limit.critical else "warn" if value < limit.warn else "ok"
    return "critical" if value >= limit.critical else "warn" if value >= limit.warn else "ok"


def levels(limit: Limit, fmt: Callable[[float], str], *, low_is_bad: bool = False) -> str:
    """``warn >= 5 min, critical >= 30 min``: the threshold as a finding shows it."""
    sign = "<" if low_is_bad else ">="
    return f"warn {sign} {fmt(limit.warn)}, critical {sign} {fmt(limit.critical)}"


def largest(frame: pd.DataFrame, column: str) -> float:
    """The largest number in ``column`` (0 when there is none)."""
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.max()) if len(values) else 0.0
