"""Each frame's SQL over the documented schema: what ``tasks_frame`` & co. select, join and filter.

One function per frame builds its ``FrameQuery`` (``query``) from the schema's tables
(``SchemaInfo``: upstream Bindu's lack some columns, which read as typed NULLs, and some tables,
which give an empty frame) and the validated filters. Reading one frame's SQL means reading
one function here; how it is paged, discovered and copied out lives in ``query``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bindu_storage.analysis.frames._columns import FEEDBACK_OWN_KEYS, RATING_PATTERN
from bindu_storage.analysis.frames._options import TaskFilters
from bindu_storage.analysis.frames._pg.params import Params
from bindu_storage.analysis.frames._pg.query import FlatSource, FrameQuery, Selector
from bindu_storage.analysis.frames._pg.reader import SchemaInfo
from bindu_storage.analysis.jsonb import contains_condition


def _key_str(doc: str, key: str) -> str:
    """The text of a JSON string under a top-level key (NULL otherwise)."""
    return f"CASE WHEN jsonb_typeof({doc} -> '{key}') = 'string' THEN {doc} ->> '{key}' END"


def _array(expr: str) -> str:
    """The JSON array itself, or an empty one."""
    return f"CASE WHEN jsonb_typeof({expr}) = 'array' THEN {expr} ELSE '[]'::jsonb END"


def _array_length(expr: str) -> str:
    return f"CASE WHEN jsonb_typeof({expr}) = 'array' THEN jsonb_array_length({expr}) ELSE 0 END"


TEXT_PARTS = 'strict $[*] ? (@.kind == "text" && @.text.type() == "string").text'
PART_KINDS = 'strict $[*] ? (@.kind.type() == "string").kind'
"""SQL/JSON paths of the texts of a parts array's text parts, and of its parts' kinds, in order.

