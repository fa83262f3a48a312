"""The frames read as records, through the Storage contract (the in-memory backend, or any Storage).

A storage that lends shared snapshots (``storage.read.RecordSnapshots``: the in-memory backend)
is read through them, without a copy per record; the loaders only read the records, and the
frame they build is the copy.

Each loader reproduces, value by value, what ``_pg.statements`` makes PostgreSQL compute: the same
filters (``TaskFilters.matches`` with ``jsonb_contains`` for ``@>``), the same JSON rules (only
JSON strings read as text, ``pg_number_text`` for numbers), the same flattening plan
(``plan_columns`` over the discovered key paths). The result is a dict of column lists that
``build_frame`` turns into the same dtypes as the PostgreSQL path.

Each column is built by one pass over the records (a comprehension per column, and per kind for
the flattened ones) rather than a loop appending to every column per row: about twice as fast,
and what keeps the in-memory frames level with PostgreSQL's. That takes more lines: the module
is over 400 lines, one loader per frame plus the JSON helpers they share, which split apart would
only move the helpers away from their one reader.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

from bindu_storage.analysis.frames._columns import (
    FEEDBACK_OWN_KEYS,
    INT64_MAX,
    INT64_MIN,
    FlatColumn,
    PathInfo,
    as_int64,
    as_rating,
    json_type,
    plan_columns,
)
from bindu_storage.analysis.frames._options import TaskFilters, within
from bindu_storage.analysis.jsonb import jsonb_contains
from bindu_storage.analysis.redact import REDACTED, is_secret_key, redact, redact_text
from bindu_storage.storage.base import Storage
from bindu_storage.storage.read import record_snapshots
from bindu_storage.types import FeedbackRecord, TaskRecord

Columns = dict[str, list[Any]]
"""Column name → values, the input of ``build_frame``."""

_MISSING = object()
_NO_FILTERS = TaskFilters()
_RATING_LIMIT = 10**18  # as_rating reads integers of up to 18 digits


# --- JSON helpers ---------------------------------------------------------------------------------
_TYPE_NAMES: dict[type, str] = {  # json_type of the exact JSON-native types, by one look-up
    type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
    list: "array", dict: "object",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value)) or json_type(value)


def _int64(value: Any) -> int | None:
    """``as_int64``, with the common case (a Python int in range) first."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    return as_int64(value)


