"""Settings from the environment and ``.env``, their errors, secrecy, and the factory."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import execute
from pydantic import ValidationError

from bindu_storage import (
    InMemoryStorage,
    InvalidValueError,
    PostgresStorage,
    close_storage,
    create_storage,
)
from bindu_storage.settings import Settings, StorageSettings, app_settings

SPEC_VARIABLES = [
    "STORAGE_BACKEND",
    "DATABASE_URL",
    "STORAGE__POSTGRES_POOL_MIN",
    "STORAGE__POSTGRES_POOL_MAX",
    "STORAGE__POSTGRES_TIMEOUT",
    "STORAGE__POSTGRES_COMMAND_TIMEOUT",
    "STORAGE__POSTGRES_MAX_RETRIES",
    "STORAGE__POSTGRES_RETRY_DELAY",
    "STORAGE__RUN_MIGRATIONS_ON_STARTUP",
]
OTHER_VARIABLES = [
    "STORAGE__BACKEND", "STORAGE__POSTGRES_URL", "STORAGE__POSTGRES_SCHEMA",
    "STORAGE_TYPE", "POSTGRES_DID", "DID", "STORAGE__POSTGRES_DID",
]
SECRET = "Sup3r-s3cret-pw"  # pragma: allowlist secret
URL = f"postgresql://bindu:{SECRET}@db.internal:5432/bindu"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment (no storage variables) in an empty working directory."""
    for name in SPEC_VARIABLES + OTHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    yield monkeypatch
    monkeypatch.undo()
    app_settings.reload()  # the process-wide settings again as the real environment says


