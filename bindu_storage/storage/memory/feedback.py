"""Feedback in memory: store a task's feedback, read it back."""

from __future__ import annotations

from typing import Any

from bindu_storage.errors import TaskNotFoundError
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState


class MemoryFeedback(MemoryState):
    """The feedback operations of the ``Storage`` contract, on the in-memory tables."""

    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        self._ensure_open()
        tid, row = self._task_of(task_id)
        data = v.json_object(feedback_data, "feedback_data")
        if row is None:
            raise TaskNotFoundError(tid)
        fid = next(self._feedback_ids)
        self._feedback[fid] = {"id": fid, "task_id": tid, "feedback_data": data, "created_at": self.clock()}
        if row.feedback_ids is None:
            row.feedback_ids = [fid]
        else:
            row.feedback_ids.append(fid)

    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        self._ensure_open()
        _, row = self._task_of(task_id)
        if row is None or not row.feedback_ids:
            return None
        feedback = self._feedback
        return [clone(feedback[i]["feedback_data"]) for i in row.feedback_ids]
