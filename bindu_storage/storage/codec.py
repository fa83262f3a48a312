"""JSON and JSONB on the wire: asyncpg codecs through orjson, exact for every stored value.

The PostgreSQL backend installs them on each pooled connection (``init_connection``). orjson
is several times faster than the standard library both ways, which matters on a call of one
row: the JSON of a task is most of the client's work per call.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import orjson

_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
"""A ``bytes.translate`` table: every digit becomes ``0``, every other byte ``x``."""

_LONG_NUMBER = b"0" * 20
"""20 digits in a row (after the translation): a number orjson might read as a float, as it keeps
integers to 64 bits. Translating and then searching is several times faster than a regex."""


def dumps(value: Any) -> bytes:
    """Compact JSON text, non-ASCII kept; integers beyond 64 bits through the standard library."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: "Integer exceeds 64-bit range"
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(text: bytes) -> Any:
    """Python values of JSON text; long numbers (rare) through the standard library, exactly."""
    if _LONG_NUMBER not in text.translate(_DIGITS_AS_ZERO):
        return orjson.loads(text)
    return json.loads(text)


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + dumps(value)  # jsonb's binary format: version 1, then the text


def _decode_jsonb(data: bytes) -> Any:
    return loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON and JSONB as Python values on every pooled connection, through orjson.

    JSONB travels in PostgreSQL's binary format (a version byte, then the text), so the server
    sends it as stored, without a text conversion. The values reaching the encoder are already
    validated (``storage.validate``: finite floats, string keys), so orjson writes the same text
    ``json.dumps`` would; integers beyond 64 bits fall back to ``json`` both ways (orjson would
    refuse them, or read them as floats).
    """
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "json", encoder=lambda v: dumps(v).decode(), decoder=json.loads, schema="pg_catalog",
        format="text",
    )
