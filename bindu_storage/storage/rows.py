"""Turning stored rows into the A2A task shape, identically for every backend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bindu_storage.types import Task


def iso(ts: datetime) -> str:
    """The ISO-8601 UTC form of ``status.timestamp`` (always with microseconds)."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def task_from_row(row: Mapping[str, Any]) -> Task:
    """Build a task from a row holding id, context_id, state, state_timestamp and the JSONB
    (and ``status_message``, when the row has it)."""
    status: dict[str, Any] = {"state": row["state"], "timestamp": iso(row["state_timestamp"])}
    message = row.get("status_message")  # rows without the column (analysis reads) have none
    if message is not None:
        status["message"] = message
    return {
        "id": row["id"],
        "context_id": row["context_id"],
        "kind": "task",
        "status": status,  # type: ignore[typeddict-item]
        "history": row["history"] if row["history"] is not None else [],
        "artifacts": row["artifacts"] if row["artifacts"] is not None else [],
        "metadata": row["metadata"] if row["metadata"] is not None else {},
    }
