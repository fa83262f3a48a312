"""Finding records by JSONB containment: ``find_tasks``, ``find_feedback``, ``find_contexts``.

Each finder keeps the stored records whose JSON columns contain the given fragments, with
PostgreSQL's ``@>`` rules (``bindu_storage.analysis.jsonb``). A storage readable with SQL
(``storage.read.sql_readable``: PostgreSQL) runs one schema-qualified ``SELECT`` whose conditions
are ``column @> $n::jsonb`` with bound parameters, so the GIN (``jsonb_path_ops``) indexes serve
them; any other storage is scanned through its records API and filtered by ``jsonb_contains``.
A filter that the column's empty value already satisfies (``{}`` for objects, ``[]`` for arrays)
adds no condition, and a NULL column counts as its empty value (upstream may leave ``artifacts``
NULL), so both backends agree.

Argument names are those of the frames: ``states=`` (a state or several), ``metadata=`` (the
task's metadata, a containment filter), ``context_id=``, ``owner_did=``, ``limit=``. The old
spellings ``state=`` (``find_tasks``) and ``task_metadata=`` (``find_feedback``) still work for
one release and emit a ``DeprecationWarning`` naming the new one.

(Over 400 lines: each finder keeps its SQL statement, its records rules and its two typed
overloads, list or frame, side by side, so the two paths can be read against each other.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, overload

from bindu_storage.analysis.deprecated import renamed
from bindu_storage.analysis.jsonb import constrains, contains, contains_condition, jsonb_contains
from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.read import SqlReadable, sql_readable
from bindu_storage.storage.rows import task_from_row
from bindu_storage.storage.sql import TASK_COLUMNS
from bindu_storage.types import ContextRecord, FeedbackRecord, Task

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "contexts_query",
    "feedback_query",
    "find_contexts",
    "find_feedback",
    "find_tasks",
    "jsonb_contains",
    "tasks_query",
]

# --- argument checks ---------------------------------------------------------------------------


def _filter(value: Any, name: str, kind: type[dict] | type[list]) -> Any:
    """The JSON copy of a filter argument, or None when it constrains nothing."""
    if value is None:
        return None
    if kind is dict and not isinstance(value, Mapping):
        raise InvalidTypeError(f"{name} must be a dict (a JSON object), got {type(value).__name__}")
    if kind is list and not isinstance(value, list | tuple):
        raise InvalidTypeError(
            f"{name} must be a list (a JSON array of fragments), got {type(value).__name__}"
        )
    data = v.json_value(dict(value) if kind is dict else value, name)
    return data if constrains(data, kind()) else None


def _states(states: str | Collection[str] | None) -> frozenset[str] | None:
    if states is None:
        return None
    if isinstance(states, str):
        return frozenset({v.check_state(states, "states")})
    if not isinstance(states, Collection):
        raise InvalidTypeError(
            f"states must be a state name or a collection of them, got {type(states).__name__}"
        )
    return frozenset(v.check_state(s, "states") for s in states)


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    return limit


def _as_frame(as_frame: object) -> bool:
    if not isinstance(as_frame, bool):
        raise InvalidTypeError(f"as_frame must be True or False, got {as_frame!r}")
    return as_frame


# --- SQL ---------------------------------------------------------------------------------------


class _Select:
    """A SELECT whose WHERE clause grows one bound parameter at a time."""

    def __init__(self, head: str) -> None:
        self.head = head
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def where(self, template: str, value: Any) -> None:
        self.args.append(value)
        self.conditions.append(template.format(p=f"${len(self.args)}"))

    def render(self, order_by: str, limit: int | None) -> tuple[str, list[Any]]:
        sql = self.head
        if self.conditions:
            sql += " WHERE " + " AND ".join(self.conditions)
        sql += f" ORDER BY {order_by}"
        if limit is not None:
            self.args.append(limit)
            sql += f" LIMIT ${len(self.args)}"
        return sql, self.args


def _schema(schema: str) -> str:
    return quote_ident(validate_schema_name(schema))


def tasks_query(
    schema: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    history: list[Any] | None = None,
    artifacts: list[Any] | None = None,
    states: str | Collection[str] | None = None,
    context_id: IdLike | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    **deprecated: Any,
) -> tuple[str, list[Any]]:
    """The SQL and bound arguments ``find_tasks`` runs on PostgreSQL (for EXPLAIN or reuse)."""
    states = renamed("tasks_query", deprecated, {"state": "states"}, states=states)["states"]
    q = _Select(f"SELECT {TASK_COLUMNS} FROM {_schema(schema)}.tasks t")
    _task_conditions(q, metadata, history, artifacts, states, context_id, owner_did)
    return q.render("t.seq DESC", _limit(limit))


def _task_conditions(
    q: _Select,
    metadata: Any,
    history: Any,
    artifacts: Any,
    states: Any,
    context_id: Any,
    owner_did: Any,
) -> None:
    for column, value, kind in (
        ("metadata", metadata, dict), ("history", history, list), ("artifacts", artifacts, list)
    ):
        data = _filter(value, column, kind)
        if data is not None:
            q.where(contains_condition(f"t.{column}", "{p}"), data)
    chosen = _states(states)
    if chosen is not None:
        q.where("t.state = ANY({p}::text[])", sorted(chosen))
    if context_id is not None:
        q.where("t.context_id = {p}", v.as_uuid(context_id, "context_id"))
    owner = v.check_optional_str(owner_did, "owner_did")
    if owner is not None:
        q.where("t.owner_did = {p}", owner)


def feedback_query(
    schema: str,
    *,
    feedback: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    limit: int | None = None,
    **deprecated: Any,
) -> tuple[str, list[Any]]:
    """The SQL and bound arguments ``find_feedback`` runs on PostgreSQL."""
    metadata = renamed("feedback_query", deprecated, {"task_metadata": "metadata"}, metadata=metadata)[
        "metadata"
    ]
    s = _schema(schema)
    q = _Select(f"SELECT f.id, f.task_id, f.feedback_data, f.created_at FROM {s}.task_feedback f")
    data = _filter(feedback, "feedback", dict)
    meta = _filter(metadata, "metadata", dict)
    if data is not None:
        q.where(contains_condition("f.feedback_data", "{p}"), data)
    if meta is not None:
        tasks = f"SELECT t.id FROM {s}.tasks t WHERE {contains_condition('t.metadata', '{p}')}"
        q.where(f"f.task_id IN ({tasks})", meta)
    return q.render("f.id DESC", _limit(limit))


def contexts_query(
    schema: str,
    *,
    context_data: Mapping[str, Any] | None = None,
    message_history: list[Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and bound arguments ``find_contexts`` runs on PostgreSQL."""
    q = _Select(
        "SELECT c.id AS context_id, c.context_data, coalesce(c.message_history, '[]') AS message_history,"
        f" c.owner_did, c.created_at, c.updated_at FROM {_schema(schema)}.contexts c"
    )
    data = _filter(context_data, "context_data", dict)
    history = _filter(message_history, "message_history", list)
    if data is not None:
        q.where(contains_condition("c.context_data", "{p}"), data)
    if history is not None:
        q.where(contains_condition("c.message_history", "{p}"), history)
    owner = v.check_optional_str(owner_did, "owner_did")
    if owner is not None:
        q.where("c.owner_did = {p}", owner)
    return q.render("c.seq DESC", _limit(limit))


