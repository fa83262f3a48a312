"""Tasks, messages, artifacts, contexts, feedback and events as pandas DataFrames.

Every loader is a coroutine taking a ``source`` — an ``InMemoryStorage``, a ``PostgresStorage``
or a PostgreSQL URL (read-only analysis of an existing database) — and keyword filters::

    df = await tasks_frame(storage, states=["failed"], created_after="2026-01-01",
                           metadata={"agent": "planner"})
    async for chunk in iter_messages_frame(url, schema="did_bindu_alice", chunksize=50_000,
                                           progress=True):
        ...

Both backends give the same columns with the same dtypes (``frames_columns`` lists them): ids
as strings, states as a categorical of every task state, timestamps as ``datetime64[us, UTC]``,
counts as ``int64``, ratings as nullable ``Int64``. JSON documents (task metadata, context data,
feedback) are flattened into ``<prefix>.<key>`` columns, nested keys dotted as
``pandas.json_normalize`` does; a column's dtype follows its values (``str``, ``Int64``,
``float64``, ``boolean``, else ``object``). Values under secret-looking keys (tokens,
passwords, credentials, API keys...) and webhook tokens read as ``"***"``: on PostgreSQL the
SQL selects ``'***'`` in their place; inside arrays (``object`` columns) they are redacted as the
JSON is decoded, before the frame is built.

Filters (every loader, applied to the task a row belongs to): ``states``, ``context_id`` (one or
several), ``created_after``/``created_before``/``updated_after``/``updated_before`` (start
inclusive, end exclusive; naive times and strings are UTC), ``metadata`` (JSONB containment,
``@>``), ``owner_did``; then ``limit`` (rows of the frame, oldest first) and ``schema``
(PostgreSQL). On PostgreSQL projection, flattening and joins run in SQL, and rows arrive as
``COPY`` CSV that pyarrow parses column by column; the ``iter_…`` variants read keyset-ordered
chunks in constant memory and resume an interrupted chunk (hot standby recovery conflicts, lost
connections). Databases written by upstream Bindu (no ``seq``,
no ``task_events``...) read too: what they lack is null or an empty frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from bindu_storage.analysis import frames_memory as mem
from bindu_storage.analysis import frames_sql as sql
from bindu_storage.analysis.frames_args import (
    TaskFilters,
    TimeLike,
    as_chunksize,
    as_columns,
    as_json_filter,
    as_limit,
    window,
)
from bindu_storage.analysis.frames_columns import (
    ARTIFACT_COLUMNS,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    FEEDBACK_TASK_COLUMNS,
    MESSAGE_COLUMNS,
    TASK_COLUMNS,
    WEBHOOK_COLUMNS,
    FlatColumn,
    build_frame,
)
from bindu_storage.analysis.frames_pg import progress_bar, read_chunks, read_frame
from bindu_storage.analysis.frames_source import PgReader, SchemaInfo, Source, open_source
from bindu_storage.errors import InvalidTypeError
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import Storage

__all__ = [
    "artifacts_frame",
    "contexts_frame",
    "events_frame",
    "feedback_frame",
    "iter_artifacts_frame",
    "iter_contexts_frame",
    "iter_events_frame",
    "iter_feedback_frame",
    "iter_messages_frame",
    "iter_tasks_frame",
    "list_schemas",
    "messages_frame",
    "tasks_frame",
    "webhooks_frame",
]

Fixed = Sequence[tuple[str, str]]
MemoryLoader = Callable[[Storage], Awaitable[tuple[dict[str, list[Any]], list[FlatColumn]]]]
SqlBuilder = Callable[[SchemaInfo], sql.FrameQuery]


def _memory_frame(fixed: Fixed, columns: dict[str, list[Any]], flat: list[FlatColumn]) -> pd.DataFrame:
    length = len(next(iter(columns.values()))) if columns else 0
    return build_frame(fixed, flat, columns, length)


async def _load(
    source: Source, schema: str | None, fixed: Fixed, build: SqlBuilder, load: MemoryLoader, limit: int | None
) -> pd.DataFrame:
    async with open_source(source, schema) as src:
        if isinstance(src, PgReader):
            return await read_frame(src, build(await src.info()), fixed, limit)
        return _memory_frame(fixed, *await load(src))


async def _iterate(
    source: Source,
    schema: str | None,
    fixed: Fixed,
    build: SqlBuilder,
    load: MemoryLoader,
    limit: int | None,
    chunksize: int,
    progress: bool,
    desc: str,
) -> AsyncIterator[pd.DataFrame]:
    async with open_source(source, schema) as src:
        if isinstance(src, PgReader):
            query = build(await src.info())
            async for chunk in read_chunks(
                src, query, fixed, limit=limit, chunksize=chunksize, progress=progress, desc=desc
            ):
                yield chunk
            return
        frame = _memory_frame(fixed, *await load(src))
        bar = progress_bar(len(frame), desc) if progress else None
        try:
            for start in range(0, max(len(frame), 1), chunksize):
                chunk = frame.iloc[start : start + chunksize].reset_index(drop=True)
                if bar is not None:
                    bar.update(len(chunk))
                yield chunk
        finally:
            if bar is not None:
                bar.close()


def _without_flat(load: Callable[[Storage], Awaitable[dict[str, list[Any]]]]) -> MemoryLoader:
    async def wrapped(storage: Storage) -> tuple[dict[str, list[Any]], list[FlatColumn]]:
        return await load(storage), []

    return wrapped


# --- tasks -----------------------------------------------------------------------------------------


def _tasks_plan(
    filters: TaskFilters, limit: int | None, metadata_columns: Sequence[str] | None
) -> tuple[SqlBuilder, MemoryLoader]:
    wanted = as_columns(metadata_columns, "metadata_columns")
    return (
        lambda info: sql.tasks_query(info, filters, wanted),
        lambda storage: mem.tasks_columns(storage, filters, limit, wanted),
    )


async def tasks_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    metadata_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per task, oldest first.

    Columns: id, context_id, state, state_timestamp, created_at, updated_at, history_len,
    artifact_count, feedback_count, mean_rating (of the integral ratings), owner_did, then the
    metadata flattened into ``metadata.<key>`` columns (only those under ``metadata_columns``
    when given, e.g. ``["agent", "usage"]``).
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit = as_limit(limit)
    build, load = _tasks_plan(filters, limit, metadata_columns)
    return await _load(source, schema, TASK_COLUMNS, build, load, limit)


def iter_tasks_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    metadata_columns: Sequence[str] | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``tasks_frame`` as an async iterator of frames of at most ``chunksize`` rows.

    Arguments are checked at the call; rows are read as the iterator is consumed.
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    build, load = _tasks_plan(filters, limit, metadata_columns)
    return _iterate(source, schema, TASK_COLUMNS, build, load, limit, chunksize, progress, "tasks")


# --- messages and artifacts ------------------------------------------------------------------------


def _items_plan(filters: TaskFilters, limit: int | None, kind: str) -> tuple[SqlBuilder, MemoryLoader]:
    query = sql.messages_query if kind == "history" else sql.artifacts_query
    return (
        lambda info: query(info, filters),
        _without_flat(lambda storage: mem.items_columns(storage, filters, limit, kind)),
    )


async def messages_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
) -> pd.DataFrame:
    """One row per message of each selected task's history, in task then history order.

    Columns: task_id, context_id, position (0-based), message_id, role, text (the text parts
    joined with newlines; missing when there are none), part_kinds (e.g. ``"text,file"``).
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit = as_limit(limit)
    build, load = _items_plan(filters, limit, "history")
    return await _load(source, schema, MESSAGE_COLUMNS, build, load, limit)


