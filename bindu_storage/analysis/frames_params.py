"""Parameters of frame statements, passed as transaction-local settings.

``COPY (SELECT ...) TO STDOUT``, which frames read through, takes no bound parameters (asyncpg's
``copy_from_query(query, *args)`` inlines them into the SQL text). Frame statements therefore
read theirs from settings: ``Params`` writes ``(SELECT current_setting('bindu_frames.p<n>')::type)``
in the SQL, an uncorrelated subquery PostgreSQL computes once per statement, and ``PgReader`` runs
``set_params_sql`` with the values bound as protocol parameters in the statement's transaction
first (``set_config(..., is_local => true)``: gone at commit). A value never enters SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PARAM_PREFIX = "bindu_frames.p"
"""Frame statements read their parameters from the transaction-local settings ``bindu_frames.p<n>``."""


@dataclass(frozen=True)
class Param:
    """One parameter of a frame statement: its value and the SQL type asyncpg binds it as."""

    value: Any
    bind: str


class Params:
    """The parameters of one frame statement, numbered as they are added.

    ``COPY (SELECT ...) TO STDOUT`` takes no bound parameters, so frame statements read theirs
    from transaction-local settings: ``p(value, cast)`` records the value and returns
    ``(SELECT current_setting('bindu_frames.p<n>')::cast)::cast``, an uncorrelated subquery that
    PostgreSQL computes once per statement. ``PgReader`` binds the values (as protocol
    parameters of one ``set_config`` call) in the statement's transaction, before running it:
    values never enter the SQL text. Equal text values share one setting (JSON keys repeat).
    """

    def __init__(self, params: Sequence[Param] = ()) -> None:
        self.params = list(params)
        self._texts: dict[tuple[str, str], str] = {}

    def __call__(self, value: Any, cast: str, bind: str | None = None) -> str:
        """The SQL reading a new parameter as ``cast`` (bound as ``bind``, by default ``cast``)."""
        if value is None:
            raise AssertionError("a frame parameter is never NULL")
        shared = (value, cast) if isinstance(value, str) and bind is None else None
        if shared is not None and shared in self._texts:
            return self._texts[shared]
        self.params.append(Param(value, bind or cast))
        # the cast outside (a no-op) makes ``= ANY(ref)`` read an array, not a subquery's rows
        ref = f"(SELECT current_setting('{PARAM_PREFIX}{len(self.params)}')::{cast})::{cast}"
        if shared is not None:
            self._texts[shared] = ref
        return ref

    def key(self, key: str) -> str:
        """A JSON object key, as a parameter."""
        return self(key, "text")


def set_params_sql(params: Sequence[Param]) -> str:
    """The statement that publishes ``params`` (bound as ``$1``...) as the settings ``Params`` reads."""
    values = ", ".join(f"${i}::{param.bind}::text" for i, param in enumerate(params, start=1))
    return (
        f"SELECT count(set_config('{PARAM_PREFIX}' || s.n, s.value, true)) AS n"
        f" FROM unnest(ARRAY[{values}]::text[]) WITH ORDINALITY AS s(value, n)"
    )
