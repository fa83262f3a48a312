"""One dtype convention for every frame and every diagnostic, and the ``dtype_backend`` option.

By default a column gets pandas' own default dtype for its kind of value, with a nullable
extension dtype only where a missing value would otherwise change the type (an integer column
that can be empty would turn into floats). ``dtype_backend`` changes that, as in
``pandas.read_sql``, kind by kind; the dtype never depends on the values read:

================  ============================  ====================  =====================================
kind              default (``None``)            ``"numpy_nullable"``  ``"pyarrow"``
================  ============================  ====================  =====================================
text              ``str`` (missing: NaN)        ``string``            ``string[pyarrow]`` (``ArrowDtype``)
integer           ``int64`` (never missing)     ``Int64``             ``int64[pyarrow]``
nullable integer  ``Int64``                     ``Int64``             ``int64[pyarrow]``
float             ``float64`` (missing: NaN)    ``Float64``           ``double[pyarrow]``
boolean           ``boolean`` (nullable)        ``boolean``           ``bool[pyarrow]``
timestamp         ``datetime64[us, UTC]``       (same)                ``timestamp[us, tz=UTC][pyarrow]``
state             ``category`` of every state   (same)                (same: the categories stay fixed)
object            ``object`` (JSON arrays...)   (same)                (same: no Arrow type fits)
================  ============================  ====================  =====================================

Under ``"pyarrow"`` the frames read from PostgreSQL wrap the Arrow arrays pyarrow's CSV reader
parsed (no conversion); the records path and diagnostics convert with ``apply_dtype_backend``,
which gives the same dtypes. Unlike ``DataFrame.convert_dtypes``, a float column stays a float
column when its values happen to be whole numbers.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from bindu_storage.errors import InvalidValueError
from bindu_storage.types import TaskState

TEXT = "str"
INTEGER = "int64"
NULLABLE_INTEGER = "Int64"
FLOAT = "float64"
BOOLEAN = "boolean"
TIMESTAMP = "datetime64[us, UTC]"
TS_DTYPE = TIMESTAMP
"""The dtype of timestamp columns (an alias of ``TIMESTAMP``)."""

STATES: tuple[str, ...] = TaskState.__args__  # type: ignore[attr-defined]  # a Literal's values
"""Every task state, in lifecycle order: the categories of every ``state`` column."""

STATE_DTYPE = pd.CategoricalDtype(pd.Index(STATES, dtype="str"), ordered=False)
"""The dtype of task-state columns, whatever the backend."""

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
"""The ``dtype_backend`` values, as pandas spells them."""

DTYPE_BACKENDS: tuple[DtypeBackend, ...] = ("numpy_nullable", "pyarrow")

_NULLABLE = {"str": "string", "int64": "Int64", "float64": "Float64", "bool": "boolean"}
_ARROW = {
    "str": pa.string(), "string": pa.string(), "int64": pa.int64(), "Int64": pa.int64(),
    "float64": pa.float64(), "Float64": pa.float64(), "bool": pa.bool_(), "boolean": pa.bool_(),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
}


def check_dtype_backend(value: object) -> DtypeBackend | None:
    """``value`` when it is ``None`` or one of ``DTYPE_BACKENDS``; else ``InvalidValueError``."""
    if value is None:
        return None
    if value == "numpy_nullable":
        return "numpy_nullable"
    if value == "pyarrow":
        return "pyarrow"
    raise InvalidValueError(
        f"dtype_backend must be None, 'numpy_nullable' or 'pyarrow', got {value!r}"
    )


def backend_dtype(dtype: Any, dtype_backend: DtypeBackend | None) -> Any:
    """The dtype a column of ``dtype`` gets under ``dtype_backend`` (the table above)."""
    if dtype_backend is None or isinstance(dtype, pd.ArrowDtype | pd.CategoricalDtype):
        return dtype
    name = "str" if isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA else str(dtype)
    if dtype_backend == "numpy_nullable":
        return _NULLABLE.get(name, dtype)
    arrow = _ARROW.get(name)
    return dtype if arrow is None else pd.ArrowDtype(arrow)


def apply_dtype_backend(frame: pd.DataFrame, dtype_backend: DtypeBackend | None) -> pd.DataFrame:
    """``frame`` with its columns converted to ``dtype_backend`` (unchanged for ``None``).

    Columns already of the target dtype are not copied; ``frame.attrs`` is kept.
    """
    if dtype_backend is None:
        return frame
    changes = {}
    for name, dtype in frame.dtypes.items():
        target = backend_dtype(dtype, dtype_backend)
        if target is not dtype and str(target) != str(dtype):
            changes[name] = target
    if not changes:
        return frame
    converted = frame.astype(changes)
    converted.attrs.update(frame.attrs)
    return converted
