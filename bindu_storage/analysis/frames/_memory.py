"""The frames read as records, through the Storage contract (the in-memory backend, or any Storage).

A storage that lends shared snapshots (``storage.read.RecordSnapshots``: the in-memory backend)
is read through them, without a copy per record; the loaders only read the records, and the
frame they build is the copy.

Each loader reproduces, value by value, what ``_pg.statements`` makes PostgreSQL compute: the same
filters (``TaskFilters.matches`` with ``jsonb_contains`` for ``@>``), the same JSON rules (only
JSON strings read as text, ``pg_number_text`` for numbers), the same flattening plan
(``plan_columns`` over the discovered key paths). The result is a dict of column lists that
``build_frame`` turns into the same dtypes as the PostgreSQL path.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
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
    """Every key path to a non-object value in ``docs``, with its JSON types."""
    found: dict[tuple[str, ...], tuple[set[str], list[bool]]] = {}

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
        if isinstance(doc, dict):
            walk(doc, ())
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
    texts: dict[str, str] = {}  # each distinct string redacted once per frame
    for col in cols:
        out[col.name] = _flat_column(docs, col, texts)


def _flat_column(docs: Sequence[Any], col: FlatColumn, texts: dict[str, str]) -> list[Any]:
    """``flat_value`` of every doc; a column of one top-level key (most of them) by ``dict.get``."""
    if len(col.paths) != 1 or len(col.paths[0]) != 1:
        return [flat_value(doc, col, texts) for doc in docs]
    key, kind = col.paths[0][0], col.kind
    values = []
    for doc in docs:
        value = _read(doc.get(key, _MISSING), kind, texts) if isinstance(doc, dict) else _MISSING
        values.append(None if value is _MISSING else value)
    return values


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
    return [r for r in records if f.matches(r, jsonb_contains)]


def _limit(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None else items[:limit]


async def tasks_columns(
    storage: Storage, f: TaskFilters, limit: int | None, metadata_columns: list[str] | None
) -> tuple[Columns, list[FlatColumn]]:
    """The columns of ``tasks_frame``."""
    records = _limit(await select_tasks(storage, f), limit)
    ratings: dict[UUID, list[int | None]] = defaultdict(list)
    for entry in await feedback_records(storage):
        ratings[entry["task_id"]].append(as_rating(entry["feedback_data"].get("rating")))
    out: Columns = defaultdict(list)
    for r in records:
        task = r["task"]
        given = [x for x in ratings.get(task["id"], []) if x is not None]
        out["id"].append(str(task["id"]))
        out["context_id"].append(str(task["context_id"]))
        out["state"].append(task["status"]["state"])
        out["state_timestamp"].append(datetime.fromisoformat(task["status"]["timestamp"]))
        out["created_at"].append(r["created_at"])
        out["updated_at"].append(r["updated_at"])
        out["history_len"].append(len(_array(task.get("history"))))
        out["artifact_count"].append(len(_array(task.get("artifacts"))))
        out["feedback_count"].append(len(ratings.get(task["id"], [])))
        out["mean_rating"].append(sum(given) / len(given) if given else None)
        out["owner_did"].append(r["owner_did"])
    docs = [r["task"].get("metadata") for r in records]
    flat = plan("metadata", docs, metadata_columns)
    _add_flat(out, flat, docs)
    return out, flat


async def items_columns(storage: Storage, f: TaskFilters, limit: int | None, kind: str) -> Columns:
    """The columns of ``messages_frame`` (kind ``history``) or ``artifacts_frame`` (``artifacts``)."""
    fields = ("message_id", "role") if kind == "history" else ("artifact_id", "name", "description")
    out: Columns = defaultdict(list)
    n = 0
    for r in await select_tasks(storage, f):
        task = r["task"]
        for position, item in enumerate(_array(task.get(kind))):
            if limit is not None and n >= limit:
                return out
            n += 1
            out["task_id"].append(str(task["id"]))
            out["context_id"].append(str(task["context_id"]))
            out["position"].append(position)
            for name in fields:
                out[name].append(_id(item.get(name)) if isinstance(item, dict) else None)
            out["text"].append(parts_text(item))
            out["part_kinds"].append(parts_kinds(item))
    return out


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
    """The columns of ``feedback_frame``."""
    tasks = {r["task"]["id"]: r for r in await select_tasks(storage, f)}
    entries = [
        e for e in await feedback_records(storage)
        if e["task_id"] in tasks and within(e["created_at"], since, until)
    ]
    entries = _limit(entries, limit)
    out: Columns = defaultdict(list)
    for e in entries:
        data = e["feedback_data"]
        out["id"].append(e["id"])
        out["task_id"].append(str(e["task_id"]))
        out["created_at"].append(e["created_at"])
        out["rating"].append(as_rating(data.get("rating")))
        comment = _str(data.get("comment"))
        out["comment"].append(comment if comment is not None else _str(data.get("feedback")))
        if with_task:
            task = tasks[e["task_id"]]["task"]
            out["context_id"].append(str(task["context_id"]))
            out["state"].append(task["status"]["state"])
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
