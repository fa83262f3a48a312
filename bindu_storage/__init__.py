"""bindu-storage: A2A task storage (in-memory and PostgreSQL) and a pandas analysis toolkit.

The errors and types load with the package; the storages and the factory load on first use
(they bring asyncpg and pydantic), so ``import bindu_storage`` and ``bindu-storage --help`` are
quick. ``from bindu_storage import PostgresStorage`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    MigrationError,
    OutcomeUnknownError,
    OwnershipError,
    StorageClosedError,
    StorageConfigurationError,
    StorageConnectionError,
    StorageError,
    StorageTimeoutError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.types import TASK_STATES, TERMINAL_STATES, Artifact, Message, Task, TaskState

if TYPE_CHECKING:
    from bindu_storage.storage import (
        InMemoryStorage,
        PostgresStorage,
        Storage,
        close_storage,
        create_storage,
    )

__version__ = "0.1.0"

_LAZY = {
    name: "bindu_storage.storage"
    for name in ("InMemoryStorage", "PostgresStorage", "Storage", "close_storage", "create_storage")
}


def __getattr__(name: str) -> Any:
    """Load the storage layer on first use of one of its names."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bindu_storage' has no attribute {name!r}")


__all__ = [
    "TASK_STATES",
    "TERMINAL_STATES",
    "Artifact",
    "InMemoryStorage",
    "InvalidTypeError",
    "InvalidValueError",
    "Message",
    "MigrationError",
    "OutcomeUnknownError",
    "OwnershipError",
    "PostgresStorage",
    "Storage",
    "StorageClosedError",
    "StorageConfigurationError",
    "StorageConnectionError",
    "StorageError",
    "StorageTimeoutError",
    "Task",
    "TaskNotFoundError",
    "TaskState",
    "TerminalTaskError",
    "__version__",
    "close_storage",
    "create_storage",
]
