"""The one read path of every frame: open the source, read it with SQL or as records, shape the result.

A frame is a ``Plan``: its fixed columns, the SQL it runs on a PostgreSQL schema
(``_pg.statements``) and the same frame computed from a storage's records (``_memory``).
``read`` runs it as one frame (``chunksize=None``: a coroutine) or as chunks (an async
iterator), then keeps the ``columns=`` asked for and applies ``dtype_backend=``. On PostgreSQL
the column selection is pushed into the SQL: only the selected fixed columns are selected, and
a JSON document none of whose columns is selected is neither discovered nor read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from bindu_storage.analysis.dtypes import apply_dtype_backend
from bindu_storage.analysis.frames._columns import FlatColumn, build_frame, series
from bindu_storage.analysis.frames._options import FrameOptions
from bindu_storage.analysis.frames._pg.query import FrameQuery
from bindu_storage.analysis.frames._pg.read import progress_bar, read_chunks, read_frame
from bindu_storage.analysis.frames._pg.reader import PgReader, SchemaInfo, open_source
from bindu_storage.storage.base import Storage

Fixed = Sequence[tuple[str, str]]
"""(name, kind) of a frame's fixed columns."""
Records = Callable[[Storage], Awaitable[tuple[dict[str, list[Any]], list[FlatColumn]]]]
"""A frame's columns computed from a storage's records, with its flattened columns."""


@dataclass(frozen=True)
class Plan:
    """How one call of a frame reads: with SQL on a schema, or from a storage's records."""

    fixed: Fixed
    sql: Callable[[SchemaInfo], FrameQuery]
    records: Records


def without_flat(load: Callable[[Storage], Awaitable[dict[str, list[Any]]]]) -> Records:
    """``Records`` for a frame without flattened columns."""

    async def records(storage: Storage) -> tuple[dict[str, list[Any]], list[FlatColumn]]:
        return await load(storage), []

    return records


def read(
    source: object, plan: Plan, options: FrameOptions
) -> Coroutine[Any, Any, pd.DataFrame] | AsyncIterator[pd.DataFrame]:
    """The frame (a coroutine), or its chunks (an async iterator) when ``options.chunksize`` is set."""
    if options.chunksize is None:
        return _whole(source, plan, options)
    return _chunks(source, plan, options, options.chunksize)


async def _whole(source: object, plan: Plan, options: FrameOptions) -> pd.DataFrame:
    async with open_source(source, options.schema) as src:
        if isinstance(src, PgReader):
            query, fixed = narrow(plan.sql(await src.info()), plan.fixed, options.columns)
            arrow = options.dtype_backend == "pyarrow"
            return finish(await read_frame(src, query, fixed, options.limit, arrow), options)
        return finish(await _records_frame(src, plan), options)


async def _chunks(
    source: object, plan: Plan, options: FrameOptions, chunksize: int
) -> AsyncIterator[pd.DataFrame]:
    async with open_source(source, options.schema) as src:
        if isinstance(src, PgReader):
            query, fixed = narrow(plan.sql(await src.info()), plan.fixed, options.columns)
            chunks = read_chunks(
                src, query, fixed, limit=options.limit, chunksize=chunksize, progress=options.progress,
                desc=options.name, arrow=options.dtype_backend == "pyarrow",
            )
            async for chunk in chunks:
                yield finish(chunk, options)
            return
        frame = finish(await _records_frame(src, plan), options)
        bar = progress_bar(len(frame), options.name) if options.progress else None
        try:
            for start in range(0, max(len(frame), 1), chunksize):
                chunk = frame.iloc[start : start + chunksize].reset_index(drop=True)
                if bar is not None:
                    bar.update(len(chunk))
                yield chunk
        finally:
            if bar is not None:
                bar.close()


async def _records_frame(storage: Storage, plan: Plan) -> pd.DataFrame:
    columns, flat = await plan.records(storage)
    length = len(next(iter(columns.values()))) if columns else 0
    return build_frame(plan.fixed, flat, columns, length)


def narrow(query: FrameQuery, fixed: Fixed, columns: list[str] | None) -> tuple[FrameQuery, Fixed]:
    """The query selecting only the fixed columns of ``columns`` (at least one: a row needs a field)."""
    if columns is None or query.empty:
        return query, fixed
    wanted = set(columns)
    kept = [(name, kind) for name, kind in fixed if name in wanted] or list(fixed[:1])
    names = {name for name, _ in kept}
    select = tuple(item for item in query.select if item[0] in names)
    whole = query.whole_select
    if whole is not None:
        whole = tuple(item for item in whole if item[0] in names)
    return replace(query, select=select, whole_select=whole), kept


def finish(frame: pd.DataFrame, options: FrameOptions) -> pd.DataFrame:
    """The ``columns`` asked for, in their order, then the ``dtype_backend``.

    A flattened column asked for that no document holds as a value (only objects under it) is
    all missing, as an ``object`` column.
    """
    if options.columns is not None:
        data = {
            name: frame[name] if name in frame.columns else series([None] * len(frame), "object")
            for name in options.columns
        }
        frame = pd.DataFrame(data, index=frame.index, copy=False)
    return apply_dtype_backend(frame, options.dtype_backend)