async def _fetch(readable: SqlReadable, sql: str, args: list[Any]) -> list[Any]:
    """The rows of a finder statement through the storage's ``fetch``: its pool, lazy connect and
    retries, in a read-only transaction planned for the statement's values (a generic plan
    cannot see the ``@>`` value: it would read the GIN index for a filter matching 60% of the
    table as for one matching 1%, and spill a sort of most of the table, issue 11)."""
    return await readable.fetch(sql, *args)


# --- the finders -------------------------------------------------------------------------------


def _matches(value: Any, wanted: Any, empty: Any) -> bool:
    return wanted is None or contains(empty if value is None else value, wanted)


def _take(items: Any, keep: Callable[[Any], bool], limit: int | None) -> list[Any]:
    out: list[Any] = []
    if limit == 0:
        return out
    for item in items:
        if keep(item):
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
    return out


@overload
async def find_tasks(
    storage: Storage, *, metadata: Mapping[str, Any] | None = ..., history: list[Any] | None = ...,
    artifacts: list[Any] | None = ..., states: str | Collection[str] | None = ...,
    context_id: IdLike | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[False] = ...,
) -> list[Task]: ...
@overload
async def find_tasks(
    storage: Storage, *, metadata: Mapping[str, Any] | None = ..., history: list[Any] | None = ...,
    artifacts: list[Any] | None = ..., states: str | Collection[str] | None = ...,
    context_id: IdLike | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[True],
) -> pd.DataFrame: ...
async def find_tasks(
    storage: Storage,
    *,
    metadata: Mapping[str, Any] | None = None,
    history: list[Any] | None = None,
    artifacts: list[Any] | None = None,
    states: str | Collection[str] | None = None,
    context_id: IdLike | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    as_frame: bool = False,
    **deprecated: Any,
) -> list[Task] | pd.DataFrame:
    """Tasks newest first whose columns contain the given JSON fragments (``@>``).

    ``metadata`` is an object the task metadata must contain; ``history`` and ``artifacts`` are
    arrays of fragments, each contained by some message / artifact (for example
    ``history=[{"role": "agent", "parts": [{"text": "done"}]}]``). ``states`` is a state or a
    collection of states (``state=`` is its deprecated spelling); ``context_id`` and
    ``owner_did`` narrow further; ``limit`` caps the count. ``as_frame=True`` returns the
    ``tasks_frame`` rows of the found tasks instead.
    """
    states = renamed("find_tasks", deprecated, {"state": "states"}, states=states)["states"]
    frame = _as_frame(as_frame)
    readable = sql_readable(storage)
    if readable is not None:
        sql, args = tasks_query(
            readable.schema, metadata=metadata, history=history, artifacts=artifacts, states=states,
            context_id=context_id, owner_did=owner_did, limit=limit,
        )
        tasks: list[Task] = [task_from_row(r) for r in await _fetch(readable, sql, args)]
    else:
        meta = _filter(metadata, "metadata", dict)
        hist = _filter(history, "history", list)
        arts = _filter(artifacts, "artifacts", list)
        chosen = _states(states)
        cid = v.as_uuid(context_id, "context_id") if context_id is not None else None
        owner = v.check_optional_str(owner_did, "owner_did")
        wanted = _limit(limit)

        def keep(record: Any) -> bool:
            task = record["task"]
            return (
                (chosen is None or task["status"]["state"] in chosen)
                and (cid is None or task["context_id"] == cid)
                and (owner is None or record["owner_did"] == owner)
                and _matches(task.get("metadata"), meta, {})
                and _matches(task.get("history"), hist, [])
                and _matches(task.get("artifacts"), arts, [])
            )

        records = await storage.task_records()
        tasks = [r["task"] for r in _take(reversed(records), keep, wanted)]
    return await _tasks_frame(storage, tasks, metadata) if frame else tasks


