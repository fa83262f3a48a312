"""How a frame's SQL is paged, discovered and counted: ``FrameQuery`` and the statements it writes.

Every frame is a ``FrameQuery`` (``statements`` builds one per frame): a FROM clause (the
frame's table joined to its task), the WHERE conditions of its filters (parameters read from
settings, see ``params``), the
fixed select list, and the keyset key (``tasks.seq`` on our schema; ``created_at, id`` on
upstream's, which has no ``seq``). From it come the statements:

* ``discovery`` walks a JSONB column of chosen rows with a chain of lateral ``jsonb_each`` and
  returns each key path with the JSON types of its values; ``verification`` looks known paths
  up in every document in one aggregate pass (``read.discover`` combines the two), so
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

from collections.abc import Sequence
from dataclasses import dataclass

from bindu_storage.analysis.frames._columns import INT64_MAX, INT64_MIN, FlatColumn
from bindu_storage.analysis.frames._pg.params import Param, Params

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
