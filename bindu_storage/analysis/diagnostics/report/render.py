"""Showing a health report: plain text for a terminal, HTML for a notebook, JSON for machines.

The functions take the report's heading and its findings (worst first) as the report gives
them, so this module knows nothing of how a report is built.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any, Protocol

COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "critical": "#cf222e", "skipped": "#6e7781"}
"""The badge colour of each status."""


class Shown(Protocol):
    """What rendering reads of a finding."""

    @property
    def check(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def seen(self) -> str: ...
    @property
    def threshold(self) -> str: ...
    @property
    def advice(self) -> str: ...


def as_text(heading: str, findings: Sequence[Shown]) -> str:
    """The heading, then one line per finding and the advice under each problem."""
    width = max((len(f.check) for f in findings), default=0)
    lines = [heading]
    for f in findings:
        lines.append(f"  {f.status.upper():<8}  {f.check:<{width}}  {f.seen}  [{f.threshold}]")
        if f.advice and f.status != "ok":
            lines.append(f"  {'':<8}  {'':<{width}}  -> {f.advice}")
    return "\n".join(lines)


def _badge(status: str) -> str:
    return (f'<span style="color:#fff;background:{COLOURS[status]};padding:1px 6px;'
            f'border-radius:3px;font-weight:600">{html.escape(status.upper())}</span>')


def _cells(f: Shown) -> str:
    advice = f.advice if f.status != "ok" else ""
    texts = (f.check, f.seen, f.threshold, advice)
    return f"<td>{_badge(f.status)}</td>" + "".join(f"<td>{html.escape(t)}</td>" for t in texts)


def as_html(status: str, heading: str, findings: Sequence[Shown]) -> str:
    """A status badge with the heading, and a table of the findings."""
    rows = "".join(f"<tr>{_cells(f)}</tr>" for f in findings)
    return (
        f'<div class="bindu-health-report"><p>{_badge(status)} {html.escape(heading)}</p>'
        '<table><thead><tr><th>status</th><th>check</th><th>seen</th><th>threshold</th>'
        f"<th>advice</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def as_json(document: dict[str, Any], indent: int | None = 2) -> str:
    """The report's dict as JSON (non-ASCII kept as is)."""
    return json.dumps(document, indent=indent, ensure_ascii=False)
