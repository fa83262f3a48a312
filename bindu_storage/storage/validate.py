"""Input checks shared by every backend, run before anything is written.

``json_value`` is also the isolation boundary on the way in: it returns a JSON-native deep copy
(dicts, lists, str, int, float, bool, None; UUIDs become strings), so a stored value never
aliases the caller's object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.types import TASK_STATES

MAX_DEPTH = 100
"""How deeply dicts and lists may nest in one stored value (the value itself is level 1).

Deeper values are refused with ``InvalidValueError`` before anything is written: beyond a few
hundred levels Python's JSON and copy functions hit the recursion limit, and a stored value that
can never be read back again would break every listing that includes it."""

_INT_LIMIT = 10**4300  # json.dumps (and so every backend) refuses integers with more digits

_SURROGATE = re.compile("[\ud800-\udfff]")


def as_uuid(value: object, name: str) -> UUID:
    """Return ``value`` as a UUID; it must be a UUID or a canonical UUID string."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a UUID or a UUID string, got {type(value).__name__}")
    try:
        parsed = UUID(value)
    except ValueError:
        raise InvalidValueError(f"{name} is not a valid UUID: {value!r}") from None
    if str(parsed) != value.lower():
        raise InvalidValueError(f"{name} is not a canonical UUID string: {value!r}")
    return parsed


def check_state(state: object, name: str = "state") -> str:
    """Return ``state`` if it is a valid A2A task state."""
    if not isinstance(state, str) or state not in TASK_STATES:
        raise InvalidValueError(
            f"{name} must be one of {', '.join(sorted(TASK_STATES))}; got {state!r}"
        )
    return state


def check_window(length: int | None, offset: int, length_name: str = "length") -> None:
    """Check a ``length``/``offset`` pair of a listing call (``length_name`` names the first)."""
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
        raise InvalidValueError(f"{length_name} must be a non-negative integer or None, got {length!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"offset must be a non-negative integer, got {offset!r}")


def check_optional_str(value: object, name: str) -> str | None:
    """Return ``value`` if it is None or a string without NUL characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a string or None, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidValueError(f"{name} contains a NUL character")
    return value


def json_value(value: Any, name: str) -> Any:
    """Return a JSON-native deep copy of ``value``, or raise naming the offending path."""
    try:
        return _fast_copy(value, 1)
    except _Unfit:
        return _copy(value, name)


class _Unfit(Exception):
    """A value the fast copy leaves to ``_copy`` (which converts it or says what is wrong)."""


def _unfit_key(key: Any) -> bool:
    return type(key) is not str or "\x00" in key or not (key.isascii() or _SURROGATE.search(key) is None)


def _fast_copy(value: Any, depth: int) -> Any:
    """``_copy`` for values already JSON-native (exact dicts, lists, str, int, float, bool,
    None), without building the path of every node; anything else raises ``_Unfit``, and the
    caller runs ``_copy`` for the conversion or the error message naming the path."""
    kind = type(value)
    if kind is str:
        if "\x00" not in value and (value.isascii() or _SURROGATE.search(value) is None):
            return value
    elif kind is dict:
        if depth <= MAX_DEPTH:
            out: dict[str, Any] = {}
            for key, item in value.items():  # an ASCII key without NUL (most) without a call
                if not (type(key) is str and key.isascii() and "\x00" not in key) and _unfit_key(key):
                    raise _Unfit
                inner = type(item)  # plain ASCII strings, the most common values, without a call
                if inner is str and item.isascii() and "\x00" not in item:
                    out[key] = item
                else:
                    out[key] = _fast_copy(item, depth + 1)
            return out
    elif kind is list:
        if depth <= MAX_DEPTH:
            return [
                item if type(item) is str and item.isascii() and "\x00" not in item
                else _fast_copy(item, depth + 1)
                for item in value
            ]
    elif value is None or kind is bool:
        return value
    elif kind is int:
        if -_INT_LIMIT < value < _INT_LIMIT:
            return value
    elif kind is float and math.isfinite(value) and abs(value) < 1e16:
        return value + 0.0  # -0.0 becomes 0.0, as in _copy
    raise _Unfit


def _copy(value: Any, path: str, depth: int = 1) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_INT_LIMIT < value < _INT_LIMIT:
            return int(value)
        raise InvalidValueError(f"{path} is an integer too large to store as JSON (over 4300 digits)")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidValueError(f"{path} contains a NUL character, which PostgreSQL JSONB rejects")
        if _SURROGATE.search(value):
            raise InvalidValueError(f"{path} contains a lone surrogate, which is not valid UTF-8")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(f"{path} is {value!r}, which is not valid JSON")
        if abs(value) >= 1e16:  # JSON text "1e+23" is the integer 10**23, as PostgreSQL keeps it
            return int(Decimal(repr(value)))
        return float(value) + 0.0  # -0.0 becomes 0.0, as in PostgreSQL (numeric has no -0)
    if isinstance(value, dict | list | tuple) and depth > MAX_DEPTH:
        raise InvalidValueError(
            f"{path.partition('[')[0]} nests deeper than {MAX_DEPTH} levels of dicts and lists"
        )
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValueError(f"{path} has a non-string key {key!r}; JSON keys are strings")
            if "\x00" in key:
                raise InvalidValueError(f"{path} has a key containing a NUL character")
            if _SURROGATE.search(key):
                raise InvalidValueError(f"{path} has a key containing a lone surrogate")
            out[key] = _copy(item, f"{path}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_copy(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, UUID):
        return str(value)
    raise InvalidValueError(
        f"{path} is a {type(value).__name__} ({value!r:.60}), which is not JSON-serialisable"
    )


def json_object(value: Any, name: str) -> dict[str, Any]:
    """Like ``json_value`` but the value must be a dict."""
    if not isinstance(value, dict):
        raise InvalidTypeError(f"{name} must be a dict, got {type(value).__name__}")
    return json_value(value, name)


def _items(values: Sequence[Any] | None, name: str, id_key: str) -> list[dict[str, Any]]:
    if values is None:
        return []
    if isinstance(values, dict | str | bytes) or not isinstance(values, Sequence):
        raise InvalidTypeError(f"{name} must be a list, got {type(values).__name__}")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(values):
        where = f"{name}[{i}]"
        copied = json_object(item, where)
        ident = copied.get(id_key)
        if not isinstance(ident, str) or not ident:
            raise InvalidValueError(f"{where} needs a non-empty {id_key!r} (got {ident!r})")
        if ident not in seen:  # de-duplicate within one call, first wins
            seen.add(ident)
            out.append(copied)
    return out


def required_messages(values: Sequence[Any], name: str) -> list[dict[str, Any]]:
    """Like ``messages`` but ``None`` is refused (the argument is not optional)."""
    if values is None:
        raise InvalidTypeError(f"{name} must be a list of messages, got None")
    return messages(values, name)


def messages(values: Sequence[Any] | None, name: str = "new_messages") -> list[dict[str, Any]]:
    """Validated JSON copies of messages, de-duplicated by ``message_id``."""
    return _items(values, name, "message_id")


def artifacts(values: Sequence[Any] | None, name: str = "new_artifacts") -> list[dict[str, Any]]:
    """Validated JSON copies of artifacts, de-duplicated by ``artifact_id``."""
    return _items(values, name, "artifact_id")


def new_only(existing: list[dict[str, Any]], items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The items whose ``key`` is not already present in ``existing``."""
    if not items:
        return []
    present = {e.get(key) for e in existing}
    return [item for item in items if item[key] not in present]
