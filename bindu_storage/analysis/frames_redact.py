"""Which JSON keys hold secrets, and redaction of values under them (``"***"``).

A key is secret when one of its words names a credential: ``token``, ``password``, ``secret``,
``credentials``, ``authorization``, ``api_key``, ``private_key``, ``cookie``... Words are split at
``_``, ``-``, ``.``, spaces and camelCase humps, so ``access_token``, ``clientSecret`` and
``X-Api-Key`` are secret. Counters are not: a key is never secret when it also says ``count``,
``usage``, ``limit``... (``token_count``, ``max_tokens``; plural ``tokens`` alone is not secret
either), so LLM usage metadata stays analysable.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import Any

REDACTED = "***"
"""What a secret value becomes in a frame."""

_SECRET_WORDS = frozenset({
    "token", "password", "passwd", "pwd", "passphrase", "secret", "secrets", "credential",
    "credentials", "authorization", "apikey", "cookie", "signature", "privatekey",
})
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")})
_NOT_SECRET_WORDS = frozenset({
    "count", "counts", "usage", "used", "limit", "limits", "len", "length", "num", "number", "max",
    "min", "total", "budget", "type", "expires", "expiry", "ttl",
})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Tell whether a JSON object key names a secret (see the module docstring)."""
    words = [w.lower() for w in _SEPARATORS.split(_HUMP.sub("_", key)) if w]
    if not words or _NOT_SECRET_WORDS.intersection(words):
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def redact(value: Any) -> Any:
    """A copy of a JSON value where every value under a secret key is ``"***"``.

    JSON nulls under secret keys stay null (there is nothing to hide).
    """
    if isinstance(value, dict):
        return {
            k: (REDACTED if v is not None else None) if is_secret_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
