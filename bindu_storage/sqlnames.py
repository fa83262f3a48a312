"""SQL identifier rules shared by every layer: plain schema names, quoting, a DID's schema."""

from __future__ import annotations

import hashlib
import re

from bindu_storage.errors import InvalidValueError

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_NOT_IDENTIFIER = re.compile(r"[^a-zA-Z0-9_]")


def validate_schema_name(name: object, what: str = "schema") -> str:
    """Return ``name`` if it is a plain SQL identifier (letters, digits, _ and $; ≤ 63 chars)."""
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise InvalidValueError(
            f"{what} must be a plain identifier of at most 63 characters, got {name!r}"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL."""
    return '"' + name.replace('"', '""') + '"'


def schema_for_did(did: str) -> str:
    """The per-agent schema upstream Bindu derives from an agent DID, character for character.

    The same steps as upstream's ``sanitize_did_for_schema``: lower-case; every character other
    than an ASCII letter, digit or ``_`` becomes ``_``; a leading digit gets ``schema_`` in
    front; a name over 63 characters keeps its first 54 and ends in ``_`` + the first 8 hex
    digits of the SHA-256 of the whole sanitised name. So an agent finds the schema upstream
    wrote, and two DIDs upstream keeps apart are kept apart here.
    """
    if not isinstance(did, str) or not did:
        raise InvalidValueError(f"did must be a non-empty string, got {did!r}")
    name = _NOT_IDENTIFIER.sub("_", did.lower())
    if name[0].isdigit():
        name = "schema_" + name
    if len(name) > 63:
        name = f"{name[:54]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return validate_schema_name(name, "schema derived from the DID")
