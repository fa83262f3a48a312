"""Plain aligned tables for the terminal: headers, a rule, rows; numbers right-aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt_int(n: int | float) -> str:
    """``12,345``."""
    return f"{int(n):,}"


def fmt_seconds(seconds: float | None) -> str:
    """A duration in the unit a person reads best (``850 ms``, ``12.3 s``, ``4.1 min``, ``2.0 h``)."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 2, right: Sequence[int] | None = None
) -> str:
    """The rows under their headers, columns aligned.

    Columns whose every cell starts with a digit (counts, durations, percentages) align right,
    or exactly the columns ``right`` names.
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if right is not None:
        numeric = [i in right for i in range(len(headers))]
    else:
        numeric = [bool(cells) and all(row[i][:1].isdigit() or row[i] == "-" for row in cells)
                   for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return " " * indent + "  ".join(parts).rstrip()

    out = [line(list(headers)), " " * indent + "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)
