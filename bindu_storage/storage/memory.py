"""InMemoryStorage: the zero-configuration default, obeying the ``Storage`` contract exactly.

Every method runs without awaiting in between its reads and writes, so each one is atomic with
respect to other coroutines on the loop. Values are validated (and copied) on the way in by
``validate`` and copied on the way out by ``isolation.clone``. A task's stored history,
artifacts and metadata are never changed in place: a write replaces them (copy-on-write), so the
read-only snapshots analysis reads (``task_snapshot``, ``feedback_snapshot``) share them without
copies. The tables are the record types of ``memory_rows``.

Over 400 lines on purpose: one class with one method per operation of the contract (push
configs by id, deletion and retention included), each reading as the whole rule it implements;
splitting the class would scatter the contract.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from bindu_storage.errors import (
    EncryptionKeyError,
    InvalidTypeError,
    InvalidValueError,
    OwnershipError,
    TaskNotFoundError,
    TaskOwnershipError,
    TerminalTaskError,
)
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.feed import DEFAULT_FEED_LIMIT, Change, change_from_row, check_feed_request
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory_rows import (
    ContextRow,
    PushConfigRow,
    TaskAttachments,
    TaskRow,
    utc_now,
    window,
)
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
from bindu_storage.storage.push_configs import (
    KEY_SETTING,
    PushConfigRecord,
    check_config_id,
    config_id_of,
    has_secrets,
    make_cipher,
    open_config,
    seal_config,
)
from bindu_storage.storage.retention import PurgeCounts, PurgePolicy, no_counts
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

    def __init__(
        self, clock: Callable[[], datetime] | None = None, *, push_config_key: Any = None
    ) -> None:
        self.clock: Callable[[], datetime] = clock or utc_now
        self._push_cipher = make_cipher(push_config_key)  # storage.push_configs; None: plain
        self._tasks: dict[UUID, TaskRow] = {}  # insertion order = creation order
        self._contexts: dict[UUID, ContextRow] = {}
        self._feedback: dict[int, FeedbackRecord] = {}
        self._events: dict[int, dict[str, Any]] = {}  # the change feed's rows (storage.feed)
        self._attached: dict[UUID, TaskAttachments] = {}
        self._webhooks: dict[UUID, dict[str, PushConfigRow]] = {}  # task -> config id -> row
        self._push_config_seq = itertools.count(1)
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

    def _record_event(
        self, task_id: UUID, old: str | None, new: str, at: datetime, *, kind: str = "status",
        status_message: dict[str, Any] | None = None, messages: Sequence[dict[str, Any]] = (),
        artifacts: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Log one change (storage.feed); stored values are shared, never changed in place."""
        event_id = next(self._event_ids)
        self._events[event_id] = {
            "id": event_id, "task_id": task_id, "from_state": old, "to_state": new, "at": at,
            "kind": kind, "status_message": status_message, "messages": list(messages),
            "artifacts": list(artifacts),
        }
        self._attached.setdefault(task_id, TaskAttachments()).event_ids.append(event_id)

    def _set_status(
        self, row: TaskRow, state: str, now: datetime, status_message: dict[str, Any] | None = None,
        messages: Sequence[dict[str, Any]] = (), artifacts: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Set a new status and log the change when there is one (state, message, appends)."""
        if state != row.state or status_message != row.status_message or messages or artifacts:
            self._record_event(
                row.id, row.state, state, now, status_message=status_message,
                messages=messages, artifacts=artifacts,
            )
        row.state = state
        row.state_timestamp = now
        row.status_message = status_message

    def _context(self, cid: UUID, owner_did: str | None, now: datetime) -> ContextRow:
        ctx = self._contexts.get(cid)
        if ctx is None:
            ctx = self._contexts[cid] = ContextRow(cid, owner_did, created_at=now, updated_at=now)
        return ctx

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(
        self, task_id: IdLike, history_length: int | None = None, *, owner_did: str | None = None
    ) -> Task | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        owner = v.check_optional_str(owner_did, "owner_did")
        row = self._tasks.get(tid)
        if row is None or (owner is not None and row.owner_did != owner):
            return None
        return row.to_task(history_length)

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
            self._record_event(tid, None, "submitted", now, messages=[msg])
            return row.to_task()
        if row.context_id != cid:
            raise InvalidValueError(f"task {tid} belongs to context {row.context_id}, not {cid}")
        if not v.new_only(row.history, [msg], "message_id"):
            return row.to_task()  # a replay of a message already there: nothing changes
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot continue it with a new message")
        row.history = [*row.history, msg]  # stored values are replaced, never changed in place
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
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(state)
        arts = v.artifacts(new_artifacts)
        msgs = v.messages(new_messages)
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        said = v.messages([status_message], "status_message")[0] if status_message is not None else None
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
            if said is not None and said != row.status_message:
                raise TerminalTaskError(tid, row.state, "cannot change its status message")
        else:
            self._set_status(row, state, now, said, msgs, arts)
        if arts:  # replaced, never changed in place: a snapshot lent earlier stays as it was
            row.artifacts = [*row.artifacts, *arts]
        if msgs:
            row.history = [*row.history, *msgs]
        if meta:
            row.metadata = {**row.metadata, **meta}
        row.updated_at = now
        return row.to_task()

    async def append_artifact_chunk(
        self, task_id: IdLike, artifact: Artifact, *, append: bool = True
    ) -> None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        chunk = v.artifacts([artifact], "artifact")[0]
        if not isinstance(append, bool):
            raise InvalidTypeError(f"append must be a bool, not {type(append).__name__}")
        row = self._tasks.get(tid)
        if row is None:
            raise TaskNotFoundError(tid)
        if row.state in TERMINAL_STATES:
            raise TerminalTaskError(tid, row.state, "cannot append artifact chunks")
        at = next((i for i, a in enumerate(row.artifacts) if a["artifact_id"] == chunk["artifact_id"]), None)
        now = self.clock()
        kind = "artifact-chunk" if append and at is not None else "artifact"
        if at is None:
            row.artifacts = [*row.artifacts, chunk]
        else:  # a new artifact and a new list: the stored ones are never changed in place
            existing = row.artifacts[at]
            grown = {**existing, "parts": [*existing.get("parts", []), *chunk.get("parts", [])]}
            new = grown if append else chunk
            row.artifacts = [new if a["artifact_id"] == chunk["artifact_id"] else a for a in row.artifacts]
        self._record_event(tid, row.state, row.state, now, kind=kind, artifacts=[chunk])
        row.updated_at = now

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
            row = self._tasks.pop(tid, None)
            self._webhooks.pop(tid, None)
            ctx = self._contexts.get(row.context_id) if row is not None else None
            if ctx is not None and tid in ctx.task_ids:
                ctx.task_ids.remove(tid)
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
        config_id = config_id_of(tid, data)
        if tid not in self._tasks:
            raise TaskNotFoundError(tid)
        kept = self._webhooks.get(tid, {}).get(config_id)
        self._webhooks[tid] = {config_id: kept} if kept is not None else {}
        self._put_push_config(tid, config_id, data)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        return self._default_push_config(tid, self._webhooks.get(tid, {}))

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        self._ensure_open()
        self._webhooks.pop(v.as_uuid(task_id, "task_id"), None)

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        self._ensure_open()
        found = {tid: self._default_push_config(tid, rows) for tid, rows in self._webhooks.items()}
        return {tid: config for tid, config in found.items() if config is not None}

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
        events: Iterable[dict[str, Any]] = self._events.values()
        if task_id is not None:
            attached = self._attached.get(v.as_uuid(task_id, "task_id"))
            events = (self._events[i] for i in attached.event_ids) if attached else ()
        state_changes = (e for e in events if e["from_state"] != e["to_state"])
        return [
            {k: e[k] for k in ("id", "task_id", "from_state", "to_state", "at")}  # type: ignore[misc]
            for e in window(state_changes, limit, offset)
        ]

    # --- the change feed (storage.feed) ------------------------------------------------------

    async def changes(
        self,
        since: int | None = None,
        *,
        task_id: IdLike | None = None,
        owner_did: str | None = None,
        limit: int = DEFAULT_FEED_LIMIT,
    ) -> list[Change]:
        self._ensure_open()
        after = check_feed_request(since, limit) or 0
        tid = v.as_uuid(task_id, "task_id") if task_id is not None else None
        owner = v.check_optional_str(owner_did, "owner_did")
        events: Iterable[dict[str, Any]] = self._events.values()
        if tid is not None:
            attached = self._attached.get(tid)
            events = (self._events[i] for i in attached.event_ids) if attached else ()
        if owner is not None:
            events = (e for e in events if self._tasks[e["task_id"]].owner_did == owner)
        chosen = window((e for e in events if e["id"] > after), limit, 0)
        return [clone(change_from_row(e, e["id"])) for e in chosen]

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

    # --- push-notification configs by id -----------------------------------------------------

    def _scoped_task(self, tid: UUID, owner_did: str | None, *, write: bool) -> TaskRow | None:
        """The task, or None when unknown or (for a read) another caller's; a write of another
        caller's task raises ``TaskOwnershipError``."""
        row = self._tasks.get(tid)
        if row is None or owner_did is None or row.owner_did == owner_did:
            return row
        if write:
            raise TaskOwnershipError(tid, owner_did)
        return None

    def _put_push_config(self, tid: UUID, config_id: str, data: dict[str, Any]) -> None:
        stored, encrypted = seal_config(self._push_cipher, data)
        now = self.clock()
        rows = self._webhooks.setdefault(tid, {})
        old = rows.get(config_id)
        if old is None:
            rows[config_id] = PushConfigRow(next(self._push_config_seq), stored, encrypted, now, now)
        else:
            old.config, old.encrypted, old.updated_at = stored, encrypted, now

    def _opened_config(self, tid: UUID, config_id: str, row: PushConfigRow) -> PushNotificationConfig:
        opened = open_config(self._push_cipher, clone(row.config), row.encrypted, tid, config_id)
        return opened  # type: ignore[return-value]

    def _default_push_config(
        self, tid: UUID, rows: dict[str, PushConfigRow]
    ) -> PushNotificationConfig | None:
        """The config the single-config methods address: id = the task id, else the first."""
        config_id = str(tid) if str(tid) in rows else next(iter(rows), None)
        return None if config_id is None else self._opened_config(tid, config_id, rows[config_id])

    async def set_push_config(
        self, task_id: IdLike, config: PushNotificationConfig, *, owner_did: str | None = None
    ) -> str:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        config_id = config_id_of(tid, data)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=True) is None:
            raise TaskNotFoundError(tid)
        self._put_push_config(tid, config_id, data)
        return config_id

    async def get_push_config(
        self, task_id: IdLike, config_id: str, *, owner_did: str | None = None
    ) -> PushNotificationConfig | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        cid = check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=False) is None:
            return None
        row = self._webhooks.get(tid, {}).get(cid)
        return None if row is None else self._opened_config(tid, cid, row)

    async def list_push_configs(
        self, task_id: IdLike, *, owner_did: str | None = None
    ) -> list[PushNotificationConfig]:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=False) is None:
            return []
        return [self._opened_config(tid, cid, row) for cid, row in self._webhooks.get(tid, {}).items()]

    async def delete_push_config(
        self, task_id: IdLike, config_id: str | None = None, *, owner_did: str | None = None
    ) -> bool:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        cid = str(tid) if config_id is None else check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=True) is None:
            return False
        return self._webhooks.get(tid, {}).pop(cid, None) is not None

    async def push_config_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[PushConfigRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        rows = sorted(
            ((tid, cid, row) for tid, configs in self._webhooks.items() for cid, row in configs.items()),
            key=lambda found: found[2].seq,
        )
        return [
            {"task_id": tid, "config_id": cid, "config": clone(row.config), "encrypted": row.encrypted,
             "created_at": row.created_at, "updated_at": row.updated_at}
            for tid, cid, row in window(rows, limit, offset)
        ]

    async def reencrypt_push_configs(self) -> int:
        self._ensure_open()
        cipher = self._push_cipher
        if cipher is None:
            raise EncryptionKeyError(f"re-encrypting push configs needs {KEY_SETTING}")
        rewritten: list[tuple[PushConfigRow, dict[str, Any]]] = []
        for tid, configs in self._webhooks.items():  # every config opens, or nothing changes
            for cid, row in configs.items():
                if row.encrypted or has_secrets(row.config):
                    rewritten.append((row, cipher.reseal(clone(row.config), row.encrypted, tid, cid)))
        now = self.clock()
        for row, sealed in rewritten:
            row.config, row.encrypted, row.updated_at = sealed, True, now
        return len(rewritten)

    # --- deletion and retention --------------------------------------------------------------

    async def delete_task(self, task_id: IdLike, *, owner_did: str | None = None) -> bool:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=True) is None:
            return False
        self._forget_tasks({tid})
        return True

    async def purge(
        self,
        *,
        older_than: timedelta | datetime | None = None,
        states: Iterable[str] | None = None,
        owner_did: str | None = None,
        dry_run: bool = False,
    ) -> PurgeCounts:
        self._ensure_open()
        policy = PurgePolicy.of(older_than, states, owner_did, self.clock())
        doomed = {
            r.id for r in self._tasks.values() if policy.takes_task(r.updated_at, r.state, r.owner_did)
        }
        emptied = {self._tasks[t].context_id for t in doomed}
        contexts = [
            c.id for c in self._contexts.values()
            if not set(c.task_ids) - doomed
            and policy.takes_context(c.updated_at, c.owner_did, c.id in emptied)
        ]
        counts = no_counts()
        counts["tasks"] = len(doomed)
        for tid in doomed:
            attached = self._attached.get(tid, TaskAttachments())
            counts["feedback"] += len(attached.feedback_ids)
            counts["events"] += len(attached.event_ids)
            counts["push_configs"] += len(self._webhooks.get(tid, {}))
        counts["contexts"] = len(contexts)
        if not dry_run:
            self._forget_tasks(doomed)
            for cid in contexts:
                del self._contexts[cid]
        return counts
