"""Reading a ``FrameQuery`` on PostgreSQL: discovery, then one query or keyset-paged chunks.

Rows arrive as CSV from ``COPY (SELECT ...) TO STDOUT`` and become columns in ``csv``
(no Python object per cell). Memory stays constant while streaming: each chunk is one ``LIMIT``
query starting after the key of the last row read (never ``OFFSET``), decoded and handed out
before the next is read. The flattened columns are planned once, before the first chunk, so
every chunk has the same columns and dtypes. A chunk interrupted by a recovery conflict or a
lost connection is read again from the same key (``PgReader``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from bindu_storage.analysis.frames._columns import FlatColumn, PathInfo, build_frame, plan_columns, top_keys
from bindu_storage.analysis.frames._pg.csv import frame_from_csv
from bindu_storage.analysis.frames._pg.query import (
    NOT_INT,
    OTHER_KEYS,
    TYPE_BITS,
    DocRows,
    FlatSource,
    FrameQuery,
)
from bindu_storage.analysis.frames._pg.reader import PgReader
from bindu_storage.analysis.redact import is_secret_key
from bindu_storage.errors import InvalidValueError

Flat = list[tuple[str, FlatColumn]]
"""The flattened columns of a query, each with the JSONB expression it reads from."""


DISCOVERY_DEPTH = 2
"""Levels of keys one walk round reads; objects deeper down are walked by later rounds."""

SAMPLE_ROWS = 1000
"""Documents whose walk guesses the key paths, before one pass over all of them checks the guess."""

MAX_VERIFIED_PATHS = 256
"""Past this many key paths in the sample, looking each up in every document costs more than
walking every document."""

Path = tuple[str, ...]


@dataclass
class Walk:
    """What discovery learnt of a JSONB column: the types of each key path's values."""

    found: dict[Path, tuple[set[str], bool]] = field(default_factory=dict)
    """Path → (JSON types of its non-object values, whether every number is an int64)."""
    objects: set[Path] = field(default_factory=set)
    """Paths holding an object in some document."""

    def branches(self) -> set[Path]:
        """The paths holding an object somewhere: objects seen, and ancestors of any path."""
        seen = set(self.found) | self.objects
        return self.objects | {path[:i] for path in seen for i in range(1, len(path))}

    def paths(self) -> list[Path]:
        """Every path seen, objects included (not the document itself)."""
        return sorted(set(self.found) | self.branches())

    def infos(self) -> list[PathInfo]:
        """The paths holding non-object values, as ``plan_columns`` takes them."""
        branches = self.branches()
        return [
            PathInfo(path, frozenset(types), all_int, path in branches)
            for path, (types, all_int) in self.found.items()
        ]


async def walk(
    reader: PgReader, source: FlatSource, rows: DocRows, wanted: list[str] | None = None
) -> Walk:
    """Walk every document of ``rows``: ``DISCOVERY_DEPTH`` levels from the documents, then
    from the objects the previous round found at its deepest level, until none is left."""
    result = Walk()
    roots: list[Path] = [()]
    while roots:
        sql, params = source.discover.discovery(roots, DISCOVERY_DEPTH, rows, wanted, top_keys(wanted))
        deeper: set[Path] = set()
        for r in await reader.fetch(sql, params=params):
            keys = [r[f"k{i}"] for i in range(1, DISCOVERY_DEPTH + 1)]
            path = roots[r["root"]] + tuple(k for k in keys if k is not None)
            kind = r["type"]
            if kind in ("object", "deeper"):
                result.objects.add(path)
                if kind == "deeper":
                    deeper.add(path)
                continue
            types, all_int = result.found.get(path, (set(), True))
            result.found[path] = (types | {kind}, all_int and (kind != "number" or bool(r["all_int"])))
        roots = sorted(deeper)
    return result


