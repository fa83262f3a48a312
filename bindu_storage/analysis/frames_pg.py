"""Running a ``FrameQuery`` on PostgreSQL: discovery, then one query or keyset-paged chunks.

Memory stays constant while streaming: each chunk is one ``LIMIT`` query starting after the
key of the last row read (never ``OFFSET``), decoded and handed out before the next is read.
The flattened columns are planned once, before the first chunk, so every chunk has the same
columns and dtypes. A chunk interrupted by a recovery conflict or a lost connection is read
again from the same key (``PgReader.fetch``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pandas as pd

from bindu_storage.analysis.frames_columns import FlatColumn, PathInfo, build_frame, plan_columns, top_keys
from bindu_storage.analysis.frames_redact import is_secret_key, redact
from bindu_storage.analysis.frames_source import PgReader
from bindu_storage.analysis.frames_sql import FlatSource, FrameQuery
from bindu_storage.errors import InvalidValueError

Flat = list[tuple[str, FlatColumn]]
"""The flattened columns of a query, each with the JSONB expression it reads from."""


DISCOVERY_DEPTH, MAX_DEPTH = 4, 64
"""Discovery walks documents this deep at first, doubling while deeper objects remain."""


async def discover(reader: PgReader, source: FlatSource, limit: int | None) -> list[PathInfo]:
    """The key paths of a JSONB column over the selected rows, with their JSON types."""
    depth = DISCOVERY_DEPTH
    while True:
        sql, args = source.discover.discovery(
            depth, limit if source.limited else None, source.wanted, top_keys(source.wanted)
        )
        rows = await reader.fetch(sql, args)
        if depth >= MAX_DEPTH or not any(r["type"] == "deeper" for r in rows):
            break
        depth *= 2
    found: dict[tuple[str, ...], tuple[set[str], list[bool]]] = {}
    for r in rows:
        if r["type"] in ("object", "deeper"):
            continue
        types, all_int = found.setdefault(tuple(r["path"]), (set(), [True]))
        types.add(r["type"])
        if r["type"] == "number" and not r["all_int"]:
            all_int[0] = False
    return [PathInfo(path, frozenset(t), a[0]) for path, (t, a) in found.items()]


async def plan(reader: PgReader, query: FrameQuery, limit: int | None) -> Flat:
    """Discover the key paths of every flattened JSONB column and plan the columns."""
    flat: Flat = []
    for source in query.flats:
        infos = await discover(reader, source, limit)
        columns = plan_columns(
            source.prefix, infos, secret=is_secret_key, exclude=source.exclude, wanted=source.wanted
        )
        flat += [(source.doc, col) for col in columns]
    return flat


def decode_json(texts: Sequence[str | None]) -> list[Any]:
    """JSON texts (None for missing) decoded in one ``json.loads`` call, secrets redacted."""
    values = json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")
    for i, text in enumerate(texts):
        if text is not None and "{" in text:  # only an object has keys to redact
            values[i] = redact(values[i])
    return values


def decode(
    rows: Sequence[asyncpg.Record], query: FrameQuery, fixed: Sequence[tuple[str, str]], flat: Flat
) -> pd.DataFrame:
    """A frame from page rows (the query's select list, then ``_f<i>``, then the key)."""
    columns: dict[str, Sequence[Any]] = {}
    if rows:
        values = list(zip(*rows, strict=True))
        for i, (name, _) in enumerate(query.select):
            columns[name] = values[i]
        for j, (_, col) in enumerate(flat):
            column = values[len(query.select) + j]
            if col.kind == "object":
                column = decode_json(column)
            columns[col.name] = column
    return build_frame(fixed, [c for _, c in flat], columns, len(rows))


def _key(row: asyncpg.Record, query: FrameQuery) -> tuple[Any, ...]:
    return tuple(row[f"_k{i}"] for i in range(len(query.keys)))


async def read_frame(
    reader: PgReader, query: FrameQuery, fixed: Sequence[tuple[str, str]], limit: int | None
) -> pd.DataFrame:
    """The whole frame in one query."""
    if query.empty:
        return build_frame(fixed, [], {}, 0)
    flat = await plan(reader, query, limit)
    sql, args = query.page(flat, None, limit)
    return decode(await reader.fetch(sql, args), query, fixed, flat)


def progress_bar(total: int | None, desc: str) -> Any:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks, text in terminals)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the fast and notebooks extras
        raise InvalidValueError("progress=True needs tqdm: pip install 'bindu-storage[fast]'") from None
    return tqdm(total=total, desc=desc, unit="rows")


async def read_chunks(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    *,
    limit: int | None,
    chunksize: int,
    progress: bool,
    desc: str,
) -> AsyncIterator[pd.DataFrame]:
    """The frame as chunks of at most ``chunksize`` rows (one empty chunk when there are none)."""
    if query.empty:
        yield build_frame(fixed, [], {}, 0)
        return
    flat = await plan(reader, query, limit)
    bar = None
    if progress:
        sql, args = query.count(limit)
        bar = progress_bar(int((await reader.fetch(sql, args))[0]["n"]), desc)
    try:
        after: tuple[Any, ...] | None = None
        left = limit
        sent = False
        while left is None or left > 0:
            size = chunksize if left is None else min(chunksize, left)
            sql, args = query.page(flat, after, size)
            rows = await reader.fetch(sql, args)
            if not rows:
                break
            after = _key(rows[-1], query)
            if left is not None:
                left -= len(rows)
            frame = decode(rows, query, fixed, flat)
            del rows
            if bar is not None:
                bar.update(len(frame))
            sent = True
            yield frame
            if len(frame) < size:
                break
        if not sent:
            yield decode([], query, fixed, flat)
    finally:
        if bar is not None:
            bar.close()
