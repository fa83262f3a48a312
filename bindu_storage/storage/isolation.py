"""Copy-on-read for JSON-native values: what a backend hands out is never what it keeps."""

from __future__ import annotations

from typing import Any


def clone(value: Any) -> Any:
    """Deep-copy a JSON-native value (dicts, lists and immutable scalars) quickly.

    Scalars are taken as they are without a call per value: only containers recurse.
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            inner = type(item)
            out[key] = clone(item) if inner is dict or inner is list else item
        return out
    if kind is list:
        return [clone(item) if type(item) is dict or type(item) is list else item for item in value]
    return value
