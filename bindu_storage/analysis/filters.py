"""JSONB containment filters: PostgreSQL's ``@>`` with the same answers on every backend.

``jsonb_contains(a, b)`` is ``a @> b`` in Python, rule for rule as PostgreSQL's
``JsonbDeepContains`` applies it:

* an object contains an object when every key of the contained one is present and its value is
  contained (scalars: equal; objects and arrays: contained, recursively);
* an array contains an array when every element of the contained one is contained by *some*
  element of the container (order and duplicates are ignored; a scalar element must equal a scalar
  element, a nested object or array must be contained by a nested object or array);
* scalars are equal by type and value; numbers compare as exact decimals of their JSON text, so
  ``1 == 1.0`` but ``true`` is not the number ``1``;
* only at the top level, an array contains a scalar that equals one of its scalar elements
  (``[1, 2] @> 1``), a scalar contains only an equal scalar, and nothing else mixes kinds.

``find_tasks``, ``find_feedback`` and ``find_contexts`` filter stored records with those rules. On
PostgreSQL they run one schema-qualified ``SELECT`` whose conditions are ``column @> $n::jsonb`` with
bound parameters, so the GIN (``jsonb_path_ops``) indexes serve them; on any other backend they
scan the ``Storage`` read API and apply ``jsonb_contains``. A filter that the column's empty value
already satisfies (``{}`` for objects, ``[]`` for arrays) adds no condition, and a NULL column
counts as its empty value (upstream may leave ``artifacts`` NULL), so both backends agree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

from bindu_storage.errors import InvalidTypeError, InvalidValueError
from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike, Storage
from bindu_storage.storage.postgres import PostgresStorage
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

# --- the containment rules ---------------------------------------------------------------------


def jsonb_contains(container: Any, contained: Any) -> bool:
    """Return what PostgreSQL's ``container::jsonb @> contained::jsonb`` returns.

    Both arguments are JSON-native Python values (dict, list or tuple, str, int, float, bool,
    None; UUIDs count as their string). Anything else raises ``InvalidValueError`` naming the
    argument (``container`` or ``contained``) and the path to the bad value.
    """
    return _contains(v.json_value(container, "container"), v.json_value(contained, "contained"), True)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple)


def _scalar_equal(a: Any, b: Any) -> bool:
    """PostgreSQL's scalar equality: same JSON type, then equal value (numbers exactly)."""
    if a is None or b is None:
        return a is b
    a_bool, b_bool = isinstance(a, bool), isinstance(b, bool)
    if a_bool or b_bool:
        return a_bool and b_bool and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _number_equal(a, b)


def _number_equal(a: int | float, b: int | float) -> bool:
    if isinstance(a, float) == isinstance(b, float):
        return a == b  # int/int exact; float/float: equal floats have equal shortest decimals
    f, n = (a, b) if isinstance(a, float) else (b, a)
    # PostgreSQL sees the float as the decimal json.dumps writes (its shortest repr), not as
    # its binary value: float(2**60) is written 1.152921504606847e+18, which is not 2**60.
    return f.is_integer() and Decimal(repr(f)) == n


def _contains(a: Any, b: Any, top: bool) -> bool:
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return False
        for key, b_value in b.items():
            if key not in a:
                return False
            a_value = a[key]
            if _is_scalar(a_value) or _is_scalar(b_value):
                if not (_is_scalar(a_value) and _is_scalar(b_value) and _scalar_equal(a_value, b_value)):
                    return False
            elif not _contains(a_value, b_value, False):
                return False
        return True
    if isinstance(a, list | tuple):
        if _is_scalar(b):  # a raw scalar inside an array: only at the top level
            return top and any(_is_scalar(x) and _scalar_equal(x, b) for x in a)
        if not isinstance(b, list | tuple):
            return False
        nested: list[Any] | None = None
        for element in b:
            if _is_scalar(element):
                if not any(_is_scalar(x) and _scalar_equal(x, element) for x in a):
                    return False
                continue
            if nested is None:
                nested = [x for x in a if not _is_scalar(x)]
            if not any(_contains(x, element, False) for x in nested):
                return False
        return True
    # a is a scalar: at the top level it contains an equal scalar and nothing else
    return top and _is_scalar(b) and _scalar_equal(a, b)


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
    return None if _contains(kind(), data, True) else data


