"""The typed errors of the storage contract.

Each error subclasses the builtin a caller would naturally catch (``KeyError`` for a missing
record, ``ValueError`` for a refused value, ``PermissionError`` for ownership), so code written
against upstream Bindu keeps working, and also ``StorageError`` so all of ours can be caught at once.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by bindu-storage."""


class TaskNotFoundError(StorageError, KeyError):
    """The task id names no stored task."""

    def __init__(self, task_id: object) -> None:
        super().__init__(f"task {task_id} not found")
        self.task_id = task_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class TerminalTaskError(StorageError, ValueError):
    """The task is in a terminal state and the requested change is refused."""

    def __init__(self, task_id: object, state: str, detail: str) -> None:
        super().__init__(f"task {task_id} is {state} (terminal): {detail}")
        self.task_id = task_id
        self.state = state


class OwnershipError(StorageError, PermissionError):
    """The context belongs to another caller."""

    def __init__(self, context_id: object, caller_did: str | None) -> None:
        super().__init__(f"context {context_id} is owned by another caller (caller_did={caller_did!r})")
        self.context_id = context_id
        self.caller_did = caller_did


class InvalidValueError(StorageError, ValueError):
    """A value cannot be stored (not JSON, a NUL character, a bad state or id...)."""


class InvalidPageTokenError(InvalidValueError):
    """A page token that this storage did not issue, or issued for a listing with other filters."""


class InvalidTypeError(StorageError, TypeError):
    """A value has the wrong type (for example an id that is neither a UUID nor a string)."""


class StorageConnectionError(StorageError, ConnectionError):
    """The database could not be reached (after the configured retries)."""


class OutcomeUnknownError(StorageConnectionError):
    """The connection failed after a write may have reached the server: it may have been applied.

    Every write of the storage but ``append_artifact_chunk`` is idempotent, so calling it
    again is safe; the message says whether that holds for the call that raised.
    """


class StorageTimeoutError(StorageError, TimeoutError):
    """An operation ran past a configured time limit; the message names the setting to raise."""


class StorageClosedError(StorageError, RuntimeError):
    """The storage was closed: ``connect()`` (or ``async with storage:``) reopens it, data intact."""

    def __init__(self, backend: str) -> None:
        super().__init__(f"{backend} is closed; call connect() to reopen it")
        self.backend = backend


class MigrationError(StorageError, RuntimeError):
    """Migrations could not be applied (for example on a hot standby)."""


class StorageConfigurationError(StorageError, RuntimeError):
    """The server (or a pooler in front of it) refuses how the storage is configured to talk to it.

    Never retried: the message names the setting to change (for example
    ``STORAGE__POSTGRES_STATEMENT_CACHE_SIZE=0`` behind PgBouncer in transaction mode).
    """


class TaskOwnershipError(OwnershipError):
    """The task belongs to another caller (a write scoped with ``owner_did`` is refused)."""

    def __init__(self, task_id: object, caller_did: str | None) -> None:
        StorageError.__init__(
            self, f"task {task_id} is owned by another caller (caller_did={caller_did!r})"
        )
        self.task_id = task_id
        self.context_id = None
        self.caller_did = caller_did


class EncryptionKeyError(StorageError, ValueError):
    """Push-config secrets cannot be encrypted or decrypted with the configured key.

    The message names the problem (no key, a key that did not encrypt the value, the
    ``cryptography`` package missing) and the setting, ``STORAGE__PUSH_CONFIG_KEY``; never a key.
    """
