"""Removing secrets from SQL text shown by diagnostics.

``pg_stat_activity`` shows statements as sent, literals included, and ``pg_stat_statements``
keeps utility statements (``CREATE ROLE … PASSWORD '…'``) verbatim, so every query text a
diagnostic returns passes through :func:`redact_sql` first.
"""

from __future__ import annotations

import re

from bindu_storage.dsn import mask_url

_QUOTED = r"(?:E'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)"
_PASSWORD_CLAUSE = re.compile(rf"(?P<key>\bPASSWORD\s+){_QUOTED}", re.I | re.S)
_CONNINFO_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'&]+)", re.I)


def redact_sql(text: str) -> str:
    """``text`` with password literals, conninfo passwords and URL passwords replaced by ``***``.

    >>> redact_sql("ALTER ROLE ops PASSWORD 'hunter2'")
    "ALTER ROLE ops PASSWORD '***'"
    """
    text = _PASSWORD_CLAUSE.sub(lambda m: f"{m['key']}'***'", text)
    text = _CONNINFO_PASSWORD.sub(lambda m: f"{m['key']}***", text)
    return mask_url(text)
