"""One dtype convention for every frame and every diagnostic, and the ``dtype_backend`` option.

By default a column gets pandas' own default dtype for its kind of value, with a nullable
extension dtype only where a missing value would otherwise change the type (an integer column
that can be empty would turn into floats):

==================  ================================  =========================================
kind                default dtype                     used for
==================  ================================  =========================================
text                ``str`` (missing: NaN)            ids, names, texts, query texts
integer             ``int64``                         counts and positions, never missing
nullable integer    ``Int64``                         ratings, JSON integers, server figures
float               ``float64`` (missing: NaN)        means, durations, percentages
boolean             ``boolean`` (nullable)            flags that may be unknown
timestamp           ``datetime64[us, UTC]``           every point in time
state               ``category`` of every task state  task states
object              ``object``                        JSON arrays, mixed values
==================  ================================  =========================================

``dtype_backend`` changes that, as in ``pandas.read_sql``: ``"numpy_nullable"`` makes every
column a nullable extension dtype (``string``, ``Int64``, ``Float64``, ``boolean``); ``"pyarrow"``
makes every column a ``pd.ArrowDtype``.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from bindu_storage.errors import InvalidValueError

TEXT = "str"
INTEGER = "int64"
NULLABLE_INTEGER = "Int64"
FLOAT = "float64"
BOOLEAN = "boolean"
TIMESTAMP = "datetime64[us, UTC]"

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
"""The ``dtype_backend`` values, as pandas spells them."""

DTYPE_BACKENDS: tuple[DtypeBackend, ...] = ("numpy_nullable", "pyarrow")


def check_dtype_backend(value: object) -> DtypeBackend | None:
    """``value`` when it is ``None`` or one of ``DTYPE_BACKENDS``; else ``InvalidValueError``."""
    if value is None or value in DTYPE_BACKENDS:
        return value  # type: ignore[return-value]  # narrowed by the membership test
    raise InvalidValueError(
        f"dtype_backend must be None, 'numpy_nullable' or 'pyarrow', got {value!r}"
    )


def apply_dtype_backend(frame: pd.DataFrame, dtype_backend: DtypeBackend | None) -> pd.DataFrame:
    """``frame`` with its columns converted to ``dtype_backend`` (unchanged for ``None``).

    Categories (task states) and timestamps keep their dtype under ``"numpy_nullable"``, as
    ``DataFrame.convert_dtypes`` leaves them; ``frame.attrs`` is kept.
    """
    if dtype_backend is None:
        return frame
    converted = frame.convert_dtypes(dtype_backend=dtype_backend)
    converted.attrs.update(frame.attrs)
    return converted
