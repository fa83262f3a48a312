"""PostgreSQL connection URLs: validating them once, normalising the schemes, masking passwords.

A database URL enters the library in four places (``DATABASE_URL`` in the settings,
``PostgresStorage(database_url)``, the CLI's ``--database-url``, and ``DATABASE_URL`` for
migrations and the ``alembic`` command); each calls :func:`validate_url` before anything
connects. A URL that is not exactly what asyncpg reads is refused with ``InvalidValueError`` and
one line saying what is wrong, and **no error ever repeats the value**, so the password cannot
leak through it, whatever shape the value has:

- the scheme must be one of :data:`ACCEPTED_SCHEMES` (the message may name the scheme, never
  the rest);
- a libpq keyword/value string (``host=... password=...``) is refused (asyncpg reads URLs only);
- an unencoded ``/``, ``?``, ``#`` or ``@`` in the user name or password (common in generated
  and base64 passwords) is refused with the percent-encoding to use (``/`` → ``%2F``; in Python
  ``urllib.parse.quote(password, safe="")``). An unencoded ``:`` in the password is accepted:
  the user name ends at the first ``:``, so it is unambiguous, and both libpq and asyncpg read
  it so;
- a port must be a number from 1 to 65535, control characters (NUL, tab, newline...) must be
  percent-encoded, the query string must be ``name=value`` pairs and ``sslmode`` a libpq mode.

Masking (:func:`mask_url`, :func:`mask_secrets`) is the second line of defence for text that
quotes a URL (driver messages, query texts): URL userinfo passwords, ``password=`` query and
keyword parameters, and the literal passwords of known URLs become ``***``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from bindu_storage.errors import InvalidValueError

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
"""URL schemes accepted for ``DATABASE_URL``."""

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""The ``sslmode`` values libpq (and asyncpg) know."""

_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,30})://")
_KEYWORD_FORM = re.compile(r"\s*[A-Za-z_]+\s*=")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PORT = re.compile(r"[0-9]{1,5}")
_ENCODING = {"/": "%2F", "?": "%3F", "#": "%23", "@": "%40", "[": "%5B", "]": "%5D", "%": "%25", ":": "%3A"}
_HOW = 'in Python: urllib.parse.quote(password, safe="")'

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S*)@", re.I)
# (with a scheme, the password runs to the LAST "@" of the token, so an unencoded "/" or "@"
# inside it is masked too)
_BARE_CREDENTIALS = re.compile(r"(?<![\w/])(?P<user>[\w.-]+):(?P<pw>[^/\s@]+)@(?=[\w.\[-])")
# ("user:password@host" typed without a scheme)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&;]password=)[^&#\s]*", re.I)
_CONNINFO_PASSWORD = re.compile(
    r"(?P<key>(?<![?&;\w])password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\S+)", re.I
)


def _bad(name: str, problem: str) -> InvalidValueError:
    return InvalidValueError(f"{name}: {problem}" if name else problem)


def _encode_hint(char: str) -> str:
    return f"percent-encode it ({char!r} → {_ENCODING[char]}; {_HOW})"


