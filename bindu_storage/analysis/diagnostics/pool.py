"""The storage's own asyncpg pool: how full it is.

Read from the pool's public counters (``get_size``, ``get_min_size``, ``get_max_size``,
``get_idle_size``), not from the server. Columns: ``connected, size, min_size, max_size, idle,
in_use, saturation_percent`` (in use as a share of ``max_size``). A storage that is not connected
yet gives one row with ``connected`` false and empty figures.
"""

from __future__ import annotations

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.query import records_frame
from bindu_storage.errors import InvalidTypeError
from bindu_storage.storage.postgres import PostgresStorage

COLUMNS: dict[str, tuple[str, ...]] = {
    "pool_stats": ("connected", "size", "min_size", "max_size", "idle", "in_use", "saturation_percent"),
}
"""The documented columns of each diagnostic of this topic."""

_TYPES = ("bool", "int4", "int4", "int4", "int4", "int4", "float8")


def pool_stats(source: PostgresStorage | asyncpg.Pool | None) -> pd.DataFrame:
    """One row describing the pool of a ``PostgresStorage`` (or an asyncpg pool itself)."""
    if isinstance(source, PostgresStorage):
        pool = source.pool
    elif source is None or isinstance(source, asyncpg.Pool):
        pool = source
    else:
        raise InvalidTypeError(f"pool_stats needs a PostgresStorage or an asyncpg pool, got {source!r}")
    if pool is None or pool.is_closing():
        row: tuple[object, ...] = (False, None, None, None, None, None, None)
    else:
        size, idle, max_size = pool.get_size(), pool.get_idle_size(), pool.get_max_size()
        in_use = size - idle
        row = (True, size, pool.get_min_size(), max_size, idle, in_use, round(100.0 * in_use / max_size, 1))
    return records_frame([row], COLUMNS["pool_stats"], _TYPES)
