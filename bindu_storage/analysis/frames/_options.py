"""The arguments of the frames, declared once and checked at the call, before anything is read.

``TaskFilterArgs`` is the task filter block every frame takes (the filters apply to the task a
row belongs to), ``ReadArgs`` the reading options every frame takes; each frame function adds
its own few arguments and types ``**options`` with them, so the block is written once and still
typed and documented keyword by keyword. ``FrameOptions.of`` checks a call's options:
``TaskFilters`` holds the validated filters (``matches`` applies them to a ``TaskRecord`` on the
records path, ``_pg.statements`` turns them into a WHERE clause with bound parameters).
Time bounds: ``*_after`` is inclusive, ``*_before`` exclusive; naive datetimes and strings are
read as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID

import pandas as pd

from bindu_storage.analysis.dtypes import DtypeBackend, check_dtype_backend
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


def as_chunksize(value: object) -> int | None:
    """A positive chunk size, or None (one frame)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"chunksize must be a positive integer or None, got {value!r}")
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


def as_bool(value: object, name: str) -> bool:
    """``value`` when it is True or False."""
    if not isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be True or False, got {value!r}")
    return value


# --- the keyword arguments every frame takes ---------------------------------------------------


class TaskFilterArgs(TypedDict, total=False):
    """The task filters of every frame but ``contexts_frame``; a row is kept when its task passes."""

    states: str | Collection[str] | None
    """A task state or several (``"failed"``, ``["completed", "failed"]``)."""
    context_id: Any
    """A context id (UUID or its string) or several."""
    created_after: TimeLike | None
    """Tasks created at or after this time (naive times and strings are UTC)."""
    created_before: TimeLike | None
    """Tasks created before this time."""
    updated_after: TimeLike | None
    """Tasks last updated at or after this time."""
    updated_before: TimeLike | None
    """Tasks last updated before this time."""
    metadata: Mapping[str, Any] | None
    """A JSON object the task's metadata contains (PostgreSQL's ``@>``)."""
    owner_did: str | None
    """The DID owning the task."""


class ReadArgs(TypedDict, total=False):
    """How every frame reads, besides ``chunksize``."""

    limit: int | None
    """At most this many rows (the oldest first)."""
    schema: str | None
    """The PostgreSQL schema to read (default: the storage's, or ``public`` for a URL)."""
    columns: Sequence[str] | None
    """The columns to return, in this order (fixed names or flattened ``prefix.key`` names)."""
    dtype_backend: DtypeBackend | None
    """``None`` (the default dtypes), ``"numpy_nullable"`` or ``"pyarrow"``."""
    progress: bool
    """A progress bar while reading chunks (``chunksize`` given)."""


class FrameArgs(TaskFilterArgs, ReadArgs, total=False):
    """The keyword arguments every task-scoped frame takes."""


class ContextFrameArgs(ReadArgs, total=False):
    """The keyword arguments of ``contexts_frame``: filters on the context itself."""

    context_id: Any
    """A context id or several."""
    created_after: TimeLike | None
    """Contexts created at or after this time."""
    created_before: TimeLike | None
    """Contexts created before this time."""
    updated_after: TimeLike | None
    """Contexts last updated at or after this time."""
    updated_before: TimeLike | None
    """Contexts last updated before this time."""
    context_data: Mapping[str, Any] | None
    """A JSON object the context data contains (``@>``)."""
    owner_did: str | None
    """The DID owning the context."""


_READ_KEYS = ReadArgs.__required_keys__ | ReadArgs.__optional_keys__


@dataclass(frozen=True)
class FrameOptions:
    """The checked ``ReadArgs`` and ``chunksize`` of one frame call."""

    name: str
    """The frame (``tasks``...), for messages and progress bars."""
    chunksize: int | None
    limit: int | None
    schema: str | None
    columns: list[str] | None
    dtype_backend: DtypeBackend | None
    progress: bool

    @classmethod
    def of(
        cls, name: str, options: dict[str, Any], allowed: type, chunksize: object
    ) -> tuple[FrameOptions, dict[str, Any]]:
        """The read options of ``options``, and the rest (the filters); an unknown keyword is a
        ``TypeError`` as Python raises it."""
        known = allowed.__required_keys__ | allowed.__optional_keys__  # type: ignore[attr-defined]
        for key in options:
            if key not in known:
                raise TypeError(f"{name}_frame() got an unexpected keyword argument {key!r}")
        read = cls(
            name=name,
            chunksize=as_chunksize(chunksize),
            limit=as_limit(options.get("limit")),
            schema=options.get("schema"),
            columns=_as_selection(options.get("columns")),
            dtype_backend=check_dtype_backend(options.get("dtype_backend")),
            progress=as_bool(options.get("progress", False), "progress"),
        )
        return read, {k: value for k, value in options.items() if k not in _READ_KEYS}


def _as_selection(value: object) -> list[str] | None:
    names = as_columns(value, "columns")
    if names is not None and len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidValueError(f"columns names {', '.join(map(repr, twice))} more than once")
    return names


def check_selection(
    frame: str, columns: list[str] | None, fixed: Sequence[str], prefixes: Sequence[str]
) -> None:
    """Raise ``InvalidValueError`` naming the first of ``columns`` the frame cannot have."""
    for name in columns or ():
        flattened = any(name.startswith(p + ".") and len(name) > len(p) + 1 for p in prefixes)
        if name not in fixed and not flattened:
            flat = "".join(f", {p}.<key>" for p in prefixes)
            raise InvalidValueError(
                f"columns: {frame}_frame has no column {name!r}; its columns are {', '.join(fixed)}{flat}"
            )


def flat_keys(
    columns: list[str] | None, prefix: str, given: list[str] | None, given_name: str
) -> list[str] | None:
    """The keys to flatten under ``prefix``: ``given`` (``<prefix>_columns=``), else those ``columns``
    names (``[]`` for none: nothing is flattened), else None (every key)."""
    if columns is None:
        return given
    keys = [name[len(prefix) + 1 :] for name in columns if name.startswith(prefix + ".")]
    if given is None:
        return keys
    for key in keys:
        if not any(key == g or key.startswith(g + ".") for g in given):
            raise InvalidValueError(
                f"columns names {prefix}.{key!r}, which {given_name}={given!r} leaves out"
            )
    return given


def within(value: datetime, after: datetime | None, before: datetime | None) -> bool:
    """Whether ``value`` lies in the window [after, before)."""
    return (after is None or value >= after) and (before is None or value < before)


def window(after: object, before: object, names: tuple[str, str]) -> tuple[datetime | None, datetime | None]:
    """A validated (inclusive start, exclusive end) pair."""
    return as_time(after, names[0]), as_time(before, names[1])

