"""The in-memory backend's tables: one record type per table, and the windowing of a listing.

``InMemoryStorage`` keeps a dict of ``TaskRow`` and one of ``ContextRow`` (insertion order is
creation order); the rows are its private state. A task's history, artifacts, metadata and
status message are never changed in place: a write replaces them (``TaskRow.replace``), so
``TaskRow.shared_task`` can lend them to the read-only snapshots without copies.

``TaskRow.to_task`` hands out a copy. The copy is made by decoding the row's cached JSON text
(``orjson``, in C; about twice as fast as copying dicts and lists in Python), written once per
change of those values rather than once per read; a value orjson cannot write exactly (an integer
beyond 64 bits, a ``str`` subclass) is copied by ``isolation.clone`` instead. The rows use
``__slots__`` and keep their feedback and event ids themselves, so each stored task costs the
cyclic garbage collector as few container objects as possible.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from bindu_storage.storage.isolation import clone
from bindu_storage.storage.rows import iso
from bindu_storage.types import Task, TaskStatus

_NOT_JSON = b""
"""The cached JSON of a ``TaskRow`` when orjson cannot write the values exactly (then copies
go through ``clone``)."""

_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Anything but exact JSON-native values reaches ``_refuse`` (validated values are exact, but a
``str`` subclass passes validation unchanged: ``clone`` keeps it, so must the copies)."""


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _json(value: Any) -> bytes:
    """The JSON text a copy of ``value`` is decoded from, or ``_NOT_JSON``."""
    try:
        return orjson.dumps(value, default=_refuse, option=_EXACT)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a str subclass
        return _NOT_JSON


def utc_now() -> datetime:
    """The wall clock, an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class TaskRow:
    """A stored task, with its owner, timestamps, feedback ids and event ids.

    ``history``, ``artifacts``, ``metadata`` and ``status_message`` are read freely but written
    only through ``replace``, which drops the cached JSON of the copies.
    """

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
    event_ids: list[int] = field(default_factory=list)
    feedback_ids: list[int] | None = None  # a list from the first feedback on
    _timestamp_of: datetime | None = field(default=None, repr=False)
    _timestamp_text: str = field(default="", repr=False)
    _history_json: bytes | None = field(default=None, repr=False)  # None: not written yet
    _rest_json: bytes | None = field(default=None, repr=False)  # artifacts, metadata, message

    def replace(
        self,
        *,
        history: list[dict[str, Any]] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Replace the given values (never change them in place), dropping their cached JSON."""
        if history is not None:
            self.history = history
            self._history_json = None
        if artifacts is not None:
            self.artifacts = artifacts
            self._rest_json = None
        if metadata is not None:
            self.metadata = metadata
            self._rest_json = None

    def set_status_message(self, message: dict[str, Any] | None) -> None:
        """Replace the status message (dropping the cached JSON when it changes)."""
        if message is not self.status_message:
            self.status_message = message
            self._rest_json = None

    def to_task(self, history_length: int | None = None) -> Task:
        """A copy in the A2A task shape, with only the last ``history_length`` messages if given."""
        stored = self.history
        if history_length is not None and history_length < len(stored):
            history = clone(stored[len(stored) - history_length:])
        else:
            text = self._history_json
            if text is None:
                text = self._history_json = _json(stored)
            history = clone(stored) if text is _NOT_JSON else orjson.loads(text)
        text = self._rest_json
        if text is None:
            text = self._rest_json = _json((self.artifacts, self.metadata, self.status_message))
        if text is _NOT_JSON:
            artifacts, metadata = clone(self.artifacts), clone(self.metadata)
            message = clone(self.status_message)
        else:
            artifacts, metadata, message = orjson.loads(text)
        return {
            "id": self.id,
            "context_id": self.context_id,
            "kind": "task",
            "status": self._status(message),
            "history": history,
            "artifacts": artifacts,
            "metadata": metadata,
        }

    def shared_task(self) -> Task:
        """The A2A task shape sharing the stored values (for read-only snapshots: no copies)."""
        return {
            "id": self.id,
            "context_id": self.context_id,
            "kind": "task",
            "status": self._status(self.status_message),
            "history": self.history,  # type: ignore[typeddict-item]
            "artifacts": self.artifacts,  # type: ignore[typeddict-item]
            "metadata": self.metadata,
        }

    def _status(self, message: dict[str, Any] | None) -> TaskStatus:
        """A2A's ``TaskStatus``: the state, its timestamp and ``message`` when there is one."""
        status: dict[str, Any] = {"state": self.state, "timestamp": self.timestamp_text()}
        if message is not None:
            status["message"] = message
        return status  # type: ignore[return-value]

    def timestamp_text(self) -> str:
        """``status.timestamp``: ``state_timestamp`` in ISO form, formatted once per change."""
        if self._timestamp_of is not self.state_timestamp:
            self._timestamp_text = iso(self.state_timestamp)
            self._timestamp_of = self.state_timestamp
        return self._timestamp_text


@dataclass(slots=True, eq=False)
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