def with_password(url: str, password: str) -> str:
    """``url`` with its password replaced."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def assert_secret_free(text: str, *secrets: str) -> None:
    """No secret occurs in ``text``."""
    for secret in secrets:
        assert secret not in text, f"secret leaked into: {text!r}"


# --- reading ---------------------------------------------------------------------------------


def test_defaults(env: pytest.MonkeyPatch) -> None:
    s = StorageSettings()
    assert s.backend == "memory"
    assert s.postgres_url is None
    assert (s.postgres_pool_min, s.postgres_pool_max) == (2, 10)
    assert (s.postgres_timeout, s.postgres_command_timeout) == (60.0, 30.0)
    assert (s.postgres_max_retries, s.postgres_retry_delay) == (3, 1.0)
    assert s.run_migrations_on_startup is True


def test_every_spec_variable_is_read(env: pytest.MonkeyPatch) -> None:
    values = {
        "STORAGE_BACKEND": "postgres",
        "DATABASE_URL": URL,
        "STORAGE__POSTGRES_POOL_MIN": "3",
        "STORAGE__POSTGRES_POOL_MAX": "7",
        "STORAGE__POSTGRES_TIMEOUT": "12.5",
        "STORAGE__POSTGRES_COMMAND_TIMEOUT": "4",
        "STORAGE__POSTGRES_MAX_RETRIES": "0",
        "STORAGE__POSTGRES_RETRY_DELAY": "0.25",
        "STORAGE__RUN_MIGRATIONS_ON_STARTUP": "false",
    }
    assert sorted(values) == sorted(SPEC_VARIABLES)
    for name, value in values.items():
        env.setenv(name, value)
    s = StorageSettings()
    assert s.backend == "postgres"
    assert s.postgres_url == URL
    assert (s.postgres_pool_min, s.postgres_pool_max) == (3, 7)
    assert (s.postgres_timeout, s.postgres_command_timeout) == (12.5, 4.0)
    assert (s.postgres_max_retries, s.postgres_retry_delay) == (0, 0.25)
    assert s.run_migrations_on_startup is False
    loaded = app_settings.reload()
    assert isinstance(loaded, Settings)
    assert app_settings.storage.backend == "postgres"
    assert app_settings.storage.postgres_url == URL


@pytest.mark.parametrize("raw, expected", [("Postgres", "postgres"), (" memory ", "memory")])
def test_backend_is_case_and_space_insensitive(env: pytest.MonkeyPatch, raw: str, expected: str) -> None:
    env.setenv("STORAGE_BACKEND", raw)
    env.setenv("DATABASE_URL", URL)
    assert StorageSettings().backend == expected


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("0", False), ("no", False)])
def test_run_migrations_flag_parses_booleans(env: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    env.setenv("STORAGE__RUN_MIGRATIONS_ON_STARTUP", raw)
    assert StorageSettings().run_migrations_on_startup is expected


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    (tmp_path / ".env").write_text(  # type: ignore[operator]
        "STORAGE_BACKEND=postgres\n"
        f"DATABASE_URL={URL}\n"
        "STORAGE__POSTGRES_POOL_MAX=4\n"
        "STORAGE__POSTGRES_RETRY_DELAY=0.5\n"
    )
    s = StorageSettings()
    assert (s.backend, s.postgres_url, s.postgres_pool_max, s.postgres_retry_delay) == (
        "postgres", URL, 4, 0.5,
    )
    env.setenv("STORAGE__POSTGRES_POOL_MAX", "9")  # the environment wins over the file
    assert StorageSettings().postgres_pool_max == 9
    assert app_settings.reload().storage.postgres_pool_max == 9


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@localhost:5432/db",
        "postgres://u:pw@localhost/db",
        "postgresql+asyncpg://u:pw@localhost/db",
        "POSTGRESQL://u:pw@localhost/db",
    ],
)
def test_the_three_url_schemes_are_accepted(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("STORAGE_BACKEND", "postgres")
    env.setenv("DATABASE_URL", url)
    assert StorageSettings().postgres_url == url


# --- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variables, named",
    [
        pytest.param({"STORAGE_BACKEND": "mongodb"}, "STORAGE_BACKEND", id="unknown-backend"),
        pytest.param({"STORAGE_BACKEND": "postgres"}, "DATABASE_URL", id="postgres-without-url"),
        pytest.param(
            {"STORAGE__POSTGRES_POOL_MIN": "8", "STORAGE__POSTGRES_POOL_MAX": "4"},
            "STORAGE__POSTGRES_POOL_MIN", id="pool-min-over-max",
        ),
        pytest.param({"DATABASE_URL": f"mysql://root:{SECRET}@db/x"}, "DATABASE_URL", id="mysql-url"),
        pytest.param({"DATABASE_URL": "sqlite:///tmp/db.sqlite"}, "DATABASE_URL", id="sqlite-url"),
        pytest.param({"DATABASE_URL": f"bindu:{SECRET}@db/x"}, "DATABASE_URL", id="no-scheme"),
        pytest.param({"STORAGE__POSTGRES_POOL_MIN": "two"}, "STORAGE__POSTGRES_POOL_MIN", id="pool-min-nan"),
        pytest.param({"STORAGE__POSTGRES_POOL_MAX": "0"}, "STORAGE__POSTGRES_POOL_MAX", id="pool-max-zero"),
        pytest.param({"STORAGE__POSTGRES_TIMEOUT": "-1"}, "STORAGE__POSTGRES_TIMEOUT", id="timeout"),
        pytest.param(
            {"STORAGE__POSTGRES_COMMAND_TIMEOUT": "0"}, "STORAGE__POSTGRES_COMMAND_TIMEOUT",
            id="command-timeout",
        ),
        pytest.param(
            {"STORAGE__POSTGRES_MAX_RETRIES": "-2"}, "STORAGE__POSTGRES_MAX_RETRIES", id="retries",
        ),
        pytest.param(
            {"STORAGE__POSTGRES_RETRY_DELAY": "soon"}, "STORAGE__POSTGRES_RETRY_DELAY", id="delay",
        ),
        pytest.param(
            {"STORAGE__RUN_MIGRATIONS_ON_STARTUP": "perhaps"}, "STORAGE__RUN_MIGRATIONS_ON_STARTUP",
            id="migrations-flag",
        ),
    ],
)
def test_bad_values_fail_naming_the_variable(
    env: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    env.setenv("DATABASE_URL", URL)  # present unless the case overrides or removes it
    if variables.get("STORAGE_BACKEND") == "postgres":
        env.delenv("DATABASE_URL")
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        StorageSettings()
    text = str(raised.value)
    assert named in text
    assert_secret_free(text, SECRET)
    assert_secret_free(repr(raised.value), SECRET)
    assert_secret_free("".join(traceback.format_exception(raised.value)), SECRET)
    with pytest.raises(ValidationError):  # the process-wide settings refuse it just the same
        app_settings.reload()


def test_bad_value_in_dotenv_fails_naming_the_variable(
    env: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL=mysql://root:{SECRET}@db/x\n")  # type: ignore[operator]
    with pytest.raises(ValidationError) as raised:
        StorageSettings()
    assert "DATABASE_URL" in str(raised.value)
    assert_secret_free(str(raised.value), SECRET)


# --- secrecy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [SECRET, "p%40ss:w0rd", "with%20space", "semi;colon&amp"],  # an unencoded "@" is refused (test_dsn)
)
def test_password_never_in_repr_or_str(env: pytest.MonkeyPatch, password: str) -> None:
    url = f"postgresql://bindu:{password}@db.internal:5432/bindu"
    env.setenv("STORAGE_BACKEND", "postgres")
    env.setenv("DATABASE_URL", url)
    s = StorageSettings()
    assert s.postgres_url == url
    for text in (repr(s), str(s), repr(Settings()), str(Settings()), s.postgres_url_masked or ""):
        assert_secret_free(text, password)
    assert "db.internal" in repr(s)
    assert repr(app_settings.reload()).count(password) == 0
    storage = PostgresStorage(settings=s)
    for text in (repr(storage), str(storage), storage.database_url):
        assert_secret_free(text, password)
    assert "db.internal" in repr(storage)


async def test_wrong_password_error_from_the_real_server_is_secret_free(
    env: pytest.MonkeyPatch, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    real = urlsplit(pg_url).password
    assert real
    wrong = "Wr0ng-" + SECRET
    for run_migrations in (False, True):
        storage = PostgresStorage(
            with_password(pg_url, wrong), run_migrations=run_migrations, max_retries=1, retry_delay=0.01,
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as raised:
            await storage.connect()
        text = "".join(traceback.format_exception(raised.value))
        assert "password" in str(raised.value).lower() or "authentication" in str(raised.value).lower()
        for shown in (text, repr(raised.value), repr(storage), caplog.text):
            assert_secret_free(shown, wrong, real)
        assert storage.pool is None


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@127.0.0.1:notaport/db",
        f"postgresql://u:{SECRET}@127.0.0.1:1/db",
        f"postgresql://u:{SECRET}@127.0.0.1:5432/db?sslmode=bogus",
    ],
)
async def test_connection_errors_are_secret_free(
    env: pytest.MonkeyPatch, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as raised:
        # a malformed URL is refused when the storage is made (InvalidValueError), before connecting
        storage = PostgresStorage(url, run_migrations=False, max_retries=1, retry_delay=0.01, timeout=5)
        await storage.connect()
    for shown in ("".join(traceback.format_exception(raised.value)), repr(raised.value), caplog.text):
        assert_secret_free(shown, SECRET)


# --- the factory -----------------------------------------------------------------------------


async def test_factory_defaults_to_memory(env: pytest.MonkeyPatch) -> None:
    app_settings.reload()
    storage = await create_storage()
    assert isinstance(storage, InMemoryStorage)
    await close_storage(storage)


async def test_factory_follows_the_environment(env: pytest.MonkeyPatch, pg_url: str) -> None:
    env.setenv("STORAGE_BACKEND", "postgres")
    env.setenv("DATABASE_URL", pg_url.replace("postgresql://", "postgres://", 1))
    env.setenv("STORAGE__POSTGRES_POOL_MIN", "1")
    env.setenv("STORAGE__POSTGRES_POOL_MAX", "3")
    env.setenv("STORAGE__POSTGRES_COMMAND_TIMEOUT", "9")
    env.setenv("STORAGE__POSTGRES_MAX_RETRIES", "1")
    env.setenv("STORAGE__POSTGRES_RETRY_DELAY", "0.01")
    env.setenv("STORAGE__RUN_MIGRATIONS_ON_STARTUP", "false")
    app_settings.reload()
    storage = await create_storage()
    try:
        assert isinstance(storage, PostgresStorage)
        assert storage.pool is not None  # connected
        assert (storage.pool_min, storage.pool_max) == (1, 3)
        assert storage.pool.get_max_size() == 3
        assert (storage.command_timeout, storage.max_retries, storage.retry_delay) == (9.0, 1, 0.01)
        assert storage.run_migrations is False
        assert await storage.count_tasks() >= 0
    finally:
        await close_storage(storage)
    assert storage.pool is None


async def test_factory_overrides_win_over_settings(env: pytest.MonkeyPatch, pg_url: str) -> None:
    settings = StorageSettings(_env_file=None)  # memory by default
    schema = f"factory_{uuid.uuid4().hex[:8]}"
    storage = await create_storage(
        "postgres", settings=settings, database_url=pg_url.replace("postgresql://", "postgresql+asyncpg://"),
        pool_min=1, pool_max=2, run_migrations=True, schema=schema,
    )
    try:
        assert isinstance(storage, PostgresStorage)
        assert storage.schema == schema and storage.pool_max == 2
        assert await storage.list_tasks() == []  # migrated on connect: the tables exist
    finally:
        await close_storage(storage)
        await execute(pg_url, f'DROP SCHEMA "{schema}" CASCADE')


async def test_factory_refuses_unknown_backend_and_memory_options(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidValueError, match="mongodb"):
        await create_storage("mongodb")
    with pytest.raises(InvalidValueError, match="pool_max"):
        await create_storage("memory", pool_max=3)


# --- upstream Bindu's names ------------------------------------------------------------------

LONG_DID = "did:bindu:acme_research_lab:literature-review-agent:5f1c9a2e-1b7d-4c1e-9a55-2f8d3c4b6a71"


def test_storage_is_generic_like_upstreams() -> None:
    """Upstream annotates ``Storage[Any]`` (its ABC is generic): the same annotation works here."""
    from typing import Any, get_origin

    from bindu_storage import Storage

    assert get_origin(Storage[Any]) is Storage
    assert isinstance(InMemoryStorage(), Storage)


def test_storage_type_is_upstreams_name_of_the_backend(env: pytest.MonkeyPatch) -> None:
    env.setenv("STORAGE_TYPE", "postgres")
    env.setenv("DATABASE_URL", URL)
    assert StorageSettings().backend == "postgres"
    env.setenv("STORAGE_BACKEND", "memory")  # ours wins when both are set
    assert StorageSettings().backend == "memory"


@pytest.mark.parametrize("variable", ["POSTGRES_DID", "DID", "STORAGE__POSTGRES_DID"])
def test_an_agent_did_selects_upstreams_schema(env: pytest.MonkeyPatch, variable: str) -> None:
    env.setenv(variable, LONG_DID)
    s = StorageSettings()
    assert s.postgres_did == LONG_DID
    prefix = "did_bindu_acme_research_lab_literature_review_agent_5f_"
    assert s.postgres_schema == prefix + s.postgres_schema[-8:]
    assert len(s.postgres_schema) == 63
    assert PostgresStorage(URL, settings=s).schema == s.postgres_schema


def test_a_did_and_a_different_schema_are_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("DID", "did:bindu:alice:agent")
    env.setenv("STORAGE__POSTGRES_SCHEMA", "did_bindu_alice_agent")
    assert StorageSettings().postgres_schema == "did_bindu_alice_agent"  # the same: fine
    env.setenv("STORAGE__POSTGRES_SCHEMA", "tenant_a")
    with pytest.raises(ValidationError, match="tenant_a"):
        StorageSettings()


async def test_factory_takes_upstreams_did_argument(env: pytest.MonkeyPatch, pg_url: str) -> None:
    memory = await create_storage("memory", did=LONG_DID)  # upstream's memory storage ignores it
    assert isinstance(memory, InMemoryStorage)
    storage = await create_storage(
        "postgres", settings=StorageSettings(_env_file=None), database_url=pg_url, did=LONG_DID,
        pool_min=1, pool_max=2, run_migrations=True,
    )
    schema = storage.schema  # type: ignore[attr-defined]
    try:
        assert schema.startswith("did_bindu_acme_research_lab_literature_review_agent_5f_")
        assert await storage.list_tasks() == []  # migrated on connect: the tables exist
    finally:
        await close_storage(storage)
        await execute(pg_url, f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_storage_refuses_bad_construction(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidValueError, match="database_url"):
        PostgresStorage(settings=StorageSettings())
    with pytest.raises(InvalidValueError, match="pool_min"):
        PostgresStorage(URL, pool_min=5, pool_max=2)
    with pytest.raises(ValueError) as raised:
        PostgresStorage(f"mysql://root:{SECRET}@db/x")
    assert_secret_free(str(raised.value), SECRET)
    with pytest.raises(InvalidValueError, match="schema"):
        PostgresStorage(URL, schema="bad schema; drop")