Strict mode: a part that is not an object, or whose ``kind`` is not a string (even an array
holding one), is skipped, as the in-memory backend skips it."""


def _parts_array(parts: str, path: str) -> str:
    """The JSON array of the strings ``path`` selects in a parts array (``[]`` for no array).

    ``silent``: strict ``$[*]`` on anything but an array selects nothing. The client joins the
    strings (``csv.join_strings``): an aggregate per message (``string_agg`` over
    ``jsonb_array_elements``) costs a subplan and a sort per row.
    """
    return f"jsonb_path_query_array({parts}, '{path}', '{{}}', true)"


def rating(doc: str) -> str:
    """A feedback rating: a JSON number with an integral value below 10^18, as bigint (else NULL).

    Read from the number's text (never an exponent): short digit strings are integers at once,
    others must match ``RATING_PATTERN`` (``4.0`` is a rating), as on the in-memory backend.
    """
    r, text = f"({doc} -> 'rating')", f"({doc} ->> 'rating')"
    return (
        f"CASE WHEN jsonb_typeof({r}) = 'number' THEN CASE"
        f" WHEN strpos({text}, '.') = 0 AND length({text}) < 19 THEN {text}::bigint"
        f" WHEN {text} ~ '{RATING_PATTERN}' THEN {text}::numeric::bigint END END"
    )


# --- building blocks over the documented schema -----------------------------------------------


def _col(info: SchemaInfo, alias: str, table: str, column: str, sql_type: str) -> str:
    """``alias.column``, or a typed NULL when an upstream table lacks the column."""
    return f"{alias}.{column}" if info.has(table, column) else f"NULL::{sql_type}"


def _keys(info: SchemaInfo, alias: str, table: str) -> tuple[tuple[str, str], ...]:
    if info.has(table, "seq"):
        return ((f"{alias}.seq", "bigint"),)
    if info.has(table, "created_at"):
        return ((f"{alias}.created_at", "timestamptz"), (f"{alias}.id", "uuid"))
    return ((f"{alias}.id", "uuid"),)


def _row_key(info: SchemaInfo, alias: str, table: str) -> Selector:
    """A ``Selector`` on a table: its unique ``seq``, else its ``id``."""
    key, key_type = (f"{alias}.seq", "bigint") if info.has(table, "seq") else (f"{alias}.id", "uuid")
    return Selector(key, key_type, f"{info.quoted}.{table} {alias}", info.schema, table)


def task_conditions(info: SchemaInfo, f: TaskFilters, p: Params) -> list[str]:
    """WHERE conditions on the tasks table ``t`` for the task filters."""
    conds: list[str] = []
    if f.states is not None:
        conds.append(f"t.state = ANY({p(list(f.states), 'text[]')})")
    if f.context_ids is not None:
        conds.append(f"t.context_id = ANY({p(list(f.context_ids), 'uuid[]')})")
    for column, after, before in (
        ("created_at", f.created_after, f.created_before),
        ("updated_at", f.updated_after, f.updated_before),
    ):
        conds += _window(_col(info, "t", "tasks", column, "timestamptz"), after, before, p)
    if f.metadata is not None:
        meta = _col(info, "t", "tasks", "metadata", "jsonb")
        conds.append(contains_condition(meta, p(json.dumps(f.metadata), "text")))
    if f.owner_did is not None:
        conds.append(f"{_col(info, 't', 'tasks', 'owner_did', 'text')} = {p(f.owner_did, 'text')}")
    return conds


def _window(expr: str, after: datetime | None, before: datetime | None, p: Params) -> list[str]:
    conds = []
    if after is not None:
        conds.append(f"{expr} >= {p(after, 'timestamptz')}")
    if before is not None:
        conds.append(f"{expr} < {p(before, 'timestamptz')}")
    return conds


def _tasks_base(info: SchemaInfo, f: TaskFilters) -> tuple[str, list[str], Params]:
    p = Params()
    return f"{info.quoted}.tasks t", task_conditions(info, f, p), p


def _task_metadata_source(
    info: SchemaInfo, f: TaskFilters, wanted: list[str] | None, prefix: str = "metadata", limited: bool = True
) -> FlatSource:
    from_, where, p = _tasks_base(info, f)
    discover = FrameQuery(
        (), from_, tuple(where), tuple(p.params), _keys(info, "t", "tasks"),
        doc=_col(info, "t", "tasks", "metadata", "jsonb"),
    )
    return FlatSource(prefix, discover.doc or "", discover, wanted=wanted, limited=limited)


# --- the loaders --------------------------------------------------------------------------------


def tasks_query(info: SchemaInfo, f: TaskFilters, metadata_columns: list[str] | None) -> FrameQuery:
    """One row per task, with feedback aggregates from a lateral join."""
    s = info.quoted
    from_, where, p = _tasks_base(info, f)
    count_from, whole = from_, None
    if info.has("task_feedback"):
        # per task: a lateral join probing the task_id index (cheap per chunk); a whole-table
        # read joins one grouped aggregate instead (one pass over the feedback).
        agg = "count(*) AS n, sum(x.r)::float8 / nullif(count(x.r), 0) AS mean"
        rated = f"SELECT fb.task_id, {rating('fb.feedback_data')} AS r FROM {s}.task_feedback fb"
        whole = (
            f"{from_} LEFT JOIN (SELECT x.task_id, {agg} FROM ({rated}) AS x GROUP BY x.task_id) AS fbs"
            " ON fbs.task_id = t.id"
        )
        from_ += (
            f" LEFT JOIN LATERAL (SELECT {agg} FROM ({rated} WHERE fb.task_id = t.id) AS x) AS fbs ON true"
        )
        count, mean = "coalesce(fbs.n, 0)", "fbs.mean"
    else:
        count, mean = "0::bigint", "NULL::float8"
    history = _col(info, "t", "tasks", "history", "jsonb")
    artifacts = _col(info, "t", "tasks", "artifacts", "jsonb")
    select = (
        ("id", "t.id::text"),
        ("context_id", "t.context_id::text"),
        ("state", "t.state::text"),
        ("state_timestamp", _col(info, "t", "tasks", "state_timestamp", "timestamptz")),
        ("created_at", _col(info, "t", "tasks", "created_at", "timestamptz")),
        ("updated_at", _col(info, "t", "tasks", "updated_at", "timestamptz")),
        ("history_len", _array_length(history)),
        ("artifact_count", _array_length(artifacts)),
        ("feedback_count", count),
        ("mean_rating", mean),
        ("owner_did", _col(info, "t", "tasks", "owner_did", "text")),
    )
    meta = _task_metadata_source(info, f, metadata_columns)
    keys = _keys(info, "t", "tasks")
    return FrameQuery(
        select, from_, tuple(where), tuple(p.params), keys,
        flats=(meta,), whole_from=whole, count_from=count_from, selector=_row_key(info, "t", "tasks"),
    )


def _items_query(info: SchemaInfo, f: TaskFilters, column: str, fields: tuple[str, ...]) -> FrameQuery:
    from_, where, p = _tasks_base(info, f)
    items = _col(info, "t", "tasks", column, "jsonb")
    from_ += f" CROSS JOIN LATERAL jsonb_array_elements({_array(items)}) WITH ORDINALITY AS h(m, o)"
    select: tuple[tuple[str, str], ...] = (
        ("task_id", "t.id::text"), ("context_id", "t.context_id::text"), ("position", "h.o - 1"),
    )
    select += tuple((name, _key_str("h.m", name)) for name in fields)
    parts = "h.m -> 'parts'"
    select += (("text", _parts_array(parts, TEXT_PARTS)), ("part_kinds", _parts_array(parts, PART_KINDS)))
    keys = (*_keys(info, "t", "tasks"), ("h.o", "bigint"))
    joined = (("text", "\n"), ("part_kinds", ","))
    chosen = _row_key(info, "t", "tasks")
    return FrameQuery(select, from_, tuple(where), tuple(p.params), keys, joined=joined, selector=chosen)


def messages_query(info: SchemaInfo, f: TaskFilters) -> FrameQuery:
    """One row per message of each selected task's history."""
    return _items_query(info, f, "history", ("message_id", "role"))