def discover(docs: Iterable[Any]) -> list[PathInfo]:
    """Every key path to a non-object value in ``docs``, with its JSON types.

    A document whose keys and value types (its signature) were seen already adds no path nor
    type: of it only the numbers still to be checked against the 64-bit range are read.
    Documents holding objects (whose own keys may differ) are always walked."""
    found: dict[tuple[str, ...], tuple[set[str], list[bool]]] = {}
    known: dict[tuple[Any, ...], list[tuple[str, list[bool]]] | None] = {}

    def walk(obj: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in obj.items():
            path = (*prefix, key)
            if isinstance(value, dict):
                walk(value, path)
                continue
            entry = found.get(path)
            if entry is None:
                entry = found[path] = (set(), [True])
            kind = _type_name(value)
            entry[0].add(kind)
            if kind == "number" and entry[1][0] and _int64(value) is None:
                entry[1][0] = False

    for doc in docs:
        if not isinstance(doc, dict):
            continue
        kinds = tuple(map(type, doc.values()))
        signature = (*doc, *kinds)  # the keys, then their value types
        if signature not in known:
            walk(doc, ())
            plain = all(kind in _TYPE_NAMES and kind is not dict for kind in kinds)
            known[signature] = [
                (key, found[(key,)][1]) for key, kind in zip(doc, kinds, strict=True)
                if kind is int or kind is float
            ] if plain else None
            continue
        numbers = known[signature]
        if numbers is None:
            walk(doc, ())
            continue
        for key, all_int in numbers:
            if all_int[0] and _int64(doc[key]) is None:
                all_int[0] = False
    return [PathInfo(path, frozenset(t), a[0]) for path, (t, a) in found.items()]


def get_path(doc: Any, path: tuple[str, ...]) -> Any:
    """PostgreSQL's ``doc -> k1 -> k2 ...``: the value at ``path`` through objects only."""
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _read(value: Any, kind: str, texts: dict[str, str] | None = None) -> Any:
    """One JSON value's column value, or _MISSING if it does not fit (``texts``: redactions seen)."""
    if value is _MISSING or value is None:
        return _MISSING
    if kind == "secret":
        return REDACTED
    if kind == "str":
        if not isinstance(value, str):
            return _MISSING
        if texts is None:
            return redact_text(value)
        text = texts.get(value)
        if text is None:
            text = texts[value] = redact_text(value)
        return text
    if kind == "bool":
        return value if isinstance(value, bool) else _MISSING
    if kind == "Int64":
        number = _int64(value)
        return _MISSING if number is None else number
    if kind == "float":
        return float(value) if _type_name(value) == "number" else _MISSING
    return _MISSING if isinstance(value, dict) else redact(value)


def flat_value(doc: Any, col: FlatColumn, texts: dict[str, str] | None = None) -> Any:
    """One row's value of a flattened column (the first path that fits wins), or None."""
    for path in col.paths:
        value = _read(get_path(doc, path), col.kind, texts)
        if value is not _MISSING:
            return value
    return None


def plan(prefix: str, docs: Sequence[Any], wanted: list[str] | None, exclude: Any = ()) -> list[FlatColumn]:
    """The flattened columns of ``docs`` (as the PostgreSQL path plans them from discovery)."""
    return plan_columns(prefix, discover(docs), secret=is_secret_key, exclude=exclude, wanted=wanted)


def _add_flat(out: Columns, cols: list[FlatColumn], docs: Sequence[Any]) -> None:
    """The flattened columns: those of one top-level key (most of them) read together, a row of
    ``dict.get`` per document turned into columns by ``zip``; the others path by path."""
    texts: dict[str, str] = {}  # each distinct string redacted once per frame
    simple = [col for col in cols if len(col.paths) == 1 and len(col.paths[0]) == 1]
    if simple:
        keys = [col.paths[0][0] for col in simple]
        nothing = (None,) * len(keys)
        rows = [tuple(map(doc.get, keys)) if isinstance(doc, dict) else nothing for doc in docs]
        columns = zip(*rows, strict=True) if rows else [() for _ in keys]
        for col, values in zip(simple, columns, strict=True):
            out[col.name] = _convert(values, col.kind, texts)
    for col in cols:
        if col not in simple:
            out[col.name] = [flat_value(doc, col, texts) for doc in docs]


def _convert(values: Sequence[Any], kind: str, texts: dict[str, str]) -> list[Any]:
    """``_read`` of every value of a column (missing ones given as None), one comprehension per
    kind."""
    if kind == "secret":
        return [None if value is None else REDACTED for value in values]
    if kind == "str":
        for text in {value for value in values if isinstance(value, str)} - texts.keys():
            texts[text] = redact_text(text)
        return [texts[value] if isinstance(value, str) else None for value in values]
    if kind == "bool":
        return [value if isinstance(value, bool) else None for value in values]
    if kind == "Int64":
        return [
            value if type(value) is int and INT64_MIN <= value <= INT64_MAX
            else None if value is None else _int64(value)
            for value in values
        ]
    if kind == "float":
        return [
            float(value) if type(value) is float or type(value) is int
            else None if value is None or _type_name(value) != "number" else float(value)
            for value in values
        ]
    return [None if value is None or isinstance(value, dict) else redact(value) for value in values]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parts(item: Any) -> list[Any]:
    parts = item.get("parts") if isinstance(item, dict) else None
    return parts if isinstance(parts, list) else []


def parts_text(item: Any) -> str | None:
    """The text parts of a message or artifact joined with newlines, or None."""
    texts = [
        p["text"] for p in _parts(item)
        if isinstance(p, dict) and p.get("kind") == "text" and isinstance(p.get("text"), str)
    ]
    return "\n".join(texts) if texts else None


def parts_kinds(item: Any) -> str | None:
    """The part kinds of a message or artifact joined with commas, or None."""
    kinds = [p["kind"] for p in _parts(item) if isinstance(p, dict) and isinstance(p.get("kind"), str)]
    return ",".join(kinds) if kinds else None


def _id(value: Any) -> str | None:
    return str(value) if isinstance(value, UUID) else _str(value)


def _array(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- loaders --------------------------------------------------------------------------------------
async def task_records(storage: Storage, since: datetime | None = None) -> list[TaskRecord]:
    """The task records, oldest first: the storage's shared snapshot when it lends one (read
    only: the frame built from it is the copy), else its copied records."""
    snapshots = record_snapshots(storage)
    if snapshots is not None:
        return snapshots.task_snapshot(since=since)
    return await storage.task_records(since=since)


async def feedback_records(storage: Storage) -> list[FeedbackRecord]:
    """The feedback records, oldest first (a shared, read-only snapshot when lent)."""
    snapshots = record_snapshots(storage)
    return snapshots.feedback_snapshot() if snapshots is not None else await storage.feedback_records()


async def select_tasks(storage: Storage, f: TaskFilters) -> list[TaskRecord]:
    """The task records passing the filters, oldest first."""
    records = await task_records(storage, since=f.updated_after)
    if f == _NO_FILTERS:
        return records
    return [r for r in records if f.matches(r, jsonb_contains)]


def _limit(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None else items[:limit]


async def tasks_columns(
    storage: Storage, f: TaskFilters, limit: int | None, metadata_columns: list[str] | None
) -> tuple[Columns, list[FlatColumn]]:
    """The columns of ``tasks_frame``, each built by one pass over the records."""
    records = _limit(await select_tasks(storage, f), limit)
    ratings: dict[UUID, list[int | None]] = defaultdict(list)
    for entry in await feedback_records(storage):
        rating = entry["feedback_data"].get("rating")
        ratings[entry["task_id"]].append(
            rating if type(rating) is int and -_RATING_LIMIT < rating < _RATING_LIMIT else as_rating(rating)
        )
    tasks = [r["task"] for r in records]
    ids = [task["id"] for task in tasks]
    contexts = [task["context_id"] for task in tasks]
    context_texts = {cid: str(cid) for cid in set(contexts)}
    given = [ratings.get(tid) for tid in ids]
    out: Columns = {
        "id": [str(tid) for tid in ids],
        "context_id": list(map(context_texts.__getitem__, contexts)),
        "state": [task["status"]["state"] for task in tasks],
        "state_timestamp": [datetime.fromisoformat(task["status"]["timestamp"]) for task in tasks],
        "created_at": list(map(itemgetter("created_at"), records)),
        "updated_at": list(map(itemgetter("updated_at"), records)),
        "history_len": [len(h) if isinstance(h := task.get("history"), list) else 0 for task in tasks],
        "artifact_count": [len(a) if isinstance(a := task.get("artifacts"), list) else 0 for task in tasks],
        "feedback_count": [len(x) if x else 0 for x in given],
        "mean_rating": [_mean(x) if x else None for x in given],
        "owner_did": list(map(itemgetter("owner_did"), records)),
    } if records else {}
    docs = [task.get("metadata") for task in tasks]
    flat = plan("metadata", docs, metadata_columns)
    _add_flat(out, flat, docs)
    return out, flat


def _mean(ratings: list[int | None]) -> float | None:
    given = [x for x in ratings if x is not None]
    return sum(given) / len(given) if given else None


async def items_columns(storage: Storage, f: TaskFilters, limit: int | None, kind: str) -> Columns:
    """The columns of ``messages_frame`` (kind ``history``) or ``artifacts_frame`` (``artifacts``),
    each built by one pass over the items."""
    fields = ("message_id", "role") if kind == "history" else ("artifact_id", "name", "description")
    tasks = [r["task"] for r in await select_tasks(storage, f)]
    arrays = [a if isinstance(a := task.get(kind), list) else [] for task in tasks]
    items = list(itertools.chain.from_iterable(arrays))
    if limit is not None:
        items = items[:limit]
    if not items:
        return {}
    counts, owners = [], []
    left = len(items)
    for task, array in zip(tasks, arrays, strict=True):
        if array and left:
            counts.append(min(len(array), left))
            owners.append(task)
            left -= counts[-1]
    out: Columns = {
        "task_id": _repeat([str(task["id"]) for task in owners], counts),
        "context_id": _repeat([str(task["context_id"]) for task in owners], counts),
        "position": list(itertools.chain.from_iterable(map(range, counts))),
    }
    for name in fields:
        out[name] = [
            (v if isinstance(v := item.get(name), str) else _id(v)) if isinstance(item, dict) else None
            for item in items
        ]
    out["text"], out["part_kinds"] = _texts_and_kinds(items)
    return out


def _texts_and_kinds(items: list[Any]) -> tuple[list[str | None], list[str | None]]:
    """``parts_text`` and ``parts_kinds`` of every item, in one pass; a single part (the usual
    message) read directly."""
    texts: list[str | None] = []
    kinds: list[str | None] = []
    for item in items:
        parts = _parts(item)
        if len(parts) == 1 and isinstance(part := parts[0], dict):
            kind = part.get("kind")
            if not isinstance(kind, str):
                texts.append(None)
                kinds.append(None)
                continue
            text = part.get("text") if kind == "text" else None
            texts.append(text if isinstance(text, str) else None)
            kinds.append(kind)
        else:
            texts.append(parts_text(item))
            kinds.append(parts_kinds(item))
    return texts, kinds


def _repeat(values: list[Any], counts: list[int]) -> list[Any]:
    """Each value ``count`` times, in order."""
    return list(itertools.chain.from_iterable(map(itertools.repeat, values, counts)))


async def contexts_columns(
    storage: Storage,
    context_ids: Sequence[UUID] | None,
    windows: dict[str, tuple[datetime | None, datetime | None]],
    context_data: dict[str, Any] | None,
    owner_did: str | None,
    limit: int | None,
    data_columns: list[str] | None,
) -> tuple[Columns, list[FlatColumn]]:
    """The columns of ``contexts_frame``."""
    task_counts: dict[UUID, int] = defaultdict(int)
    for r in await task_records(storage):
        task_counts[r["task"]["context_id"]] += 1
    chosen = []
    for c in await storage.context_records():
        if context_ids is not None and c["context_id"] not in context_ids:
            continue
        if not all(within(c[col], *bounds) for col, bounds in windows.items()):  # type: ignore[literal-required]
            continue
        if context_data is not None and not jsonb_contains(c["context_data"], context_data):
            continue
        if owner_did is not None and c["owner_did"] != owner_did:
            continue
        chosen.append(c)
    chosen = _limit(chosen, limit)
    out: Columns = defaultdict(list)
    for c in chosen:
        out["context_id"].append(str(c["context_id"]))
        out["task_count"].append(task_counts.get(c["context_id"], 0))
        out["message_history_len"].append(len(_array(c["message_history"])))
        out["created_at"].append(c["created_at"])
        out["updated_at"].append(c["updated_at"])
        out["owner_did"].append(c["owner_did"])
    docs = [c["context_data"] for c in chosen]
    flat = plan("context_data", docs, data_columns)
    _add_flat(out, flat, docs)
    return out, flat


async def feedback_columns(
    storage: Storage,
    f: TaskFilters,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    with_task: bool,
    task_metadata: list[str] | None,
    feedback_keys: list[str] | None,
) -> tuple[Columns, list[FlatColumn]]:
    """The columns of ``feedback_frame``.

    Without task filters (and without task metadata columns, planned from every task), a
    storage lending snapshots lends only the tasks that have feedback: none without
    ``with_task``."""
    snapshots = record_snapshots(storage)
    if snapshots is not None and f == _NO_FILTERS and (not with_task or task_metadata is None):
        entries = [e for e in snapshots.feedback_snapshot() if within(e["created_at"], since, until)]
        entries = _limit(entries, limit)
        tasks = {
            r["task"]["id"]: r
            for r in snapshots.task_snapshot(task_ids=dict.fromkeys(e["task_id"] for e in entries))
        } if with_task else {}
    else:
        tasks = {r["task"]["id"]: r for r in await select_tasks(storage, f)}
        entries = [
            e for e in await feedback_records(storage)
            if e["task_id"] in tasks and within(e["created_at"], since, until)
        ]
        entries = _limit(entries, limit)
    data = [e["feedback_data"] for e in entries]
    out: Columns = {
        "id": list(map(itemgetter("id"), entries)),
        "task_id": [str(e["task_id"]) for e in entries],
        "created_at": list(map(itemgetter("created_at"), entries)),
        "rating": [
            r if type(r := d.get("rating")) is int and -_RATING_LIMIT < r < _RATING_LIMIT else as_rating(r)
            for d in data
        ],
        "comment": [c if isinstance(c := d.get("comment"), str) else _str(d.get("feedback")) for d in data],
    }
    if with_task:
        joined = [tasks[e["task_id"]]["task"] for e in entries]
        out["context_id"] = [str(task["context_id"]) for task in joined]
        out["state"] = [task["status"]["state"] for task in joined]
    docs = [e["feedback_data"] for e in entries]
    flat = plan("feedback", docs, feedback_keys, FEEDBACK_OWN_KEYS)
    _add_flat(out, flat, docs)
    if with_task and task_metadata is not None:
        meta = plan("metadata", [r["task"].get("metadata") for r in tasks.values()], task_metadata)
        _add_flat(out, meta, [tasks[e["task_id"]]["task"].get("metadata") for e in entries])
        flat += meta
    return out, flat


async def events_columns(
    storage: Storage, f: TaskFilters, since: datetime | None, until: datetime | None, limit: int | None
) -> Columns:
    """The columns of ``events_frame``; durations come from each task's neighbouring events."""
    tasks = {r["task"]["id"] for r in await select_tasks(storage, f)}
    events = await storage.task_events()
    by_task: dict[UUID, list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        by_task[e["task_id"]].append(i)
    prev: dict[int, datetime] = {}
    nxt: dict[int, datetime] = {}
    for indexes in by_task.values():
        for a, b in itertools.pairwise(indexes):
            prev[b] = events[a]["at"]
            nxt[a] = events[b]["at"]
    out: Columns = defaultdict(list)
    n = 0
    for i, e in enumerate(events):
        if e["task_id"] not in tasks or not within(e["at"], since, until):
            continue
        if limit is not None and n >= limit:
            break
        n += 1
        out["id"].append(e["id"])
        out["task_id"].append(str(e["task_id"]))
        out["from_state"].append(e["from_state"])
        out["to_state"].append(e["to_state"])
        out["at"].append(e["at"])
        out["duration_s"].append((e["at"] - prev[i]).total_seconds() if i in prev else None)
        out["in_state_s"].append((nxt[i] - e["at"]).total_seconds() if i in nxt else None)
    return out


async def webhooks_columns(storage: Storage, f: TaskFilters, limit: int | None) -> Columns:
    """The columns of ``webhooks_frame``: every push config of the selected tasks, in the order
    set; token and credentials redacted, from the stored form (an encrypted secret is never
    decrypted: it reads as ``***`` too)."""
    tasks = {r["task"]["id"] for r in await select_tasks(storage, f)}
    out: Columns = defaultdict(list)
    n = 0
    for record in await storage.push_config_records():
        if record["task_id"] not in tasks:
            continue
        if limit is not None and n >= limit:
            break
        n += 1
        config = record["config"]
        given = config.get("authentication")
        auth: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        schemes = [s for s in _array(auth.get("schemes")) if isinstance(s, str)]
        out["task_id"].append(str(record["task_id"]))
        out["config_id"].append(record["config_id"])
        out["url"].append(_str(config.get("url")))
        out["token"].append(REDACTED if config.get("token") is not None else None)
        out["schemes"].append(",".join(schemes) if schemes else None)
        out["credentials"].append(REDACTED if auth.get("credentials") is not None else None)
    return out
