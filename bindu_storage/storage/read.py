"""The read capability: what analysis (frames, filters, diagnostics) needs from a storage.

Analysis never looks at a backend's class or private state. It reads a storage one of two ways:

* **As records**, through the ``Storage`` contract itself (``task_records``, ``context_records``,
  ``feedback_records``, ``task_events``): every backend has them, so every frame and filter works
  on any storage (each record a copy).
* **As shared snapshots**, when the storage keeps its records in process memory and lends them
  without copies by implementing ``RecordSnapshots`` (the in-memory backend): the frames are then
  the only copy of the data they show.
* **With SQL**, when the storage keeps its rows in PostgreSQL tables of the documented schema and
  says so by implementing ``SqlReadable``. Frames then run one ``COPY (SELECT …)`` per chunk,
  filters run ``@>`` on the GIN-indexed columns, and diagnostics read the pool's counters.

A third backend gets every frame by implementing the ``Storage`` contract; it gets the fast path
too by implementing the five members of ``SqlReadable``. ``sql_readable`` and
``record_snapshots`` tell which applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import asyncpg

from bindu_storage.types import FeedbackRecord, TaskRecord


@dataclass(frozen=True)
class PoolStats:
    """The counters of a connection pool at one moment."""

    size: int
    """Connections open now."""
    min_size: int
    """Connections the pool keeps open at least."""
    max_size: int
    """Connections the pool opens at most."""
    idle: int
    """Open connections no one holds."""

    @property
    def in_use(self) -> int:
        """Open connections someone holds."""
        return self.size - self.idle


@runtime_checkable
class SqlReadable(Protocol):
    """A storage whose rows analysis may read with SQL on the documented schema."""

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding the Bindu tables."""
        ...

    @property
    def connection_dsn(self) -> str:
        """The DSN with its password, for companion read-only sessions; never display it."""
        ...

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection for the block, connecting first if needed (not if closed)."""
        ...

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of one read statement, with the storage's retries, planned for its values."""
        ...

    def pool_stats(self) -> PoolStats | None:
        """The pool's counters, or ``None`` while no pool is open."""
        ...


def sql_readable(source: object) -> SqlReadable | None:
    """``source`` when analysis may read it with SQL, else ``None`` (read it as records)."""
    return source if isinstance(source, SqlReadable) else None


@runtime_checkable
class RecordSnapshots(Protocol):
    """A storage in process memory that lends analysis its stored records without copying them.

    The records share the storage's values: read them, never change them. The storage never
    changes a lent value in place (a write replaces it), so a snapshot keeps showing the moment
    it was taken. Both are taken without awaiting, each consistent with itself.
    """

    def task_snapshot(
        self, since: datetime | None = None, *, task_ids: Iterable[UUID] | None = None
    ) -> list[TaskRecord]:
        """``task_records(since=since)`` without the copies, oldest first; with ``task_ids``,
        only those tasks (unknown ids skipped), in the order given."""
        ...

    def feedback_snapshot(self) -> list[FeedbackRecord]:
        """``feedback_records()`` without the copies, oldest first."""
        ...


def record_snapshots(source: object) -> RecordSnapshots | None:
    """``source`` when it lends its records as shared snapshots, else ``None``."""
    return source if isinstance(source, RecordSnapshots) else None
