"""bindu-storage: A2A task storage (in-memory and PostgreSQL) and a pandas analysis toolkit."""

from bindu_storage.errors import (
    InvalidTypeError,
    InvalidValueError,
    MigrationError,
    OutcomeUnknownError,
    OwnershipError,
    StorageConnectionError,
    StorageError,
    StorageTimeoutError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.storage import (
    InMemoryStorage,
    PostgresStorage,
    Storage,
    close_storage,
    create_storage,
)
from bindu_storage.types import TASK_STATES, TERMINAL_STATES, Artifact, Message, Task, TaskState

__version__ = "0.1.0"

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