def artifacts_query(info: SchemaInfo, f: TaskFilters) -> FrameQuery:
    """One row per artifact of each selected task."""
    return _items_query(info, f, "artifacts", ("artifact_id", "name", "description"))


def contexts_query(
    info: SchemaInfo,
    context_ids: Sequence[Any] | None,
    windows: dict[str, tuple[datetime | None, datetime | None]],
    context_data: dict[str, Any] | None,
    owner_did: str | None,
    data_columns: list[str] | None,
) -> FrameQuery:
    """One row per context, with its task count from a lateral join."""
    s, p = info.quoted, Params()
    if not info.has("contexts"):
        return FrameQuery((), "", (), (), (), empty=True)
    where: list[str] = []
    if context_ids is not None:
        where.append(f"c.id = ANY({p(list(context_ids), 'uuid[]')})")
    for column, (after, before) in windows.items():
        where += _window(_col(info, "c", "contexts", column, "timestamptz"), after, before, p)
    data = _col(info, "c", "contexts", "context_data", "jsonb")
    if context_data is not None:
        where.append(contains_condition(data, p(json.dumps(context_data), "text")))
    if owner_did is not None:
        where.append(f"{_col(info, 'c', 'contexts', 'owner_did', 'text')} = {p(owner_did, 'text')}")
    # chunks count each context's tasks by index probes; a whole read joins one grouped count
    from_ = (
        f"{s}.contexts c LEFT JOIN LATERAL (SELECT count(*) AS n FROM {s}.tasks t"
        " WHERE t.context_id = c.id) AS tc ON true"
    )
    whole = (
        f"{s}.contexts c LEFT JOIN (SELECT t.context_id, count(*) AS n FROM {s}.tasks t"
        " GROUP BY t.context_id) AS tc ON tc.context_id = c.id"
    )
    select = (
        ("context_id", "c.id::text"),
        ("task_count", "coalesce(tc.n, 0)"),
        ("message_history_len", _array_length(_col(info, "c", "contexts", "message_history", "jsonb"))),
        ("created_at", _col(info, "c", "contexts", "created_at", "timestamptz")),
        ("updated_at", _col(info, "c", "contexts", "updated_at", "timestamptz")),
        ("owner_did", _col(info, "c", "contexts", "owner_did", "text")),
    )
    keys = _keys(info, "c", "contexts")
    base = FrameQuery(
        select, from_, tuple(where), tuple(p.params), keys,
        whole_from=whole, count_from=f"{s}.contexts c", selector=_row_key(info, "c", "contexts"),
    )
    source = FlatSource("context_data", data, replace(base, doc=data), wanted=data_columns)
    return replace(base, flats=(source,))


def feedback_query(
    info: SchemaInfo,
    f: TaskFilters,
    since: datetime | None,
    until: datetime | None,
    with_task: bool,
    task_metadata: list[str] | None,
    feedback_columns: list[str] | None,
) -> FrameQuery:
    """One row per feedback entry of the selected tasks, the task joined on request."""
    if not info.has("task_feedback"):
        return FrameQuery((), "", (), (), (), empty=True)
    tasks, where, p = _tasks_base(info, f)
    from_ = f"{info.quoted}.task_feedback fb"
    if where or with_task:  # (every entry has its task: a foreign key, upstream's too)
        from_ += f" JOIN {tasks} ON t.id = fb.task_id"
    where += _window(_col(info, "fb", "task_feedback", "created_at", "timestamptz"), since, until, p)
    data = "fb.feedback_data"
    select: tuple[tuple[str, str], ...] = (
        ("id", "fb.id::bigint"),
        ("task_id", "fb.task_id::text"),
        ("created_at", _col(info, "fb", "task_feedback", "created_at", "timestamptz")),
        ("rating", rating(data)),
        ("comment", f"coalesce({_key_str(data, 'comment')}, {_key_str(data, 'feedback')})"),
    )
    if with_task:
        select += (("context_id", "t.context_id::text"), ("state", "t.state::text"))
    chosen = Selector("fb.id", "bigint", from_, info.schema, "task_feedback")
    base = FrameQuery(select, from_, tuple(where), tuple(p.params), (("fb.id", "bigint"),), selector=chosen)
    flats = [FlatSource("feedback", data, replace(base, doc=data), FEEDBACK_OWN_KEYS, feedback_columns)]
    if with_task and task_metadata is not None:
        flats.append(_task_metadata_source(info, f, task_metadata, limited=False))
    return replace(base, flats=tuple(flats))


