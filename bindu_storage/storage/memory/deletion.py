"""Deletion and retention in memory: delete a task, purge by policy, clear everything."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.retention import PurgeCounts, PurgePolicy, no_counts


class MemoryDeletion(MemoryState):
    """``delete_task``, ``purge`` (``storage.retention``) and ``clear_all`` on the in-memory tables."""

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
            row = self._tasks[tid]
            counts["feedback"] += len(row.feedback_ids or ())
            counts["events"] += len(row.event_ids)
            counts["push_configs"] += len(self._webhooks.get(tid, {}))
        counts["contexts"] = len(contexts)
        if not dry_run:
            self._forget_tasks(doomed)
            for cid in contexts:
                self._drop_context(cid)
        return counts

    async def clear_all(self) -> None:
        self._ensure_open()
        self._tasks.clear()
        self._contexts.clear()
        self._task_texts.clear()
        self._context_texts.clear()
        self._feedback.clear()
        self._events.clear()
        self._webhooks.clear()
