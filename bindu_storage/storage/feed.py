"""The change feed: what changed in tasks since a cursor (``Storage.changes``).

Every write that changes a task logs one row in the event log (``task_events``) in the same
atomic step: a ``Change``. ``changes(since)`` answers the changes after the cursor ``since``,
oldest first, so a stream that resumes on another server instance (A2A ``tasks/resubscribe``)
reads exactly what it missed.

Kinds of change (``Change["kind"]``):

* ``"status"`` — a write that set the task's status: ``submit_task`` (creation, with
  ``from_state`` None, or continuation), ``update_task``, ``update_task_state_if``. ``state`` is
  the state after it, ``from_state`` the one before (equal when the state stayed);
  ``status_message`` the status message it set (None: none, or cleared); ``messages`` and
  ``artifacts`` what it appended (``[]``: nothing). Logged when the state changed, the status
  message changed, or something was appended; a metadata merge alone is not a change.
* ``"artifact"`` — ``append_artifact_chunk`` added an artifact, or replaced the one with its id
  (``append=False``): ``artifacts`` holds the artifact as stored now.
* ``"artifact-chunk"`` — ``append_artifact_chunk`` extended the parts of an existing artifact:
  ``artifacts`` holds the chunk (its id and the parts added), as A2A's artifact update event
  with ``append: true`` carries it.

A consumer rebuilds the task by applying changes in order: append ``messages`` to the history;
for each artifact, extend the parts of the stored one with its id (``artifact-chunk``) or put it
in place of the one with its id, or last when new (the other kinds); take ``state`` and
``status_message`` from ``status`` changes.

**Cursors** are non-negative ints, larger for later changes; ``since=None`` reads from the
start. Resuming with the cursor of the last change read returns exactly the changes after it:
none skipped, none repeated, also while other writers commit concurrently (see
``storage.sql``: PostgreSQL orders changes by the writing transaction's id and shows a change
only once every transaction that started before it has ended, so a change that commits late
never lands behind a cursor already handed out). Cursors of one storage are not meaningful to
another. Deleting a task (``delete_task``, ``purge``, ``clear_context``) removes its changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict
from uuid import UUID

from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.types import Artifact, Message

__all__ = [
    "CHANGE_KINDS",
    "DEFAULT_FEED_LIMIT",
    "MAX_FEED_LIMIT",
    "Change",
    "ChangeKind",
    "change_from_row",
    "check_feed_request",
    "pack_cursor",
    "unpack_cursor",
]

ChangeKind = Literal["status", "artifact", "artifact-chunk"]
CHANGE_KINDS: tuple[str, ...] = ("status", "artifact", "artifact-chunk")
"""The kinds of change, as the module docstring describes them."""

DEFAULT_FEED_LIMIT = 1000
"""How many changes ``changes`` returns at most when no ``limit`` is given."""

MAX_FEED_LIMIT = 10_000
"""The largest ``limit`` ``changes`` accepts."""

_ID_BITS = 63
_ID_MASK = (1 << _ID_BITS) - 1


class Change(TypedDict):
    """One change of one task, as ``Storage.changes`` returns it (see ``storage.feed``)."""

    cursor: int
    task_id: UUID
    kind: ChangeKind
    from_state: str | None
    state: str
    status_message: Message | None
    messages: list[Message]
    artifacts: list[Artifact]
    at: datetime


def check_feed_request(since: int | None, limit: int) -> int | None:
    """Validate ``changes``' cursor and limit; the cursor (None: from the start)."""
    if since is not None:
        if isinstance(since, bool) or not isinstance(since, int):
            raise InvalidTypeError(f"since must be an int cursor or None, not {type(since).__name__}")
        if since < 0:
            raise InvalidValueError(f"since must be a cursor (an int >= 0), not {since}")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidTypeError(f"limit must be an int, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_FEED_LIMIT:
        raise InvalidValueError(f"limit must be between 1 and {MAX_FEED_LIMIT}, not {limit}")
    return since


def pack_cursor(transaction: int, event_id: int) -> int:
    """PostgreSQL's cursor: the writing transaction's id, then the event's id, as one int."""
    return (transaction << _ID_BITS) | event_id


def unpack_cursor(cursor: int) -> tuple[int, int]:
    """The (transaction id, event id) pair ``pack_cursor`` made."""
    return cursor >> _ID_BITS, cursor & _ID_MASK


def change_from_row(row: Mapping[str, Any], cursor: int) -> Change:
    """The change of one event row (task_id, kind, from/to state, payloads, at)."""
    return {
        "cursor": cursor,
        "task_id": row["task_id"],
        "kind": row["kind"],
        "from_state": row["from_state"],
        "state": row["to_state"],
        "status_message": row["status_message"],
        "messages": row["messages"] if row["messages"] is not None else [],
        "artifacts": row["artifacts"] if row["artifacts"] is not None else [],
        "at": row["at"],
    }
