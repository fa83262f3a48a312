"""Feedback in memory: store a task's feedback, read it back."""

from __future__ import annotations

from typing import Any

from bindu_storage.errors import TaskNotFoundError
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import TaskAttachments


class MemoryFeedback(MemoryState):
    """The feedback operations of the ``Storage`` contract, on the in-memory tables."""

    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(feedback_data, "feedback_data")
        if tid not in self._tasks:
            raise TaskNotFoundError(tid)
        fid = next(self._feedback_ids)
        self._feedback[fid] = {"id": fid, "task_id": tid, "feedback_data": data, "created_at": self.clock()}
        self._attached.setdefault(tid, TaskAttachments()).feedback_ids.append(fid)

    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        attached = self._attached.get(tid)
        found = [clone(self._feedback[i]["feedback_data"]) for i in attached.feedback_ids] if attached else []
        return found or None
