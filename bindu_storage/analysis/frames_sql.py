"""The SQL of the frame loaders: projection, flattening and joins done by PostgreSQL.

Every loader is a ``FrameQuery``: a FROM clause (the frame's table joined to its task), the
WHERE conditions of its filters (parameters read from settings, see ``frames_params``), the
fixed select list, and the keyset key (``tasks.seq`` on our schema; ``created_at, id`` on
upstream's, which has no ``seq``). From it come the statements:

* ``discovery`` walks a JSONB column of chosen rows with a chain of lateral ``jsonb_each`` and
  returns each key path with the JSON types of its values; ``verification`` looks known paths
  up in every document in one aggregate pass (``frames_pg.discover`` combines the two), so
  flattened columns are planned without fetching documents;
* ``page`` selects one chunk, written out by ``COPY ... TO STDOUT (FORMAT csv)``: fixed
  columns, one ``->``/``->>`` extraction per key path (through objects only; tested and cast in
  SQL unless discovery proved every value fits), ordered by the key and starting after the
  last key read; a whole read may use cheaper joins (``whole_from``, ``whole_select``), and a
  filtered one first picks its rows' keys with bound parameters (``Page.pick``), since the
  planner cannot see the parameters of a COPY;
* ``count`` counts the rows (for progress bars).

Columns an upstream database lacks (``owner_did``, ``seq``...) read as NULL; a missing table
gives an empty frame (``FrameQuery.empty``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bindu_storage.analysis.frames_args import TaskFilters
from bindu_storage.analysis.frames_columns import INT64_MAX, INT64_MIN, RATING_PATTERN, FlatColumn
from bindu_storage.analysis.frames_params import Param, Params
from bindu_storage.analysis.frames_source import SchemaInfo


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
    strings (``frames_csv.join_strings``): an aggregate per message (``string_agg`` over
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


ROWS_SETTING = "bindu_frames.rows"
"""The setting holding the keys of the rows a filtered whole read picked (see ``FrameQuery.page``)."""

PAGE_MARK = "/* bindu-storage frames: page */ "
DISCOVERY_MARK = "/* bindu-storage frames: discovery */ "
"""Comments opening the statements, so ``pg_stat_activity`` shows what a session is reading."""


def chain(doc: str, path: Sequence[str], p: Params, text: bool = False) -> str:
    """``(doc -> k1 -> k2 ...)``: the value at ``path`` through objects only (``->>`` last for text).

    Unlike ``#>``, a text key never indexes into an array, so only the values the discovery
    walk saw are reached.
    """
    expr = doc
    for i, key in enumerate(path):
        expr = f"{expr} {'->>' if text and i == len(path) - 1 else '->'} {p.key(key)}"
    return f"({expr})" if path else expr


def _read(v: str, kind: str) -> str:
    """SQL turning the JSONB value ``v`` into a column value of ``kind`` (NULL when it does not fit)."""
    if kind == "secret":
        return f"CASE WHEN jsonb_typeof({v}) <> 'null' THEN '***' END"
    if kind == "str":
        return f"CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} #>> '{{}}' END"
    if kind == "bool":
        return f"CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {v}::text END"
    if kind == "Int64":
        return (
            f"CASE WHEN jsonb_typeof({v}) = 'number' AND scale({v}::numeric) = 0 AND {v}::numeric "
            f"BETWEEN {INT64_MIN} AND {INT64_MAX} THEN {v}::numeric::bigint END"
        )
    if kind == "float":
        return f"CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::float8 END"
    return f"CASE WHEN jsonb_typeof({v}) NOT IN ('object', 'null') THEN {v}::text END"


def flat_exprs(flat: Sequence[tuple[str, FlatColumn]], p: Params) -> tuple[list[str], str]:
    """The select expressions of the flattened columns, and the LATERAL join they read from.

    A ``plain`` column (discovery saw only values of its kind there, never an object) is read
    with ``->>``, whose text is exactly the value. Other columns extract each key path once per
    row in a fenced lateral subquery (``OFFSET 0`` keeps the planner from inlining it and
    repeating the extraction), then test and cast the extracted values.
    """
    values: list[str] = []
    exprs: list[str] = []
    for doc, col in flat:
        reads = []
        for path in col.paths:
            if col.plain:
                reads.append(chain(doc, path, p, text=True))
                continue
            values.append(f"{chain(doc, path, p)} AS v{len(values)}")
            reads.append(_read(f"j.v{len(values) - 1}", col.kind))
        exprs.append(reads[0] if len(reads) == 1 else "coalesce(" + ", ".join(reads) + ")")
    lateral = f" CROSS JOIN LATERAL (SELECT {', '.join(values)} OFFSET 0) AS j" if values else ""
    return exprs, lateral


@dataclass(frozen=True)
class Selector:
    """How a filtered whole read picks its rows first, with bound parameters (``FrameQuery.page``)."""

    key: str
    """A unique key of the rows the filters choose (an indexed column)."""
    type: str
    """Its SQL type."""
    from_: str
    """The FROM clause the filters apply to."""
    schema: str
    table: str
    """The table whose size bounds how many rows are picked by key."""


@dataclass(frozen=True)
class Page:
    """The statements of one page read."""

    sql: str
    """The page, read by COPY."""
    params: list[Param]
    pick: str | None = None
    """Run first, with bound parameters: puts the keys of the rows the filters choose in the
    setting ``bindu_frames.rows`` (``sql`` reads them) and says whether it did."""
    fallback: str | None = None
    """The page reading its rows by the filters themselves, when ``pick`` did not pick."""


PICK_MIN, PICK_MAX, PICK_SHARE = 10_000, 1_000_000, 10
"""A pick keeps at most a tenth of the table's rows (``reltuples``), within [10,000, 1,000,000]
keys: reading rows by key costs about ten times reading them in a scan, and the keys are held
in a setting."""


@dataclass(frozen=True)
class FlatSource:
    """A JSONB column to flatten into ``prefix.<key>`` columns."""

    prefix: str
    doc: str
    """The JSONB expression in the frame's page query."""
    discover: FrameQuery
    """The rows whose documents decide the columns (its ``doc`` is the one to walk)."""
    exclude: tuple[tuple[str, ...], ...] = ()
    wanted: list[str] | None = None
    limited: bool = True
    """Whether the frame's ``limit`` also bounds the discovery rows."""


