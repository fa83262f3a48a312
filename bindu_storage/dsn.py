"""PostgreSQL connection URLs: normalising the accepted schemes and masking the password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
"""URL schemes accepted for ``DATABASE_URL``."""

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<user>[^:/@\s]*):(?P<pw>[^/\s]*)@", re.I)
# (the password runs to the LAST "@" of the authority, so an unencoded "@" inside it is masked
# too; the scheme is optional, so "user:password@host" typed without one is masked as well)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&\s]*", re.I)


def is_postgres_url(url: str) -> bool:
    """Tell whether ``url`` uses one of the accepted PostgreSQL schemes."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in ACCEPTED_SCHEMES


def to_asyncpg_dsn(url: str) -> str:
    """Return ``url`` with the scheme asyncpg expects (``postgresql://``)."""
    if not is_postgres_url(url):
        raise ValueError(f"not a PostgreSQL URL: {mask_url(url)!r}")
    return "postgresql://" + url.partition("://")[2]


def to_sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the scheme SQLAlchemy's asyncpg dialect expects."""
    return "postgresql+asyncpg://" + to_asyncpg_dsn(url).partition("://")[2]


def mask_url(url: str) -> str:
    """Replace the password of a URL (userinfo or ``password=`` parameter) with ``***``."""
    masked = _CREDENTIALS.sub(lambda m: f"{m['scheme'] or ''}{m['user']}:***@", url)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", masked)


def mask_secrets(text: str, *urls: str | None) -> str:
    """Mask every URL password found in ``text``, and the literal passwords of ``urls``."""
    masked = mask_url(text)
    for url in urls:
        password = password_of(url) if url else None
        if password:
            masked = masked.replace(password, "***")
    return masked


def password_of(url: str) -> str | None:
    """Return the password in ``url``, if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    match = re.search(r"[?&]password=([^&\s]*)", url, re.I)
    return match.group(1) if match else None


def describe_target(url: str) -> str:
    """A short, password-free description of where ``url`` points (``user@host:port/db``)."""
    parts = urlsplit(to_asyncpg_dsn(url))
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(("postgresql", f"{user}@{netloc}" if user else netloc, parts.path, "", ""))