def iter_messages_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``messages_frame`` in chunks of at most ``chunksize`` rows."""
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    build, load = _items_plan(filters, limit, "history")
    return _iterate(source, schema, MESSAGE_COLUMNS, build, load, limit, chunksize, progress, "messages")


async def artifacts_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
) -> pd.DataFrame:
    """One row per artifact of each selected task.

    Columns: task_id, context_id, position, artifact_id, name, description, part_kinds, text.
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit = as_limit(limit)
    build, load = _items_plan(filters, limit, "artifacts")
    return await _load(source, schema, ARTIFACT_COLUMNS, build, load, limit)


def iter_artifacts_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``artifacts_frame`` in chunks of at most ``chunksize`` rows."""
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    build, load = _items_plan(filters, limit, "artifacts")
    return _iterate(source, schema, ARTIFACT_COLUMNS, build, load, limit, chunksize, progress, "artifacts")


# --- contexts --------------------------------------------------------------------------------------


def _contexts_plan(
    context_id: Any,
    created: tuple[Any, Any],
    updated: tuple[Any, Any],
    context_data: Mapping[str, Any] | None,
    owner_did: str | None,
    limit: int | None,
    context_data_columns: Sequence[str] | None,
) -> tuple[SqlBuilder, MemoryLoader]:
    ids = TaskFilters.of(context_id=context_id).context_ids
    windows = {
        "created_at": window(*created, ("created_after", "created_before")),
        "updated_at": window(*updated, ("updated_after", "updated_before")),
    }
    data = as_json_filter(context_data, "context_data")
    owner = v.check_optional_str(owner_did, "owner_did")
    wanted = as_columns(context_data_columns, "context_data_columns")
    return (
        lambda info: sql.contexts_query(info, ids, windows, data, owner, wanted),
        lambda storage: mem.contexts_columns(storage, ids, windows, data, owner, limit, wanted),
    )


async def contexts_frame(
    source: Source,
    *,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    context_data: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    context_data_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per context, oldest first.

    Columns: context_id, task_count, message_history_len, created_at, updated_at, owner_did,
    then the context data flattened into ``context_data.<key>`` columns. The time window and
    ``owner_did`` apply to the context itself; ``context_data`` is a containment filter.
    """
    limit = as_limit(limit)
    build, load = _contexts_plan(
        context_id, (created_after, created_before), (updated_after, updated_before), context_data,
        owner_did, limit, context_data_columns,
    )
    return await _load(source, schema, CONTEXT_COLUMNS, build, load, limit)


