"""Retention: which tasks a purge removes (``PurgePolicy``) and what it counts (``PurgeCounts``).

A purge removes the tasks that pass **every** filter given:

* ``older_than`` — not updated since: a ``timedelta`` (before "now" minus it, by the storage's
  clock) or an aware ``datetime`` (before it). The task's ``updated_at`` is compared, so a task
  still in use is never old.
* ``states`` — in one of these states (for example the terminal ones).
* ``owner_did`` — created by this caller (an erasure request: everything of one owner).

At least one filter is required: a purge with none would empty the storage (``clear_all()``
says so). With each task go its feedback, its events and its push configs (``delete_task``).

**Contexts.** A context goes too when no task is left in it afterwards and it matches the same
policy itself: its ``owner_did`` equals ``owner_did`` (when given), its own ``updated_at`` is
before the cutoff (when ``older_than`` is given), and, when ``states`` is given (a context has
no state), the purge removed one of its tasks. So a context still in use, another caller's, or
one only a state filter names but never emptied, stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.storage import validate as v

__all__ = ["PURGED_TABLES", "PurgeCounts", "PurgePolicy"]

PURGED_TABLES = ("tasks", "feedback", "events", "push_configs", "contexts")
"""The keys of ``PurgeCounts``, in the order a report shows them."""


class PurgeCounts(TypedDict):
    """Rows a purge removed (or, in a dry run, would remove), per table."""

    tasks: int
    feedback: int
    events: int
    push_configs: int
    contexts: int


def no_counts() -> PurgeCounts:
    """Zero for every table."""
    return {"tasks": 0, "feedback": 0, "events": 0, "push_configs": 0, "contexts": 0}


@dataclass(frozen=True)
class PurgePolicy:
    """A validated purge: ``cutoff`` (updated before it), ``states`` and ``owner_did``; None = any."""

    cutoff: datetime | None
    states: tuple[str, ...] | None
    owner_did: str | None

    @classmethod
    def of(
        cls,
        older_than: timedelta | datetime | None,
        states: Iterable[str] | None,
        owner_did: str | None,
        now: datetime,
    ) -> PurgePolicy:
        """Check the arguments of ``purge`` and resolve ``older_than`` against ``now``."""
        cutoff: datetime | None
        if older_than is None:
            cutoff = None
        elif isinstance(older_than, timedelta):
            if older_than < timedelta(0):
                raise InvalidValueError(f"older_than must not be negative, got {older_than}")
            cutoff = now - older_than
        elif isinstance(older_than, datetime):
            if older_than.tzinfo is None:
                raise InvalidValueError("older_than must be an aware datetime (with a time zone)")
            cutoff = older_than
        else:
            raise InvalidTypeError(
                f"older_than must be a timedelta, a datetime or None, got {type(older_than).__name__}"
            )
        chosen: tuple[str, ...] | None = None
        if states is not None:
            if isinstance(states, str):
                raise InvalidTypeError("states must be a collection of states, not one string")
            chosen = tuple(sorted({v.check_state(s, "states") for s in states}))
            if not chosen:
                raise InvalidValueError("states must name at least one state (None: any state)")
        owner = v.check_optional_str(owner_did, "owner_did")
        if cutoff is None and chosen is None and owner is None:
            raise InvalidValueError(
                "purge needs older_than, states or owner_did (clear_all() removes everything)"
            )
        return cls(cutoff, chosen, owner)

    def takes_task(self, updated_at: datetime, state: str, owner_did: str | None) -> bool:
        """Whether a task with these values is purged."""
        return (
            (self.cutoff is None or updated_at < self.cutoff)
            and (self.states is None or state in self.states)
            and (self.owner_did is None or owner_did == self.owner_did)
        )

    def takes_context(self, updated_at: datetime, owner_did: str | None, emptied: bool) -> bool:
        """Whether a context left without tasks is purged (``emptied``: the purge removed one)."""
        return (
            (self.cutoff is None or updated_at < self.cutoff)
            and (self.states is None or emptied)
            and (self.owner_did is None or owner_did == self.owner_did)
        )