def events_query(
    info: SchemaInfo, f: TaskFilters, since: datetime | None, until: datetime | None
) -> FrameQuery:
    """One row per recorded state change, with the time spent before and after it.

    Chunks find each event's neighbours by index probes; a whole read takes them from window
    functions over the selected tasks' events (one sort instead of two probes per event).
    """
    if not info.has("task_events"):
        return FrameQuery((), "", (), (), (), empty=True)
    s = info.quoted
    tasks, where, p = _tasks_base(info, f)
    from_ = f"{s}.task_events e" + (f" JOIN {tasks} ON t.id = e.task_id" if where else "")
    chosen = f" WHERE e.task_id IN (SELECT t.id FROM {tasks} WHERE {' AND '.join(where)})" if where else ""
    whole = (
        "(SELECT e.id, e.task_id, e.from_state, e.to_state, e.at, lag(e.at) OVER w AS prev_at,"
        f" lead(e.at) OVER w AS next_at FROM {s}.task_events e{chosen}"
        " WINDOW w AS (PARTITION BY e.task_id ORDER BY e.id)) AS e"
    )
    if where:  # the task filters read t (every event has its task: a foreign key)
        whole += f" JOIN {tasks} ON t.id = e.task_id"
    where += _window("e.at", since, until, p)
    prev = (
        f"(SELECT pe.at FROM {s}.task_events pe WHERE pe.task_id = e.task_id AND pe.id < e.id"
        " ORDER BY pe.id DESC LIMIT 1)"
    )
    nxt = (
        f"(SELECT ne.at FROM {s}.task_events ne WHERE ne.task_id = e.task_id AND ne.id > e.id"
        " ORDER BY ne.id LIMIT 1)"
    )
    fixed = (
        ("id", "e.id::bigint"),
        ("task_id", "e.task_id::text"),
        ("from_state", "e.from_state::text"),
        ("to_state", "e.to_state::text"),
        ("at", "e.at"),
    )
    select = (
        *fixed,
        ("duration_s", f"extract(epoch FROM e.at - {prev})::float8"),
        ("in_state_s", f"extract(epoch FROM {nxt} - e.at)::float8"),
    )
    whole_select = (
        *fixed,
        ("duration_s", "extract(epoch FROM e.at - e.prev_at)::float8"),
        ("in_state_s", "extract(epoch FROM e.next_at - e.at)::float8"),
    )
    return FrameQuery(
        select, from_, tuple(where), tuple(p.params), (("e.id", "bigint"),),
        whole_from=whole, whole_select=whole_select,
        selector=Selector("e.id", "bigint", from_, info.schema, "task_events"),
    )


def webhooks_query(info: SchemaInfo, f: TaskFilters) -> FrameQuery:
    """One row per stored push-notification config; token and credentials never leave the server."""
    if not info.has("webhook_configs"):
        return FrameQuery((), "", (), (), (), empty=True)
    from_, where, p = _tasks_base(info, f)
    from_ = f"{info.quoted}.webhook_configs w JOIN {from_} ON t.id = w.task_id"
    auth = "w.config -> 'authentication'"
    schemes = _array(f"{auth} -> 'schemes'")
    select = (
        ("task_id", "w.task_id::text"),
        ("config_id", _key_str("w.config", "id")),
        ("url", _key_str("w.config", "url")),
        ("token", "CASE WHEN jsonb_typeof(w.config -> 'token') <> 'null' THEN '***' END"),
        ("schemes", (
            f"(SELECT string_agg(x.e #>> '{{}}', ',' ORDER BY x.i) FROM jsonb_array_elements("
            f"{schemes}) WITH ORDINALITY AS x(e, i)"
            " WHERE jsonb_typeof(x.e) = 'string')"
        )),
        ("credentials", f"CASE WHEN jsonb_typeof({auth} -> 'credentials') <> 'null' THEN '***' END"),
    )
    keys = (
        (_col(info, "w", "webhook_configs", "created_at", "timestamptz"), "timestamptz"),
        ("w.task_id", "uuid"),
    )
    return FrameQuery(select, from_, tuple(where), tuple(p.params), keys)
