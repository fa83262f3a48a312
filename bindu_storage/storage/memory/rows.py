"""The in-memory backend's tables: one record type per table, and the windowing of a listing.

``InMemoryStorage`` keeps a dict of ``TaskRow`` and one of ``ContextRow`` (insertion order is
creation order), with each task's feedback and event ids in a ``TaskAttachments``; the rows are
its private state: ``TaskRow.to_task`` copies; ``TaskRow.shared_task`` shares the stored values
for the read-only snapshots, which a write replaces rather than changes in place.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from bindu_storage.storage.isolation import clone
from bindu_storage.storage.rows import iso
from bindu_storage.types import Task, TaskStatus


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
    status_message: dict[str, Any] | None = None
    _timestamp_of: datetime | None = field(default=None, repr=False, compare=False)
    _timestamp_text: str = field(default="", repr=False, compare=False)

    def to_task(self, history_length: int | None = None) -> Task:
        """A copy in the A2A task shape, with only the last ``history_length`` messages if given."""
        history = self.history if history_length is None else self.history[
            len(self.history) - min(history_length, len(self.history)):
        ]
        return {
            "id": self.id,
            "context_id": self.context_id,
            "kind": "task",
            "status": self.status(clone),
            "history": clone(history),
            "artifacts": clone(self.artifacts),
            "metadata": clone(self.metadata),
        }

    def shared_task(self) -> Task:
        """The A2A task shape sharing the stored values (for read-only snapshots: no copies)."""
        return {
            "id": self.id,
            "context_id": self.context_id,
            "kind": "task",
            "status": self.status(lambda value: value),
            "history": self.history,  # type: ignore[typeddict-item]
            "artifacts": self.artifacts,  # type: ignore[typeddict-item]
            "metadata": self.metadata,
        }

    def status(self, copy: Callable[[Any], Any]) -> TaskStatus:
        """A2A's ``TaskStatus``: the state, its timestamp and the status message if any."""
        status: dict[str, Any] = {"state": self.state, "timestamp": self.timestamp_text()}
        if self.status_message is not None:
            status["message"] = copy(self.status_message)
        return status  # type: ignore[return-value]

    def timestamp_text(self) -> str:
        """``status.timestamp``: ``state_timestamp`` in ISO form, formatted once per change."""
        if self._timestamp_of is not self.state_timestamp:
            self._timestamp_text = iso(self.state_timestamp)
            self._timestamp_of = self.state_timestamp
        return self._timestamp_text


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
