"""Analysis over any storage: DataFrames, JSONB containment filters, read-only diagnostics.

The public API, importable from here::

    from bindu_storage.analysis import tasks_frame, find_tasks, health_report, open_storage

* frames (``analysis.frames``): ``tasks_frame``, ``messages_frame``, ``artifacts_frame``,
  ``contexts_frame``, ``feedback_frame``, ``events_frame``, ``webhooks_frame`` (a DataFrame, or
  chunks with ``chunksize=``), ``list_schemas``;
* filters (``analysis.filters``): ``find_tasks``, ``find_feedback``, ``find_contexts``, and
  ``jsonb_contains`` (PostgreSQL's ``@>`` in Python, ``analysis.jsonb``);
* diagnostics (``analysis.diagnostics``): ``Diagnostics``, ``health_report``;
* notebooks (``analysis.notebook``): ``open_storage``, the same API used synchronously.

The async functions are primary (``await tasks_frame(storage)`` works in Jupyter). Names are
loaded on first use, so ``import bindu_storage.analysis`` loads neither pandas nor asyncpg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers and IDEs (``X as X``: re-exported)
    from bindu_storage.analysis.diagnostics import Diagnostics as Diagnostics
    from bindu_storage.analysis.diagnostics import health_report as health_report
    from bindu_storage.analysis.filters import find_contexts as find_contexts
    from bindu_storage.analysis.filters import find_feedback as find_feedback
    from bindu_storage.analysis.filters import find_tasks as find_tasks
    from bindu_storage.analysis.frames import artifacts_frame as artifacts_frame
    from bindu_storage.analysis.frames import contexts_frame as contexts_frame
    from bindu_storage.analysis.frames import events_frame as events_frame
    from bindu_storage.analysis.frames import feedback_frame as feedback_frame
    from bindu_storage.analysis.frames import list_schemas as list_schemas
    from bindu_storage.analysis.frames import messages_frame as messages_frame
    from bindu_storage.analysis.frames import tasks_frame as tasks_frame
    from bindu_storage.analysis.frames import webhooks_frame as webhooks_frame
    from bindu_storage.analysis.jsonb import jsonb_contains as jsonb_contains
    from bindu_storage.analysis.notebook import open_storage as open_storage

_HOMES = {
    "tasks_frame": "frames", "messages_frame": "frames", "artifacts_frame": "frames",
    "contexts_frame": "frames", "feedback_frame": "frames", "events_frame": "frames",
    "webhooks_frame": "frames", "list_schemas": "frames",
    "find_tasks": "filters", "find_feedback": "filters", "find_contexts": "filters",
    "jsonb_contains": "jsonb",
    "Diagnostics": "diagnostics", "health_report": "diagnostics",
    "open_storage": "notebook",
}
"""Each public name and the module of ``bindu_storage.analysis`` it lives in."""

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
