"""The records ``generate`` returns and ``load`` reports."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from bindu_storage.types import ContextRecord, TaskRecord

DEFAULT_START = datetime(2025, 3, 3, tzinfo=UTC)
"""Where generated timelines start unless told otherwise (a Monday, midnight UTC)."""




class SyntheticEvent(TypedDict):
    """One state change of a generated task (``from_state`` is None for the creation)."""

    task_id: uuid.UUID
    from_state: str | None
    to_state: str
    at: datetime


class SyntheticFeedback(TypedDict):
    """One generated feedback entry."""

    task_id: uuid.UUID
    feedback_data: dict[str, Any]
    created_at: datetime


@dataclass
class SyntheticData:
    """Generated records, each list in the order the storage would have created them.

    ``tasks`` and ``contexts`` have the shapes of ``Storage.task_records()`` and
    ``Storage.context_records()``; ``events`` and ``feedback`` those of ``task_events()`` and
    ``feedback_records()`` without the ids the storage assigns. The records share message
    objects between a task's history and its context's history: treat them as read-only.
    """

    seed: int
    start: datetime
    contexts: list[ContextRecord] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    events: list[SyntheticEvent] = field(default_factory=list)
    feedback: list[SyntheticFeedback] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"SyntheticData(seed={self.seed}, tasks={len(self.tasks)}, contexts={len(self.contexts)}, "
            f"events={len(self.events)}, feedback={len(self.feedback)})"
        )

    @property
    def rows(self) -> int:
        """How many rows a bulk load writes."""
        return len(self.contexts) + len(self.tasks) + len(self.events) + len(self.feedback)


@dataclass(frozen=True)
class LoadResult:
    """What ``load`` wrote, how, and how long it took."""

    method: str  # "copy" or "replay"
    contexts: int
    tasks: int
    events: int
    feedback: int
    seconds: float

    @property
    def tasks_per_second(self) -> float:
        """Loaded tasks per second of wall time."""
        return self.tasks / self.seconds if self.seconds > 0 else math.inf