def iter_contexts_frame(
    source: Source,
    *,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    context_data: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    schema: str | None = None,
    context_data_columns: Sequence[str] | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``contexts_frame`` in chunks of at most ``chunksize`` rows."""
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    build, load = _contexts_plan(
        context_id, (created_after, created_before), (updated_after, updated_before), context_data,
        owner_did, limit, context_data_columns,
    )
    return _iterate(source, schema, CONTEXT_COLUMNS, build, load, limit, chunksize, progress, "contexts")


# --- feedback --------------------------------------------------------------------------------------


def _feedback_plan(
    filters: TaskFilters,
    since: Any,
    until: Any,
    limit: int | None,
    with_task: bool,
    task_metadata: Sequence[str] | None,
    feedback_columns: Sequence[str] | None,
) -> tuple[Fixed, SqlBuilder, MemoryLoader]:
    start, end = window(since, until, ("since", "until"))
    meta = as_columns(task_metadata, "task_metadata")
    keys = as_columns(feedback_columns, "feedback_columns")
    if not isinstance(with_task, bool):
        raise InvalidTypeError(f"with_task must be True or False, got {with_task!r}")
    joined = with_task or meta is not None
    fixed = FEEDBACK_COLUMNS + (FEEDBACK_TASK_COLUMNS if joined else ())
    return (
        fixed,
        lambda info: sql.feedback_query(info, filters, start, end, joined, meta, keys),
        lambda storage: mem.feedback_columns(storage, filters, start, end, limit, joined, meta, keys),
    )


async def feedback_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    schema: str | None = None,
    with_task: bool = False,
    task_metadata: Sequence[str] | None = None,
    feedback_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per feedback entry, oldest first.

    Columns: id, task_id, created_at, rating (nullable ``Int64``: integral JSON numbers only),
    comment (``comment``, else upstream's ``feedback`` text), the rest of the feedback
    flattened into ``feedback.<key>`` columns (only those under ``feedback_columns`` when given).
    ``with_task=True`` adds the task's context_id and state; ``task_metadata=["agent", ...]``
    also adds those ``metadata.<key>`` columns of the task. The task filters select the tasks;
    ``since``/``until`` bound the feedback's own ``created_at``.
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit = as_limit(limit)
    fixed, build, load = _feedback_plan(
        filters, since, until, limit, with_task, task_metadata, feedback_columns
    )
    return await _load(source, schema, fixed, build, load, limit)


def iter_feedback_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    schema: str | None = None,
    with_task: bool = False,
    task_metadata: Sequence[str] | None = None,
    feedback_columns: Sequence[str] | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``feedback_frame`` in chunks of at most ``chunksize`` rows."""
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    fixed, build, load = _feedback_plan(
        filters, since, until, limit, with_task, task_metadata, feedback_columns
    )
    return _iterate(source, schema, fixed, build, load, limit, chunksize, progress, "feedback")


# --- events ----------------------------------------------------------------------------------------


def _events_plan(
    filters: TaskFilters, since: Any, until: Any, limit: int | None
) -> tuple[SqlBuilder, MemoryLoader]:
    start, end = window(since, until, ("since", "until"))
    return (
        lambda info: sql.events_query(info, filters, start, end),
        _without_flat(lambda storage: mem.events_columns(storage, filters, start, end, limit)),
    )


async def events_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    schema: str | None = None,
) -> pd.DataFrame:
    """The state-transition log, one row per change, oldest first.

    Columns: id, task_id, from_state (missing for the creation), to_state, at, duration_s (the
    time spent in ``from_state``: since the task's previous event; NaN for the creation) and
    in_state_s (the time spent in ``to_state``: until the task's next event; NaN while the task
    is still in it). ``since``/``until`` bound ``at``; durations still come from neighbouring
    events outside the window. Empty for an upstream database, which keeps no event log.
    """
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit = as_limit(limit)
    build, load = _events_plan(filters, since, until, limit)
    return await _load(source, schema, EVENT_COLUMNS, build, load, limit)


