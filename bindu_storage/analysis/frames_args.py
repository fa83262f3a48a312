"""Checking the arguments of the frame loaders, before anything is read.

``TaskFilters`` holds the task filters every loader accepts (states, context, time window,
metadata containment, owner), validated once; ``matches`` applies them to a ``TaskRecord`` on
the in-memory backend, ``frames_sql`` turns them into a WHERE clause with bound parameters.
Time bounds: ``*_after`` is inclusive, ``*_before`` exclusive; naive datetimes and strings are
read as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pandas as pd

from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.storage import validate as v
from bindu_storage.types import TaskRecord

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: a str Python holds but UTF-8 (and PostgreSQL) cannot."""

TimeLike = datetime | str | pd.Timestamp
"""A time bound: an aware datetime (naive ones and strings are read as UTC)."""


def as_time(value: object, name: str) -> datetime | None:
    """An aware UTC datetime from a time bound, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError:
            raise InvalidValueError(f"{name} is not a date or time: {value!r}") from None
    if not isinstance(value, datetime) or value != value:  # NaT is a datetime that is not equal to itself
        raise InvalidTypeError(f"{name} must be a datetime or an ISO-8601 string, got {value!r}")
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_limit(value: object, name: str = "limit") -> int | None:
    """A non-negative row count, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(f"{name} must be a non-negative integer or None, got {value!r}")
    return value


def as_chunksize(value: object) -> int:
    """A positive chunk size."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"chunksize must be a positive integer, got {value!r}")
    return value


def as_columns(value: object, name: str) -> list[str] | None:
    """A list of dotted column names (without their prefix), or None for all of them."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidTypeError(f"{name} must be a list of key names, got {value!r}")
    names = list(value)
    for item in names:
        if not isinstance(item, str) or not item:
            raise InvalidValueError(f"{name} must hold non-empty key names, got {item!r}")
        if "\x00" in item:  # PostgreSQL text cannot hold NUL, nor UTF-8 a lone surrogate
            raise InvalidValueError(f"{name} holds a key name with a NUL character: {item!r}")
        if _SURROGATE.search(item):
            raise InvalidValueError(f"{name} holds a key name with a lone surrogate (not UTF-8): {item!r}")
    return names


def as_json_filter(value: object, name: str) -> dict[str, Any] | None:
    """The JSON object of a containment filter, or None when it constrains nothing."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"{name} must be a dict (a JSON object), got {type(value).__name__}")
    data = v.json_object(dict(value), name)
    return data or None


def _states(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Collection):
        raise InvalidTypeError(f"states must be a state or a list of states, got {value!r}")
    return tuple(sorted({v.check_state(s, "states") for s in items}))


def _context_ids(value: object) -> tuple[UUID, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str | UUID) else value
    if not isinstance(items, Collection):
        raise InvalidTypeError(f"context_id must be a UUID or a list of UUIDs, got {value!r}")
    return tuple(v.as_uuid(c, "context_id") for c in items)


@dataclass(frozen=True)
class TaskFilters:
    """The validated task filters of a loader call."""

    states: tuple[str, ...] | None = None
    context_ids: tuple[UUID, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    metadata: dict[str, Any] | None = None
    owner_did: str | None = None

    @classmethod
    def of(
        cls,
        *,
        states: str | Collection[str] | None = None,
        context_id: Any = None,
        created_after: TimeLike | None = None,
        created_before: TimeLike | None = None,
        updated_after: TimeLike | None = None,
        updated_before: TimeLike | None = None,
        metadata: Mapping[str, Any] | None = None,
        owner_did: str | None = None,
    ) -> TaskFilters:
        """Validate the filters; raises ``InvalidValueError``/``InvalidTypeError`` naming the bad one."""
        return cls(
            states=_states(states),
            context_ids=_context_ids(context_id),
            created_after=as_time(created_after, "created_after"),
            created_before=as_time(created_before, "created_before"),
            updated_after=as_time(updated_after, "updated_after"),
            updated_before=as_time(updated_before, "updated_before"),
            metadata=as_json_filter(metadata, "metadata"),
            owner_did=v.check_optional_str(owner_did, "owner_did"),
        )

    def matches(self, record: TaskRecord, contains: Any) -> bool:
        """Whether a task record passes (``contains`` is the JSONB ``@>`` rule)."""
        task = record["task"]
        if self.states is not None and task["status"]["state"] not in self.states:
            return False
        if self.context_ids is not None and task["context_id"] not in self.context_ids:
            return False
        if not within(record["created_at"], self.created_after, self.created_before):
            return False
        if not within(record["updated_at"], self.updated_after, self.updated_before):
            return False
        if self.owner_did is not None and record["owner_did"] != self.owner_did:
            return False
        return self.metadata is None or contains(task.get("metadata") or {}, self.metadata)


def within(value: datetime, after: datetime | None, before: datetime | None) -> bool:
    """Whether ``value`` lies in the window [after, before)."""
    return (after is None or value >= after) and (before is None or value < before)


def window(after: object, before: object, names: tuple[str, str]) -> tuple[datetime | None, datetime | None]:
    """A validated (inclusive start, exclusive end) pair."""
    return as_time(after, names[0]), as_time(before, names[1])

