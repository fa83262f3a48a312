"""The in-memory backend's state, declared once: its tables, clock and cipher; and its lifecycle.

Every topic of ``InMemoryStorage`` (``tasks``, ``contexts``, ``feedback``, ``push_configs``,
``deletion``, ``records``, ``changes``) subclasses ``MemoryState``, so each reads the same typed
attributes; the few helpers more than one topic needs live here too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from bindu_storage.errors import TaskOwnershipError
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import Storage
from bindu_storage.storage.memory.rows import ContextRow, PushConfigRow, TaskRow, utc_now
from bindu_storage.storage.push_configs import make_cipher
from bindu_storage.types import FeedbackRecord


class MemoryState(Storage):
    """The tables (records of ``memory.rows``), the clock, the push-config cipher; open or closed."""

    def __init__(
        self, clock: Callable[[], datetime] | None = None, *, push_config_key: Any = None
    ) -> None:
        self.clock: Callable[[], datetime] = clock or utc_now
        self._push_cipher = make_cipher(push_config_key)  # storage.push_configs; None: plain
        self._tasks: dict[UUID, TaskRow] = {}  # insertion order = creation order
        self._contexts: dict[UUID, ContextRow] = {}
        # The same rows by their canonical id text: a call naming a stored task or context by
        # that text (the usual form) finds it without parsing a UUID.
        self._task_texts: dict[str, TaskRow] = {}
        self._context_texts: dict[str, ContextRow] = {}
        self._feedback: dict[int, FeedbackRecord] = {}
        self._events: dict[int, dict[str, Any]] = {}  # the change feed's rows (storage.feed)
        self._webhooks: dict[UUID, dict[str, PushConfigRow]] = {}  # task -> config id -> row
        self._push_config_seq = itertools.count(1)
        self._feedback_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return f"InMemoryStorage(tasks={len(self._tasks)}, contexts={len(self._contexts)}{closed})"

    # --- shared by several topics ------------------------------------------------------------

    def _task_of(self, task_id: object, name: str = "task_id") -> tuple[UUID, TaskRow | None]:
        """``task_id`` as a UUID (``validate.as_uuid``) and its row, if stored."""
        if type(task_id) is str:
            row = self._task_texts.get(task_id)
            if row is not None:
                return row.id, row
        tid = v.as_uuid(task_id, name)
        return tid, self._tasks.get(tid)

    def _context_of(self, context_id: object) -> tuple[UUID, ContextRow | None]:
        """``context_id`` as a UUID (``validate.as_uuid``) and its row, if stored."""
        if type(context_id) is str:
            ctx = self._context_texts.get(context_id)
            if ctx is not None:
                return ctx.id, ctx
        cid = v.as_uuid(context_id, "context_id")
        return cid, self._contexts.get(cid)

    def _context(self, cid: UUID, owner_did: str | None, now: datetime) -> ContextRow:
        ctx = self._contexts.get(cid)
        if ctx is None:
            ctx = self._contexts[cid] = ContextRow(cid, owner_did, created_at=now, updated_at=now)
            self._context_texts[str(cid)] = ctx
        return ctx

    def _add_task(self, row: TaskRow) -> None:
        """Store a new row, by its id and by its id's canonical text."""
        self._tasks[row.id] = row
        self._task_texts[str(row.id)] = row

    def _drop_context(self, cid: UUID) -> ContextRow | None:
        ctx = self._contexts.pop(cid, None)
        if ctx is not None:
            del self._context_texts[str(cid)]
        return ctx

    def _forget_tasks(self, task_ids: set[UUID]) -> None:
        for tid in task_ids:
            row = self._tasks.pop(tid, None)
            self._webhooks.pop(tid, None)
            if row is None:
                continue
            del self._task_texts[str(tid)]
            ctx = self._contexts.get(row.context_id)
            if ctx is not None and tid in ctx.task_ids:
                ctx.task_ids.remove(tid)
            for fid in row.feedback_ids or ():
                del self._feedback[fid]
            for eid in row.event_ids:
                del self._events[eid]

    def _scoped_task(self, tid: UUID, owner_did: str | None, *, write: bool) -> TaskRow | None:
        """The task, or None when unknown or (for a read) another caller's; a write of another
        caller's task raises ``TaskOwnershipError``."""
        row = self._tasks.get(tid)
        if row is None or owner_did is None or row.owner_did == owner_did:
            return row
        if write:
            raise TaskOwnershipError(tid, owner_did)
        return None

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Reopen the storage if closed (nothing to acquire); the data is still there."""
        self._closed = False

    async def close(self) -> None:
        """Close the storage; the data stays (unlike upstream, close() never wipes it)."""
        self._closed = True
