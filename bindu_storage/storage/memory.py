"""InMemoryStorage: the zero-configuration default, obeying the ``Storage`` contract exactly.

Every method runs without awaiting in between its reads and writes, so each one is atomic with
respect to other coroutines on the loop. Values are validated (and copied) on the way in by
``validate`` and copied on the way out by ``isolation.clone``. A task's stored history,
artifacts and metadata are never changed in place: a write replaces them (copy-on-write), so the
read-only snapshots analysis reads (``task_snapshot``, ``feedback_snapshot``) share them without
copies. The tables are the record types of ``memory_rows``.

A little over 400 lines on purpose: one class with one method per operation of the contract,
each reading as the whole rule it implements; splitting the class would scatter the contract.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from bindu_storage.errors import (
    InvalidValueError,
    OwnershipError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory_rows import ContextRow, TaskAttachments, TaskRow, utc_now, window
from bindu_storage.types import (
    TERMINAL_STATES,
    Artifact,
    ContextRecord,
    ContextSummary,
    FeedbackRecord,
    Message,
    PushNotificationConfig,
    Task,
    TaskEvent,
    TaskRecord,
)


class InMemoryStorage(Storage):
    """Keeps everything in process memory; the default backend.

    ``close()`` keeps the data: operations then raise ``StorageClosedError`` until ``connect()``
    reopens the storage with everything still in it (the lifecycle of ``storage.base``).

    ``clock`` (a public attribute too) returns the current time as an aware UTC datetime; every
    timestamp the storage records comes from it. Replays of recorded data (``synthetic.load``)
    set it to reproduce their timestamps; everyone else leaves the default, the wall clock.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock: Callable[[], datetime] = clock or utc_now
        self._tasks: dict[UUID, TaskRow] = {}  # insertion order = creation order
        self._contexts: dict[UUID, ContextRow] = {}
        self._feedback: dict[int, FeedbackRecord] = {}
        self._events: dict[int, TaskEvent] = {}
        self._attached: dict[UUID, TaskAttachments] = {}
        self._webhooks: dict[UUID, PushNotificationConfig] = {}
        self._feedback_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return f"InMemoryStorage(tasks={len(self._tasks)}, contexts={len(self._contexts)}{closed})"

    # --- helpers -----------------------------------------------------------------------------

    def _row(self, task_id: IdLike) -> TaskRow:
        tid = v.as_uuid(task_id, "task_id")
        row = self._tasks.get(tid)
        if row is None:
            raise TaskNotFoundError(tid)
        return row

    def _record_event(self, task_id: UUID, old: str | None, new: str, at: datetime) -> None:
        event_id = next(self._event_ids)
        self._events[event_id] = {
            "id": event_id, "task_id": task_id, "from_state": old, "to_state": new, "at": at,
        }
        self._attached.setdefault(task_id, TaskAttachments()).event_ids.append(event_id)

    def _set_state(self, row: TaskRow, state: str, now: datetime) -> None:
        if state != row.state:
            self._record_event(row.id, row.state, state, now)
        row.state = state
        row.state_timestamp = now

    def _context(self, cid: UUID, owner_did: str | None, now: datetime) -> ContextRow:
        ctx = self._contexts.get(cid)
        if ctx is None:
            ctx = self._contexts[cid] = ContextRow(cid, owner_did, created_at=now, updated_at=now)
        return ctx

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(self, task_id: IdLike, history_length: int | None = None) -> Task | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        row = self._tasks.get(tid)
        return row.to_task(history_length) if row else None

    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        self._ensure_open()
        cid = v.as_uuid(context_id, "context_id")
        caller = v.check_optional_str(caller_did, "caller_did")
        msg = v.messages([message], "message")[0]
        tid = v.as_uuid(msg.get("task_id"), "message['task_id']")
        ctx = self._contexts.get(cid)
        if ctx is not None and ctx.owner_did is not None and ctx.owner_did != caller:
            raise OwnershipError(cid, caller)
        now = self.clock()
        row = self._tasks.get(tid)
        if row is None:
            ctx = self._context(cid, caller, now)
            row = self._tasks[tid] = TaskRow(
                tid, cid, "submitted", now, [msg], owner_did=caller, created_at=now, updated_at=now
            )
            ctx.task_ids.append(tid)
            ctx.updated_at = now
            self._record_event(tid, None, "submitted", now)
            return row.to_task()
        if row.context_id != cid:
            raise InvalidValueError(f"task {tid} belongs to context {row.context_id}, not {cid}")
        if not v.new_only(row.history, [msg], "message_id"):
            return row.to_task()  # a replay of a message already there: nothing changes
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot continue it with a new message")
        row.history = [*row.history, msg]  # stored values are replaced, never changed in place
        self._set_state(row, "submitted", now)
        row.updated_at = now
        return row.to_task()

    async def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(state)
        arts = v.artifacts(new_artifacts)
        msgs = v.messages(new_messages)
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        row = self._tasks.get(tid)
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
        else:
            self._set_state(row, state, now)
        if arts:  # replaced, never changed in place: a snapshot lent earlier stays as it was
            row.artifacts = [*row.artifacts, *arts]
        if msgs:
            row.history = [*row.history, *msgs]
        if meta:
            row.metadata = {**row.metadata, **meta}
        row.updated_at = now
        return row.to_task()

    async def append_artifact_chunk(self, task_id: IdLike, artifact: Artifact) -> None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        chunk = v.artifacts([artifact], "artifact")[0]
        row = self._tasks.get(tid)
        if row is None:
            raise TaskNotFoundError(tid)
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot append artifact chunks")
        at = next((i for i, a in enumerate(row.artifacts) if a["artifact_id"] == chunk["artifact_id"]), None)
        if at is None:
            row.artifacts = [*row.artifacts, chunk]
        else:  # a new artifact and a new list: the stored ones are never changed in place
            existing = row.artifacts[at]
            grown = {**existing, "parts": [*existing.get("parts", []), *chunk.get("parts", [])]}
            row.artifacts = [*row.artifacts[:at], grown, *row.artifacts[at + 1:]]
        row.updated_at = self.clock()

    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(from_state, "from_state")
        v.check_state(to_state, "to_state")
        row = self._row(tid)
        if row.state != from_state:
            return False
        if row.state in TERMINAL_STATES:
            if to_state != row.state:
                raise TerminalTaskError(row.id, row.state, f"cannot move to {to_state}")
            return True  # asked to stay where it is: like update_task, nothing changes
        now = self.clock()
        self._set_state(row, to_state, now)
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

    async def count_tasks(self, status: str | None = None) -> int:
        self._ensure_open()
        if status is None:
            return len(self._tasks)
        v.check_state(status, "status")
        return sum(1 for r in self._tasks.values() if r.state == status)

    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        self._ensure_open()
        cid = v.as_uuid(context_id, "context_id")
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        ctx = self._contexts.get(cid)
        if ctx is None:
            return []
        rows = self._owned((self._tasks[t] for t in ctx.task_ids), owner)
        return [r.to_task() for r in window(rows, length, offset)]

    async def get_task_owner(self, task_id: IdLike) -> str | None:
        self._ensure_open()
        row = self._tasks.get(v.as_uuid(task_id, "task_id"))
        return row.owner_did if row else None

    # --- contexts ----------------------------------------------------------------------------

    async def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        self._ensure_open()
        ctx = self._contexts.get(v.as_uuid(context_id, "context_id"))
        return clone(ctx.context_data) if ctx else None

    async def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        self._ensure_open()
        cid = v.as_uuid(context_id, "context_id")
        data = v.json_object(context, "context")
        now = self.clock()
        ctx = self._context(cid, None, now)
        ctx.context_data = data
        ctx.updated_at = now

    async def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        self._ensure_open()
        cid = v.as_uuid(context_id, "context_id")
        msgs = v.required_messages(messages, "messages")
        now = self.clock()
        ctx = self._context(cid, None, now)
        ctx.message_history.extend(v.new_only(ctx.message_history, msgs, "message_id"))
        ctx.updated_at = now

    async def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[ContextSummary]:
        self._ensure_open()
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows: Iterable[ContextRow] = reversed(self._contexts.values())
        if owner is not None:
            rows = (c for c in rows if c.owner_did == owner)
        return [
            {
                "context_id": c.id,
                "context_data": clone(c.context_data),
                "task_count": len(c.task_ids),
                "task_ids": list(c.task_ids),
            }
            for c in window(rows, length, offset)
        ]

    async def get_context_owner(self, context_id: IdLike) -> str | None:
        self._ensure_open()
        ctx = self._contexts.get(v.as_uuid(context_id, "context_id"))
        return ctx.owner_did if ctx else None

    async def clear_context(self, context_id: IdLike) -> None:
        self._ensure_open()
        ctx = self._contexts.pop(v.as_uuid(context_id, "context_id"), None)
        if ctx is not None:
            self._forget_tasks(set(ctx.task_ids))

    def _forget_tasks(self, task_ids: set[UUID]) -> None:
        for tid in task_ids:
            self._tasks.pop(tid, None)
            self._webhooks.pop(tid, None)
            attached = self._attached.pop(tid, TaskAttachments())
            for fid in attached.feedback_ids:
                del self._feedback[fid]
            for eid in attached.event_ids:
                del self._events[eid]

    async def clear_all(self) -> None:
        self._ensure_open()
        self._tasks.clear()
        self._contexts.clear()
        self._feedback.clear()
        self._events.clear()
        self._attached.clear()
        self._webhooks.clear()

    # --- feedback ----------------------------------------------------------------------------

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

    # --- webhook configs ---------------------------------------------------------------------

    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        if tid not in self._tasks:
            raise TaskNotFoundError(tid)
        self._webhooks[tid] = data  # type: ignore[assignment]

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        self._ensure_open()
        config = self._webhooks.get(v.as_uuid(task_id, "task_id"))
        return clone(config) if config is not None else None

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        self._ensure_open()
        self._webhooks.pop(v.as_uuid(task_id, "task_id"), None)

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        self._ensure_open()
        return {tid: clone(cfg) for tid, cfg in self._webhooks.items()}

    # --- analysis read API -------------------------------------------------------------------

    async def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        rows: Iterable[TaskRow] = self._tasks.values()
        if since is not None:
            rows = (r for r in rows if r.updated_at >= since)
        return [
            {"task": r.to_task(), "owner_did": r.owner_did,
             "created_at": r.created_at, "updated_at": r.updated_at}
            for r in window(rows, limit, offset)
        ]

    async def context_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        return [
            {"context_id": c.id, "context_data": clone(c.context_data),
             "message_history": clone(c.message_history), "owner_did": c.owner_did,
             "created_at": c.created_at, "updated_at": c.updated_at}
            for c in window(self._contexts.values(), limit, offset)
        ]

    async def feedback_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[FeedbackRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        return [
            {**f, "feedback_data": clone(f["feedback_data"])}  # type: ignore[typeddict-item]
            for f in window(self._feedback.values(), limit, offset)
        ]

    async def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        events: Iterable[TaskEvent] = self._events.values()
        if task_id is not None:
            attached = self._attached.get(v.as_uuid(task_id, "task_id"))
            events = (self._events[i] for i in attached.event_ids) if attached else ()
        return [dict(e) for e in window(events, limit, offset)]  # type: ignore[misc]

    # --- read-only snapshots (storage.read.RecordSnapshots) -----------------------------------

    def task_snapshot(self, since: datetime | None = None) -> list[TaskRecord]:
        """Every task record (updated at or after ``since``), oldest first, without copies.

        The records share the stored values: read them, never change them. A write replaces a
        task's history, artifacts or metadata instead of changing it in place, so the records
        keep showing the moment of the call while the storage moves on.
        """
        self._ensure_open()
        return [
            {"task": r.shared_task(), "owner_did": r.owner_did,
             "created_at": r.created_at, "updated_at": r.updated_at}
            for r in self._tasks.values()
            if since is None or r.updated_at >= since
        ]

    def feedback_snapshot(self) -> list[FeedbackRecord]:
        """Every feedback record, oldest first, sharing the stored values: never change them."""
        self._ensure_open()
        return list(self._feedback.values())

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Reopen the storage if closed (nothing to acquire); the data is still there."""
        self._closed = False

    async def close(self) -> None:
        """Close the storage; the data stays (unlike upstream, close() never wipes it)."""
        self._closed = True
