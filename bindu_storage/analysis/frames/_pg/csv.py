"""Frames from the CSV PostgreSQL writes for a page query, parsed column by column by pyarrow.

Frames read PostgreSQL through ``COPY (SELECT ...) TO STDOUT (FORMAT csv)``: the server writes
text it already knows how to write, no Python object is made per cell, and pyarrow parses each
column straight into its frame dtype (``_columns``) with explicit types, never inferred. Under
``dtype_backend="pyarrow"`` the parsed Arrow arrays become the frame's columns as they are
(``ArrowDtype``), with no conversion at all:

* NULL is an unquoted empty field, an empty string a quoted one (``""``): pyarrow tells them apart
  (``quoted_strings_can_be_null=False``); values may hold newlines;
* timestamps are ISO text in UTC (``PgReader`` sets ``TimeZone``), parsed to microseconds;
* floats are written shortest-exact (``extra_float_digits``) and JSON numbers as their decimal
  text, which pyarrow parses correctly rounded, as PostgreSQL's own ``::float8`` does;
* flattened JSON booleans arrive as ``true``/``false``; ``object`` columns as JSON text, decoded
  in one call and redacted;
* task states become categorical codes without a Python string per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bindu_storage.analysis.frames._columns import (
    STATE_DTYPE,
    STATES,
    TS_DTYPE,
    FlatColumn,
    object_column,
    series,
)
from bindu_storage.analysis.redact import redact, redact_arrow
from bindu_storage.storage.codec import loads as loads_json  # orjson, exact for long numbers

KEY = "key"
"""The kind of a keyset key column: text, handed back to the next page query."""

_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(), "secret": pa.string(), "state": pa.string(), "object": pa.string(),
    KEY: pa.string(), "int": pa.int64(), "Int64": pa.int64(), "float": pa.float64(),
    "bool": pa.bool_(), "ts": pa.timestamp("us", tz="UTC"),
}
_STATES = pa.array(STATES, type=pa.string())
_NAT = np.iinfo(np.int64).min


def decode_json(column: pa.ChunkedArray) -> Any:
    """An ``object`` array of JSON texts (null for missing) decoded in one call (orjson, or
    ``json`` when a number may exceed 64 bits: the storage's own decoding), secrets redacted."""
    texts = column.combine_chunks().cast(pa.large_string()).fill_null("null")
    everything = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], pa.int64()), texts)
    joined = pc.binary_join(everything, pa.scalar(",", pa.large_string())).cast(pa.large_binary())
    values = np.fromiter(loads_json(b"[" + joined[0].as_py() + b"]"), dtype=object, count=len(texts))
    for i in np.flatnonzero(pc.match_substring(texts, "{").to_numpy(zero_copy_only=False)):
        values[i] = redact(values[i])  # only an object has keys to redact
    return object_column(values)


def read_csv(data: bytes, kinds: Sequence[str]) -> list[pa.ChunkedArray]:
    """The columns of CSV ``data`` whose fields have the given kinds, in order."""
    names = [f"c{i}" for i in range(len(kinds))]
    if not data:
        return [pa.chunked_array([], type=_ARROW_TYPES[kind]) for kind in kinds]
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: _ARROW_TYPES[kind] for name, kind in zip(names, kinds, strict=True)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["true"],
            false_values=["false"],
        ),
    )
    return table.columns


def join_strings(column: pa.ChunkedArray, separator: str) -> pa.Array:
    """JSON arrays of strings (as PostgreSQL writes jsonb) joined with ``separator``; null for
    null or ``[]``.

    PostgreSQL writes ``["a", "b"]``: without a backslash no string holds a quote, so the
    arrays are cut and joined by arrow string kernels; arrays with escapes are decoded by
    ``json.loads`` (one call for all of them).
    """
    texts = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    texts = pc.if_else(pc.equal(texts, "[]"), pa.scalar(None, pa.string()), texts)
    joined = pc.replace_substring(pc.utf8_slice_codeunits(texts, 2, -2), '", "', separator)
    escaped = pc.fill_null(pc.match_substring(texts, "\\"), False)
    if pc.any(escaped).as_py():
        decoded = json.loads("[" + ",".join(texts.filter(escaped).to_pylist()) + "]")
        joined = pc.replace_with_mask(joined, escaped, pa.array([separator.join(d) for d in decoded]))
    return joined


def _mask(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


ARROW_KINDS = frozenset({"str", "secret", "int", "Int64", "float", "bool", "ts"})
"""Kinds whose parsed Arrow array is already the ``dtype_backend="pyarrow"`` column."""


def to_array(column: pa.ChunkedArray, kind: str, arrow: bool = False) -> Any:
    """The frame array of ``kind`` for a parsed CSV column (the dtypes of ``series``; with
    ``arrow``, the Arrow array itself where ``ARROW_KINDS`` allows)."""
    if arrow and kind in ARROW_KINDS:
        return pd.arrays.ArrowExtensionArray(column)
    if kind in ("str", "secret"):
        return pd.array(column, dtype="str")
    if kind == "int":
        return np.asarray(column.to_numpy(), dtype=np.int64)
    if kind == "Int64":
        values = np.asarray(column.fill_null(0).to_numpy(), dtype=np.int64)
        return pd.arrays.IntegerArray(values, _mask(column))
    if kind == "float":
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    if kind == "bool":
        flags = np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)
        return pd.arrays.BooleanArray(flags, _mask(column))
    if kind == "ts":
        micros = np.asarray(column.cast(pa.int64()).fill_null(_NAT).to_numpy(), dtype=np.int64)
        return pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC").astype(TS_DTYPE).array
    if kind == "state":
        codes = pc.index_in(column, value_set=_STATES).fill_null(-1).to_numpy()
        return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int8), dtype=STATE_DTYPE)
    if kind == "object":
        return decode_json(column)
    raise AssertionError(f"unknown column kind {kind!r}")


def frame_from_csv(
    data: bytes,
    selected: Sequence[str],
    fixed: Sequence[tuple[str, str]],
    flat: Sequence[FlatColumn],
    keys: int,
    joined: Mapping[str, str],
    arrow: bool = False,
) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """A page's frame and the key of its last row (None when it has no rows).

    The CSV holds the ``selected`` fixed columns, then one per flattened column, then ``keys``
    key columns; the frame has the ``fixed`` columns in their order (missing ones null), then
    the flattened ones. ``joined`` names the selected columns to ``join_strings`` (with their
    separators); ``arrow`` keeps Arrow arrays (see ``to_array``).
    """
    kind_of = dict(fixed)
    kinds = [kind_of[name] for name in selected] + [col.kind for col in flat] + [KEY] * keys
    columns = read_csv(data, kinds)
    for i, name in enumerate(selected):
        if name in joined:
            columns[i] = pa.chunked_array([join_strings(columns[i], joined[name])])
    length = len(columns[0]) if columns else 0
    parsed = dict(zip([*selected, *(col.name for col in flat)], columns, strict=False))
    for col in flat:  # credentials inside JSON string values (the same rule as the memory backend)
        if col.kind == "str" and parsed.get(col.name) is not None:
            parsed[col.name] = redact_arrow(parsed[col.name])
    frame = {}
    for name, kind in [*fixed, *((col.name, col.kind) for col in flat)]:
        column = parsed.get(name)
        frame[name] = series([None] * length, kind) if column is None else to_array(column, kind, arrow)
    last = tuple(column[length - 1].as_py() for column in columns[len(parsed):]) if length and keys else None
    return pd.DataFrame(frame, index=pd.RangeIndex(length), copy=False), last
