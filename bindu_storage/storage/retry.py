"""The one retry policy: which errors are worth another attempt, and how long to wait first.

Three loops use it: ``PostgresStorage`` (every operation), the migrations (whose failure is
classified here), and frame streaming (``analysis.frames``), which resumes a long read after a
hot standby cancels it. They share these rules:

==========================  =====================================================================
error                       what happens
==========================  =====================================================================
``CONFIGURATION_ERRORS``    never retried: the configuration must change (``configuration_error``
                            names the setting). Checked first: 08P01 is in the transient class 08.
``TimeoutError``            never retried: a statement past its bound is final (it is an
                            ``OSError`` too, so it is checked before ``TRANSIENT_ERRORS``).
our ``StorageError``\\ s     never retried (``OwnershipError`` is a ``PermissionError``, an
                            ``OSError``); a read also resumes after ``StorageConnectionError``.
``TRANSIENT_ERRORS``        retried: a lost or refused connection, too many connections, a
                            serialization failure or deadlock, a server starting or shutting down.
recovery conflicts          retried by reads (``is_resumable``): a hot standby cancels a query
                            that holds back replay with 40001 or "conflict with recovery".
==========================  =====================================================================

Attempt ``n`` (from 0) waits ``backoff(n, base)`` = ``base * 2**n`` seconds before the next.
"""

from __future__ import annotations

import asyncpg

from bindu_storage.dsn import describe_target, mask_secrets
from bindu_storage.errors import StorageConfigurationError, StorageConnectionError, StorageError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    asyncpg.exceptions.SerializationError,  # 40001 (also what a hot standby cancels reads with)
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
    asyncpg.exceptions.CannotConnectNowError,  # 57P03 (starting up)
    asyncpg.exceptions.AdminShutdownError,  # 57P01 (server restart, pg_terminate_backend)
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # what asyncpg raises on reusing a pooled connection the server closed while it sat idle
    # ("cannot switch to state 11; another operation (2) is in progress")
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
)
"""Errors after which an operation is tried again (every storage write is idempotent)."""

CONFIGURATION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ProtocolViolationError,  # 08P01, e.g. PgBouncer's "unsupported startup parameter"
    asyncpg.exceptions.InvalidSQLStatementNameError,  # 26000: statement "__asyncpg_…" does not exist
    asyncpg.exceptions.DuplicatePreparedStatementError,  # 42P05: statement "__asyncpg_…" already exists
)
"""Errors never retried although 08P01 is in the transient class 08: retrying cannot help, the
configuration must change. Raised as ``StorageConfigurationError`` (``configuration_error``)."""


def is_final(exc: BaseException) -> bool:
    """Whether ``exc`` is never retried: a configuration error, a timeout or one of our errors."""
    return isinstance(exc, (StorageError, TimeoutError, *CONFIGURATION_ERRORS))


def is_transient(exc: BaseException) -> bool:
    """Whether an operation that raised ``exc`` may be tried again."""
    return isinstance(exc, TRANSIENT_ERRORS) and not is_final(exc)


def is_resumable(exc: BaseException) -> bool:
    """Whether a read may be run again: a transient error, a recovery conflict, or a failed
    reconnect (``StorageConnectionError``)."""
    if isinstance(exc, StorageConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError) and "conflict with recovery" in str(exc):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and exc.__context__ is not None:
        # a transaction whose connection died reports "connection is closed" on exit
        return is_resumable(exc.__context__)
    return is_transient(exc)


def backoff(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (from 0): ``base * 2**attempt``."""
    return base * 2**attempt


def configuration_error(what: str, exc: BaseException, dsn: str) -> StorageConfigurationError:
    """The typed, password-free error for one of ``CONFIGURATION_ERRORS``, naming the setting to change."""
    reason = mask_secrets(str(exc).split("\n")[0] or type(exc).__name__, dsn)
    target = describe_target(dsn)
    if "startup parameter" in reason:
        advice = (
            "a connection pooler (PgBouncer?) refused a connection parameter: remove it from the "
            "DATABASE_URL query string, or list it in PgBouncer's ignore_startup_parameters"
        )
    elif "__asyncpg_" in reason or not isinstance(exc, asyncpg.exceptions.ProtocolViolationError):
        advice = (
            "prepared statements do not survive between transactions here, as behind PgBouncer in "
            "transaction pooling mode: set STORAGE__POSTGRES_STATEMENT_CACHE_SIZE=0"
        )
    else:
        advice = (
            "the server or a pooler in front of it refused the protocol; behind PgBouncer in "
            "transaction mode set STORAGE__POSTGRES_STATEMENT_CACHE_SIZE=0"
        )
    return StorageConfigurationError(f"{what} on {target}: {reason}; {advice}")
