"""Tasks, messages, artifacts, contexts, feedback, events and webhooks as pandas DataFrames.

One function per frame, shaped like ``pandas.read_sql``: ``chunksize=None`` (the default) gives
a coroutine of one DataFrame, an int an async iterator of DataFrames of at most that many rows,
read in keyset order in constant memory::

    df = await tasks_frame(storage, states=["failed"], created_after="2026-01-01",
                           metadata={"agent": "planner"}, columns=["id", "state", "metadata.agent"])
    async for chunk in messages_frame(url, schema="did_bindu_alice", chunksize=50_000, progress=True):
        ...

The ``source`` is a ``Storage`` (read with SQL when it has the read capability,
``storage.read.sql_readable``, as ``PostgresStorage`` does; else through its records) or a
PostgreSQL URL (read-only analysis of an existing database). Arguments are checked at the call,
before anything is read.

**Arguments**, the same names on every frame (``_options`` declares them once):

* task filters (every frame but ``contexts_frame``; a row is kept when its task passes):
  ``states``, ``context_id`` (one or several), ``created_after``/``created_before``/
  ``updated_after``/``updated_before`` (start inclusive, end exclusive; naive times and strings
  are UTC), ``metadata`` (JSONB containment, ``@>``), ``owner_did``;
* reading: ``limit`` (rows, oldest first), ``schema`` (PostgreSQL), ``columns`` (the columns to
  return, in order, pushed into the SQL), ``dtype_backend`` (``None``, ``"numpy_nullable"``,
  ``"pyarrow"``: see ``analysis.dtypes``), ``chunksize``, ``progress`` (a bar while chunking);
* naming rules: ``<document>=`` is a containment filter on that JSON document (``metadata``,
  ``context_data``); ``<document>_columns=`` lists the keys of that document to flatten
  (``metadata_columns``, ``context_data_columns``, ``feedback_columns``,
  ``task_metadata_columns``).

**Columns.** Both backends give the same columns with the same dtypes (``analysis.dtypes``): ids
as strings, states as a categorical of every task state, timestamps as ``datetime64[us, UTC]``,
counts as ``int64``, ratings as nullable ``Int64``. JSON documents are flattened into
``<prefix>.<key>`` columns, nested keys dotted as ``pandas.json_normalize`` does; a column's
dtype follows its values. Values under secret-looking keys and webhook tokens read as ``"***"``
(``analysis.redact``). Databases written by upstream Bindu (no ``seq``, no ``task_events``...)
read too: what they lack is null or an empty frame.

**Deprecated, removed in the next release** (each use warns, naming the replacement):
``iter_tasks_frame``, ``iter_messages_frame``, ``iter_artifacts_frame``, ``iter_contexts_frame``,
``iter_feedback_frame``, ``iter_events_frame`` — call the frame with ``chunksize=`` (their
default was 50,000); ``feedback_frame(task_metadata=[...])`` — ``task_metadata_columns=``
(a dict there is the ``metadata=`` filter).

Inside: ``_options`` (arguments), ``_read`` (the one read path), ``_columns`` (columns and
kinds), ``_memory`` (frames from records), ``_pg`` (the SQL and its reader).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Unpack, overload

import pandas as pd

from bindu_storage.analysis.deprecated import renamed, warn_renamed
from bindu_storage.analysis.frames import _memory as records
from bindu_storage.analysis.frames._columns import (
    ARTIFACT_COLUMNS,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    FEEDBACK_TASK_COLUMNS,
    MESSAGE_COLUMNS,
    TASK_COLUMNS,
    WEBHOOK_COLUMNS,
)
from bindu_storage.analysis.frames._options import (
    ContextFrameArgs,
    FrameArgs,
    FrameOptions,
    TaskFilters,
    TimeLike,
    as_bool,
    as_columns,
    as_json_filter,
    check_selection,
    flat_keys,
    window,
)
from bindu_storage.analysis.frames._pg import statements as sql
from bindu_storage.analysis.frames._pg.reader import PgReader, Source, open_source
from bindu_storage.analysis.frames._read import Plan, read, without_flat
from bindu_storage.storage import validate as v

__all__ = [
    "Source",
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

Frame = Coroutine[Any, Any, pd.DataFrame]
"""What a frame function returns without ``chunksize``: ``await`` it for the DataFrame."""
Chunks = AsyncIterator[pd.DataFrame]
"""What a frame function returns with ``chunksize``: ``async for`` over DataFrames."""


def _start(
    name: str, options: dict[str, Any], allowed: type, chunksize: object, fixed: Any, prefixes: Sequence[str]
) -> tuple[FrameOptions, dict[str, Any]]:
    """The checked read options and the rest of ``options``; ``columns`` checked against the frame."""
    read_options, rest = FrameOptions.of(name, options, allowed, chunksize)
    check_selection(name, read_options.columns, [n for n, _ in fixed], prefixes)
    return read_options, rest


@overload
def tasks_frame(
    source: Source, *, chunksize: None = None, metadata_columns: Sequence[str] | None = None,
    **options: Unpack[FrameArgs],
) -> Frame: ...
@overload
def tasks_frame(
    source: Source, *, chunksize: int, metadata_columns: Sequence[str] | None = None,
    **options: Unpack[FrameArgs],
) -> Chunks: ...
def tasks_frame(
    source: Source, *, chunksize: int | None = None, metadata_columns: Sequence[str] | None = None,
    **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """One row per task, oldest first.

    Columns: id, context_id, state, state_timestamp, created_at, updated_at, history_len,
    artifact_count, feedback_count, mean_rating (of the integral ratings), owner_did, then the
    metadata flattened into ``metadata.<key>`` columns (only those under ``metadata_columns``
    when given, e.g. ``["agent", "usage"]``).
    """
    opts, filters = _start("tasks", dict(options), FrameArgs, chunksize, TASK_COLUMNS, ["metadata"])
    f = TaskFilters.of(**filters)
    given = as_columns(metadata_columns, "metadata_columns")
    wanted = flat_keys(opts.columns, "metadata", given, "metadata_columns")
    return read(source, Plan(
        TASK_COLUMNS,
        lambda info: sql.tasks_query(info, f, wanted),
        lambda storage: records.tasks_columns(storage, f, opts.limit, wanted),
    ), opts)


def _items(
    source: Source, name: str, kind: str, fixed: Any, chunksize: object, options: dict[str, Any]
) -> Frame | Chunks:
    """``messages_frame`` (kind ``history``) or ``artifacts_frame`` (``artifacts``)."""
    opts, filters = _start(name, options, FrameArgs, chunksize, fixed, [])
    f = TaskFilters.of(**filters)
    query = sql.messages_query if kind == "history" else sql.artifacts_query
    return read(source, Plan(
        fixed,
        lambda info: query(info, f),
        without_flat(lambda storage: records.items_columns(storage, f, opts.limit, kind)),
    ), opts)


@overload
def messages_frame(source: Source, *, chunksize: None = None, **options: Unpack[FrameArgs]) -> Frame: ...
@overload
def messages_frame(source: Source, *, chunksize: int, **options: Unpack[FrameArgs]) -> Chunks: ...
def messages_frame(
    source: Source, *, chunksize: int | None = None, **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """One row per message of each selected task's history, in task then history order.

    Columns: task_id, context_id, position (0-based), message_id, role, text (the text parts
    joined with newlines; missing when there are none), part_kinds (e.g. ``"text,file"``).
    """
    return _items(source, "messages", "history", MESSAGE_COLUMNS, chunksize, dict(options))


@overload
def artifacts_frame(source: Source, *, chunksize: None = None, **options: Unpack[FrameArgs]) -> Frame: ...
@overload
def artifacts_frame(source: Source, *, chunksize: int, **options: Unpack[FrameArgs]) -> Chunks: ...
def artifacts_frame(
    source: Source, *, chunksize: int | None = None, **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """One row per artifact of each selected task.

    Columns: task_id, context_id, position, artifact_id, name, description, part_kinds, text.
    """
    return _items(source, "artifacts", "artifacts", ARTIFACT_COLUMNS, chunksize, dict(options))


@overload
def contexts_frame(
    source: Source, *, chunksize: None = None, context_data_columns: Sequence[str] | None = None,
    **options: Unpack[ContextFrameArgs],
) -> Frame: ...
@overload
def contexts_frame(
    source: Source, *, chunksize: int, context_data_columns: Sequence[str] | None = None,
    **options: Unpack[ContextFrameArgs],
) -> Chunks: ...
def contexts_frame(
    source: Source, *, chunksize: int | None = None, context_data_columns: Sequence[str] | None = None,
    **options: Unpack[ContextFrameArgs],
) -> Frame | Chunks:
    """One row per context, oldest first.

    Columns: context_id, task_count, message_history_len, created_at, updated_at, owner_did,
    then the context data flattened into ``context_data.<key>`` columns. The time window and
    ``owner_did`` apply to the context itself; ``context_data`` is a containment filter.
    """
    opts, given = _start(
        "contexts", dict(options), ContextFrameArgs, chunksize, CONTEXT_COLUMNS, ["context_data"]
    )
    ids = TaskFilters.of(context_id=given.get("context_id")).context_ids
    windows = {
        "created_at": window(given.get("created_after"), given.get("created_before"),
                             ("created_after", "created_before")),
        "updated_at": window(given.get("updated_after"), given.get("updated_before"),
                             ("updated_after", "updated_before")),
    }
    data = as_json_filter(given.get("context_data"), "context_data")
    owner = v.check_optional_str(given.get("owner_did"), "owner_did")
    keys = as_columns(context_data_columns, "context_data_columns")
    wanted = flat_keys(opts.columns, "context_data", keys, "context_data_columns")
    return read(source, Plan(
        CONTEXT_COLUMNS,
        lambda info: sql.contexts_query(info, ids, windows, data, owner, wanted),
        lambda storage: records.contexts_columns(storage, ids, windows, data, owner, opts.limit, wanted),
    ), opts)


@overload
def feedback_frame(
    source: Source, *, chunksize: None = None, since: TimeLike | None = None, until: TimeLike | None = None,
    with_task: bool = False, task_metadata_columns: Sequence[str] | None = None,
    feedback_columns: Sequence[str] | None = None, **options: Unpack[FrameArgs],
) -> Frame: ...
@overload
def feedback_frame(
    source: Source, *, chunksize: int, since: TimeLike | None = None, until: TimeLike | None = None,
    with_task: bool = False, task_metadata_columns: Sequence[str] | None = None,
    feedback_columns: Sequence[str] | None = None, **options: Unpack[FrameArgs],
) -> Chunks: ...
def feedback_frame(
    source: Source, *, chunksize: int | None = None,
    since: TimeLike | None = None, until: TimeLike | None = None,
    with_task: bool = False, task_metadata_columns: Sequence[str] | None = None,
    feedback_columns: Sequence[str] | None = None, **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """One row per feedback entry, oldest first.

    Columns: id, task_id, created_at, rating (nullable ``Int64``: integral JSON numbers only),
    comment (``comment``, else upstream's ``feedback`` text), the rest of the feedback
    flattened into ``feedback.<key>`` columns (only those under ``feedback_columns`` when given).
    ``with_task=True`` adds the task's context_id and state; ``task_metadata_columns=["agent"]``
    also adds those ``metadata.<key>`` columns of the task. The task filters select the tasks;
    ``since``/``until`` bound the feedback's own ``created_at``.
    """
    given: dict[str, Any] = dict(options)
    if "task_metadata" in given:  # deprecated: a list of keys, or (as in find_feedback) a filter
        old = {"task_metadata": given.pop("task_metadata")}
        new = "metadata" if isinstance(old["task_metadata"], Mapping) else "task_metadata_columns"
        current = {"metadata": given.get("metadata"), "task_metadata_columns": task_metadata_columns}
        moved = renamed("feedback_frame", old, {"task_metadata": new}, **current)
        given["metadata"], task_metadata_columns = moved["metadata"], moved["task_metadata_columns"]
        if given["metadata"] is None:
            del given["metadata"]
    opts, filters = _start("feedback", given, FrameArgs, chunksize, FEEDBACK_COLUMNS + FEEDBACK_TASK_COLUMNS,
                           ["feedback", "metadata"])
    f = TaskFilters.of(**filters)
    start, end = window(since, until, ("since", "until"))
    meta = as_columns(task_metadata_columns, "task_metadata_columns")
    keys = as_columns(feedback_columns, "feedback_columns")
    keys = flat_keys(opts.columns, "feedback", keys, "feedback_columns")
    task_columns = [
        c for c in opts.columns or () if c in ("context_id", "state") or c.startswith("metadata.")
    ]
    if meta is not None or task_columns:  # columns of the task join it, as with_task=True does
        meta = flat_keys(opts.columns, "metadata", meta, "task_metadata_columns")
    joined = as_bool(with_task, "with_task") or meta is not None
    fixed = FEEDBACK_COLUMNS + (FEEDBACK_TASK_COLUMNS if joined else ())
    return read(source, Plan(
        fixed,
        lambda info: sql.feedback_query(info, f, start, end, joined, meta, keys),
        lambda storage: records.feedback_columns(storage, f, start, end, opts.limit, joined, meta, keys),
    ), opts)


@overload
def events_frame(
    source: Source, *, chunksize: None = None, since: TimeLike | None = None, until: TimeLike | None = None,
    **options: Unpack[FrameArgs],
) -> Frame: ...
@overload
def events_frame(
    source: Source, *, chunksize: int, since: TimeLike | None = None, until: TimeLike | None = None,
    **options: Unpack[FrameArgs],
) -> Chunks: ...
def events_frame(
    source: Source, *, chunksize: int | None = None,
    since: TimeLike | None = None, until: TimeLike | None = None,
    **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """The state-transition log, one row per change, oldest first.

    Columns: id, task_id, from_state (missing for the creation), to_state, at, duration_s (the
    time spent in ``from_state``: since the task's previous event; NaN for the creation) and
    in_state_s (the time spent in ``to_state``: until the task's next event; NaN while the task
    is still in it). ``since``/``until`` bound ``at``; durations still come from neighbouring
    events outside the window. Empty for an upstream database, which keeps no event log.
    """
    opts, filters = _start("events", dict(options), FrameArgs, chunksize, EVENT_COLUMNS, [])
    f = TaskFilters.of(**filters)
    start, end = window(since, until, ("since", "until"))
    return read(source, Plan(
        EVENT_COLUMNS,
        lambda info: sql.events_query(info, f, start, end),
        without_flat(lambda storage: records.events_columns(storage, f, start, end, opts.limit)),
    ), opts)


@overload
def webhooks_frame(source: Source, *, chunksize: None = None, **options: Unpack[FrameArgs]) -> Frame: ...
@overload
def webhooks_frame(source: Source, *, chunksize: int, **options: Unpack[FrameArgs]) -> Chunks: ...
def webhooks_frame(
    source: Source, *, chunksize: int | None = None, **options: Unpack[FrameArgs],
) -> Frame | Chunks:
    """One row per stored push-notification config: task_id, config_id, url, token (``"***"``
    when set), schemes (comma-joined), credentials (``"***"`` when set)."""
    opts, filters = _start("webhooks", dict(options), FrameArgs, chunksize, WEBHOOK_COLUMNS, [])
    f = TaskFilters.of(**filters)
    return read(source, Plan(
        WEBHOOK_COLUMNS,
        lambda info: sql.webhooks_query(info, f),
        without_flat(lambda storage: records.webhooks_columns(storage, f, opts.limit)),
    ), opts)


async def list_schemas(source: Source) -> list[str]:
    """Every schema of the database holding a Bindu ``tasks`` table (upstream keeps one per
    agent, named ``did_…``); ``[]`` for a storage read as records, which has no schemas."""
    async with open_source(source, None) as src:
        if isinstance(src, PgReader):
            return await src.list_schemas()
        return []


# --- deprecated: the iter_… functions, for one release -------------------------------------------


def _iterator(name: str, frame: Callable[..., Any]) -> Callable[..., Chunks]:
    def iterate(source: Source, *, chunksize: int = 50_000, **options: Any) -> Chunks:
        warn_renamed(f"{name}()", f"{frame.__name__}(..., chunksize={chunksize})")
        chunks: Chunks = frame(source, chunksize=chunksize, **options)
        return chunks

    iterate.__name__ = iterate.__qualname__ = name
    iterate.__doc__ = (
        f"Deprecated (removed in the next release): ``{frame.__name__}(source, chunksize=50_000, ...)``."
    )
    return iterate


iter_tasks_frame = _iterator("iter_tasks_frame", tasks_frame)
iter_messages_frame = _iterator("iter_messages_frame", messages_frame)
iter_artifacts_frame = _iterator("iter_artifacts_frame", artifacts_frame)
iter_contexts_frame = _iterator("iter_contexts_frame", contexts_frame)
iter_feedback_frame = _iterator("iter_feedback_frame", feedback_frame)
iter_events_frame = _iterator("iter_events_frame", events_frame)
