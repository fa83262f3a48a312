"""InMemoryStorage: the zero-configuration default, obeying the ``Storage`` contract exactly.

Every method runs without awaiting in between its reads and writes, so each one is atomic with
respect to other coroutines on the loop. Values are validated (and copied) on the way in by
``validate`` and copied on the way out: a task by decoding JSON text the row caches per change
(``memory.rows.TaskRow.to_task``), everything else by ``isolation.clone``. A task's stored
history, artifacts and metadata are never changed in place: a write replaces them
(copy-on-write), so the read-only snapshots analysis reads (``task_snapshot``,
``feedback_snapshot``) share them without copies. The tables are the record types of
``memory.rows``; a stored task or context is found by its id's text as well as by its UUID.

The class is composed of one module per topic of the contract, each a subclass of the shared
state (``_state``: the tables, the clock, the cipher, open or closed):

- ``tasks``: submit, update, append, compare-and-set, load, list, count, pages
- ``contexts``: load, update, append messages, list, owner, clear
- ``feedback``: store and read a task's feedback
- ``push_configs``: push-notification configs by id, and the single-config webhook methods
- ``deletion``: delete a task, purge by a retention policy, clear everything
- ``changes``: the change feed
- ``records``: records and read-only snapshots for analysis
"""

from __future__ import annotations

from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.changes import MemoryChanges
from bindu_storage.storage.memory.contexts import MemoryContexts
from bindu_storage.storage.memory.deletion import MemoryDeletion
from bindu_storage.storage.memory.feedback import MemoryFeedback
from bindu_storage.storage.memory.push_configs import MemoryPushConfigs
from bindu_storage.storage.memory.records import MemoryRecords
from bindu_storage.storage.memory.tasks import MemoryTasks


class InMemoryStorage(
    MemoryTasks,
    MemoryContexts,
    MemoryFeedback,
    MemoryPushConfigs,
    MemoryRecords,
    MemoryChanges,
    MemoryDeletion,
    MemoryState,
):
    """Keeps everything in process memory; the default backend.

    ``close()`` keeps the data: operations then raise ``StorageClosedError`` until ``connect()``
    reopens the storage with everything still in it (the lifecycle of ``storage.base``).

    ``clock`` (a public attribute too) returns the current time as an aware UTC datetime; every
    timestamp the storage records comes from it. Replays of recorded data (``synthetic.load``)
    set it to reproduce their timestamps; everyone else leaves the default, the wall clock.
    """


__all__ = ["InMemoryStorage"]