def _states(state: str | Collection[str] | None) -> frozenset[str] | None:
    if state is None:
        return None
    if isinstance(state, str):
        return frozenset({v.check_state(state, "state")})
    if not isinstance(state, Collection):
        raise InvalidTypeError(
            f"state must be a state name or a collection of them, got {type(state).__name__}"
        )
    return frozenset(v.check_state(s, "state") for s in state)


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
    state: str | Collection[str] | None = None,
    context_id: IdLike | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and bound arguments ``find_tasks`` runs on PostgreSQL (for EXPLAIN or reuse)."""
    q = _Select(f"SELECT {TASK_COLUMNS} FROM {_schema(schema)}.tasks t")
    _task_conditions(q, metadata, history, artifacts, state, context_id, owner_did)
    return q.render("t.seq DESC", _limit(limit))


def _task_conditions(
    q: _Select,
    metadata: Any,
    history: Any,
    artifacts: Any,
    state: Any,
    context_id: Any,
    owner_did: Any,
) -> None:
    for column, value, kind in (
        ("metadata", metadata, dict), ("history", history, list), ("artifacts", artifacts, list)
    ):
        data = _filter(value, column, kind)
        if data is not None:
            q.where(f"t.{column} @> {{p}}::jsonb", data)
    states = _states(state)
    if states is not None:
        q.where("t.state = ANY({p}::text[])", sorted(states))
    if context_id is not None:
        q.where("t.context_id = {p}", v.as_uuid(context_id, "context_id"))
    owner = v.check_optional_str(owner_did, "owner_did")
    if owner is not None:
        q.where("t.owner_did = {p}", owner)


def feedback_query(
    schema: str,
    *,
    feedback: Mapping[str, Any] | None = None,
    task_metadata: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and bound arguments ``find_feedback`` runs on PostgreSQL."""
    s = _schema(schema)
    q = _Select(f"SELECT f.id, f.task_id, f.feedback_data, f.created_at FROM {s}.task_feedback f")
    data = _filter(feedback, "feedback", dict)
    meta = _filter(task_metadata, "task_metadata", dict)
    if data is not None:
        q.where("f.feedback_data @> {p}::jsonb", data)
    if meta is not None:
        q.where(f"f.task_id IN (SELECT t.id FROM {s}.tasks t WHERE t.metadata @> {{p}}::jsonb)", meta)
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
        q.where("c.context_data @> {p}::jsonb", data)
    if history is not None:
        q.where("c.message_history @> {p}::jsonb", history)
    owner = v.check_optional_str(owner_did, "owner_did")
    if owner is not None:
        q.where("c.owner_did = {p}", owner)
    return q.render("c.seq DESC", _limit(limit))


async def _fetch(storage: PostgresStorage, sql: str, args: list[Any]) -> list[Any]:
    return await storage.fetch(sql, *args)  # the storage's pool, lazy connect and retries


# --- the finders -------------------------------------------------------------------------------


