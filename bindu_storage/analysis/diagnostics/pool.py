"""The storage's own connection pool: how full it is.

Read from the storage's pool counters (``SqlReadable.pool_stats``), not from the server.
Columns: ``connected, size, min_size, max_size, idle, in_use, saturation_percent`` (in use as a
share of ``max_size``). A storage that is not connected yet (or no storage at all) gives one row
with ``connected`` false and empty figures.
"""

from __future__ import annotations

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import diagnostic, records_frame
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.analysis.dtypes import DtypeBackend
from bindu_storage.errors import InvalidTypeError
from bindu_storage.storage.read import PoolStats, SqlReadable, sql_readable

COLUMNS = ("connected", "size", "min_size", "max_size", "idle", "in_use", "saturation_percent")
"""The columns of ``pool_stats`` (computed in Python: there is no statement to read them from)."""

_TYPES = ("bool", "int4", "int4", "int4", "int4", "int4", "float8")


def _counters(source: object) -> PoolStats | None:
    if source is None or isinstance(source, PoolStats):
        return source
    if (readable := sql_readable(source)) is not None:
        return readable.pool_stats()
    if isinstance(source, asyncpg.Pool):
        if source.is_closing():
            return None
        return PoolStats(source.get_size(), source.get_min_size(), source.get_max_size(),
                         source.get_idle_size())
    raise InvalidTypeError(
        f"pool_stats needs a storage readable with SQL (a PostgresStorage) or an asyncpg pool, got {source!r}"
    )


def pool_stats(
    source: SqlReadable | asyncpg.Pool | PoolStats | None, dtype_backend: DtypeBackend | None = None
) -> pd.DataFrame:
    """One row describing the pool of a storage (or an asyncpg pool itself)."""
    stats = _counters(source)
    if stats is None:
        row: tuple[object, ...] = (False, None, None, None, None, None, None)
    else:
        saturation = round(100.0 * stats.in_use / stats.max_size, 1)
        row = (True, stats.size, stats.min_size, stats.max_size, stats.idle, stats.in_use, saturation)
    return records_frame([row], COLUMNS, _TYPES, dtype_backend)


class PoolTopic(Session):
    """The pool of the storage the diagnostics were given."""

    @diagnostic(columns=COLUMNS)
    async def pool_stats(self) -> pd.DataFrame:
        """One row: the storage's pool (``connected`` false without a storage or a pool)."""
        return pool_stats(self.storage, self.dtype_backend)
