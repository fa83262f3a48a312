"""No database password is ever printed, whatever shape the value has (issue 8, item 1).

Passwords are generated over a wide alphabet (``/ @ : # ? % & = + space``, quotes, backslashes,
non-ASCII) and put in URLs (raw — often malformed —, percent-encoded, as a ``password=``
parameter, under every scheme and a foreign one) and in libpq keyword strings. Each value goes
through every entry point and every surface is scanned for the password and for each of its
distinctive pieces: the CLI's stdout/stderr (``main()`` in-process for the generated cases, the
real console script for fixed ones), exception messages, reprs and full tracebacks (``__cause__``
and ``__context__`` included, suppressed or not), the settings' and storage's reprs, DEBUG logs
of ``bindu_storage``, ``asyncpg``, ``alembic`` and ``sqlalchemy``, and exported files. A real role
whose password is the generated one proves the good path: the percent-encoded URL connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindu_storage import InvalidValueError, PostgresStorage
from bindu_storage.analysis.diagnostics import open_diagnostics_connection
from bindu_storage.analysis.frames import tasks_frame
from bindu_storage.cli import main
from bindu_storage.dsn import mask_secrets, secrets_of, validate_url
from bindu_storage.settings import StorageSettings
from bindu_storage.storage import migrate

SPECIALS = "/@:#?%&=+ '\"\\;,[]{}$!*()<>|`~^éü密ßΩ\u00a0\u2028"
"""Characters that break naive URL and keyword handling (and a few non-ASCII ones)."""

ROLE = "bindu_secret_probe"
COUNTS = {"passwords": 0, "surfaces": 0, "leaks": 0, "connected": 0}


def marker() -> st.SearchStrategy[str]:
    """A distinctive piece ("Sx" + 6 letters/digits): seen anywhere, it is a leak."""
    return st.text("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=6).map(
        lambda s: "Sx" + s
    )


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """A password of distinctive pieces joined by runs of special characters."""
    pieces = draw(st.lists(st.tuples(st.text(SPECIALS, max_size=3), marker()), min_size=1, max_size=3))
    tail = draw(st.text(SPECIALS, max_size=2))
    return "".join(sep + piece for sep, piece in pieces) + tail


def pieces_of(password: str) -> list[str]:
    """What must never be printed: the password, its encodings, each distinctive piece."""
    found = {password, quote(password, safe=""), quote(password)}
    index = password.find("Sx")
    while index >= 0:
        found.add(password[index:index + 8])
        index = password.find("Sx", index + 1)
    return sorted(found, key=len, reverse=True)


def scan(text: str, password: str, where: str) -> None:
    """Fail when ``text`` shows any piece of ``password``."""
    COUNTS["surfaces"] += 1
    for piece in pieces_of(password):
        if piece in text:
            COUNTS["leaks"] += 1
            raise AssertionError(f"{where} shows the password piece {piece!r}: {text[:2000]!r}")


def exception_text(exc: BaseException) -> str:
    """str, repr, args and the full traceback of ``exc`` and of every exception it chains to."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    parts = []
    for current in seen:
        parts.append("".join(traceback.format_exception(current)))
        parts.append(f"{current!s} {current!r} {current.args!r}")
    return "\n".join(parts)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(levelname)s %(message)s").format(record))