@overload
async def find_feedback(
    storage: Storage, *, feedback: Mapping[str, Any] | None = ...,
    metadata: Mapping[str, Any] | None = ..., limit: int | None = ...,
    as_frame: Literal[False] = ...,
) -> list[FeedbackRecord]: ...
@overload
async def find_feedback(
    storage: Storage, *, feedback: Mapping[str, Any] | None = ...,
    metadata: Mapping[str, Any] | None = ..., limit: int | None = ...,
    as_frame: Literal[True],
) -> pd.DataFrame: ...
async def find_feedback(
    storage: Storage,
    *,
    feedback: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    limit: int | None = None,
    as_frame: bool = False,
    **deprecated: Any,
) -> list[FeedbackRecord] | pd.DataFrame:
    """Feedback entries newest first whose data contains ``feedback`` (``@>``).

    ``metadata`` keeps entries whose task's metadata contains it, as on every frame (for example
    ``find_feedback(st, feedback={"rating": 1}, metadata={"model": "gpt"})``; ``task_metadata=``
    is its deprecated spelling).
    ``as_frame=True`` returns the ``feedback_frame`` rows of the found entries instead.
    """
    metadata = renamed("find_feedback", deprecated, {"task_metadata": "metadata"}, metadata=metadata)[
        "metadata"
    ]
    frame = _as_frame(as_frame)
    readable = sql_readable(storage)
    if readable is not None:
        sql, args = feedback_query(readable.schema, feedback=feedback, metadata=metadata, limit=limit)
        entries: list[FeedbackRecord] = [dict(r) for r in await _fetch(readable, sql, args)]  # type: ignore[misc]
    else:
        data = _filter(feedback, "feedback", dict)
        meta = _filter(metadata, "metadata", dict)
        wanted = _limit(limit)
        task_ok: set[Any] | None = None
        if meta is not None:
            task_ok = {
                r["task"]["id"] for r in await storage.task_records()
                if _matches(r["task"].get("metadata"), meta, {})
            }

        def keep(entry: Any) -> bool:
            return _matches(entry["feedback_data"], data, {}) and (
                task_ok is None or entry["task_id"] in task_ok
            )

        entries = _take(reversed(await storage.feedback_records()), keep, wanted)
    return await _feedback_frame(storage, entries, metadata) if frame else entries


