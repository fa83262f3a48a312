"""The change feed in memory (``storage.feed``): the logged changes after a cursor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.feed import DEFAULT_FEED_LIMIT, Change, change_from_row, check_feed_request
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import window


class MemoryChanges(MemoryState):
    """``changes``: the feed's rows in id order, filtered by task and owner."""

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
            row = self._tasks.get(tid)
            events = (self._events[i] for i in row.event_ids) if row is not None else ()
        if owner is not None:
            events = (e for e in events if self._tasks[e["task_id"]].owner_did == owner)
        chosen = window((e for e in events if e["id"] > after), limit, 0)
        return [clone(change_from_row(e, e["id"])) for e in chosen]
