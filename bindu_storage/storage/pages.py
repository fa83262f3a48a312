"""Paged task listing (A2A's ``tasks/list``): the page shape, the filters and the page tokens.

Both backends list a page the same way: ``task_filter`` and ``check_page_request`` validate the
arguments, ``decode_token`` turns the caller's page token into a ``PageCursor`` (refusing a
token that is malformed or was issued for other filters), the backend reads the tasks after the
cursor in the order ``(updated_at, id)`` descending, and ``encode_token`` writes the cursor of
the last task shown into the next token.

A token is opaque to callers: the URL-safe base64 of a small JSON array holding a version, the
``updated_at`` and ``id`` of the last task shown, and a digest of the filters. It carries no
secret and grants nothing (it only says where the previous page stopped); the digest only makes
a token used with other filters fail loudly instead of paging a different listing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict
from uuid import UUID

from bindu_storage.errors import InvalidPageTokenError, InvalidTypeError, InvalidValueError
from bindu_storage.storage import validate as v
from bindu_storage.types import Task

DEFAULT_PAGE_SIZE = 50
"""Tasks on a page when the caller does not say (A2A's default)."""

MAX_PAGE_SIZE = 100
"""The largest page a caller may ask for (A2A's limit)."""

_TOKEN_VERSION = 1


class TaskPage(TypedDict):
    """One page of ``list_tasks_page``: A2A's ``ListTasksResponse`` in the storage's shapes."""

    tasks: list[Task]
    """The tasks of this page, most recently updated first."""
    next_page_token: str
    """The token of the next page; ``''`` when this page is the last."""
    page_size: int
    """The page size used (the caller's, or the default)."""
    total_size: int
    """How many tasks match the filters, over all pages, when this page was read."""


@dataclass(frozen=True)
class TaskFilter:
    """The filters of a listing or count; None means "any"."""

    context_id: UUID | None = None
    states: frozenset[str] | None = None
    updated_after: datetime | None = None
    owner_did: str | None = None

    def matches(
        self, context_id: UUID, state: str, updated_at: datetime, owner_did: str | None
    ) -> bool:
        """Whether a task with these values passes every filter (the in-memory backend's test)."""
        return (
            (self.context_id is None or context_id == self.context_id)
            and (self.states is None or state in self.states)
            and (self.updated_after is None or updated_at >= self.updated_after)
            and (self.owner_did is None or owner_did == self.owner_did)
        )

    @property
    def state_list(self) -> list[str] | None:
        """The states as a sorted list (a SQL ``text[]`` parameter), or None."""
        return sorted(self.states) if self.states is not None else None

    def digest(self) -> str:
        """A short fingerprint of the filters, written into page tokens."""
        described = [
            str(self.context_id) if self.context_id else None,
            self.state_list,
            self.updated_after.astimezone(UTC).isoformat() if self.updated_after else None,
            self.owner_did,
        ]
        text = json.dumps(described, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageCursor:
    """Where a page stopped: the ``updated_at`` and ``id`` of its last task."""

    updated_at: datetime
    task_id: UUID


def task_filter(
    *,
    context_id: object = None,
    states: object = None,
    updated_after: object = None,
    owner_did: object = None,
) -> TaskFilter:
    """Validate the listing filters; raise ``InvalidTypeError``/``InvalidValueError`` naming one.

    ``states`` is one state name or a sequence of them (at least one); ``updated_after`` an
    aware ``datetime``.
    """
    cid = v.as_uuid(context_id, "context_id") if context_id is not None else None
    owner = v.check_optional_str(owner_did, "owner_did")
    return TaskFilter(cid, _states(states), _aware(updated_after), owner)


def count_filter(
    status: object, context_id: object, states: object, updated_after: object, owner_did: object
) -> TaskFilter:
    """The filters of ``count_tasks``: ``status`` (one state, upstream's argument) or ``states``."""
    if status is not None:
        if states is not None:
            raise InvalidValueError("give status or states to count_tasks, not both")
        states = [v.check_state(status, "status")]
    return task_filter(
        context_id=context_id, states=states, updated_after=updated_after, owner_did=owner_did
    )


def _states(states: object) -> frozenset[str] | None:
    if states is None:
        return None
    if isinstance(states, str):
        return frozenset({v.check_state(states, "states")})
    if not isinstance(states, Sequence | set | frozenset):
        raise InvalidTypeError(f"states must be a state name or a list of them, got {type(states).__name__}")
    if not states:
        raise InvalidValueError("states must name at least one state (or be None for any)")
    return frozenset(v.check_state(s, "states") for s in states)


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidTypeError(f"updated_after must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError("updated_after must be timezone-aware (for example UTC)")
    return value


def check_page_request(page_size: object, history_length: object, include_artifacts: object) -> int:
    """Validate the page options; return the page size."""
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise InvalidTypeError(f"page_size must be an integer, got {type(page_size).__name__}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if history_length is not None:
        v.check_window(history_length, 0, "history_length")  # type: ignore[arg-type]
    if not isinstance(include_artifacts, bool):
        raise InvalidTypeError(f"include_artifacts must be a bool, got {type(include_artifacts).__name__}")
    return page_size


def encode_token(cursor: PageCursor, filters: TaskFilter) -> str:
    """The opaque token of the page after ``cursor`` under ``filters``."""
    stamp = cursor.updated_at.astimezone(UTC).isoformat(timespec="microseconds")
    text = json.dumps([_TOKEN_VERSION, stamp, str(cursor.task_id), filters.digest()], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_token(token: object, filters: TaskFilter) -> PageCursor | None:
    """The cursor a token stands for (None for no token or ``''``: the first page).

    Raises ``InvalidPageTokenError`` for a token this storage did not issue and for one issued
    under other filters.
    """
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise InvalidTypeError(f"page_token must be a string or None, got {type(token).__name__}")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, stamp, task_id, digest = json.loads(raw)
        cursor = PageCursor(datetime.fromisoformat(stamp), UUID(task_id))
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise InvalidPageTokenError("page_token is not a token this storage issued") from None
    if version != _TOKEN_VERSION or cursor.updated_at.tzinfo is None:
        raise InvalidPageTokenError("page_token is not a token this storage issued")
    if digest != filters.digest():
        raise InvalidPageTokenError(
            "page_token was issued for other filters (context_id, states, updated_after or "
            "owner_did differ); use the same filters as the first page, or start without a token"
        )
    return cursor


def without_artifacts(task: Task) -> Task:
    """The task with its ``artifacts`` left out (``include_artifacts=False``)."""
    task.pop("artifacts", None)
    return task
