"""Push-notification configs: their ids, their stored form, and encryption of their secrets.

A task has any number of configs, each keyed by its config id: ``config["id"]`` when given,
else the task id (as the A2A SDK's stores do). The config is stored as given; only its secrets
(``token`` and ``authentication.credentials``) may be replaced by ciphertext.

**Encryption at rest** (optional): with a key (``STORAGE__PUSH_CONFIG_KEY``, or the storages'
``push_config_key=``), ``PushConfigCipher.seal`` replaces each secret by a Fernet token before
the config is written, and the stored row is marked ``encrypted``; reads ``open`` it again.
Fernet (from ``cryptography``, the ``encryption`` extra) authenticates what it encrypts, so a
wrong key is detected, never turned into garbage. Several keys, newest first, make a
``MultiFernet``: the first encrypts, every one decrypts, which is how a key is rotated (put the
new key first, run ``reencrypt_push_configs()`` or ``bindu-storage push-configs reencrypt``,
then drop the old key). Rows written without a key stay readable when a key is set later.

Failures raise ``EncryptionKeyError`` naming the task, the config and what is wrong, never a
key. Analysis reads the stored form (``PushConfigRecord``) and redacts it: a secret is never
decrypted into a frame.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict
from uuid import UUID

from pydantic import SecretStr

from bindu_storage.errors import EncryptionKeyError, InvalidTypeError, InvalidValueError

__all__ = ["PushConfigCipher", "PushConfigRecord", "config_id_of", "make_cipher", "open_config"]

KEY_SETTING = "STORAGE__PUSH_CONFIG_KEY"
"""The setting named in every key error."""


class PushConfigRecord(TypedDict):
    """One stored push config as the analysis read API returns it: secrets never decrypted."""

    task_id: UUID
    config_id: str
    config: dict[str, Any]
    """The config as stored: when ``encrypted``, its token and credentials are ciphertext."""
    encrypted: bool
    created_at: datetime
    updated_at: datetime


def config_id_of(task_id: UUID, config: dict[str, Any]) -> str:
    """The id a config is stored under: ``config["id"]`` as a string, else the task id."""
    given = config.get("id")
    if given is None:
        return str(task_id)
    if isinstance(given, UUID):
        return str(given)
    if not isinstance(given, str):
        raise InvalidTypeError(f"config['id'] must be a string or a UUID, got {type(given).__name__}")
    if not given:
        raise InvalidValueError("config['id'] must not be empty")
    return given


def check_config_id(config_id: object, name: str = "config_id") -> str:
    """A config id argument: a non-empty string (a UUID is taken as its string)."""
    if isinstance(config_id, UUID):
        return str(config_id)
    if not isinstance(config_id, str):
        raise InvalidTypeError(f"{name} must be a string, got {type(config_id).__name__}")
    if not config_id or "\x00" in config_id:
        raise InvalidValueError(f"{name} must be a non-empty string without NUL characters")
    return config_id


def _secret_paths(config: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The (holder, key) of each secret present in ``config``: token, authentication.credentials."""
    found = []
    if isinstance(config.get("token"), str):
        found.append((config, "token"))
    auth = config.get("authentication")
    if isinstance(auth, dict) and isinstance(auth.get("credentials"), str):
        found.append((auth, "credentials"))
    return found


def has_secrets(config: dict[str, Any]) -> bool:
    """Whether the config holds a token or credentials (what encryption would cover)."""
    return bool(_secret_paths(config))


class PushConfigCipher:
    """Encrypts and decrypts the secrets of push configs with Fernet key(s), newest first."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:  # pragma: no cover - depends on the environment
            raise EncryptionKeyError(
                f"{KEY_SETTING} is set but the 'cryptography' package is missing: "
                "pip install 'bindu-storage[encryption]'"
            ) from None
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError):
            raise EncryptionKeyError(
                f"{KEY_SETTING} must be Fernet keys (32 url-safe base64-encoded bytes each)"
            ) from None

    def __repr__(self) -> str:
        return "PushConfigCipher(keys=***)"

    def seal(self, config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A copy of ``config`` with its secrets encrypted, and whether there was any."""
        sealed = copy.deepcopy(config)
        paths = _secret_paths(sealed)
        for holder, key in paths:
            holder[key] = self._fernet.encrypt(holder[key].encode("utf-8")).decode("ascii")
        return sealed, bool(paths)

    def open(self, config: dict[str, Any], where: str) -> dict[str, Any]:
        """A copy of a sealed ``config`` with its secrets decrypted (``where`` names it in errors)."""
        from cryptography.fernet import InvalidToken

        opened = copy.deepcopy(config)
        for holder, key in _secret_paths(opened):
            try:
                holder[key] = self._fernet.decrypt(holder[key].encode("ascii")).decode("utf-8")
            except (InvalidToken, UnicodeEncodeError):
                raise EncryptionKeyError(
                    f"{where} cannot be decrypted with {KEY_SETTING}: another key encrypted it "
                    "(after a rotation, keep the old key listed after the new one)"
                ) from None
        return opened

    def rotate(self, config: dict[str, Any], where: str) -> dict[str, Any]:
        """A sealed ``config`` re-encrypted with the newest key (``MultiFernet.rotate``)."""
        from cryptography.fernet import InvalidToken

        rotated = copy.deepcopy(config)
        for holder, key in _secret_paths(rotated):
            try:
                holder[key] = self._fernet.rotate(holder[key].encode("ascii")).decode("ascii")
            except (InvalidToken, UnicodeEncodeError):
                raise EncryptionKeyError(
                    f"{where} cannot be decrypted with {KEY_SETTING}: another key encrypted it "
                    "(after a rotation, keep the old key listed after the new one)"
                ) from None
        return rotated

    def reseal(
        self, config: dict[str, Any], encrypted: bool, task_id: UUID, config_id: str
    ) -> dict[str, Any]:
        """A stored config with its secrets under the newest key: rotated, or sealed if plain."""
        if encrypted:
            return self.rotate(config, f"push config {config_id!r} of task {task_id}")
        return self.seal(config)[0]


def make_cipher(key: str | SecretStr | None) -> PushConfigCipher | None:
    """The cipher of ``key`` (one Fernet key, or several separated by commas), or None."""
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    if key is None or not key.strip():
        return None
    return PushConfigCipher([k for k in key.split(",") if k.strip()])


def open_config(
    cipher: PushConfigCipher | None,
    config: dict[str, Any],
    encrypted: bool,
    task_id: UUID,
    config_id: str,
) -> dict[str, Any]:
    """The config as the caller stored it: decrypted when it was stored encrypted."""
    if not encrypted:
        return config
    where = f"push config {config_id!r} of task {task_id}"
    if cipher is None:
        raise EncryptionKeyError(
            f"{where} is encrypted at rest and {KEY_SETTING} is not set: set it to the key "
            "that encrypted it"
        )
    return cipher.open(config, where)


def seal_config(cipher: PushConfigCipher | None, config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The form a config is stored in: (config, encrypted)."""
    return cipher.seal(config) if cipher is not None else (config, False)
