"""``load``: bulk COPY into a storage readable with SQL, or a timeline replay through the Storage API.

The loader never looks at a backend's class: a storage that implements ``storage.read.SqlReadable``
(its rows are PostgreSQL tables of the documented schema) gets the COPY path over a connection
from ``connection()``; any other storage gets the replay, with its clock set to the recorded
times when it has one (``storage.clock.Clocked``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from bindu_storage.errors import InvalidValueError, StorageError
from bindu_storage.sqlnames import quote_ident
from bindu_storage.storage.base import Storage
from bindu_storage.storage.clock import clock_set_to
from bindu_storage.storage.read import SqlReadable, sql_readable
from bindu_storage.synthetic.records import LoadResult, SyntheticData, SyntheticEvent
from bindu_storage.types import TERMINAL_STATES, Message


async def load(
    storage: Storage, data: SyntheticData, progress: bool = False, chunk_rows: int = 5000
) -> LoadResult:
    """Write ``data`` into ``storage`` (COPY when it is readable with SQL, an API replay otherwise).

    The bulk load runs in one transaction: if any id is already present nothing is written and
    ``InvalidValueError`` says so. ``progress=True`` shows a tqdm progress bar on stderr.
    """
    if not isinstance(data, SyntheticData):
        raise InvalidValueError(f"data must be SyntheticData (from generate()), got {type(data).__name__}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    started = time.perf_counter()
    readable = sql_readable(storage)
    bar = _progress(progress, data.rows if readable is not None else _op_count(data))
    try:
        if readable is not None:
            await _copy(readable, data, bar, chunk_rows)
            method = "copy"
        else:
            await _replay(storage, data, bar)
            method = "replay"
    finally:
        bar.close()
    return LoadResult(method, len(data.contexts), len(data.tasks), len(data.events), len(data.feedback),
                      time.perf_counter() - started)


class _NoBar:
    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", unit_scale=True, desc="loading", leave=False)


# PostgreSQL: COPY in the text format. JSON from json.dumps escapes every control character,
# so only its backslashes need doubling; other text fields get the full escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("\\", "\\\\")


def _text(value: str | None) -> str:
    return _NULL if value is None else value.translate(_COPY_ESCAPES)


class _Rows:
    """COPY text rows of each table; a message shared by a task and its context is encoded once."""

    def __init__(self, data: SyntheticData) -> None:
        self.data = data
        self.messages: dict[int, str] = {}  # id(message) -> JSON, kept between the two uses

    def _history(self, messages: list[Any], keep: bool) -> str:
        parts = []
        for m in messages:
            text = self.messages.get(id(m)) if keep else self.messages.pop(id(m), None)
            if text is None:
                text = _json(m)
                if keep:
                    self.messages[id(m)] = text
            parts.append(text)
        return "[" + ",".join(parts) + "]"

    def contexts(self) -> Iterator[str]:
        for c in self.data.contexts:
            history = self._history(c["message_history"], True)
            yield (f"{c['context_id']}\t{_json(c['context_data'])}\t{history}\t"
                   f"{_text(c['owner_did'])}\t{c['created_at'].isoformat()}\t{c['updated_at'].isoformat()}\n")

    def tasks(self) -> Iterator[str]:
        for r in self.data.tasks:
            t = r["task"]
            history = self._history(t.get("history", []), False)
            artifacts, metadata = _json(t.get("artifacts", [])), _json(t.get("metadata", {}))
            yield (f"{t['id']}\t{t['context_id']}\ttask\t{t['status']['state']}\t{t['status']['timestamp']}\t"
                   f"{history}\t{artifacts}\t{metadata}\t"
                   f"{_text(r['owner_did'])}\t{r['created_at'].isoformat()}\t{r['updated_at'].isoformat()}\n")

    def task_events(self) -> Iterator[str]:
        for e in self.data.events:
            yield f"{e['task_id']}\t{_text(e['from_state'])}\t{e['to_state']}\t{e['at'].isoformat()}\n"

    def task_feedback(self) -> Iterator[str]:
        for f in self.data.feedback:
            yield f"{f['task_id']}\t{_json(f['feedback_data'])}\t{f['created_at'].isoformat()}\n"


_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contexts", ("id", "context_data", "message_history", "owner_did", "created_at", "updated_at")),
    ("tasks", ("id", "context_id", "kind", "state", "state_timestamp", "history", "artifacts", "metadata",
               "owner_did", "created_at", "updated_at")),
    ("task_events", ("task_id", "from_state", "to_state", "at")),
    ("task_feedback", ("task_id", "feedback_data", "created_at")),
)
"""The tables a bulk load fills, in foreign-key order, with the columns it writes."""


def copy_rows(data: SyntheticData) -> Iterator[tuple[str, tuple[str, ...], Iterator[str]]]:
    """(table, columns, rows in COPY text format) for each table, in the order to load them."""
    rows = _Rows(data)
    for table, columns in _TABLES:
        yield table, columns, getattr(rows, table)()


async def _chunks(rows: Iterator[str], chunk_rows: int, bar: Any) -> AsyncIterator[bytes]:
    batch: list[str] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk_rows:
            yield "".join(batch).encode()
            bar.update(len(batch))
            batch = []
    if batch:
        yield "".join(batch).encode()
        bar.update(len(batch))


async def _copy(storage: SqlReadable, data: SyntheticData, bar: Any, chunk_rows: int) -> None:
    import asyncpg

    # The storage's command timeout (PostgresStorage.command_timeout) is sized for single
    # statements; a bulk load gets one that grows with its size (a floor of 1,000 rows a second).
    # Without one the connection's own bound applies.
    bound: float | None = getattr(storage, "command_timeout", None)
    timeout = None if bound is None else bound + data.rows / 1000
    try:
        async with storage.connection() as conn:
            async with conn.transaction():
                # Bigger GIN pending lists, merged with more memory: the JSONB indexes are most
                # of the cost of a bulk load (this halves it). Both last for this transaction only.
                await conn.execute("SET LOCAL work_mem = '256MB'")
                await conn.execute("SET LOCAL gin_pending_list_limit = '64MB'")
                for table, columns, rows in copy_rows(data):
                    await conn.copy_to_table(
                        table, source=_chunks(rows, chunk_rows, bar), columns=list(columns),
                        schema_name=storage.schema, format="text", timeout=timeout,
                    )
            tables = ", ".join(f"{quote_ident(storage.schema)}.{t[0]}" for t in _TABLES)
            # Flush this session's insert counts into pg_stat first: ANALYZE sets the live-row
            # estimate, and counts flushed after it would be added again (doubling n_live_tup).
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await conn.execute(f"ANALYZE {tables}")
    except asyncpg.UniqueViolationError:
        raise InvalidValueError(
            f"the data of seed {data.seed} is already in schema {storage.schema!r} "
            "(a task or context id exists); nothing was written — load another seed or clear the storage"
        ) from None
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise StorageError(
            f"schema {storage.schema!r} has no Bindu tables; run migrations first "
            "(bindu-storage migrate upgrade, or STORAGE__RUN_MIGRATIONS_ON_STARTUP=true)"
        ) from None


# Replay through the public API, in timeline order.

_Op = tuple[datetime, int, int, int, str, tuple[Any, ...], dict[str, Any]]
"""(time, task rank, step, sub-step, Storage method, args, kwargs); the first four sort it."""


def _op_count(data: SyntheticData) -> int:
    finished = sum(1 for r in data.tasks if r["task"]["status"]["state"] in TERMINAL_STATES)
    return len(data.events) + len(data.contexts) + finished + len(data.feedback)


def _operations(data: SyntheticData) -> list[_Op]:
    """Every Storage call that recreates ``data``, in the order they happened.

    A task's first working update carries its identity metadata (agent, skill, ...), the update
    that makes its last state change carries all of it; messages go in with the state change
    they belong to (questions with input-required, answers with the terminal state).
    """
    by_task: dict[uuid.UUID, list[SyntheticEvent]] = {}
    for e in data.events:
        by_task.setdefault(e["task_id"], []).append(e)
    context_data = {c["context_id"]: c["context_data"] for c in data.contexts}
    seen: set[uuid.UUID] = set()
    rank: dict[uuid.UUID, int] = {}
    ops: list[_Op] = []
    for r, rec in enumerate(data.tasks):
        task = rec["task"]
        tid, cid, owner = task["id"], task["context_id"], rec["owner_did"]
        rank[tid] = r
        history: list[Message] = task.get("history", [])
        artifacts = task.get("artifacts", [])
        metadata = task.get("metadata", {})
        identity: dict[str, Any] = {
            k: metadata[k] for k in ("agent", "skill", "priority", "model") if k in metadata
        }
        events = by_task.get(tid, [])
        pos, worked = 0, False
        for step, ev in enumerate(events):
            at, to, last = ev["at"], ev["to_state"], step == len(events) - 1
            meta = metadata if last else None
            if ev["from_state"] is None or to == "submitted":  # a new task, or the user answers
                msg, pos = history[pos], pos + 1
                ops.append((at, r, step, 0, "submit_task", (cid, msg), {"caller_did": owner}))
                if cid not in seen:
                    seen.add(cid)
                    ops.append((at, r, step, 1, "update_context", (cid, context_data[cid]), {}))
                if last and metadata:
                    ops.append((at, r, step, 2, "update_task", (tid, to), {"metadata": metadata}))
                continue
            new: list[Message] = []
            extra: dict[str, Any] = {}
            if to in TERMINAL_STATES:
                new, pos = history[pos:], len(history)
                extra = {"new_artifacts": artifacts}
                ops.append((at, r, step, 1, "append_to_contexts", (cid, history), {}))
            elif to == "input-required":
                end = pos
                while end < len(history) and history[end]["role"] == "agent":
                    end += 1
                new, pos = history[pos:end], end
            elif to == "working" and not worked:
                worked = True
                meta = metadata if last else identity
            ops.append((at, r, step, 0, "update_task", (tid, to),
                        {"new_messages": new, "metadata": meta, **extra}))
    for f in data.feedback:
        ops.append((f["created_at"], rank[f["task_id"]], 1 << 30, 0, "store_task_feedback",
                    (f["task_id"], f["feedback_data"]), {}))
    ops.sort(key=lambda op: op[:4])
    return ops


async def _replay(storage: Storage, data: SyntheticData, bar: Any) -> None:
    ops = _operations(data)
    now = [datetime.now(UTC)]
    with clock_set_to(storage, lambda: now[0]):  # a storage with a clock keeps the recorded times
        for n, (at, _r, _s, _sub, method, args, kwargs) in enumerate(ops, 1):
            now[0] = at
            await getattr(storage, method)(*args, **kwargs)
            if n % 1000 == 0:
                bar.update(1000)
        bar.update(len(ops) % 1000)