@dataclass(frozen=True)
class FrameQuery:
    """One loader's SQL, before the flattened columns are known."""

    select: tuple[tuple[str, str], ...]
    """(alias, expression) of the fixed columns, in frame order."""
    from_: str
    where: tuple[str, ...]
    params: tuple[Param, ...]
    keys: tuple[tuple[str, str], ...]
    """(expression, SQL type) of the keyset key, in ORDER BY order."""
    doc: str | None = None
    flats: tuple[FlatSource, ...] = ()
    empty: bool = False
    """The table is missing: the frame is empty."""
    whole_from: str | None = None
    """A FROM clause cheaper for reading every selected row in one query (no ``LIMIT``)."""
    whole_select: tuple[tuple[str, str], ...] | None = None
    """Fixed columns cheaper for reading every selected row in one query (same names)."""
    count_from: str | None = None
    """A FROM clause enough for counting the rows (without joins that only add columns)."""
    joined: tuple[tuple[str, str], ...] = ()
    """(alias, separator) of fixed columns selected as JSON arrays of strings, to join."""
    selector: Selector | None = None
    """How a filtered whole read picks its rows first (see ``page``)."""

    def _head(
        self, p: Params, after: Sequence[str] | None, lateral: str = "", from_: str | None = None
    ) -> str:
        sql = f" FROM {from_ or self.from_}{lateral}"
        conds = list(self.where)
        if after is not None:
            left = ", ".join(k for k, _ in self.keys)
            right = [p(v, t, bind="text") for v, (_, t) in zip(after, self.keys, strict=True)]
            conds.append(f"({left}) > ({', '.join(right)})")
            if len(self.keys) > 1:  # lets the planner start an index scan at the first key
                conds.append(f"{self.keys[0][0]} >= {right[0]}")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        return sql

    def _order(self) -> str:
        return " ORDER BY " + ", ".join(k for k, _ in self.keys)

    def page(
        self,
        flat: Sequence[tuple[str, FlatColumn]],
        after: Sequence[str] | None,
        limit: int | None,
        keys: bool = True,
    ) -> Page:
        """One chunk: fixed columns, flattened columns ``_f<i>``, then (``keys``) the key columns
        ``_k<i>`` as text.

        ``after`` is the key of the last row read, as the text the previous chunk gave. The
        chunk is read by COPY, whose parameters the planner cannot see: filters choosing a few
        rows out of many would get a plan for many. So a filtered whole read first runs
        ``Page.pick``, with bound parameters, which puts the keys of the chosen rows in a setting
        (unless they are too many: then the page reads by the filters, ``Page.fallback``).
        """
        p = Params(self.params)
        whole = after is None and limit is None
        exprs, lateral = flat_exprs(flat, p)
        select = self.whole_select if whole and self.whole_select is not None else self.select
        cols = [f'{expr} AS "{alias}"' for alias, expr in select]
        cols += [f"{expr} AS _f{i}" for i, expr in enumerate(exprs)]
        if keys:
            cols += [f"({expr})::text AS _k{i}" for i, (expr, _) in enumerate(self.keys)]
        head = PAGE_MARK + "SELECT " + ", ".join(cols)
        from_ = self.whole_from if whole else None
        sql = head + self._head(p, after, lateral, from_) + self._order()
        if limit is not None:
            sql += f" LIMIT {p(limit, 'bigint')}"
        chosen = self.selector
        if not (whole and self.where and chosen is not None):
            return Page(sql, p.params)
        cap = (
            f"SELECT greatest({PICK_MIN}, least({PICK_MAX}, c.reltuples / {PICK_SHARE}))::bigint AS n"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
            f" WHERE s.nspname = {p(chosen.schema, 'text')} AND c.relname = '{chosen.table}'"
        )
        pick = (
            f"WITH cap AS ({cap}), x AS (SELECT {chosen.key} AS k FROM {chosen.from_}"
            f" WHERE {' AND '.join(self.where)} LIMIT (SELECT n FROM cap) + 1)"
            " SELECT CASE WHEN (SELECT count(*) FROM x) <= (SELECT n FROM cap)"
            f" THEN set_config('{ROWS_SETTING}', (SELECT coalesce(array_agg(k)::text, '{{}}') FROM x), true)"
            " IS NOT NULL ELSE false END AS picked"
        )
        rows = f"(SELECT current_setting('{ROWS_SETTING}')::{chosen.type}[])::{chosen.type}[]"
        # the joins of the chunks (index probes per row) suit the rows picked, but the columns
        # of whole_select come from whole_from
        read_from = from_ if self.whole_select is not None else self.from_
        keyed = head + f" FROM {read_from}{lateral} WHERE {chosen.key} = ANY({rows})" + self._order()
        return Page(keyed, p.params, pick, sql)

    def count(self, limit: int | None) -> tuple[str, list[Param]]:
        """The number of rows the loader reads."""
        p = Params(self.params)
        inner = "SELECT 1" + self._head(p, None, from_=self.count_from)
        if limit is not None:
            inner += self._order() + f" LIMIT {p(limit, 'bigint')}"
        return f"SELECT count(*) AS n FROM ({inner}) AS x", p.params

    def documents(self, p: Params, rows: DocRows) -> str:
        """``SELECT doc`` of the rows a discovery statement reads."""
        assert self.doc is not None
        sql = f"SELECT {self.doc} AS doc" + self._head(p, None)
        first = min((n for n in (rows.limit, rows.sample) if n is not None), default=None)
        if first is not None:
            sql += self._order() + f" LIMIT {p(first, 'bigint')}"
        if rows.other_keys:
            found = [_other_keys(chain("s.doc", path, p), keys, p) for path, keys in rows.other_keys]
            sql = f"SELECT s.doc FROM ({sql}) AS s WHERE {' OR '.join(found)}"
        return sql

    def discovery(
        self,
        roots: Sequence[tuple[str, ...]],
        depth: int,
        rows: DocRows,
        wanted: list[str] | None = None,
        top: list[str] | None = None,
    ) -> tuple[str, list[Param]]:
        """The key paths under ``roots`` of ``doc``, ``depth`` levels deep, over ``rows``.

        One row per (``root``: index into ``roots``, keys ``k1``..``k<depth>`` (NULL past the
        path's end), JSON ``type``), with ``all_int`` (every number an int64) for numbers. The
        type ``deeper`` marks a non-empty object at ``depth``: its path is a root of the next
        round; ``object`` an empty one. A chain of
        lateral ``jsonb_each`` walks each document once (a recursive CTE is several times
        slower: it materialises every level); later rounds walk only the objects under their
        roots. ``wanted``/``top`` restrict the first level of the root document to the keys a
        column selection can start with.
        """
        p = Params(self.params)
        src = self.documents(p, rows)
        if list(roots) == [()]:
            root, start = "0", "src.doc"
        else:
            values = ", ".join(f"({i}, {chain('src.doc', r, p)})" for i, r in enumerate(roots))
            root, start = "r.i", "r.v"
        walk = (
            f" CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof({start}) = 'object'"
            f" THEN {start} END) AS e1"
        )
        if root == "r.i":
            walk = f" CROSS JOIN LATERAL (VALUES {values}) AS r(i, v)" + walk
        for i in range(2, depth + 1):
            walk += (
                f" LEFT JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(e{i - 1}.value) = 'object'"
                f" THEN e{i - 1}.value END) AS e{i} ON true"
            )
        where = ""
        if wanted is not None and top is not None and root == "0":
            where = (
                f" WHERE e1.key = ANY({p(top, 'text[]')}) OR EXISTS (SELECT 1 FROM"
                f" unnest({p(wanted, 'text[]')}) AS w(name) WHERE starts_with(e1.key, w.name || '.'))"
            )
        keys = ", ".join(f"e{i}.key AS k{i}" for i in range(1, depth + 1))
        value = "coalesce(" + ", ".join(f"e{i}.value" for i in range(depth, 0, -1)) + ")"
        groups = ", ".join(str(i) for i in range(1, depth + 3))
        sql = (
            f"{DISCOVERY_MARK}WITH src AS ({src}) SELECT {root} AS root, {keys},"
            f" CASE WHEN jsonb_typeof({value}) = 'object' AND {value} <> '{{}}'::jsonb THEN 'deeper'"
            f" ELSE jsonb_typeof({value}) END AS type,"
            f" bool_and(scale({value}::numeric) = 0 AND {value}::numeric BETWEEN {INT64_MIN} AND {INT64_MAX})"
            f" FILTER (WHERE jsonb_typeof({value}) = 'number') AS all_int"
            f" FROM src{walk}{where} GROUP BY {groups}"
        )
        return sql, p.params

    def verification(
        self, paths: Sequence[tuple[tuple[str, ...], tuple[str, ...]]], rows: DocRows
    ) -> tuple[str, list[Param]]:
        """One row: for each (path, keys), ``m<i>``, the ``TYPE_BITS`` of its values in ``rows``.

        ``NOT_INT`` marks a number that is no int64, ``OTHER_KEYS`` an object with keys outside
        ``keys``. One pass looks each path up in every document: no per-key rows, no grouping.
        """
        p = Params(self.params)
        src = self.documents(p, rows)
        masks = []
        for i, (path, keys) in enumerate(paths):
            v = chain("src.doc", path, p)
            text = chain("src.doc", path, p, text=True) if path else f"({v} #>> '{{}}')"
            number, other = TYPE_BITS["number"], TYPE_BITS["number"] | NOT_INT
            masks.append(
                f"bit_or(CASE jsonb_typeof({v}) WHEN 'string' THEN {TYPE_BITS['string']}"
                # a number's text has a '.' when it has decimals (never an exponent)
                f" WHEN 'number' THEN CASE WHEN strpos({text}, '.') > 0 THEN {other}"
                f" WHEN length({text}) < 19 THEN {number}"
                f" WHEN {v}::numeric BETWEEN {INT64_MIN} AND {INT64_MAX} THEN {number} ELSE {other} END"
                f" WHEN 'boolean' THEN {TYPE_BITS['boolean']} WHEN 'array' THEN {TYPE_BITS['array']}"
                f" WHEN 'null' THEN {TYPE_BITS['null']} WHEN 'object' THEN CASE WHEN"
                f" {_other_keys(v, keys, p, typed=False)} THEN {TYPE_BITS['object'] | OTHER_KEYS}"
                f" ELSE {TYPE_BITS['object']} END END) AS m{i}"
            )
        sql = f"{DISCOVERY_MARK}WITH src AS ({src}) SELECT {', '.join(masks)} FROM src"
        return sql, p.params


