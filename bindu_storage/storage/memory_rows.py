"""The in-memory backend's tables: one record type per table, and the windowing of a listing.

``InMemoryStorage`` keeps a dict of ``TaskRow`` and one of ``ContextRow`` (insertion order is
creation order), with each task's feedback and event ids in a ``TaskAttachments``; the rows are
its private state, never handed out (``TaskRow.to_task`` copies).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from bindu_storage.storage.isolation import clone
from bindu_storage.storage.rows import iso
from bindu_storage.types import Task


def utc_now() -> datetime:
    """The wall clock, an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


@dataclass
class TaskRow:
    """A stored task, with its owner and timestamps."""

    id: UUID
    context_id: UUID
    state: str
    state_timestamp: datetime
    history: list[dict[str, Any]]
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    owner_did: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def to_task(self, history_length: int | None = None) -> Task:
        """A copy in the A2A task shape, with only the last ``history_length`` messages if given."""
        history = self.history if history_length is None else self.history[
            len(self.history) - min(history_length, len(self.history)):
        ]
        return {
            "id": self.id,
            "context_id": self.context_id,
            "kind": "task",
            "status": {"state": self.state, "timestamp": iso(self.state_timestamp)},  # type: ignore[typeddict-item]
            "history": clone(history),
            "artifacts": clone(self.artifacts),
            "metadata": clone(self.metadata),
        }


@dataclass
class TaskAttachments:
    """Ids of a task's feedback and events, so per-task reads do not scan every record."""

    feedback_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)


@dataclass
class ContextRow:
    """A stored context: owner, data, message history and its task ids (oldest first)."""

    id: UUID
    owner_did: str | None
    context_data: dict[str, Any] = field(default_factory=dict)
    message_history: list[dict[str, Any]] = field(default_factory=list)
    task_ids: list[UUID] = field(default_factory=list)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)


def window(items: Iterable[Any], length: int | None, offset: int) -> list[Any]:
    """The ``length`` items (all when None) after skipping ``offset``."""
    stop = None if length is None else offset + length
    return list(itertools.islice(items, offset, stop))


@dataclass
class PushConfigRow:
    """A stored push config: the config as stored (secrets sealed when ``encrypted``)."""

    seq: int
    config: dict[str, Any]
    encrypted: bool
    created_at: datetime
    updated_at: datetime
