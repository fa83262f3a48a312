"""The health report: every diagnostic judged against explicit thresholds, as findings.

- :mod:`.model`: ``Thresholds`` (and the table of their defaults), ``Finding``, ``HealthReport``
- :mod:`.checks`: the checks, each registered once with its name, topic and thresholds
- :mod:`.build`: running the checks on an open ``Diagnostics`` into a report
- :mod:`.render`: the report as text, HTML and JSON

``health_report`` itself (open, check, close) is in ``bindu_storage.analysis.diagnostics``.
"""

from bindu_storage.analysis.diagnostics.report.build import build_report
from bindu_storage.analysis.diagnostics.report.checks import CHECKS, Check, check
from bindu_storage.analysis.diagnostics.report.model import (
    Finding,
    HealthReport,
    Limit,
    Status,
    Thresholds,
    Verdict,
)

__all__ = [
    "CHECKS", "Check", "Finding", "HealthReport", "Limit", "Status", "Thresholds", "Verdict", "build_report",
    "check",
]
