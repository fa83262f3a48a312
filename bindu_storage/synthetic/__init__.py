"""Seeded, realistic synthetic A2A data, and loading it into any storage.

``generate(n_tasks, seed=0)`` builds conversations (contexts) between users and six agents, each
with a few skills of their own. Every task lives through a plausible lifecycle —

    submitted → working → [input-required → submitted → working]* → completed | failed | canceled
    submitted → rejected

— with per-skill work durations (log-normal), human think times while the agent waits for input,
x402 payments on the paid skills (the ``x402.payment.*`` metadata keys of upstream Bindu), a
few tasks left stuck in ``working`` or abandoned in ``input-required`` (what an ops notebook
should find), multi-turn histories (text, data and file parts), artifacts, token counts, cost and
feedback whose rating depends on the agent, the skill and how long the task took.

Continuing a task that waits for input goes through ``submit_task``, which puts it back to
``submitted`` (the storage contract), so the recorded events are exactly those the storage
itself would record. The same seed always gives the same data, ids included.

``await load(storage, data)`` writes the data:

* **PostgreSQL** (any storage readable with SQL, ``storage.read.SqlReadable``) — a bulk path:
  one transaction of ``COPY … FROM STDIN`` into ``contexts``, ``tasks``, ``task_events`` and
  ``task_feedback`` of the storage's schema (on a connection from its ``connection()``),
  keeping every generated timestamp; then ``ANALYZE``.
* **memory** — a replay through the public ``Storage`` API in timeline order, with the
  storage's clock set to each step's time (``storage.clock.Clocked``), so the timestamps are
  the generated ones as well. Any other ``Storage`` gets the same replay, stamped with its own
  time ("now").
"""

from bindu_storage.synthetic.catalog import AGENTS, AgentProfile, SkillProfile
from bindu_storage.synthetic.generator import generate
from bindu_storage.synthetic.loader import load
from bindu_storage.synthetic.records import (
    DEFAULT_START,
    LoadResult,
    SyntheticData,
    SyntheticEvent,
    SyntheticFeedback,
)

__all__ = [
    "AGENTS",
    "DEFAULT_START",
    "AgentProfile",
    "LoadResult",
    "SkillProfile",
    "SyntheticData",
    "SyntheticEvent",
    "SyntheticFeedback",
    "generate",
    "load",
]
