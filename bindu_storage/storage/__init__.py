"""The storage layer: the contract, its two backends and the factory."""

from bindu_storage.storage.base import Storage
from bindu_storage.storage.factory import close_storage, create_storage
from bindu_storage.storage.memory import InMemoryStorage
from bindu_storage.storage.postgres import PostgresStorage

__all__ = ["InMemoryStorage", "PostgresStorage", "Storage", "close_storage", "create_storage"]