def _matches(value: Any, wanted: Any, empty: Any) -> bool:
    return wanted is None or _contains(empty if value is None else value, wanted, True)


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
    artifacts: list[Any] | None = ..., state: str | Collection[str] | None = ...,
    context_id: IdLike | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[False] = ...,
) -> list[Task]: ...
@overload
async def find_tasks(
    storage: Storage, *, metadata: Mapping[str, Any] | None = ..., history: list[Any] | None = ...,
    artifacts: list[Any] | None = ..., state: str | Collection[str] | None = ...,
    context_id: IdLike | None = ..., owner_did: str | None = ..., limit: int | None = ...,
    as_frame: Literal[True],
) -> pd.DataFrame: ...
async def find_tasks(
    storage: Storage,
    *,
    metadata: Mapping[str, Any] | None = None,
    history: list[Any] | None = None,
    artifacts: list[Any] | None = None,
    state: str | Collection[str] | None = None,
    context_id: IdLike | None = None,
    owner_did: str | None = None,
    limit: int | None = None,
    as_frame: bool = False,
) -> list[Task] | pd.DataFrame:
    """Tasks newest first whose columns contain the given JSON fragments (``@>``).

    ``metadata`` is an object the task metadata must contain; ``history`` and ``artifacts`` are
    arrays of fragments, each contained by some message / artifact (for example
    ``history=[{"role": "agent", "parts": [{"text": "done"}]}]``). ``state`` is a state or a
    collection of states; ``context_id`` and ``owner_did`` narrow further; ``limit`` caps the
    count. ``as_frame=True`` returns the ``tasks_frame`` rows of the found tasks instead.
    """
    frame = _as_frame(as_frame)
    if isinstance(storage, PostgresStorage):
        sql, args = tasks_query(
            storage.schema, metadata=metadata, history=history, artifacts=artifacts, state=state,
            context_id=context_id, owner_did=owner_did, limit=limit,
        )
        tasks: list[Task] = [task_from_row(r) for r in await _fetch(storage, sql, args)]
    else:
        meta = _filter(metadata, "metadata", dict)
        hist = _filter(history, "history", list)
        arts = _filter(artifacts, "artifacts", list)
        states = _states(state)
        cid = v.as_uuid(context_id, "context_id") if context_id is not None else None
        owner = v.check_optional_str(owner_did, "owner_did")
        wanted = _limit(limit)

        def keep(record: Any) -> bool:
            task = record["task"]
            return (
                (states is None or task["status"]["state"] in states)
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
    task_metadata: Mapping[str, Any] | None = ..., limit: int | None = ...,
    as_frame: Literal[False] = ...,
) -> list[FeedbackRecord]: ...
@overload
async def find_feedback(
    storage: Storage, *, feedback: Mapping[str, Any] | None = ...,
    task_metadata: Mapping[str, Any] | None = ..., limit: int | None = ...,
    as_frame: Literal[True],
) -> pd.DataFrame: ...
async def find_feedback(
    storage: Storage,
    *,
    feedback: Mapping[str, Any] | None = None,
    task_metadata: Mapping[str, Any] | None = None,
    limit: int | None = None,
    as_frame: bool = False,
) -> list[FeedbackRecord] | pd.DataFrame:
    """Feedback entries newest first whose data contains ``feedback`` (``@>``).

    ``task_metadata`` keeps entries whose task's metadata contains it (for example
    ``find_feedback(st, feedback={"rating": 1}, task_metadata={"model": "gpt"})``).
    ``as_frame=True`` returns the ``feedback_frame`` rows of the found entries instead.
    """
    frame = _as_frame(as_frame)
    if isinstance(storage, PostgresStorage):
        sql, args = feedback_query(
            storage.schema, feedback=feedback, task_metadata=task_metadata, limit=limit
        )
        entries: list[FeedbackRecord] = [dict(r) for r in await _fetch(storage, sql, args)]  # type: ignore[misc]
    else:
        data = _filter(feedback, "feedback", dict)
        meta = _filter(task_metadata, "task_metadata", dict)
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
    return await _feedback_frame(storage, entries, task_metadata) if frame else entries


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
    if isinstance(storage, PostgresStorage):
        sql, args = contexts_query(
            storage.schema, context_data=context_data, message_history=message_history,
            owner_did=owner_did, limit=limit,
        )
        contexts: list[ContextRecord] = [dict(r) for r in await _fetch(storage, sql, args)]  # type: ignore[misc]
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
    storage: Storage, entries: list[FeedbackRecord], task_metadata: Any
) -> pd.DataFrame:
    from bindu_storage.analysis import frames

    if not entries:
        return await frames.feedback_frame(storage, limit=0)
    times = [e["created_at"] for e in entries]
    frame = await frames.feedback_frame(
        storage,
        metadata=_filter(task_metadata, "task_metadata", dict),
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