async def discover(reader: PgReader, source: FlatSource, limit: int | None) -> list[PathInfo]:
    """The key paths of a JSONB column over the selected rows, with their JSON types.

    Walking documents key by key (``jsonb_each``) costs a row per key. So the first
    ``SAMPLE_ROWS`` documents are walked, and one aggregate pass looks every path they hold up
    in every document (``verification``), which gives each path's types over all of them and
    flags documents with keys the sample lacked; only those documents are walked then. The
    result is the walk of every document, whatever the sample.

    A column selection (``wanted``) is discovered the same way, every path included
    (``plan_columns`` keeps the wanted ones: the same columns as a walk of the wanted keys
    alone), so naming columns never costs more than the default; only when the sample holds
    more than ``MAX_VERIFIED_PATHS`` paths are the documents walked, restricted to the keys
    the selection can start with.
    """
    rows, sample_rows = DocRows(limit=limit if source.limited else None), SAMPLE_ROWS
    sample = await walk(reader, source, replace(rows, sample=sample_rows))
    if rows.limit is not None and rows.limit <= sample_rows:
        return sample.infos()
    paths = sample.paths()
    if len(paths) > MAX_VERIFIED_PATHS:
        return (await walk(reader, source, rows, source.wanted)).infos()
    children: dict[Path, set[str]] = {(): set()} | {path: set() for path in paths}
    for path in paths:
        children[path[:-1]].add(path[-1])
    checks = [(path, tuple(sorted(keys))) for path, keys in children.items()]
    sql, params = source.discover.verification(checks, rows)
    masks = (await reader.fetch(sql, params=params))[0]
    result, other = Walk(), []
    for i, (path, keys) in enumerate(checks):
        mask = masks[f"m{i}"] or 0
        if mask & OTHER_KEYS:
            other.append((path, keys))
        if mask & TYPE_BITS["object"] and path:
            result.objects.add(path)
        types = {name for name, bit in TYPE_BITS.items() if name != "object" and mask & bit}
        if types and path:
            result.found[path] = (types, not mask & NOT_INT)
    if other:
        extra = await walk(reader, source, replace(rows, other_keys=tuple(other)))
        result.objects |= extra.objects
        result.found |= {path: info for path, info in extra.found.items() if path not in children}
    return result.infos()


async def plan(reader: PgReader, query: FrameQuery, limit: int | None) -> Flat:
    """Discover the key paths of every flattened JSONB column and plan the columns."""
    flat: Flat = []
    for source in query.flats:
        if source.wanted == []:  # no column of this document is asked for: nothing to discover
            continue
        infos = await discover(reader, source, limit)
        columns = plan_columns(
            source.prefix, infos, secret=is_secret_key, exclude=source.exclude, wanted=source.wanted
        )
        flat += [(source.doc, col) for col in columns]
    return flat


async def read_page(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    flat: Flat,
    after: tuple[str, ...] | None,
    limit: int | None,
    keys: bool = True,
    arrow: bool = False,
) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """One page as a frame, and (``keys``) the key of its last row (None when it is empty);
    ``arrow``: columns Arrow can hold stay the Arrow arrays parsed (``ArrowDtype``)."""
    page = query.page(flat, after, limit, keys)
    data = await reader.copy_csv(page.sql, page.params, page.pick, page.fallback)
    selected = [name for name, _ in query.select]
    flattened = [col for _, col in flat]
    key_count = len(query.keys) if keys else 0
    return frame_from_csv(data, selected, fixed, flattened, key_count, dict(query.joined), arrow)


async def read_frame(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    limit: int | None,
    arrow: bool = False,
) -> pd.DataFrame:
    """The whole frame in one query."""
    if query.empty:
        return build_frame(fixed, [], {}, 0)
    flat = await plan(reader, query, limit)
    frame, _ = await read_page(reader, query, fixed, flat, None, limit, keys=False, arrow=arrow)
    return frame


def progress_bar(total: int | None, desc: str) -> Any:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks, text in terminals)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency; only a broken install lacks it
        raise InvalidValueError("progress=True needs tqdm (a core dependency): pip install tqdm") from None
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
    arrow: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """The frame as chunks of at most ``chunksize`` rows (one empty chunk when there are none)."""
    if query.empty:
        yield build_frame(fixed, [], {}, 0)
        return
    flat = await plan(reader, query, limit)
    bar = None
    if progress:
        sql, params = query.count(limit)
        bar = progress_bar(int((await reader.fetch(sql, params=params))[0]["n"]), desc)
    try:
        after: tuple[str, ...] | None = None
        left = limit
        sent = False
        while left is None or left > 0:
            size = chunksize if left is None else min(chunksize, left)
            frame, last = await read_page(reader, query, fixed, flat, after, size, arrow=arrow)
            if last is None:
                break
            after = last
            if left is not None:
                left -= len(frame)
            if bar is not None:
                bar.update(len(frame))
            sent = True
            yield frame
            if len(frame) < size:
                break
        if not sent:
            yield build_frame(fixed, [col for _, col in flat], {}, 0)
    finally:
        if bar is not None:
            bar.close()
