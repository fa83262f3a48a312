"""Copy-on-read for JSON-native values: what a backend hands out is never what it keeps."""

from __future__ import annotations

from typing import Any


def clone(value: Any) -> Any:
    """Deep-copy a JSON-native value (dicts, lists and immutable scalars) quickly."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    return value
