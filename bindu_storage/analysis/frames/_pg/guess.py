"""A whole read's flattened columns from a sampled guess, typed on the client from JSON text.

Discovery proper (``read.discover``) walks a sample of documents, then looks every path it found
up in every document in a second full pass (the verification), before the page statement reads
them all again. A whole read (no chunks: every page row is read at once) can skip that pass when
the sample is flat, every key holding scalars or arrays, never an object:

* the page reads each sampled key's value as JSON text (``doc -> key``, ``guess`` columns), and
  one flag per row: whether the document holds a key outside the sample, or an object under a
  sampled key that is not read (the keys with columns of their own, ``FlatSource.exclude``);
* the client takes each value's JSON type from its first character (``"`` string, ``t``/``f``
  boolean, ``n`` null, ``[`` array, ``{`` object, else number) and whether every number is an
  int64 (no ``.``, and within range: jsonb never writes an exponent), which is what discovery
  would have found for these rows, and plans the columns with ``plan_columns``;
* each value is then converted to the text the planned column's SQL would have given
  (``to_plain``), so the frame is decoded as before, redaction included.

A flagged row, or an object under a key read, means the sample missed paths: the read falls back
to full discovery and a second page (``read.read_frame``). This holds only when the discovery
rows are the page rows (``FlatSource.limited``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from bindu_storage.analysis.frames._columns import INT64_MAX, INT64_MIN, FlatColumn, PathInfo

GUESS = "guess"
"""The kind of a column read as JSON text for a guessed source."""
CHECK = "check"
"""The kind of a guessed source's per-row flag (keys outside the guess, objects under excluded keys)."""

_NULL = pa.scalar(None, pa.string())


@dataclass(frozen=True)
class Guess:
    """A flattened source whose columns are planned from the page's own values."""

    index: int
    """The source's place in ``FrameQuery.flats``."""
    doc: str
    read: tuple[str, ...]
    """Top-level keys read as JSON text (sorted)."""
    known: tuple[str, ...]
    """Every key the sample holds (a document with another key is flagged)."""
    excluded: tuple[str, ...]
    """Sampled keys not read (``exclude``): a document holding an object under one is flagged."""

    def columns(self) -> list[FlatColumn]:
        """The page's JSON-text columns, one per key read."""
        return [FlatColumn(f"\x00{self.index}.{key}", ((key,),), GUESS) for key in self.read]


def json_infos(key: str, texts: pa.ChunkedArray) -> PathInfo | None:
    """What discovery finds for ``key`` given its values' JSON texts (None: never present).

    Raises ``LookupError`` when a value is an object (the sample missed its paths).
    """
    first = pc.utf8_slice_codeunits(texts, 0, 1)
    chars = {c for c in pc.unique(first).to_pylist() if c is not None}
    if not chars:
        return None
    if "{" in chars:
        raise LookupError(key)
    names = {'"': "string", "t": "boolean", "f": "boolean", "n": "null", "[": "array"}
    types = {names.get(c, "number") for c in chars}
    all_int = True
    if "number" in types:
        numbers = pc.and_(pc.invert(pc.is_in(first, value_set=pa.array(list(names)))), pc.is_valid(first))
        values = texts.filter(pc.fill_null(numbers, False))
        if pc.any(pc.match_substring(values, ".")).as_py():
            all_int = False
        else:
            long = values.filter(pc.greater_equal(pc.utf8_length(values), 19))
            all_int = all(INT64_MIN <= int(v) <= INT64_MAX for v in long.to_pylist())
    return PathInfo((key,), frozenset(types), all_int)


def to_plain(texts: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """The values as the CSV of a planned column of ``kind`` gives them (strings unquoted,
    JSON null a missing value; ``object`` stays JSON text)."""
    if kind == "object":
        return texts
    values = texts.combine_chunks()
    values = pc.if_else(pc.equal(values, "null"), _NULL, values)
    if kind == "secret":
        out = pc.if_else(pc.is_valid(values), pa.scalar("***"), _NULL)
    elif kind == "bool":
        out = pc.equal(values, "true")
    elif kind == "Int64":
        out = values.cast(pa.int64())
    elif kind == "float":
        out = values.cast(pa.float64())
    elif kind == "str":
        out = _unquote(values)
    else:
        raise AssertionError(f"unknown column kind {kind!r}")
    return pa.chunked_array([out])


def _unquote(values: pa.Array) -> pa.Array:
    """JSON string texts as the strings they hold (``json.loads`` only for those with escapes)."""
    inner = pc.utf8_slice_codeunits(values, 1, -1)
    escaped = pc.fill_null(pc.match_substring(values, "\\"), False)
    if pc.any(escaped).as_py():
        decoded = json.loads("[" + ",".join(values.filter(escaped).to_pylist()) + "]")
        inner = pc.replace_with_mask(inner, escaped, pa.array(decoded, pa.string()))
    return inner


def flagged(check: pa.ChunkedArray) -> bool:
    """Whether any row's check flag is set."""
    return bool(pc.any(check).as_py())


def keys_of(guesses: Sequence[Guess]) -> int:
    """How many JSON-text columns the guesses read."""
    return sum(len(g.read) for g in guesses)