def validate_url(url: object, name: str = "the database URL") -> str:
    """Return ``url`` unchanged when it is a PostgreSQL URL asyncpg reads as written.

    Otherwise raise ``InvalidValueError`` whose one-line message starts with ``name`` (unless
    empty, for a caller that names the value itself, like the settings) and says
    what is wrong (see the module docstring); the message never contains any part of ``url``
    but, for an unknown scheme, the scheme.
    """
    if not isinstance(url, str):
        raise _bad(name, f"expected a PostgreSQL URL string, got {type(url).__name__}")
    accepted = ", ".join(s + "://" for s in ACCEPTED_SCHEMES)
    scheme = _SCHEME.match(url)
    if scheme is None:
        if _KEYWORD_FORM.match(url):
            raise _bad(
                name,
                "a libpq keyword/value string (host=... password=...) is not accepted; give a URL: "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with the password percent-encoded "
                f"({_HOW})",
            )
        raise _bad(name, f"must be a PostgreSQL URL ({accepted}); the value given has no scheme")
    if scheme["scheme"].lower() not in ACCEPTED_SCHEMES:
        raise _bad(name, f"must be a PostgreSQL URL ({accepted}); a {scheme['scheme']}:// URL is not a "
                         "PostgreSQL URL")
    rest = url[scheme.end():]
    if _CONTROL.search(url):
        raise _bad(name, "contains a control character (NUL, tab, newline...); percent-encode it")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority and "@" in tail:
        at, query = tail.find("@"), tail.find("?")
        if query < 0 or at < query or "=" not in tail[query:at]:
            # an "@" in the path, or in a query but in no value: the userinfo was cut short
            raise _bad(
                name,
                f"the password (or user name) contains an unencoded {tail[0]!r}, which ends the host "
                f"part of a URL; {_encode_hint(tail[0])} (an '@' in a database name needs %40)",
            )
    if authority.count("@") > 1:
        raise _bad(name, f"the password (or user name) contains an unencoded '@'; {_encode_hint('@')}")
    userinfo, _, hostlist = authority.rpartition("@")
    for char in "[]":
        if char in userinfo:
            raise _bad(name, f"the password (or user name) contains an unencoded {char!r}; "
                             f"{_encode_hint(char)}")
    if "#" in tail:
        raise _bad(name, "contains an unencoded '#' (a URL fragment, which would be dropped); "
                         f"{_encode_hint('#')}")
    # the parser's errors quote the URL's parts, password included: raised outside the handler, so
    # that not even the suppressed __context__ holds them
    try:
        urlsplit(url)
        readable = True
    except ValueError:
        readable = False
    if not readable:
        raise _bad(
            name,
            "cannot be read as a URL (it contains characters not allowed unencoded, such as a "
            f"look-alike of '/', '@' or ':'); percent-encode the user name and password ({_HOW})",
        )
    _check_hosts(hostlist, name)
    query_string = tail.partition("?")[2] if "?" in tail else ""
    if query_string:
        try:
            params: dict[str, str] | None = dict(
                parse_qsl(query_string, keep_blank_values=True, strict_parsing=True)
            )
        except ValueError:  # it quotes the bad field, which may be a piece of the password
            params = None
        if params is None:
            raise _bad(
                name,
                "the query string (after '?') is malformed: it must be name=value pairs joined by '&', "
                "with '&', '=', '#' and '%' inside a value percent-encoded",
            )
        if "sslmode" in params and params["sslmode"] not in SSL_MODES:
            raise _bad(name, f"sslmode must be one of {', '.join(SSL_MODES)}")
        if "port" in params and not all(_valid_port(p) for p in params["port"].split(",")):
            raise _bad(name, "the port parameter must be a number from 1 to 65535")
    return url


def _valid_port(text: str) -> bool:
    return bool(_PORT.fullmatch(text)) and 1 <= int(text) <= 65535


def _check_hosts(hostlist: str, name: str) -> None:
    """Each ``host[:port]`` / ``[ipv6][:port]`` of a comma-separated host list, as asyncpg reads it."""
    if not hostlist:
        return  # the default host (a local socket)
    for spec in hostlist.split(","):
        if not spec:
            raise _bad(name, "the host list has an empty entry (two commas, or a trailing comma)")
        if spec.startswith("["):
            match = re.fullmatch(r"\[[^\]]+\](?::(?P<port>.*))?", spec)
            if match is None:
                raise _bad(name, "an IPv6 host must be written [address] or [address]:port")
            port = match["port"]
        else:
            port = spec.partition(":")[2] if ":" in spec else None
        if port is not None and not _valid_port(unquote(port)):
            raise _bad(
                name,
                "the port (after the ':' that follows the host) is not a number from 1 to 65535; "
                f"if that part is a password, it needs 'USER:PASSWORD@' before the host ({_HOW})",
            )


def is_postgres_url(url: str) -> bool:
    """Tell whether ``url`` uses one of the accepted PostgreSQL schemes (nothing else is checked)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in ACCEPTED_SCHEMES


def to_asyncpg_dsn(url: str, name: str = "the database URL") -> str:
    """Validate ``url`` (:func:`validate_url`) and return it with asyncpg's scheme, ``postgresql://``."""
    validate_url(url, name)
    return "postgresql://" + url.partition("://")[2]


