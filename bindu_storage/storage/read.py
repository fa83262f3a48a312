"""The read capability: what analysis (frames, filters, diagnostics) needs from a storage.

Analysis never looks at a backend's class or private state. It reads a storage one of two ways:

* **As records**, through the ``Storage`` contract itself (``task_records``, ``context_records``,
  ``feedback_records``, ``task_events``): every backend has them, so every frame and filter works
  on any storage. This is how the in-memory backend is read (a copy-on-read snapshot).
* **With SQL**, when the storage keeps its rows in PostgreSQL tables of the documented schema and
  says so by implementing ``SqlReadable``. Frames then run one ``COPY (SELECT …)`` per chunk,
  filters run ``@>`` on the GIN-indexed columns, and diagnostics read the pool's counters.

A third backend gets every frame by implementing the ``Storage`` contract; it gets the fast path
too by implementing the five members of ``SqlReadable``. ``sql_readable`` tells which applies.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import asyncpg


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
