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
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def first_bytes(texts: pa.ChunkedArray) -> np.ndarray:
    """The first byte of each value (0 for a missing one), read from the arrays' buffers."""
    parts = [np.zeros(0, dtype=np.uint8)]
    for chunk in texts.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        if data_buf is None or len(chunk) == 0 or data_buf.size == 0:
            parts.append(np.zeros(len(chunk), dtype=np.uint8))
            continue
        width = np.int64 if chunk.type == pa.large_string() else np.int32
        window = np.frombuffer(offsets_buf, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        offsets: np.ndarray[Any, np.dtype[np.int64]] = window.astype(np.int64)
        data = np.frombuffer(data_buf, dtype=np.uint8)
        starts = offsets[:-1]
        first = data[np.minimum(starts, data.size - 1)]
        parts.append(np.where(offsets[1:] > starts, first, 0).astype(np.uint8))  # 0: missing
    return np.concatenate(parts)


_TYPE_OF = {ord('"'): "string", ord("t"): "boolean", ord("f"): "boolean", ord("n"): "null", ord("["): "array"}


def json_infos(key: str, texts: pa.ChunkedArray) -> PathInfo | None:
    """What discovery finds for ``key`` given its values' JSON texts (None: never present).

    Raises ``LookupError`` when a value is an object (the sample missed its paths).
    """
    first = first_bytes(texts)
    chars = set(np.unique(first).tolist()) - {0}
    if not chars:
        return None
    if ord("{") in chars:
        raise LookupError(key)
    types = {_TYPE_OF.get(c, "number") for c in chars}
    all_int = True
    if "number" in types:
        numbers = ~np.isin(first, [0, *_TYPE_OF])
        values = texts.filter(pa.array(numbers))
        if pc.any(pc.match_substring(values, ".")).as_py():
            all_int = False
        else:
            long = values.filter(pc.greater_equal(pc.utf8_length(values), 19))
            all_int = all(INT64_MIN <= int(v) <= INT64_MAX for v in long.to_pylist())
    return PathInfo((key,), frozenset(types), all_int)


def to_plain(texts: pa.ChunkedArray, info: PathInfo | None, kind: str) -> pa.ChunkedArray:
    """The values as the CSV of a planned column of ``kind`` gives them (strings unquoted,
    JSON null a missing value; ``object`` stays JSON text). ``info``: the values' types."""
    if kind == "object":
        return texts
    values = texts
    if info is None or "null" in info.types:
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
    return out


def _unquote(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON string texts as the strings they hold (``json.loads`` only for those with escapes)."""
    inner = pc.utf8_slice_codeunits(values, 1, -1)
    escaped = pc.fill_null(pc.match_substring(values, "\\"), False)
    if pc.any(escaped).as_py():
        decoded = json.loads("[" + ",".join(values.filter(escaped).to_pylist()) + "]")
        replaced = pc.replace_with_mask(
            inner.combine_chunks(), escaped.combine_chunks(), pa.array(decoded, pa.string())
        )
        return pa.chunked_array([replaced])
    return inner


def flagged(check: pa.ChunkedArray) -> bool:
    """Whether any row's check flag is set."""
    return bool(pc.any(check).as_py())
