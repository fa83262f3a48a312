"""Running one diagnostic query into a DataFrame, and declaring a diagnostic once.

A diagnostic is a ``Diagnostics`` method marked with :func:`diagnostic`, given the SQL it runs:
its columns are that statement's select-list aliases (:func:`columns_of`), so the SQL is the one
place they are written. ``DIAGNOSTICS`` lists them all; the test suite checks every frame a real
server returns against it.

Column dtypes follow the PostgreSQL types the query declares (read from the prepared statement),
so a diagnostic that finds nothing still returns its columns with their usual dtypes. They follow
the convention of ``bindu_storage.analysis.dtypes``, the same as the frames' (written as literals
here so that pandas' type stubs can check each call):

============================  ==============================
PostgreSQL type               pandas dtype
============================  ==============================
int2, int4, int8, oid         ``Int64`` (nullable)
float4, float8, numeric       ``float64``
bool                          ``boolean`` (nullable)
timestamptz, timestamp        ``datetime64[us, UTC]``
text, name, uuid, inet, lsn   ``str`` (missing: NaN)
anything else                 ``object``
============================  ==============================

``dtype_backend`` (``"numpy_nullable"`` or ``"pyarrow"``) converts them as ``pandas.read_sql``
does. Figures that only a primary keeps (vacuum statistics, write counters) are blanked on a hot
standby, so a zero never pretends to be a measurement; ``frame.attrs["note"]`` says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import pandas as pd

from bindu_storage.analysis.dtypes import DtypeBackend, apply_dtype_backend
from bindu_storage.analysis.redact import redact_sql
from bindu_storage.errors import InvalidValueError

F = TypeVar("F", bound=Callable[..., Any])

_INTEGER = {"int2", "int4", "int8", "oid"}
_FLOAT = {"float4", "float8", "numeric"}
_TIMESTAMP = {"timestamptz", "timestamp"}
_TEXT = {"text", "name", "varchar", "bpchar", "char", "uuid", "inet", "cidr", "pg_lsn", "xid", "regclass"}

STANDBY_NOTE = (
    "this server is a hot standby: {columns} are kept only by the primary (a standby has no vacuum "
    "or write statistics of its own), so they are left empty here; run this diagnostic on the primary"
)

_FROM = re.compile(r"(?<!\w)FROM\b", re.IGNORECASE)

COLUMNS_ATTRIBUTE = "__diagnostic_columns__"
"""Where :func:`diagnostic` records a method's columns."""


# --- declaring a diagnostic ----------------------------------------------------------------------


def _select_list(sql: str) -> str:
    """The text between the first ``SELECT`` and its ``FROM`` (or the end), at nesting depth 0."""
    start = re.search(r"\bSELECT\b", sql, re.IGNORECASE)
    if start is None:
        raise ValueError(f"no SELECT in {sql!r}")
    depth, i, text = 0, start.end(), sql
    while i < len(text):
        char = text[i]
        if char == "'":  # skip a string literal ('' inside is an escaped quote)
            i = text.index("'", i + 1) + 1
            while i < len(text) and text[i] == "'":
                i = text.index("'", i + 1) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and _FROM.match(text, i):
            return text[start.end():i]
        i += 1
    return text[start.end():]


def _split_top_level(select_list: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in select_list:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items]


def columns_of(sql: str) -> tuple[str, ...]:
    """The column names a ``SELECT`` statement returns: each item's alias, or its column name."""
    names = []
    for item in _split_top_level(_select_list(sql)):
        alias = re.search(r"\bAS\s+(\w+)\s*$", item, re.IGNORECASE)
        bare = re.fullmatch(r"(?:\w+\.)?(\w+)", item)
        if alias is None and bare is None:
            raise ValueError(f"select item {item!r} has no plain-word alias")
        names.append(alias.group(1) if alias is not None else bare.group(1))  # type: ignore[union-attr]
    return tuple(names)


def diagnostic(sql: str | None = None, *, columns: Sequence[str] = ()) -> Callable[[F], F]:
    """Mark a ``Diagnostics`` method as a diagnostic whose frame has the columns of ``sql``.

    A diagnostic not read from one statement (the pool's counters, the migration verdict) names
    its ``columns`` instead. The method itself is returned unchanged.
    """
    names = columns_of(sql) if sql is not None else tuple(columns)
    if not names:
        raise ValueError("a diagnostic needs its SQL or its columns")

    def mark(method: F) -> F:
        setattr(method, COLUMNS_ATTRIBUTE, names)
        return method

    return mark


def diagnostics_of(cls: type) -> dict[str, tuple[str, ...]]:
    """Every diagnostic of ``cls`` (in the order its topics declare them) and its columns."""
    found: dict[str, tuple[str, ...]] = {}
    for klass in cls.__mro__:  # the composed class first, then its topics in the order it lists them
        for name, member in vars(klass).items():
            if name not in found and (names := getattr(member, COLUMNS_ATTRIBUTE, None)) is not None:
                found[name] = names
    return found


# --- building the frame --------------------------------------------------------------------------


def _series(values: list[Any], type_name: str) -> pd.Series | pd.api.extensions.ExtensionArray:
    if type_name in _INTEGER:
        return pd.array(values, dtype="Int64")
    if type_name in _FLOAT:
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if type_name == "bool":
        return pd.array(values, dtype="boolean")
    if type_name in _TIMESTAMP:
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[us, UTC]")
    if type_name in _TEXT:
        return pd.Series([None if v is None else str(v) for v in values], dtype="str")
    return pd.Series(values, dtype=object)


def records_frame(
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    type_names: Sequence[str],
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Build a frame from rows, typing each column by its PostgreSQL type name."""
    data = {
        name: _series([row[i] for row in rows], type_name)
        for i, (name, type_name) in enumerate(zip(columns, type_names, strict=True))
    }
    frame = pd.DataFrame(data, columns=list(columns))
    frame.index = pd.RangeIndex(len(rows))
    return apply_dtype_backend(frame, dtype_backend)


async def is_standby(conn: asyncpg.Connection) -> bool:
    """Tell whether the server of ``conn`` is a hot standby (in recovery)."""
    return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))


async def fetch_frame(
    conn: asyncpg.Connection,
    sql: str,
    *args: Any,
    primary_only: Iterable[str] = (),
    redact: Iterable[str] = (),
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Run ``sql`` and return its rows as a frame with the statement's own columns.

    Text columns named in ``redact`` (query texts) go through :func:`redact_sql`; columns in
    ``primary_only`` are blanked on a hot standby.
    """
    statement = await conn.prepare(sql)
    attributes = statement.get_attributes()
    rows = await statement.fetch(*args)
    frame = records_frame(rows, [a.name for a in attributes], [a.type.name for a in attributes])
    for column in redact:
        frame[column] = frame[column].map(redact_sql, na_action="ignore").astype("str")
    blank = [c for c in primary_only if c in frame.columns]
    if blank and await is_standby(conn):
        for column in blank:
            frame[column] = frame[column].where(pd.Series(False, index=frame.index))
        frame.attrs["primary_only"] = blank
        frame.attrs["note"] = STANDBY_NOTE.format(columns=", ".join(blank))
    return apply_dtype_backend(frame, dtype_backend)


def check_number(value: object, what: str, minimum: float = 0, *, integer: bool = False) -> float:
    """Return ``value`` if it is a number (an integer when asked) of at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:
        kind = "an integer" if integer else "a number"
        raise InvalidValueError(f"{what} must be {kind} >= {minimum}, got {value!r}")
    return value
