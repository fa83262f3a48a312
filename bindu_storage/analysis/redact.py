"""The one redaction rule of frames, exports and diagnostics: what is a secret, and ``"***"`` for it.

**Keys.** A JSON key is secret when one of its words names a credential. Words are split at
``_``, ``-``, ``.``, spaces, camelCase humps and acronym ends (``APIToken`` → ``API Token``,
``GITHUBToken`` → ``GITHUB Token``) and lower-cased. Secret words: ``token``, ``password``,
``passwd``, ``pwd``, ``passphrase``, ``secret(s)``, ``credential(s)``, ``auth``, ``oauth``,
``authorization``/``authorisation``, ``bearer``, ``apikey``, ``cookie``, ``signature``,
``privatekey``, ``sessionid``, ``jwt``; a word that ends in ``token``, ``secret``, ``password``,
``passwd`` or ``apikey`` (``githubtoken``, ``clientsecret``); and the pairs ``api key``,
``private key``, ``access key``, ``secret key``, ``session id``/``session key``/``session token``.
A key is never secret when it also says ``count``, ``usage``, ``limit``, ``max``, ``total``,
``type``, ``expires``... (``token_count``, ``max_tokens``, ``auth_type``); the plural
``tokens`` alone is not secret, nor are ``author`` or ``authority``. So LLM usage metadata stays
analysable.

A secret key hides its whole value, an object or array included (``"auth": {...}`` becomes
``"auth": "***"``); a JSON null stays null.

**Values.** A string is redacted where it holds a credential, wherever it sits: the password of
a URL's userinfo (``https://user:***@host``), a query or form parameter whose name is a secret
key (``?access_token=***``), ``Bearer``/``Basic`` authorization values, JWTs (``eyJ…``) and
well-known token shapes (GitHub ``ghp_…``/``github_pat_…``, ``sk-…`` API keys, Slack
``xox…-``, AWS ``AKIA…``). Only that part becomes ``***``; the rest of the string stays.
A string is scanned only when a cheap substring test says it could hold one of these.

**SQL texts** (diagnostics) additionally lose ``PASSWORD '…'`` literals and conninfo passwords.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bindu_storage.dsn import mask_url

if TYPE_CHECKING:
    import pyarrow as pa

REDACTED = "***"
"""What a secret value becomes."""

_SECRET_WORDS = frozenset({
    "token", "password", "passwd", "pwd", "passphrase", "secret", "secrets", "credential",
    "credentials", "authorization", "authorisation", "auth", "oauth", "bearer", "apikey", "cookie",
    "signature", "privatekey", "sessionid", "jwt",
})
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "apikey")
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("session", "id"),
    ("session", "key"), ("session", "token"),
})
_NOT_SECRET_WORDS = frozenset({
    "count", "counts", "usage", "used", "limit", "limits", "len", "length", "num", "number", "max",
    "min", "total", "budget", "type", "expires", "expiry", "ttl", "method", "scheme", "mode",
})
_HUMPS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Tell whether a JSON object key names a secret (see the module docstring)."""
    words = [w.lower() for w in _SEPARATORS.split(_HUMPS.sub("_", key)) if w]
    if not words or _NOT_SECRET_WORDS.intersection(words):
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    if any(w.endswith(_SECRET_SUFFIXES) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


# --- values ------------------------------------------------------------------------------------

_HINTS = ("://", "=", "earer", "EARER", "asic ", "eyJ", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
          "github_pat_", "sk-", "xox", "AKIA")
"""Substrings one of which every redactable string holds (the cheap test before any regex)."""

ARROW_HINT = "://|=|[Bb]earer|BEARER|Basic |eyJ|gh[pousr]_|github_pat_|sk-|xox|AKIA"
"""The same test as one RE2 pattern, for arrow's vectorised ``match_substring_regex``."""

_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)(?P<pw>[^\s/@?#]+)@")
_PARAM = re.compile(r"(?P<head>(?:^|(?<=[?&;#\s,{(\"']))(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)=)"
                    r"(?P<value>[^&\s#\"',;)}]+)")
_AUTH_VALUE = re.compile(r"(?P<head>\b(?:[Bb]earer|BEARER|Basic)\s+)(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)")
_TOKEN_SHAPES = re.compile(
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # a JWT
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|\bsk-[A-Za-z0-9_-]{20,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
)


def _auth_value(match: re.Match[str]) -> str:
    value = match["value"]
    if not re.search(r"[0-9._\-=+/~]", value):  # a word ("Bearer authentication"), not a credential
        return match.group(0)
    return match["head"] + REDACTED


def redact_text(text: str) -> str:
    """``text`` with every credential it holds replaced by ``***`` (see the module docstring)."""
    if not any(hint in text for hint in _HINTS):
        return text
    text = _URL_USERINFO.sub(lambda m: m["head"] + REDACTED + "@", text)
    text = _PARAM.sub(lambda m: m["head"] + REDACTED if is_secret_key(m["name"]) else m.group(0), text)
    text = _AUTH_VALUE.sub(_auth_value, text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every value under a secret key ``"***"`` and every string
    redacted by :func:`redact_text`. JSON nulls under secret keys stay null (nothing to hide)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if v is not None else None) if is_secret_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_arrow(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A string column with :func:`redact_text` applied; only hinted rows reach Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hinted = pc.fill_null(pc.match_substring_regex(column, ARROW_HINT), False)
    if not pc.any(hinted).as_py():
        return column
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    mask = hinted.combine_chunks() if isinstance(hinted, pa.ChunkedArray) else hinted
    replaced = [redact_text(s) for s in flat.filter(mask).to_pylist()]
    return pc.replace_with_mask(flat, mask, pa.array(replaced, type=flat.type))


# --- SQL texts (diagnostics) -------------------------------------------------------------------

_QUOTED = r"(?:E'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)"
_PASSWORD_CLAUSE = re.compile(rf"(?P<key>\bPASSWORD\s+){_QUOTED}", re.I | re.S)


def redact_sql(text: str) -> str:
    """``text`` with password literals, conninfo and URL passwords and credentials replaced by ``***``.

    >>> redact_sql("ALTER ROLE ops PASSWORD 'hunter2'")
    "ALTER ROLE ops PASSWORD '***'"
    """
    text = _PASSWORD_CLAUSE.sub(lambda m: f"{m['key']}'***'", text)
    return redact_text(mask_url(text))
