"""Environment-driven settings (pydantic-settings), exactly the variables of the storage spec.

=====================================  ==============================  ========
variable                               setting                         default
=====================================  ==============================  ========
``STORAGE_BACKEND``                    ``storage.backend``             memory
``DATABASE_URL``                       ``storage.postgres_url``        (none)
``STORAGE__POSTGRES_POOL_MIN``         ``storage.postgres_pool_min``   2
``STORAGE__POSTGRES_POOL_MAX``         ``storage.postgres_pool_max``   10
``STORAGE__POSTGRES_TIMEOUT``          ``storage.postgres_timeout``    60
``STORAGE__POSTGRES_COMMAND_TIMEOUT``  ``storage.postgres_command_timeout``  30
``STORAGE__POSTGRES_MAX_RETRIES``      ``storage.postgres_max_retries``  3
``STORAGE__POSTGRES_RETRY_DELAY``      ``storage.postgres_retry_delay``  1.0
``STORAGE__POSTGRES_STATEMENT_CACHE_SIZE`` ``storage.postgres_statement_cache_size``  100
``STORAGE__RUN_MIGRATIONS_ON_STARTUP`` ``storage.run_migrations_on_startup``  true
``STORAGE__POSTGRES_SCHEMA``           ``storage.postgres_schema``     public
``POSTGRES_DID`` or ``DID``            ``storage.postgres_did``        (none)
``STORAGE__PUSH_CONFIG_KEY``           ``storage.push_config_key``     (none)
=====================================  ==============================  ========

``STORAGE__PUSH_CONFIG_KEY`` turns on encryption at rest of push-config secrets (tokens and
credentials): a Fernet key (``cryptography.fernet.Fernet.generate_key()``, the ``encryption``
extra), or several separated by commas, the newest first (key rotation: the first encrypts, all
decrypt). It is a secret like the database password: never in a repr, an error or a log.

Upstream Bindu's names are honoured too: ``STORAGE_TYPE`` is an alias of ``STORAGE_BACKEND``
(which wins when both are set), and an agent DID in ``POSTGRES_DID`` / ``DID`` selects the
schema upstream derives from it (``did_…``, see ``bindu_storage.sqlnames.schema_for_did``)
unless ``STORAGE__POSTGRES_SCHEMA`` names one; setting both to different schemas is an error.

The backend rule, the same for ``create_storage()``, ``open_storage()``, every CLI command and the
notebooks: ``STORAGE_BACKEND`` (or upstream's ``STORAGE_TYPE``) decides, and when neither is set
the backend is ``memory`` even if ``DATABASE_URL`` is set, as in upstream Bindu (a URL alone never
moves an agent to PostgreSQL); a command's ``--database-url`` is the one explicit override.

A ``.env`` file in the working directory is read too. Bad values fail when the settings load,
and the error names the variable; the database password never appears in a repr or an error.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bindu_storage.dsn import mask_secrets, validate_url
from bindu_storage.sqlnames import schema_for_did, validate_schema_name

Backend = Literal["memory", "postgres", "embedded"]

_COMMON = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    hide_input_in_errors=True,  # a rejected DATABASE_URL must not echo its password
    validate_default=True,
)


class StorageSettings(BaseSettings):
    """Settings of the storage layer, read from the environment (see the module docstring)."""

    model_config = _COMMON

    backend: Backend = Field(
        "memory",
        validation_alias=AliasChoices("STORAGE_BACKEND", "STORAGE__BACKEND", "STORAGE_TYPE"),
    )
    postgres_url: str | None = Field(
        None, repr=False, validation_alias=AliasChoices("DATABASE_URL", "STORAGE__POSTGRES_URL")
    )
    postgres_pool_min: int = Field(2, ge=0, validation_alias="STORAGE__POSTGRES_POOL_MIN")
    postgres_pool_max: int = Field(10, ge=1, validation_alias="STORAGE__POSTGRES_POOL_MAX")
    postgres_timeout: float = Field(60.0, gt=0, validation_alias="STORAGE__POSTGRES_TIMEOUT")
    postgres_command_timeout: float = Field(
        30.0, gt=0, validation_alias="STORAGE__POSTGRES_COMMAND_TIMEOUT"
    )
    postgres_max_retries: int = Field(3, ge=0, validation_alias="STORAGE__POSTGRES_MAX_RETRIES")
    postgres_retry_delay: float = Field(
        1.0, ge=0, validation_alias="STORAGE__POSTGRES_RETRY_DELAY"
    )
    postgres_statement_cache_size: int = Field(
        100, ge=0, validation_alias="STORAGE__POSTGRES_STATEMENT_CACHE_SIZE"
    )
    """asyncpg's prepared-statement cache per connection; 0 behind PgBouncer in transaction mode."""
    run_migrations_on_startup: bool = Field(
        True, validation_alias="STORAGE__RUN_MIGRATIONS_ON_STARTUP"
    )
    postgres_schema: str = Field("public", validation_alias="STORAGE__POSTGRES_SCHEMA")
    postgres_did: str | None = Field(
        None, validation_alias=AliasChoices("POSTGRES_DID", "DID", "STORAGE__POSTGRES_DID")
    )
    embedded_data_dir: str | None = Field(None, validation_alias="STORAGE__EMBEDDED_DATA_DIR")
    push_config_key: SecretStr | None = Field(
        None, repr=False, validation_alias="STORAGE__PUSH_CONFIG_KEY"
    )
    """Fernet key(s) encrypting push-config secrets at rest, newest first; None: stored plain."""

    @field_validator("backend", mode="before")
    @classmethod
    def _lower_backend(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("postgres_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None  # a stray space around a pasted URL
        if not value:
            return None
        return validate_url(value, "")  # pydantic names the variable; the value is never echoed

    @field_validator("push_config_key")
    @classmethod
    def _check_push_config_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for key in value.get_secret_value().split(","):
            if not is_fernet_key(key.strip()):
                # the key itself is never echoed (hide_input_in_errors, and not in this message)
                raise ValueError(
                    "STORAGE__PUSH_CONFIG_KEY must be Fernet keys (32 url-safe base64-encoded "
                    "bytes each, separated by commas)"
                )
        return value

    @field_validator("postgres_schema")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        return validate_schema_name(value, "STORAGE__POSTGRES_SCHEMA")

    @model_validator(mode="after")
    def _check_consistency(self) -> StorageSettings:
        if self.postgres_pool_min > self.postgres_pool_max:
            raise ValueError(
                f"STORAGE__POSTGRES_POOL_MIN ({self.postgres_pool_min}) is greater than "
                f"STORAGE__POSTGRES_POOL_MAX ({self.postgres_pool_max})"
            )
        if self.postgres_did:
            derived = schema_for_did(self.postgres_did)
            if "postgres_schema" not in self.model_fields_set:
                self.postgres_schema = derived
            elif self.postgres_schema != derived:
                raise ValueError(
                    f"STORAGE__POSTGRES_SCHEMA ({self.postgres_schema}) disagrees with the schema of "
                    f"POSTGRES_DID/DID ({derived}); set one of them"
                )
        if self.backend == "postgres" and not self.postgres_url:
            raise ValueError("STORAGE_BACKEND=postgres needs DATABASE_URL to be set")
        return self

    @property
    def backend_is_explicit(self) -> bool:
        """Whether ``STORAGE_BACKEND`` / ``STORAGE_TYPE`` chose the backend (else it is memory by default)."""
        return "backend" in self.model_fields_set

    @property
    def unused_url_note(self) -> str | None:
        """Why a configured ``DATABASE_URL`` is not used, when it is not (the backend rule); else None."""
        if self.postgres_url and self.backend == "memory" and not self.backend_is_explicit:
            return ("DATABASE_URL is set but STORAGE_BACKEND is not: as in upstream Bindu, a URL alone "
                    "does not select PostgreSQL; set STORAGE_BACKEND=postgres to use it")
        return None

    @property
    def postgres_url_masked(self) -> str | None:
        """The database URL with its password replaced by ``***``."""
        return mask_secrets(self.postgres_url, self.postgres_url) if self.postgres_url else None

    def __repr_args__(self) -> Any:
        yield from super().__repr_args__()
        yield "postgres_url", self.postgres_url_masked


def is_fernet_key(key: str) -> bool:
    """Whether ``key`` has the form of a Fernet key: 32 bytes, url-safe base64-encoded."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


class Settings(BaseSettings):
    """All settings of bindu-storage; ``app_settings`` is the process-wide instance."""

    model_config = _COMMON

    storage: StorageSettings = Field(default_factory=StorageSettings)


def load_settings() -> Settings:
    """Read the settings afresh from the environment (and ``.env``)."""
    return Settings()


class _LazySettings:
    """Loads the settings on first attribute access, so that importing never fails."""

    _loaded: Settings | None = None

    def __getattr__(self, name: str) -> Any:
        if self._loaded is None:
            type(self)._loaded = load_settings()
        return getattr(self._loaded, name)

    def reload(self) -> Settings:
        """Re-read the environment (useful in tests and notebooks)."""
        loaded = type(self)._loaded = load_settings()
        return loaded

    def __repr__(self) -> str:
        return repr(self._loaded) if self._loaded is not None else "<app_settings (not loaded)>"


app_settings: Settings = _LazySettings()  # type: ignore[assignment]
"""The process-wide settings, loaded from the environment on first use."""