@overload
async def find_contexts(
    storage: Storage, *, context_data: Mapping[str, Any] | None = ...,
    message_history: list[Any] | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[False] = ...,
) -> list[ContextRecord]: ...
@overload
async def find_contexts(
    storage: Storage, *, context_data: Mapping[str, Any] | None = ...,
    message_history: list[Any] | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[True],
) -> pd.DataFrame: ...
async def find_contexts(
    storage: Storage,
    *,
    context_data: Mapping[str, Any] | None = None,
    message_history: list[Any] | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    as_frame: bool = False,
) -> list[ContextRecord] | pd.DataFrame:
    """Contexts newest first whose data / message history contain the given fragments (``@>``).

    ``as_frame=True`` returns the ``contexts_frame`` rows of the found contexts instead.
    """
    frame = _as_frame(as_frame)
    readable = sql_readable(storage)
    if readable is not None:
        sql, args = contexts_query(
            readable.schema, context_data=context_data, message_history=message_history,
            owner_did=owner_did, limit=limit,
        )
        contexts: list[ContextRecord] = [dict(r) for r in await _fetch(readable, sql, args)]  # type: ignore[misc]
    else:
        data = _filter(context_data, "context_data", dict)
        hist = _filter(message_history, "message_history", list)
        owner = v.check_optional_str(owner_did, "owner_did")
        wanted = _limit(limit)

        def keep(record: Any) -> bool:
            return (
                (owner is None or record["owner_did"] == owner)
                and _matches(record["context_data"], data, {})
                and _matches(record["message_history"], hist, [])
            )

        contexts = _take(reversed(await storage.context_records()), keep, wanted)
    return await _contexts_frame(storage, contexts, context_data) if frame else contexts


# --- frames ------------------------------------------------------------------------------------
# ``as_frame=True`` returns what the frame loaders of ``bindu_storage.analysis.frames`` return for
# the found rows (same columns, same dtypes, both backends), in the finder's order (newest first).
# The loader is called with the filters it shares, narrowed to the found rows' contexts, states
# or ids, and its rows are then cut to the found ones; flattened JSON columns that none of the
# found rows has a value for are dropped.


def _cut(frame: pd.DataFrame, key: str, wanted: list[Any], prefix: str) -> pd.DataFrame:
    position = {k: i for i, k in enumerate(wanted)}
    kept = frame[frame[key].isin(list(position))]
    kept = kept.iloc[kept[key].map(position).argsort()].reset_index(drop=True)
    empty = [c for c in kept.columns if c.startswith(prefix) and kept[c].isna().all()]
    return kept.drop(columns=empty)


async def _tasks_frame(storage: Storage, tasks: list[Task], metadata: Any) -> pd.DataFrame:
    from bindu_storage.analysis import frames

    if not tasks:
        return await frames.tasks_frame(storage, limit=0)
    frame = await frames.tasks_frame(
        storage,
        context_id=sorted({t["context_id"] for t in tasks}),
        states=sorted({t["status"]["state"] for t in tasks}),
        metadata=_filter(metadata, "metadata", dict),
    )
    return _cut(frame, "id", [str(t["id"]) for t in tasks], "metadata.")


async def _feedback_frame(
    storage: Storage, entries: list[FeedbackRecord], metadata: Any
) -> pd.DataFrame:
    from bindu_storage.analysis import frames

    if not entries:
        return await frames.feedback_frame(storage, limit=0)
    times = [e["created_at"] for e in entries]
    frame = await frames.feedback_frame(
        storage,
        metadata=_filter(metadata, "metadata", dict),
        since=min(times),
        until=max(times) + timedelta(microseconds=1),
    )
    return _cut(frame, "id", [e["id"] for e in entries], "feedback.")


async def _contexts_frame(storage: Storage, contexts: list[ContextRecord], context_data: Any) -> pd.DataFrame:
    from bindu_storage.analysis import frames

    if not contexts:
        return await frames.contexts_frame(storage, limit=0)
    frame = await frames.contexts_frame(
        storage,
        context_id=[c["context_id"] for c in contexts],
        context_data=_filter(context_data, "context_data", dict),
    )
    return _cut(frame, "context_id", [str(c["context_id"]) for c in contexts], "context_data.")
