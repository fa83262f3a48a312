"""Reading a ``FrameQuery`` on PostgreSQL: discovery, then one query or keyset-paged chunks.

Rows arrive as CSV from ``COPY (SELECT ...) TO STDOUT`` and become columns in ``csv``
(no Python object per cell). Memory stays constant while streaming: each chunk is one ``LIMIT``
query starting after the key of the last row read (never ``OFFSET``), decoded and handed out
before the next is read. The flattened columns are planned once, before the first chunk, so
every chunk has the same columns and dtypes. A whole read (one query) skips discovery's
verification pass when the sample is flat: it types the sampled keys from the page's own JSON
text (``guess``), and reads again after full discovery when the page shows what the sample
missed. A chunk interrupted by a recovery conflict or a lost connection is read again from the
same key (``PgReader``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from bindu_storage.analysis.frames._columns import FlatColumn, PathInfo, build_frame, plan_columns, top_keys
from bindu_storage.analysis.frames._pg.csv import frame_from_columns, frame_from_csv, read_csv
from bindu_storage.analysis.frames._pg.guess import CHECK, Guess, flagged, json_infos, to_plain
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

GUESS_MAX_KEYS = 4
"""The most sampled keys a whole read types from its own page instead of verifying them first.

Each key read as JSON text (``->``) instead of its value (``->>``) and typed on the client costs
about what the verification pass saves once a document has a dozen keys (200,000 tasks with 13
metadata keys: no faster; feedback's 2 keys, whose verification joins the tasks: 15% faster),
so the guess is kept for documents with few keys.
"""

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


async def walk(reader: PgReader, source: FlatSource, rows: DocRows, wanted: list[str] | None = None) -> Walk:
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


async def discover(
    reader: PgReader, source: FlatSource, limit: int | None, sample: Walk | None = None
) -> list[PathInfo]:
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
    the selection can start with. ``sample``: the sample's walk, when already done.
    """
    rows, sample_rows = DocRows(limit=limit if source.limited else None), SAMPLE_ROWS
    if sample is None:
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
    """The whole frame in one query.

    A flattened source whose sample is flat is not verified but typed from the page's own
    values (``guess``); when the page shows the sample missed paths, the columns are discovered
    in full and the page read again.
    """
    if query.empty:
        return build_frame(fixed, [], {}, 0)
    planned: list[Flat | Guess] = []
    for index, source in enumerate(query.flats):
        if source.wanted == []:  # no column of this document is asked for: nothing to discover
            continue
        rows = DocRows(limit=limit if source.limited else None)
        sample = await walk(reader, source, replace(rows, sample=SAMPLE_ROWS))
        guess = _guess(index, source, sample, limit)
        planned.append(guess if guess is not None else await _plan_source(reader, source, limit, sample))
    if any(isinstance(entry, Guess) for entry in planned):
        frame = await _read_guessed(reader, query, fixed, planned, limit, arrow)
        if frame is not None:
            return frame
        flat = await plan(reader, query, limit)
    else:
        flat = [pair for entry in planned if not isinstance(entry, Guess) for pair in entry]
    frame, _ = await read_page(reader, query, fixed, flat, None, limit, keys=False, arrow=arrow)
    return frame


def _guess(index: int, source: FlatSource, sample: Walk, limit: int | None) -> Guess | None:
    """A guess from a flat sample (top-level keys holding no object), when one applies."""
    if not source.limited or (limit is not None and limit <= SAMPLE_ROWS):
        return None  # other rows than the page's; or the sample is every row
    if sample.objects or len(sample.found) > GUESS_MAX_KEYS or any(len(p) != 1 for p in sample.found):
        return None
    if any(len(path) != 1 for path in source.exclude):
        return None
    known = sorted(path[0] for path in sample.found)
    excluded = {path[0] for path in source.exclude}
    top = set(top_keys(source.wanted) or ())
    wanted = source.wanted

    def relevant(key: str) -> bool:  # a key whose columns a selection can keep (see discovery)
        return wanted is None or key in top or any(key.startswith(w + ".") for w in wanted)

    read = tuple(k for k in known if k not in excluded and relevant(k))
    return Guess(index, source.doc, read, tuple(known), tuple(k for k in known if k in excluded))


async def _plan_source(reader: PgReader, source: FlatSource, limit: int | None, sample: Walk) -> Flat:
    infos = await discover(reader, source, limit, sample)
    columns = plan_columns(
        source.prefix, infos, secret=is_secret_key, exclude=source.exclude, wanted=source.wanted
    )
    return [(source.doc, col) for col in columns]


async def _read_guessed(
    reader: PgReader,
    query: FrameQuery,
    fixed: Sequence[tuple[str, str]],
    planned: Sequence[Flat | Guess],
    limit: int | None,
    arrow: bool,
) -> pd.DataFrame | None:
    """The whole frame with guessed sources typed from their values; None when a guess failed."""
    guesses = [entry for entry in planned if isinstance(entry, Guess)]
    page_flat: Flat = []
    for entry in planned:
        page_flat += [(entry.doc, col) for col in entry.columns()] if isinstance(entry, Guess) else entry
    checks = [(g.doc, g.known, g.excluded) for g in guesses]
    page = query.page(page_flat, None, limit, keys=False, checks=checks)
    data = await reader.copy_csv(page.sql, page.params, page.pick, page.fallback)
    kind_of = dict(fixed)
    selected = [name for name, _ in query.select]
    kinds = [kind_of[name] for name in selected] + [col.kind for _, col in page_flat] + [CHECK] * len(checks)
    columns = read_csv(data, kinds)
    if any(flagged(check) for check in columns[len(columns) - len(checks) :]):
        return None
    length = len(columns[0]) if columns else 0
    parsed = dict(zip([*selected, *(col.name for _, col in page_flat)], columns, strict=False))
    flat: list[FlatColumn] = []
    for entry in planned:
        if not isinstance(entry, Guess):
            flat += [col for _, col in entry]
            continue
        texts = {key: parsed.pop(col.name) for key, col in zip(entry.read, entry.columns(), strict=True)}
        try:
            found = {key: json_infos(key, texts[key]) for key in entry.read}
        except LookupError:  # an object under a key: paths the sample lacks
            return None
        source = query.flats[entry.index]
        infos = [info for info in found.values() if info is not None]
        for col in plan_columns(
            source.prefix, infos, secret=is_secret_key, exclude=source.exclude, wanted=source.wanted
        ):
            key = col.paths[0][0]
            if len(col.paths[0]) == 1 and key in texts:
                parsed[col.name] = to_plain(texts[key], found[key], col.kind)
            flat.append(col)
    return frame_from_columns(parsed, length, fixed, flat, dict(query.joined), arrow)


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
