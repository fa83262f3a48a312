"""Reading a ``FrameQuery`` on PostgreSQL: discovery, then one query or keyset-paged chunks.

Rows arrive as CSV from ``COPY (SELECT ...) TO STDOUT`` and become columns in ``csv``
(no Python object per cell). Memory stays constant while streaming: each chunk is one ``LIMIT``
query starting after the key of the last row read (never ``OFFSET``), decoded and handed out
before the next is read. The flattened columns are planned once, before the first chunk, so
every chunk has the same columns and dtypes. A chunk interrupted by a recovery conflict or a
lost connection is read again from the same key (``PgReader``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from bindu_storage.analysis.frames._columns import FlatColumn, PathInfo, build_frame, plan_columns, top_keys
from bindu_storage.analysis.frames._pg.csv import frame_from_csv
from bindu_storage.analysis.frames._pg.paths import NOT_INT, OTHER_KEYS, TYPE_BITS, Guess
from bindu_storage.analysis.frames._pg.query import DocRows, FlatSource, FrameQuery
from bindu_storage.analysis.frames._pg.reader import PgReader
from bindu_storage.analysis.redact import is_secret_key
from bindu_storage.errors import InvalidValueError

log = logging.getLogger("bindu_storage.analysis.frames")

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
ANY_ROOT = 255 & ~OTHER_KEYS
"""The bits a document itself may have in a ``Guess``: any type, but no key the sample lacked."""


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


def known_keys(paths: Sequence[Path]) -> list[tuple[Path, tuple[str, ...]]]:
    """The document and every path, each with the keys seen under it (objects' known keys)."""
    children: dict[Path, set[str]] = {(): set()} | {path: set() for path in paths}
    for path in paths:
        children[path[:-1]].add(path[-1])
    return [(path, tuple(sorted(keys))) for path, keys in children.items()]


def guess(source: FlatSource, sample: Walk) -> Guess:
    """The sample's paths as a ``Guess``: each path may hold the types the sample saw there
    (objects only where it saw one; numbers only int64 where it saw only those)."""
    branches, paths = sample.branches(), []
    for path, keys in known_keys(sample.paths()):
        allowed = ANY_ROOT
        if path:
            types, all_int = sample.found.get(path, (set(), True))
            allowed = sum(TYPE_BITS[t] for t in types) | (TYPE_BITS["object"] if path in branches else 0)
            allowed |= NOT_INT if "number" in types and not all_int else 0
        paths.append((path, keys, allowed))
    return Guess(source.doc, tuple(paths))


async def discover(
    reader: PgReader, source: FlatSource, limit: int | None, guessing: bool = False
) -> tuple[list[PathInfo], Guess | None]:
    """The key paths of a JSONB column over the selected rows, with their JSON types; with
    ``guessing``, possibly only a guess to check in the page statement.

    Walking documents key by key (``jsonb_each``) costs a row per key. So the first
    ``SAMPLE_ROWS`` documents are walked. With ``guessing`` (a whole read of a source whose
    documents are the page's rows), their paths are the plan, and the page statement flags
    each document holding anything else (``Guess``); the caller plans again without guessing
    when one does. Otherwise one aggregate pass looks every path the sample holds up in every
    document (``verification``), which gives each path's types over all of them and flags
    documents with keys the sample lacked; only those documents are walked then. Either way
    the result is the walk of every document, whatever the sample.

    A column selection (``wanted``) is discovered the same way, every path included
    (``plan_columns`` keeps the wanted ones: the same columns as a walk of the wanted keys
    alone), so naming columns never costs more than the default; only when the sample holds
    more than ``MAX_VERIFIED_PATHS`` paths are the documents walked, restricted to the keys
    the selection can start with.
    """
    rows, sample_rows = DocRows(limit=limit if source.limited else None), SAMPLE_ROWS
    sample = await walk(reader, source, replace(rows, sample=sample_rows))
    if rows.limit is not None and rows.limit <= sample_rows:
        return sample.infos(), None
    paths = sample.paths()
    if len(paths) > MAX_VERIFIED_PATHS:
        return (await walk(reader, source, rows, source.wanted)).infos(), None
    if guessing and source.page_rows:
        return sample.infos(), guess(source, sample)
    checks = known_keys(paths)
    known = {path for path, _ in checks}
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
        result.found |= {path: info for path, info in extra.found.items() if path not in known}
    return result.infos(), None


async def plan(
    reader: PgReader, query: FrameQuery, limit: int | None, guessing: bool = False
) -> tuple[Flat, list[Guess]]:
    """Discover the key paths of every flattened JSONB column and plan the columns; with
    ``guessing``, the guesses the page statement must check (see ``discover``)."""
    flat: Flat = []
    guesses: list[Guess] = []
    for source in query.flats:
        if source.wanted == []:  # no column of this document is asked for: nothing to discover
            continue
        infos, guessed = await discover(reader, source, limit, guessing)
        columns = plan_columns(
            source.prefix, infos, secret=is_secret_key, exclude=source.exclude, wanted=source.wanted
        )
        flat += [(source.doc, col) for col in columns]
        guesses += [guessed] if guessed is not None else []
    return flat, guesses


async def read_page(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    flat: Flat,
    after: tuple[str, ...] | None,
    limit: int | None,
    keys: bool = True,
    arrow: bool = False,
    guesses: Sequence[Guess] = (),
) -> tuple[pd.DataFrame, tuple[str, ...] | None, bool]:
    """One page as a frame, (``keys``) the key of its last row (None when it is empty), and
    whether a row holds anything its ``guesses`` lack; ``arrow``: columns Arrow can hold stay
    the Arrow arrays parsed (``ArrowDtype``)."""
    page = query.page(flat, after, limit, keys, guesses)
    data = await reader.copy_csv(page.sql, page.params, page.pick, page.fallback)
    selected = [name for name, _ in query.select]
    flattened = [col for _, col in flat]
    key_count = len(query.keys) if keys else 0
    return frame_from_csv(
        data, selected, fixed, flattened, key_count, dict(query.joined), arrow, flags=len(guesses)
    )


async def read_frame(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    limit: int | None,
    arrow: bool = False,
) -> pd.DataFrame:
    """The whole frame in one query: its flattened columns guessed from a sample and checked
    in the same statement, read again with every document discovered if the guess was short."""
    if query.empty:
        return build_frame(fixed, [], {}, 0)
    flat, guesses = await plan(reader, query, limit, guessing=True)
    frame, _, outside = await read_page(reader, query, fixed, flat, None, limit, False, arrow, guesses)
    if outside:
        log.debug("a document holds key paths its sample lacked: discovering them all")
        flat, _ = await plan(reader, query, limit)
        frame, _, _ = await read_page(reader, query, fixed, flat, None, limit, keys=False, arrow=arrow)
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
    flat, _ = await plan(reader, query, limit)
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
            frame, last, _ = await read_page(reader, query, fixed, flat, after, size, arrow=arrow)
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
