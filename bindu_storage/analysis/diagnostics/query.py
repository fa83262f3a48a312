"""Running one diagnostic query into a DataFrame with stable columns and dtypes.

Column dtypes follow the PostgreSQL types the query declares (read from the prepared statement),
so a diagnostic that finds nothing still returns its documented columns with their usual dtypes:

============================  ==============================
PostgreSQL type               pandas dtype
============================  ==============================
int2, int4, int8, oid         ``Int64`` (nullable)
float4, float8, numeric       ``float64``
bool                          ``boolean`` (nullable)
timestamptz, timestamp        ``datetime64[us, UTC]``
text, name, uuid, inet, lsn   ``string``
anything else                 ``object``
============================  ==============================

Figures that only a primary keeps (vacuum statistics, write counters) are blanked to NA on a hot
standby, so a zero never pretends to be a measurement; ``frame.attrs["note"]`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import pandas as pd

from bindu_storage.analysis.diagnostics.redact import redact_sql
from bindu_storage.errors import InvalidValueError

_INTEGER = {"int2", "int4", "int8", "oid"}
_FLOAT = {"float4", "float8", "numeric"}
_TIMESTAMP = {"timestamptz", "timestamp"}
_TEXT = {"text", "name", "varchar", "bpchar", "char", "uuid", "inet", "cidr", "pg_lsn", "xid", "regclass"}

STANDBY_NOTE = (
    "this server is a hot standby: {columns} are kept only by the primary (a standby has no vacuum "
    "or write statistics of its own), so they are left empty here; run this diagnostic on the primary"
)


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
        return pd.array([None if v is None else str(v) for v in values], dtype="string")
    return pd.Series(values, dtype=object)


def records_frame(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], type_names: Sequence[str]
) -> pd.DataFrame:
    """Build a frame from rows, typing each column by its PostgreSQL type name."""
    data = {
        name: _series([row[i] for row in rows], type_name)
        for i, (name, type_name) in enumerate(zip(columns, type_names, strict=True))
    }
    frame = pd.DataFrame(data, columns=list(columns))
    frame.index = pd.RangeIndex(len(rows))
    return frame


async def is_standby(conn: asyncpg.Connection) -> bool:
    """Tell whether the server of ``conn`` is a hot standby (in recovery)."""
    return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))


async def fetch_frame(
    conn: asyncpg.Connection,
    sql: str,
    *args: Any,
    columns: Sequence[str],
    primary_only: Iterable[str] = (),
    redact: Iterable[str] = (),
) -> pd.DataFrame:
    """Run ``sql`` and return its rows as a frame with exactly ``columns``.

    ``columns`` is the documented contract: a query whose aliases differ is a bug and raises
    ``AssertionError``. Text columns named in ``redact`` (query texts) go through
    :func:`redact_sql`; columns in ``primary_only`` are blanked on a hot standby.
    """
    statement = await conn.prepare(sql)
    attributes = statement.get_attributes()
    names = [a.name for a in attributes]
    assert names == list(columns), f"query columns {names} differ from the documented {list(columns)}"
    rows = await statement.fetch(*args)
    frame = records_frame(rows, names, [a.type.name for a in attributes])
    for column in redact:
        frame[column] = frame[column].map(redact_sql, na_action="ignore").astype("string")
    blank = [c for c in primary_only if c in frame.columns]
    if blank and await is_standby(conn):
        for column in blank:
            frame[column] = frame[column].where(pd.Series(False, index=frame.index))
        frame.attrs["primary_only"] = blank
        frame.attrs["note"] = STANDBY_NOTE.format(columns=", ".join(blank))
    return frame


def check_number(value: object, what: str, minimum: float = 0, *, integer: bool = False) -> float:
    """Return ``value`` if it is a number (an integer when asked) of at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise InvalidValueError(f"{what} must be {kind} >= {minimum}, got {value!r}")
    return value  # type: ignore[return-value]