TYPE_BITS = {"string": 1, "number": 2, "boolean": 4, "array": 8, "null": 16, "object": 32}
"""The bit of each JSON type in a ``verification`` mask."""
NOT_INT, OTHER_KEYS = 64, 128
"""Mask bits: a number that is no int64; an object with keys outside the known ones."""


@dataclass(frozen=True)
class DocRows:
    """Which of a frame's selected rows a discovery statement reads."""

    limit: int | None = None
    """The frame's ``limit``: only its first rows."""
    sample: int | None = None
    """Only the first rows, to guess the key paths from."""
    other_keys: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    """Only documents holding, at one of these paths, an object with keys outside the given ones."""


def _other_keys(v: str, keys: Sequence[str], p: Params, typed: bool = True) -> str:
    """Whether ``v`` is an object with keys outside ``keys`` (``typed=False``: known an object)."""
    test = f"{v} - {p(list(keys), 'text[]')} <> '{{}}'::jsonb"
    return f"CASE WHEN jsonb_typeof({v}) = 'object' THEN {test} ELSE false END" if typed else test


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
        conds.append(f"{meta} @> {p(json.dumps(f.metadata), 'text')}::jsonb")
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
        where.append(f"{data} @> {p(json.dumps(context_data), 'text')}::jsonb")
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


FEEDBACK_OWN_KEYS: tuple[tuple[str, ...], ...] = (("rating",), ("comment",), ("feedback",))
"""Feedback keys that have columns of their own (``feedback`` is upstream's comment)."""


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
