"""The settable clock: what a replay of recorded data needs from a storage to keep its times.

A storage that stamps its records (``created_at``, ``updated_at``, ``status.timestamp``, event
and feedback times) from a ``clock`` attribute of its own says so by having one: the in-memory
backend does. ``synthetic.load`` replays recorded data through the ``Storage`` API with that
clock set to each step's recorded time (``clock_set_to``), so the replayed storage holds the
recorded timestamps. A storage without one (PostgreSQL stamps with the server's ``now()``) is
replayed all the same, stamped with its own time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clocked(Protocol):
    """A storage whose recorded timestamps all come from its ``clock``."""

    clock: Callable[[], datetime]
    """Returns the current time as an aware UTC datetime."""


@contextmanager
def clock_set_to(storage: object, now: Callable[[], datetime]) -> Iterator[bool]:
    """For the block, a ``Clocked`` storage's clock is ``now`` (then the one it had again).

    Yields whether the storage has a clock to set; for a storage without one it changes nothing.
    """
    if not isinstance(storage, Clocked):
        yield False
        return
    saved = storage.clock
    storage.clock = now
    try:
        yield True
    finally:
        storage.clock = saved
