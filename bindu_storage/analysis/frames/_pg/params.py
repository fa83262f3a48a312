"""Parameters of frame statements: bound, or passed as transaction-local settings for COPY.

Frame SQL is written with parameter slots (``Params``), filled when a statement is run:

* ``bound`` makes them protocol parameters (``$1::type``), as every statement but the page reads
  has them: the planner sees the values;
* ``COPY (SELECT ...) TO STDOUT``, which pages are read through, takes no bound parameters
  (asyncpg's ``copy_from_query(query, *args)`` inlines them into the SQL text). ``from_settings``
  makes each slot ``(SELECT current_setting('bindu_frames.p<n>')::type)``, an uncorrelated
  subquery PostgreSQL computes once per statement, and ``set_params_sql`` publishes the values,
  bound as protocol parameters of one ``set_config`` call in the statement's transaction
  (``is_local``: gone at commit).

Either way a value never enters SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PARAM_PREFIX = "bindu_frames.p"
"""COPY statements read their parameters from the transaction-local settings ``bindu_frames.p<n>``."""

_SLOT = "\x00"
"""Delimits parameter slots in frame SQL: never part of SQL text (PostgreSQL refuses NUL)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a frame statement."""

    value: Any
    cast: str
    """The SQL type the statement reads it as."""
    bind: str
    """The SQL type asyncpg binds it as (text for keyset keys handed back from CSV)."""


class Params:
    """The parameters of one frame statement, numbered as they are added.

    Equal text values share one parameter (JSON keys repeat in key paths).
    """

    def __init__(self, params: Sequence[Param] = ()) -> None:
        self.params = list(params)
        self._texts: dict[tuple[str, str], str] = {}

    def __call__(self, value: Any, cast: str, bind: str | None = None) -> str:
        """The slot of a new parameter read as ``cast`` (bound as ``bind``, by default ``cast``)."""
        if value is None:
            raise AssertionError("a frame parameter is never NULL")
        shared = (value, cast) if isinstance(value, str) and bind is None else None
        if shared is not None and shared in self._texts:
            return self._texts[shared]
        self.params.append(Param(value, cast, bind or cast))
        slot = f"{_SLOT}{len(self.params)}{_SLOT}"
        if shared is not None:
            self._texts[shared] = slot
        return slot

    def key(self, key: str) -> str:
        """A JSON object key, as a parameter."""
        return self(key, "text")


def _split(sql: str) -> list[str]:
    """SQL text and slot numbers, alternating (odd indexes are slots)."""
    parts = sql.split(_SLOT)
    if len(parts) % 2 == 0:
        raise AssertionError("unbalanced parameter slots")
    return parts


def bound(sql: str, params: Sequence[Param]) -> tuple[str, list[Any]]:
    """The statement with its slots as protocol parameters, and their values.

    Parameters are numbered by first use: PostgreSQL needs every ``$n`` it is given to appear.
    """
    parts = _split(sql)
    numbers: dict[int, int] = {}
    for i in range(1, len(parts), 2):
        slot = int(parts[i])
        n = numbers.setdefault(slot, len(numbers) + 1)
        param = params[slot - 1]
        parts[i] = f"${n}::{param.bind}" + (f"::{param.cast}" if param.cast != param.bind else "")
    return "".join(parts), [params[slot - 1].value for slot in numbers]


def from_settings(sql: str, params: Sequence[Param]) -> str:
    """The statement with its slots read from the settings ``set_params_sql`` publishes."""
    parts = _split(sql)
    for i in range(1, len(parts), 2):
        slot = int(parts[i])
        cast = params[slot - 1].cast
        # the cast outside (a no-op) makes ``= ANY(...)`` read an array, not a subquery's rows
        parts[i] = f"(SELECT current_setting('{PARAM_PREFIX}{slot}')::{cast})::{cast}"
    return "".join(parts)


def set_params_sql(params: Sequence[Param]) -> str:
    """The statement publishing every parameter (bound as ``$1``...) as the settings
    ``from_settings`` reads."""
    values = ", ".join(f"${i}::{param.bind}::text" for i, param in enumerate(params, start=1))
    return (
        f"SELECT count(set_config('{PARAM_PREFIX}' || s.n, s.value, true)) AS n"
        f" FROM unnest(ARRAY[{values}]::text[]) WITH ORDINALITY AS s(value, n)"
    )