def to_sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the scheme SQLAlchemy's asyncpg dialect expects."""
    return "postgresql+asyncpg://" + to_asyncpg_dsn(url).partition("://")[2]


def mask_url(text: str) -> str:
    """Replace with ``***`` every password ``text`` shows: URL userinfo, ``password=`` parameters.

    Works on any text (an error message, a query), not only on one URL.
    """
    masked = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    masked = _BARE_CREDENTIALS.sub(lambda m: f"{m['user']}:***@", masked)
    masked = _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", masked)
    return _CONNINFO_PASSWORD.sub(lambda m: f"{m['key']}***", masked)


def secrets_of(value: str | None) -> list[str]:
    """Every form in which ``value`` (a URL or keyword string, well-formed or not) holds a password.

    The raw and the decoded password, as a lenient reader and as asyncpg would cut it, and the
    ``password`` parameters; longest first, three characters or more. For masking text that may
    quote them.
    """
    if not value:
        return []
    found: set[str] = set()
    scheme = _SCHEME.match(value)
    if scheme or not _KEYWORD_FORM.match(value):
        rest = value[scheme.end():] if scheme else value  # "user:password@host" without a scheme too
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority = rest[:end]
        if authority.count("@") != 1 and "@" in rest:  # malformed: the password runs to the last "@"
            found.add(rest.rpartition("@")[0].partition(":")[2])
        if "@" in authority:  # as asyncpg and libpq read it
            found.add(authority.partition("@")[0].partition(":")[2])
            found.add(authority.rpartition("@")[0].partition(":")[2])
        for key, param in parse_qsl(value.partition("?")[2], keep_blank_values=True):
            if key.lower() == "password":
                found.add(param)
        found.update(m.group(1) for m in re.finditer(r"[?&;]password=([^&#\s]*)", value, re.I))
    for match in re.finditer(r"\bpassword\s*=\s*(.*?)(?=\s+[A-Za-z_]+\s*=|$)", value, re.I | re.S):
        found.add(match.group(1))  # a lenient reading: an unquoted value with spaces runs to the next key
    for match in _CONNINFO_PASSWORD.finditer(value):
        raw = match.group(0)[len(match["key"]):]
        found.add(raw)
        if raw[:1] in ("'", '"'):
            found.add(re.sub(r"\\(.)", r"\1", raw[1:-1] if raw[-1:] == raw[:1] else raw[1:]))
    found.update([unquote(s) for s in found])
    # (fragments of one or two characters hide nothing and would mangle the text they occur in)
    return sorted((s for s in found if len(s) > 2 and s != "***"), key=len, reverse=True)


def mask_secrets(text: str, *urls: str | None) -> str:
    """Mask every URL password found in ``text``, and the literal passwords of ``urls``."""
    spans: list[list[int]] = []
    for secret in {s for url in urls for s in secrets_of(url)}:
        start = text.find(secret)
        while start >= 0:
            spans.append([start, start + len(secret)])
            start = text.find(secret, start + 1)
    merged: list[list[int]] = []
    for span in sorted(spans):  # overlapping candidates are masked as one
        if merged and span[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span[1])
        else:
            merged.append(span)
    for start, end in reversed(merged):
        text = text[:start] + "***" + text[end:]
    return mask_url(text)


def password_of(url: str) -> str | None:
    """Return the password in ``url`` as written (userinfo, else ``password=`` parameter), if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    match = re.search(r"[?&]password=([^&\s]*)", url, re.I)
    return match.group(1) if match else None


def describe_target(url: str) -> str:
    """A short, password-free description of where ``url`` points (``user@host:port/db``).

    Raises ``InvalidValueError`` (without quoting ``url``) when it is not a valid PostgreSQL URL.
    """
    parts = urlsplit(to_asyncpg_dsn(url))
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(("postgresql", f"{user}@{netloc}" if user else netloc, parts.path, "", ""))
