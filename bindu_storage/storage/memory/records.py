"""Records for analysis in memory: the read API (copies) and the read-only snapshots (shared)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import TaskRow, window
from bindu_storage.types import ContextRecord, FeedbackRecord, TaskEvent, TaskRecord


class MemoryRecords(MemoryState):
    """``task_records`` and friends (copied), ``task_snapshot`` and ``feedback_snapshot`` (shared)."""

    async def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        rows: Iterable[TaskRow] = self._tasks.values()
        if since is not None:
            rows = (r for r in rows if r.updated_at >= since)
        return [
            {"task": r.to_task(), "owner_did": r.owner_did,
             "created_at": r.created_at, "updated_at": r.updated_at}
            for r in window(rows, limit, offset)
        ]

    async def context_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        return [
            {"context_id": c.id, "context_data": clone(c.context_data),
             "message_history": clone(c.message_history), "owner_did": c.owner_did,
             "created_at": c.created_at, "updated_at": c.updated_at}
            for c in window(self._contexts.values(), limit, offset)
        ]

    async def feedback_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[FeedbackRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        return [
            {**f, "feedback_data": clone(f["feedback_data"])}  # type: ignore[typeddict-item]
            for f in window(self._feedback.values(), limit, offset)
        ]

    async def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        events: Iterable[dict[str, Any]] = self._events.values()
        if task_id is not None:
            _, row = self._task_of(task_id)
            events = (self._events[i] for i in row.event_ids) if row is not None else ()
        state_changes = (e for e in events if e["from_state"] != e["to_state"])
        return [
            {k: e[k] for k in ("id", "task_id", "from_state", "to_state", "at")}  # type: ignore[misc]
            for e in window(state_changes, limit, offset)
        ]

    # --- read-only snapshots (storage.read.RecordSnapshots) -----------------------------------

    def task_snapshot(
        self, since: datetime | None = None, *, task_ids: Iterable[UUID] | None = None
    ) -> list[TaskRecord]:
        """Every task record (updated at or after ``since``), oldest first, without copies; with
        ``task_ids``, only those tasks (unknown ids skipped), in the order given.

        The records share the stored values: read them, never change them. A write replaces a
        task's history, artifacts or metadata instead of changing it in place, so the records
        keep showing the moment of the call while the storage moves on.
        """
        self._ensure_open()
        rows: Iterable[TaskRow] = self._tasks.values()
        if task_ids is not None:
            tasks = self._tasks
            rows = (row for tid in task_ids if (row := tasks.get(tid)) is not None)
        return [
            {"task": r.shared_task(), "owner_did": r.owner_did,
             "created_at": r.created_at, "updated_at": r.updated_at}
            for r in rows
            if since is None or r.updated_at >= since
        ]

    def feedback_snapshot(self) -> list[FeedbackRecord]:
        """Every feedback record, oldest first, sharing the stored values: never change them."""
        self._ensure_open()
        return list(self._feedback.values())
