"""Contexts in memory: load, update, append messages, list, owner, clear."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import ContextRow, window
from bindu_storage.types import ContextSummary, Message


class MemoryContexts(MemoryState):
    """The context operations of the ``Storage`` contract, on the in-memory tables."""

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
        ctx = self._drop_context(v.as_uuid(context_id, "context_id"))
        if ctx is not None:
            self._forget_tasks(set(ctx.task_ids))