def iter_events_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    updated_after: TimeLike | None = None,
    updated_before: TimeLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    schema: str | None = None,
    chunksize: int = 50_000,
    progress: bool = False,
) -> AsyncIterator[pd.DataFrame]:
    """``events_frame`` in chunks of at most ``chunksize`` rows."""
    filters = TaskFilters.of(
        states=states, context_id=context_id, created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before, metadata=metadata, owner_did=owner_did,
    )
    limit, chunksize = as_limit(limit), as_chunksize(chunksize)
    build, load = _events_plan(filters, since, until, limit)
    return _iterate(source, schema, EVENT_COLUMNS, build, load, limit, chunksize, progress, "events")


# --- webhooks and schemas --------------------------------------------------------------------------


async def webhooks_frame(
    source: Source,
    *,
    states: str | Collection[str] | None = None,
    context_id: Any = None,
    metadata: Mapping[str, Any] | None = None,
    owner_did: str | None = None,
    schema: str | None = None,
) -> pd.DataFrame:
    """One row per stored push-notification config: task_id, config_id, url, token (``"***"``
    when set), schemes (comma-joined), credentials (``"***"`` when set)."""
    filters = TaskFilters.of(states=states, context_id=context_id, metadata=metadata, owner_did=owner_did)
    return await _load(
        source, schema, WEBHOOK_COLUMNS,
        lambda info: sql.webhooks_query(info, filters),
        _without_flat(lambda storage: mem.webhooks_columns(storage, filters)),
        None,
    )


async def list_schemas(source: Source) -> list[str]:
    """Every schema of the database holding a Bindu ``tasks`` table (upstream keeps one per
    agent, named ``did_…``); ``[]`` for an in-memory storage, which has no schemas."""
    async with open_source(source, None) as src:
        if isinstance(src, PgReader):
            return await src.list_schemas()
        return []

