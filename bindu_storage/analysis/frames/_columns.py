"""The columns of every frame and their kinds, in one place, for both read paths.

Each frame has fixed leading columns (``*_COLUMNS``: name and kind) followed by flattened JSON
columns (``FlatColumn``). Both paths hand ``build_frame`` plain Python lists per column (the
PostgreSQL path parses its CSV into the same arrays, ``_pg.csv``), so the dtypes of a frame never
depend on where its rows came from. A kind's dtype is that of ``analysis.dtypes`` (the one
convention): ``str`` text (ids as canonical UUID strings), ``int`` counts and positions (never
missing), ``Int64`` ratings and flattened JSON integers, ``float`` means, durations and JSON
numbers, ``bool`` JSON booleans, ``ts`` timestamps, ``state`` task states, ``object`` JSON arrays
and mixed values, ``secret`` a ``str`` column of ``"***"`` wherever a secret value is present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from bindu_storage.analysis.dtypes import STATE_DTYPE, STATES, TS_DTYPE

__all__ = ["STATES", "STATE_DTYPE", "TS_DTYPE", "FlatColumn", "PathInfo", "build_frame", "plan_columns"]

TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "str"), ("context_id", "str"), ("state", "state"), ("state_timestamp", "ts"),
    ("created_at", "ts"), ("updated_at", "ts"), ("history_len", "int"), ("artifact_count", "int"),
    ("feedback_count", "int"), ("mean_rating", "float"), ("owner_did", "str"),
)
MESSAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_id", "str"), ("context_id", "str"), ("position", "int"), ("message_id", "str"),
    ("role", "str"), ("text", "str"), ("part_kinds", "str"),
)
ARTIFACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_id", "str"), ("context_id", "str"), ("position", "int"), ("artifact_id", "str"),
    ("name", "str"), ("description", "str"), ("part_kinds", "str"), ("text", "str"),
)
CONTEXT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("context_id", "str"), ("task_count", "int"), ("message_history_len", "int"),
    ("created_at", "ts"), ("updated_at", "ts"), ("owner_did", "str"),
)
FEEDBACK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "int"), ("task_id", "str"), ("created_at", "ts"), ("rating", "Int64"), ("comment", "str"),
)
FEEDBACK_OWN_KEYS: tuple[tuple[str, ...], ...] = (("rating",), ("comment",), ("feedback",))
"""Feedback keys that have columns of their own (``feedback`` is upstream's comment), so the
``feedback.<key>`` flattening leaves them out."""
FEEDBACK_TASK_COLUMNS: tuple[tuple[str, str], ...] = (("context_id", "str"), ("state", "state"))
"""Joined into ``feedback_frame`` by ``with_task=True``."""
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "int"), ("task_id", "str"), ("from_state", "state"), ("to_state", "state"),
    ("at", "ts"), ("duration_s", "float"), ("in_state_s", "float"),
)
WEBHOOK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_id", "str"), ("config_id", "str"), ("url", "str"), ("token", "secret"),
    ("schemes", "str"), ("credentials", "secret"),
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT_PATTERN = r"^-?[0-9]{1,19}$"
"""A JSON number's text that reads as an integer (then also checked against the int64 range)."""
RATING_PATTERN = r"^-?[0-9]{1,18}(\.0+)?$"
"""A rating's text that reads as an integer (``4`` or ``4.0``)."""
_INT_RE, _RATING_RE = re.compile(INT_PATTERN), re.compile(RATING_PATTERN)


def pg_number_text(value: int | float) -> str:
    """The text PostgreSQL shows for a JSON number stored from Python (``1e16`` → all digits)."""
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


def json_type(value: Any) -> str:
    """The ``jsonb_typeof`` of a JSON-native Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list | tuple) else "object"


def as_int64(value: Any) -> int | None:
    """A JSON number as a 64-bit integer when PostgreSQL reads it as one, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    text = pg_number_text(value)
    if not _INT_RE.match(text):
        return None
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else None


def as_rating(value: Any) -> int | None:
    """A feedback rating: a JSON number with an integral value (``4`` or ``4.0``), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    text = pg_number_text(value)
    return int(Decimal(text)) if _RATING_RE.match(text) else None


@dataclass(frozen=True)
class PathInfo:
    """What discovery learnt about one JSON key path: the JSON types of its leaf values."""

    path: tuple[str, ...]
    types: frozenset[str]
    """JSON type names (``string``, ``number``, ``boolean``, ``array``, ``null``)."""
    all_int: bool
    """Every number under the path is an integer that fits in 64 bits."""
    branch: bool = False
    """The path also holds an object in some document (its keys are paths of their own)."""


@dataclass(frozen=True)
class FlatColumn:
    """One flattened JSON column: its name, the key paths it reads (first present wins), its kind."""

    name: str
    paths: tuple[tuple[str, ...], ...]
    kind: str
    plain: bool = False
    """Every value discovered under the paths is of the kind (arrays for ``object``) or null,
    and none is an object: PostgreSQL reads the column as the text of the value (``->>``)."""


def kind_of(types: Iterable[str], all_int: bool) -> str:
    """The column kind of a flattened path from the JSON types of its values."""
    present = set(types) - {"null"}
    if present == {"boolean"}:
        return "bool"
    if present == {"number"}:
        return "Int64" if all_int else "float"
    if present == {"string"}:
        return "str"
    return "object"


def series(values: Sequence[Any], kind: str) -> Any:
    """An array of ``kind`` holding ``values`` (plain Python values, None for missing)."""
    if kind in ("str", "secret"):
        return pd.array(values, dtype="str") if len(values) else pd.array([], dtype="str")
    if kind == "int":
        return np.asarray(values, dtype=np.int64)
    if kind == "Int64":
        return pd.array(values, dtype="Int64")
    if kind == "float":
        return np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    if kind == "ts":
        return pd.DatetimeIndex(pd.to_datetime(list(values), utc=True)).as_unit("us").array
    if kind == "state":
        return pd.Categorical(values, dtype=STATE_DTYPE)
    if kind == "object":
        out = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            out[i] = value
        return object_column(out)
    raise AssertionError(f"unknown column kind {kind!r}")


def object_column(values: np.ndarray) -> pd.Series:
    """An ``object`` column of ``values``: pandas would infer ``str`` for an array of strings,
    so a chunk whose values happen to be all strings would change the column's dtype."""
    return pd.Series(values, dtype=object, copy=False)


def build_frame(
    fixed: Sequence[tuple[str, str]],
    flat: Sequence[FlatColumn],
    columns: Mapping[str, Sequence[Any]],
    length: int,
) -> pd.DataFrame:
    """A frame of the fixed columns, then the flattened ones, from per-column value lists."""
    data: dict[str, Any] = {}
    for name, kind in fixed:
        data[name] = series(columns.get(name, [None] * length) if length else [], kind)
    for col in flat:
        data[col.name] = series(columns.get(col.name, [None] * length) if length else [], col.kind)
    return pd.DataFrame(data, index=pd.RangeIndex(length), copy=False)


def plan_columns(
    prefix: str,
    infos: Iterable[PathInfo],
    *,
    secret: Any,
    exclude: Iterable[tuple[str, ...]] = (),
    wanted: Sequence[str] | None = None,
) -> list[FlatColumn]:
    """Turn discovered key paths into columns, identically for both backends.

    A path is named by its keys joined with ``.`` (as ``pandas.json_normalize`` does) under
    ``prefix``; a key for which ``secret(key)`` holds ends the path there and makes the column
    a redacted one. Paths giving the same name share a column (the first present value wins,
    in path order). ``exclude`` drops exact paths; ``wanted`` keeps the named columns and those
    under them, in the order asked, adding all-missing columns for names nothing matched.
    """
    excluded = set(exclude)
    grouped: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.path in excluded:
            continue
        path, is_secret = info.path, False
        for i, key in enumerate(path):
            if secret(key):
                path, is_secret = path[: i + 1], True
                break
        name = ".".join(path)
        entry = grouped.setdefault(
            name, {"paths": set(), "types": set(), "all_int": True, "secret": False, "branch": False}
        )
        entry["paths"].add(path)
        entry["types"].update(info.types)
        entry["all_int"] = entry["all_int"] and info.all_int
        entry["secret"] = entry["secret"] or is_secret
        entry["branch"] = entry["branch"] or info.branch
    columns = {}
    for name, e in grouped.items():
        kind = "secret" if e["secret"] else kind_of(e["types"], e["all_int"])
        plain = kind != "secret" and not e["branch"] and (kind != "object" or e["types"] <= {"array", "null"})
        columns[name] = FlatColumn(f"{prefix}.{name}", tuple(sorted(e["paths"])), kind, plain)
    if wanted is None:
        return [columns[name] for name in sorted(columns)]
    chosen: list[FlatColumn] = []
    for want in wanted:
        hits = [columns[n] for n in sorted(columns) if n == want or n.startswith(want + ".")]
        if not hits:
            path = tuple(want.split("."))
            hits = [FlatColumn(f"{prefix}.{want}", (path,), "secret" if any(map(secret, path)) else "object")]
        chosen.extend(c for c in hits if c not in chosen)
    return chosen


def top_keys(wanted: Sequence[str] | None) -> list[str] | None:
    """The top-level keys a selection of dotted names can start with (keys may hold dots)."""
    if wanted is None:
        return None
    keys: set[str] = set()
    for want in wanted:
        parts = want.split(".")
        keys.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(keys)