@contextlib.contextmanager
def debug_logs() -> Iterator[_Collect]:
    """Every log record of bindu_storage, asyncpg, alembic and sqlalchemy at DEBUG."""
    handler = _Collect()
    names = ("bindu_storage", "asyncpg", "alembic", "sqlalchemy")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    root = logging.getLogger()
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """The storage variables cleared, ``values`` set, in an empty working directory."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("STORAGE") or k == "DATABASE_URL"}
    for name in saved:
        del os.environ[name]
    os.environ.update(values)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(cwd)
            for name in values:
                os.environ.pop(name, None)
            os.environ.update(saved)


def run_cli(*args: str) -> tuple[int, str, str]:
    """``bindu-storage ARGS`` in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def attempt(action: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``action`` (a coroutine function or a plain one); return its result or its exception."""
    try:
        result = action()
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return result, None
    except Exception as exc:
        return None, exc


# --- the server side: a role whose password is the generated one -----------------------------


def _server(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/")


async def _set_role_password(admin_url: str, password: str | None) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        if password is None:
            await conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
            return
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        exists = await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", ROLE)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE {ROLE} LOGIN PASSWORD {literal}")
        if not exists:
            await conn.execute(f"GRANT pg_read_all_data, pg_monitor TO {ROLE}")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def probe_role(admin_url: str) -> Iterator[Callable[[str], None]]:
    """Set the password of a login role that may read everything (dropped afterwards)."""
    yield lambda password: asyncio.run(_set_role_password(admin_url, password))
    asyncio.run(_set_role_password(admin_url, None))


def forms(password: str, host: str, port: int, database: str, user: str = ROLE) -> dict[str, str]:
    """The password in every shape a database setting can take."""
    enc = quote(password, safe="")
    return {
        "raw": f"postgresql://{user}:{password}@{host}:{port}/{database}",
        "encoded": f"postgresql://{user}:{enc}@{host}:{port}/{database}",
        "encoded-postgres": f"postgres://{user}:{enc}@{host}:{port}/{database}",
        "raw-asyncpg": f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{database}",
        "param-encoded": f"postgresql://{user}@{host}:{port}/{database}?password={enc}",
        "param-raw": f"postgresql://{user}@{host}:{port}/{database}?sslmode=disable&password={password}",
        "bad-port": f"postgresql://{user}:{enc}@{host}:{password}/{database}",
        "mysql": f"mysql://{user}:{password}@{host}:{port}/{database}",
        "no-scheme": f"{user}:{password}@{host}:{port}/{database}",
        "keyword": f"host={host} port={port} user={user} password={password} dbname={database}",
        "keyword-quoted": "host={} user={} password='{}'".format(
            host, user, password.replace("\\", "\\\\").replace("'", "\\'")
        ),
    }


# --- the property -----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(password=passwords())
def test_no_surface_ever_shows_the_password(
    password: str, pg_url: str, probe_role: Callable[[str], None]
) -> None:
    COUNTS["passwords"] += 1
    host, port, database = _server(pg_url)
    probe_role(password)
    values = forms(password, host, port, database)
    with debug_logs() as logs:
        for name, url in values.items():
            _entry_points(name, url, password)
        _cli(values, password)
        _good_path(values["encoded"], password)
    scan("\n".join(logs.lines), password, "the DEBUG logs")


def _entry_points(name: str, url: str, password: str) -> None:
    """Every library entry point of a database URL, and what it shows on success or failure."""
    valid = attempt(lambda: validate_url(url, "DATABASE_URL"))[1] is None
    if name in ("encoded", "encoded-postgres", "param-encoded"):
        assert valid, f"a percent-encoded password is always accepted ({name})"
    if name in ("mysql", "no-scheme", "keyword", "keyword-quoted", "bad-port"):
        assert not valid, name
    with environment(STORAGE_BACKEND="postgres", DATABASE_URL=url):
        cfg, exc = attempt(StorageSettings)
    if exc is not None:
        scan(exception_text(exc), password, f"the settings error ({name})")
    else:
        scan(f"{cfg!r} {cfg!s} {cfg.postgres_url_masked}", password, f"the settings repr ({name})")
    storage, exc = attempt(lambda: PostgresStorage(url, run_migrations=False, max_retries=0))
    if exc is not None:
        assert isinstance(exc, InvalidValueError), (name, type(exc))
        assert not valid
        text = exception_text(exc)
        scan(text, password, f"PostgresStorage() ({name})")
        assert str(exc).count("\n") == 0, "one line"
        assert "invalid literal" not in text and "Name or service" not in text
    else:
        assert valid
        scan(f"{storage!r} {storage!s} {storage.database_url}", password, f"repr(PostgresStorage) ({name})")
    for what, action in (
        ("migrate.upgrade", lambda: migrate.upgrade(url, "public", "head") if not valid else None),
        ("tasks_frame", lambda: tasks_frame(url, limit=1) if not valid else None),
        ("diagnostics", lambda: open_diagnostics_connection(url) if not valid else None),
    ):
        _, exc = attempt(action)
        if not valid:
            assert isinstance(exc, InvalidValueError), (what, name, type(exc))
            scan(exception_text(exc), password, f"{what} ({name})")
    scan(mask_secrets(f"connecting to {url} failed", url), password, f"mask_secrets ({name})")


def _cli(values: dict[str, str], password: str) -> None:
    """Each command with the value as --database-url and (demo) as DATABASE_URL."""
    for name in ("raw", "keyword", "mysql", "bad-port", "param-raw"):
        url = values[name]
        malformed = attempt(lambda url=url: validate_url(url))[1] is not None  # type: ignore[misc]
        with environment(STORAGE__POSTGRES_MAX_RETRIES="0"):
            runs = [
                ("diagnose", run_cli("diagnose", "--database-url", url)),
                ("migrate", run_cli("migrate", "current", "--database-url", url)),
                ("export", run_cli("export", "tasks", "--to", "out.csv", "--database-url", url,
                                   "--no-progress")),
                ("seed", run_cli("seed", "--tasks", "5", "--database-url", url, "--no-progress")),
            ]
        with environment(STORAGE_BACKEND="postgres", DATABASE_URL=url, STORAGE__POSTGRES_MAX_RETRIES="0"):
            runs.append(("demo", run_cli("demo", "--tasks", "5")))
        for command, (status, out, err) in runs:
            scan(out + err, password, f"bindu-storage {command} ({name})")
            if malformed:
                assert status != 0 and out == ""
                lines = err.splitlines()
                assert len(lines) == 1 and lines[0].startswith(f"bindu-storage {command}: error: "), err
                assert "invalid literal" not in err and "Name or service" not in err


def _good_path(url: str, password: str) -> None:
    """The percent-encoded URL of the role connects, reads, and shows nothing of the password."""

    async def use() -> int:
        storage = PostgresStorage(url, run_migrations=False, max_retries=0, pool_min=1, pool_max=1)
        try:
            await storage.connect()
            scan(repr(storage) + storage.database_url, password, "a connected PostgresStorage")
            return await storage.count_tasks()
        finally:
            await storage.close()

    count, exc = attempt(use)
    assert exc is None, exception_text(exc)[-3000:]
    assert count >= 0
    COUNTS["connected"] += 1
    with environment():
        status, out, err = run_cli("migrate", "current", "--database-url", url)
    assert status == 0, err
    scan(out + err, password, "bindu-storage migrate current (good path)")
    wrong = url.replace(f":{quote(password, safe='')}@", f":{quote(password + 'x', safe='')}@")
    _, exc = attempt(lambda: PostgresStorage(wrong, run_migrations=True, max_retries=0).connect())
    assert exc is not None
    scan(exception_text(exc), password, "a refused login")


def test_figures_are_reported() -> None:
    """Runs after the property (file order): its figures, for the report."""
    if COUNTS["passwords"]:
        print(f"\nsecrets: {COUNTS}")
        assert COUNTS["leaks"] == 0


# --- fixed cases: the real console script, alembic, exports, messages -------------------------


BASE64ISH = "Pw_9f/xQ+kZ8=Sx7Yqa2"  # pragma: allowlist secret


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STORAGE") and k not in ("DATABASE_URL", "BINDU_TEST_DATABASE_URL")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("password", "needle"),
    [
        (BASE64ISH, "unencoded '/'"),
        ("Sx9kQ#frag", "unencoded '#'"),
        ("Sx9kQ?query", "unencoded '?'"),
        ("Sx9k@Q@host", "unencoded '@'"),
    ],
)
def test_every_command_says_what_is_wrong(password: str, needle: str, pg_url: str) -> None:
    host, port, database = _server(pg_url)
    url = f"postgresql://user:{password}@{host}:{port}/{database}"
    for args in (("migrate", "upgrade", "--database-url", url), ("diagnose", "--database-url", url),
                 ("export", "tasks", "--to", "t.csv", "--database-url", url),
                 ("seed", "--tasks", "5", "--database-url", url)):
        with environment():
            status, out, err = run_cli(*args)
        assert status != 0 and out == "" and len(err.splitlines()) == 1, err
        assert needle in err and "percent-encode" in err
        scan(err, password, f"bindu-storage {args[0]}")
    with environment(STORAGE_BACKEND="postgres", DATABASE_URL=url):
        status, out, err = run_cli("demo")
    assert status != 0 and needle in err and "DATABASE_URL" in err, err
    scan(out + err, password, "bindu-storage demo")


def test_console_script_and_alembic_say_what_is_wrong(pg_url: str, tmp_path: Path) -> None:
    """The real entry points (console script, ``python -m``, ``alembic``) in subprocesses."""
    host, port, database = _server(pg_url)
    url = f"postgresql://user:{BASE64ISH}@{host}:{port}/{database}"
    exe = shutil.which("bindu-storage")
    assert exe
    for args in (("migrate", "upgrade", "--database-url", url), ("export", "tasks", "--to", "t.csv")):
        proc = subprocess.run([exe, *args], cwd=tmp_path, env=_env(DATABASE_URL=url), capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode != 0
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "unencoded '/'" in proc.stderr and "%2F" in proc.stderr
        scan(proc.stderr, BASE64ISH, f"bindu-storage {args[0]}")
    proc = subprocess.run([sys.executable, "-m", "bindu_storage", "demo"], cwd=tmp_path, check=False,
                          env=_env(STORAGE_BACKEND="postgres", DATABASE_URL=url), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "unencoded '/'" in proc.stderr, proc.stderr
    scan(proc.stdout + proc.stderr, BASE64ISH, "python -m bindu_storage demo")
    root = Path(__file__).resolve().parents[1]
    alembic = subprocess.run([sys.executable, "-m", "alembic", "current"], cwd=root, check=False,
                             env=_env(DATABASE_URL=url), capture_output=True, text=True, timeout=60)
    shown = alembic.stdout + alembic.stderr
    assert alembic.returncode != 0 and "unencoded '/'" in shown, shown
    assert "invalid literal" not in shown
    scan(shown, BASE64ISH, "alembic")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://u:pw@127.0.0.1:notaport/db", "port"),
        ("postgresql://u:pw@127.0.0.1:99999/db", "port"),
        ("host=127.0.0.1 password=Sx2secret", "keyword/value"),
        ("Sx2secret", "no scheme"),
        ("mysql://root:Sx2secret@db/x", "a mysql:// URL is not a PostgreSQL URL"),
        ("postgresql://u:Sx2\tsecret@h/db", "control character"),
        ("postgresql://u:Sx2\x00secret@h/db", "control character"),
        ("postgresql://u:Sx2\uff0fsecret@h/db", "look-alike"),
        ("postgresql://u:pw@h/db?sslmode=bogus", "sslmode"),
        ("postgresql://u@h/db?password=Sx2&secret", "query string"),
        ("postgresql://u:pw@h1:5432,,h2/db", "empty entry"),
    ],
)
def test_each_malformed_shape_gets_one_clear_line(url: str, needle: str) -> None:
    with pytest.raises(InvalidValueError) as raised:
        validate_url(url, "DATABASE_URL")
    message = str(raised.value)
    assert message.startswith("DATABASE_URL: ") and needle in message and "\n" not in message
    assert "Sx2" not in message and "secret" not in message.replace("PASSWORD", "")
    with pytest.raises(InvalidValueError):
        PostgresStorage(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pa:ss@h:5432/db",  # ":" in the password: unambiguous, read as libpq does
        "postgresql://u:p%2Fw%40x@h/db",
        "postgresql://u:p w@h/db",
        "postgresql:///db",
        "postgresql://u:pw@[::1]:5432/db",
        "postgresql://u:pw@h1:5432,h2:5433/db?sslmode=require&target_session_attrs=read-write",
        "postgresql://host/db?user=me@corp",
    ],
)
def test_well_formed_urls_are_accepted(url: str) -> None:
    assert validate_url(url) == url
    assert all(secret not in PostgresStorage(url).database_url for secret in secrets_of(url))


async def test_colon_and_slash_passwords_connect_when_encoded(admin_url: str, pg_url: str) -> None:
    """A role whose password holds ':' and '/': the encoded URL (and ':' unencoded) connects."""
    password = "Sx:base/64+=="  # pragma: allowlist secret
    await _set_role_password(admin_url, password)
    host, port, database = _server(pg_url)
    try:
        for written in (quote(password, safe=""), password.replace("/", "%2F")):
            conn = await asyncpg.connect(validate_url(f"postgresql://{ROLE}:{written}@{host}:{port}/{database}"))
            await conn.close()
        with pytest.raises(InvalidValueError, match="unencoded '/'"):
            validate_url(f"postgresql://{ROLE}:{password}@{host}:{port}/{database}")
    finally:
        await _set_role_password(admin_url, None)


def test_export_of_stored_credentials_shows_none(pg_url: str, tmp_path: Path) -> None:
    """A task whose metadata holds a database URL and a password exports without either."""
    password = "Sx4exp/ort@pw"  # pragma: allowlist secret
    stored = f"postgresql://app:{quote(password, safe='')}@db.internal:5432/app"
    schema = f"secrets_{uuid.uuid4().hex[:8]}"

    async def seed() -> None:
        storage = PostgresStorage(pg_url, schema=schema, run_migrations=True, pool_min=1, pool_max=2)
        try:
            task_id, context_id = uuid.uuid4(), uuid.uuid4()
            message = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "kind": "message",
                       "message_id": str(uuid.uuid4()), "task_id": str(task_id),
                       "context_id": str(context_id)}
            await storage.submit_task(context_id, message)
            await storage.update_task(task_id, "working", metadata={
                "database_url": stored, "db_password": password, "note": f"connect with {stored}",
            })
        finally:
            await storage.close()

    async def drop() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(seed())
    try:
        for name in ("tasks.csv", "tasks.parquet"):
            with environment():
                status, _out, err = run_cli("export", "tasks", "--to", str(tmp_path / name),
                                           "--database-url", pg_url, "--schema", schema, "--no-progress")
            assert status == 0, err
            data = (tmp_path / name).read_bytes()
            text = data.decode("utf-8", "replace")
            for piece in (password, quote(password, safe=""), "Sx4exp"):
                assert piece not in text and piece.encode() not in data, (name, piece)
            assert "db.internal" in text  # the rest of the URL stays analysable
    finally:
        asyncio.run(drop())


# --- the push-config encryption key (STORAGE__PUSH_CONFIG_KEY) is a secret too ----------------


def test_the_push_config_key_never_shows(pg_url: str) -> None:
    import base64

    from bindu_storage import InMemoryStorage
    from bindu_storage.errors import EncryptionKeyError

    key = base64.urlsafe_b64encode(b"Sx" + b"k" * 30).decode()  # a valid Fernet key
    old = base64.urlsafe_b64encode(b"Sx" + b"o" * 30).decode()
    pieces = [key, old, key[:12], old[:12]]

    def clean(text: str, where: str) -> None:
        for piece in pieces:
            assert piece not in text, f"{where} shows the push config key: {text[:500]!r}"

    with environment(STORAGE__PUSH_CONFIG_KEY=f"{key},{old}", DATABASE_URL=pg_url,
                     STORAGE_BACKEND="postgres"), debug_logs() as logs:
        cfg = StorageSettings()
        clean(repr(cfg) + str(cfg) + repr(cfg.model_dump()), "the settings")
        storage = PostgresStorage(pg_url, settings=cfg, run_migrations=False)
        clean(repr(storage) + repr(vars(storage)) + repr(InMemoryStorage(push_config_key=key)), "a storage")
        for argv in (["purge", "--state", "completed"], ["push-configs", "reencrypt"]):
            status, out, err = run_cli(*argv)
            assert status == 0, err
            clean(out + err, f"bindu-storage {' '.join(argv)}")

        async def wrong_key() -> None:
            writer = InMemoryStorage(push_config_key=key)
            tid = uuid.uuid4()
            await writer.submit_task(uuid.uuid4(), {"message_id": "m", "task_id": str(tid), "role": "user",
                                                    "parts": []})
            await writer.set_push_config(tid, {"url": "https://h.example", "token": "tok"})
            writer._push_cipher = InMemoryStorage(push_config_key=old)._push_cipher
            await writer.load_webhook_config(tid)

        _, exc = attempt(wrong_key)
        assert isinstance(exc, EncryptionKeyError)
        clean(exception_text(exc), "the wrong-key error")
        clean("\n".join(logs.lines), "the logs")

    with environment(STORAGE__PUSH_CONFIG_KEY=f"{key[:-4]}Sx!!"):
        status, out, err = run_cli("purge", "--state", "completed")
        assert status == 1 and "STORAGE__PUSH_CONFIG_KEY" in err
        assert key[:-4] not in out + err and key[:12] not in out + err
