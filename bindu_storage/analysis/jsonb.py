"""JSONB containment, PostgreSQL's ``@>``: the SQL condition and the same answers in Python.

Frames and filters both filter JSON columns by containment: on PostgreSQL with the condition
``contains_condition`` writes (served by the GIN indexes), on any other storage with
``jsonb_contains``, which is ``a @> b`` in Python, rule for rule as PostgreSQL's
``JsonbDeepContains`` applies it:

* an object contains an object when every key of the contained one is present and its value is
  contained (scalars: equal; objects and arrays: contained, recursively);
* an array contains an array when every element of the contained one is contained by *some*
  element of the container (order and duplicates are ignored; a scalar element must equal a scalar
  element, a nested object or array must be contained by a nested object or array);
* scalars are equal by type and value; numbers compare as exact decimals of their JSON text, so
  ``1 == 1.0`` but ``true`` is not the number ``1``;
* only at the top level, an array contains a scalar that equals one of its scalar elements
  (``[1, 2] @> 1``), a scalar contains only an equal scalar, and nothing else mixes kinds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bindu_storage.storage import validate as v

__all__ = ["constrains", "contains", "contains_condition", "jsonb_contains"]


def jsonb_contains(container: Any, contained: Any) -> bool:
    """Return what PostgreSQL's ``container::jsonb @> contained::jsonb`` returns.

    Both arguments are JSON-native Python values (dict, list or tuple, str, int, float, bool,
    None; UUIDs count as their string). Anything else raises ``InvalidValueError`` naming the
    argument (``container`` or ``contained``) and the path to the bad value.
    """
    return contains(v.json_value(container, "container"), v.json_value(contained, "contained"))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple)


def _scalar_equal(a: Any, b: Any) -> bool:
    """PostgreSQL's scalar equality: same JSON type, then equal value (numbers exactly)."""
    if a is None or b is None:
        return a is b
    a_bool, b_bool = isinstance(a, bool), isinstance(b, bool)
    if a_bool or b_bool:
        return a_bool and b_bool and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _number_equal(a, b)


def _number_equal(a: int | float, b: int | float) -> bool:
    if isinstance(a, float) == isinstance(b, float):
        return a == b  # int/int exact; float/float: equal floats have equal shortest decimals
    f, n = (a, b) if isinstance(a, float) else (b, a)
    # PostgreSQL sees the float as the decimal json.dumps writes (its shortest repr), not as
    # its binary value: float(2**60) is written 1.152921504606847e+18, which is not 2**60.
    return float(f).is_integer() and Decimal(repr(f)) == n


def contains(container: Any, contained: Any) -> bool:
    """``container @> contained`` for values already checked to be JSON (no copy, no checks)."""
    return _contains(container, contained, True)


def constrains(fragment: Any, empty: Any) -> bool:
    """Whether a containment filter constrains anything: the column's empty value (``{}``,
    ``[]``) does not already contain it. A filter that constrains nothing adds no condition."""
    return not _contains(empty, fragment, True)


def contains_condition(column: str, placeholder: str) -> str:
    """The SQL condition ``column @> placeholder::jsonb`` (the fragment bound as JSON text), which
    a GIN index (``jsonb_ops`` or ``jsonb_path_ops``) on ``column`` serves."""
    return f"{column} @> {placeholder}::jsonb"


def _contains(a: Any, b: Any, top: bool) -> bool:
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return False
        for key, b_value in b.items():
            if key not in a:
                return False
            a_value = a[key]
            if _is_scalar(a_value) or _is_scalar(b_value):
                if not (_is_scalar(a_value) and _is_scalar(b_value) and _scalar_equal(a_value, b_value)):
                    return False
            elif not _contains(a_value, b_value, False):
                return False
        return True
    if isinstance(a, list | tuple):
        if _is_scalar(b):  # a raw scalar inside an array: only at the top level
            return top and any(_is_scalar(x) and _scalar_equal(x, b) for x in a)
        if not isinstance(b, list | tuple):
            return False
        nested: list[Any] | None = None
        for element in b:
            if _is_scalar(element):
                if not any(_is_scalar(x) and _scalar_equal(x, element) for x in a):
                    return False
                continue
            if nested is None:
                nested = [x for x in a if not _is_scalar(x)]
            if not any(_contains(x, element, False) for x in nested):
                return False
        return True
    # a is a scalar: at the top level it contains an equal scalar and nothing else
    return top and _is_scalar(b) and _scalar_equal(a, b)
