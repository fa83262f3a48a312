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
from bindu_storage.storage.base import Storage
from bindu_storage.storage.memory.rows import (
    ContextRow,
    PushConfigRow,
    TaskAttachments,
    TaskRow,
    utc_now,
)
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

    # --- shared by several topics ------------------------------------------------------------

    def _context(self, cid: UUID, owner_did: str | None, now: datetime) -> ContextRow:
        ctx = self._contexts.get(cid)
        if ctx is None:
            ctx = self._contexts[cid] = ContextRow(cid, owner_did, created_at=now, updated_at=now)
        return ctx

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
