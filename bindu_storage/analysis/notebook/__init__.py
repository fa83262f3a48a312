"""Synchronous access for notebooks and scripts: ``st = open_storage(); df = st.tasks_frame()``.

The async API stays primary (``await create_storage()`` and ``await tasks_frame(storage)`` work
in Jupyter, which runs cells on its own event loop). ``SyncStorage`` offers the same storage and
analysis functions as plain calls, for pandas-style work and for scripts::

    import bindu_storage.analysis.notebook as bn

    st = bn.open_storage()                 # the backend rule of create_storage (STORAGE_BACKEND)
    st.count_tasks()
    df = st.tasks_frame(states=["failed"])
    st.find_tasks(metadata={"model": "gpt-4o"})
    st.close()                             # or let the interpreter's exit close it

Design: every call is submitted with ``asyncio.run_coroutine_threadsafe`` to one long-lived event
loop running in a daemon thread (one per process, started on first use) and the caller waits
for its result. A storage opened through the facade is connected on that loop, so its asyncpg
pool and every connection in it stay bound to one loop for their whole life: repeated calls
reuse the pool, never open a loop per call and never meet "attached to a different loop". The
alternative the design card names, ``nest_asyncio``, re-enters the loop the caller is already
running (Jupyter's) by monkeypatching asyncio; upstream nest_asyncio is archived, and the patch
changes the semantics of every library on that loop (other tasks run in the middle of what
looks like a synchronous call, a re-entrancy asyncio, anyio and asyncpg do not expect) and
breaks as asyncio internals change between Python versions. The background loop touches
nothing of the caller's: it works the same under a running loop (a Jupyter kernel, an async
test), in a plain script and from several threads, and exceptions raised on the loop reach the
caller as the very objects raised. The price is the plain one of any blocking call: the
caller's thread (and loop, if it has one) waits until the call returns, and the storage behind
a ``SyncStorage`` belongs to the background loop, so async code should await a storage of its
own. ``close()`` closes a storage; an ``atexit`` hook closes the ones still open, then stops
the loop.

The package is two modules: ``_loop`` (the background loop, ``run``, and making results
synchronous) and ``proxies`` (``SyncStorage``, ``SyncProxy``, ``open_storage``).
"""

from __future__ import annotations

from bindu_storage.analysis.notebook._loop import background_loop, run
from bindu_storage.analysis.notebook.proxies import SyncProxy, SyncStorage, open_storage

__all__ = ["SyncProxy", "SyncStorage", "background_loop", "open_storage", "run"]
