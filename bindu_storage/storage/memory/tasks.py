"""Tasks in memory: submit, update, append, compare-and-set, load, list, count, pages.

Every change of a task's status, messages or artifacts is logged to the change feed's rows
(``_record_event``), which ``changes`` and ``records`` read.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    OwnershipError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import TaskRow, window
from bindu_storage.storage.pages import (
    DEFAULT_PAGE_SIZE,
    PageCursor,
    TaskFilter,
    TaskPage,
    check_page_request,
    count_filter,
    decode_token,
    encode_token,
    task_filter,
    without_artifacts,
)
from bindu_storage.types import TERMINAL_STATES, Artifact, Message, Task


class MemoryTasks(MemoryState):
    """The task operations of the ``Storage`` contract, on the in-memory tables."""

    def _row(self, task_id: IdLike) -> TaskRow:
        tid, row = self._task_of(task_id)
        if row is None:
            raise TaskNotFoundError(tid)
        return row

    def _record_event(
        self, row: TaskRow, old: str | None, new: str, at: datetime, *, kind: str = "status",
        status_message: dict[str, Any] | None = None, messages: list[dict[str, Any]] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Log one change (storage.feed). The lists are the caller's fresh ones, shared as the
        stored values are: never changed in place (None for none: one container less)."""
        event_id = next(self._event_ids)
        self._events[event_id] = {
            "id": event_id, "task_id": row.id, "from_state": old, "to_state": new, "at": at,
            "kind": kind, "status_message": status_message, "messages": messages or None,
            "artifacts": artifacts or None,
        }
        row.event_ids.append(event_id)

    def _set_status(
        self, row: TaskRow, state: str, now: datetime, status_message: dict[str, Any] | None = None,
        messages: list[dict[str, Any]] | None = None, artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Set a new status and log the change when there is one (state, message, appends)."""
        if state != row.state or status_message != row.status_message or messages or artifacts:
            self._record_event(
                row, row.state, state, now, status_message=status_message,
                messages=messages, artifacts=artifacts,
            )
        row.state = state
        row.state_timestamp = now
        row.set_status_message(status_message)

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(
        self, task_id: IdLike, history_length: int | None = None, *, owner_did: str | None = None
    ) -> Task | None:
        self._ensure_open()
        _, row = self._task_of(task_id)
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        owner = v.check_optional_str(owner_did, "owner_did") if owner_did is not None else None
        if row is None or (owner is not None and row.owner_did != owner):
            return None
        return row.to_task(history_length)

    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        self._ensure_open()
        cid, ctx = self._context_of(context_id)
        caller = v.check_optional_str(caller_did, "caller_did") if caller_did is not None else None
        msg = v.messages([message], "message")[0]
        tid, row = self._task_of(msg.get("task_id"), "message['task_id']")
        if ctx is not None and ctx.owner_did is not None and ctx.owner_did != caller:
            raise OwnershipError(cid, caller)
        now = self.clock()
        if row is None:
            ctx = self._context(cid, caller, now)
            history = [msg]
            row = TaskRow(
                tid, cid, "submitted", now, history, owner_did=caller, created_at=now, updated_at=now
            )
            self._add_task(row)
            ctx.task_ids.append(tid)
            ctx.updated_at = now
            self._record_event(row, None, "submitted", now, messages=history)  # shared: never changed
            return row.to_task()
        if row.context_id != cid:
            raise InvalidValueError(f"task {tid} belongs to context {row.context_id}, not {cid}")
        if not v.new_only(row.history, [msg], "message_id"):
            return row.to_task()  # a replay of a message already there: nothing changes
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot continue it with a new message")
        row.replace(history=[*row.history, msg])  # stored values are replaced, never changed in place
        self._set_status(row, "submitted", now, messages=[msg])
        row.updated_at = now
        return row.to_task()

    async def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        status_message: Message | None = None,
    ) -> Task:
        self._ensure_open()
        tid, row = self._task_of(task_id)
        v.check_state(state)
        arts = v.artifacts(new_artifacts) if new_artifacts is not None else []
        msgs = v.messages(new_messages) if new_messages is not None else []
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        said = v.messages([status_message], "status_message")[0] if status_message is not None else None
        if row is None:
            raise TaskNotFoundError(tid)
        arts = v.new_only(row.artifacts, arts, "artifact_id")
        msgs = v.new_only(row.history, msgs, "message_id")
        now = self.clock()
        if row.state in TERMINAL_STATES:
            if state != row.state:
                raise TerminalTaskError(tid, row.state, f"cannot move to {state}")
            if arts or msgs:
                raise TerminalTaskError(tid, row.state, "cannot append messages or artifacts")
            if said is not None and said != row.status_message:
                raise TerminalTaskError(tid, row.state, "cannot change its status message")
        else:
            self._set_status(row, state, now, said, msgs, arts)
        row.replace(  # replaced, never changed in place: a snapshot lent earlier stays as it was
            history=[*row.history, *msgs] if msgs else None,
            artifacts=[*row.artifacts, *arts] if arts else None,
            metadata={**row.metadata, **meta} if meta else None,
        )
        row.updated_at = now
        return row.to_task()

    async def append_artifact_chunk(
        self, task_id: IdLike, artifact: Artifact, *, append: bool = True
    ) -> None:
        self._ensure_open()
        tid, row = self._task_of(task_id)
        chunk = v.artifacts([artifact], "artifact")[0]
        if not isinstance(append, bool):
            raise InvalidTypeError(f"append must be a bool, not {type(append).__name__}")
        if row is None:
            raise TaskNotFoundError(tid)
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot append artifact chunks")
        at = next((i for i, a in enumerate(row.artifacts) if a["artifact_id"] == chunk["artifact_id"]), None)
        now = self.clock()
        kind = "artifact-chunk" if append and at is not None else "artifact"
        if at is None:
            row.replace(artifacts=[*row.artifacts, chunk])
        else:  # a new artifact and a new list: the stored ones are never changed in place
            existing = row.artifacts[at]
            grown = {**existing, "parts": [*existing.get("parts", []), *chunk.get("parts", [])]}
            new = grown if append else chunk
            row.replace(
                artifacts=[new if a["artifact_id"] == chunk["artifact_id"] else a for a in row.artifacts]
            )
        self._record_event(row, row.state, row.state, now, kind=kind, artifacts=[chunk])
        row.updated_at = now

    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        self._ensure_open()
        tid, row = self._task_of(task_id)
        v.check_state(from_state, "from_state")
        v.check_state(to_state, "to_state")
        if row is None:
            raise TaskNotFoundError(tid)
        if row.state != from_state:
            return False
        if row.state in TERMINAL_STATES:
            if to_state != row.state:
                raise TerminalTaskError(row.id, row.state, f"cannot move to {to_state}")
            return True  # asked to stay where it is: like update_task, nothing changes
        now = self.clock()
        self._set_status(row, to_state, now)
        row.updated_at = now
        return True

    def _owned(self, rows: Iterable[TaskRow], owner_did: str | None) -> Iterable[TaskRow]:
        return rows if owner_did is None else (r for r in rows if r.owner_did == owner_did)

    async def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        self._ensure_open()
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = self._owned(reversed(self._tasks.values()), owner)
        return [r.to_task() for r in window(rows, length, offset)]

    async def count_tasks(
        self,
        status: str | None = None,
        *,
        owner_did: str | None = None,
        context_id: IdLike | None = None,
        states: str | Sequence[str] | None = None,
        updated_after: datetime | None = None,
    ) -> int:
        self._ensure_open()
        filters = count_filter(status, context_id, states, updated_after, owner_did)
        if filters == TaskFilter():
            return len(self._tasks)
        return sum(1 for _ in self._matching(filters))

    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        self._ensure_open()
        _, ctx = self._context_of(context_id)
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        if ctx is None:
            return []
        rows = self._owned((self._tasks[t] for t in ctx.task_ids), owner)
        return [r.to_task() for r in window(rows, length, offset)]

    async def get_task_owner(self, task_id: IdLike) -> str | None:
        self._ensure_open()
        _, row = self._task_of(task_id)
        return row.owner_did if row else None

    def _matching(self, filters: TaskFilter) -> Iterable[TaskRow]:
        return (
            r for r in self._tasks.values()
            if filters.matches(r.context_id, r.state, r.updated_at, r.owner_did)
        )

    async def list_tasks_page(
        self,
        *,
        context_id: IdLike | None = None,
        states: str | Sequence[str] | None = None,
        updated_after: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        history_length: int | None = None,
        include_artifacts: bool = False,
        owner_did: str | None = None,
    ) -> TaskPage:
        self._ensure_open()
        filters = task_filter(
            context_id=context_id, states=states, updated_after=updated_after, owner_did=owner_did
        )
        size = check_page_request(page_size, history_length, include_artifacts)
        cursor = decode_token(page_token, filters)
        matching = list(self._matching(filters))
        after = (
            r for r in matching
            if cursor is None or (r.updated_at, r.id) < (cursor.updated_at, cursor.task_id)
        )
        rows = heapq.nlargest(size + 1, after, key=lambda r: (r.updated_at, r.id))
        shown = rows[:size]
        tasks = [r.to_task(history_length) for r in shown]
        more = len(rows) > size
        return {
            "tasks": tasks if include_artifacts else [without_artifacts(t) for t in tasks],
            "next_page_token": encode_token(
                PageCursor(shown[-1].updated_at, shown[-1].id), filters
            ) if more else "",
            "page_size": size,
            "total_size": len(matching),
        }
