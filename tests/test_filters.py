"""JSONB containment: jsonb_contains against a real server's ``@>``, find_* on both backends, plans."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pandas as pd
import pytest
from conftest import postgres_storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindu_storage import InvalidTypeError, InvalidValueError, PostgresStorage, Storage
from bindu_storage.analysis import frames
from bindu_storage.analysis.filters import (
    contexts_query,
    feedback_query,
    find_contexts,
    find_feedback,
    find_tasks,
    jsonb_contains,
    tasks_query,
)

ServerContains = Callable[[list[tuple[Any, Any]]], list[bool]]

BATCH_SQL = (
    "SELECT a::jsonb @> b::jsonb FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(a, b, n)"
    " ORDER BY n"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture(scope="module")
def server_contains(pg_url: str) -> Iterator[ServerContains]:
    """``[a @> b for a, b in pairs]`` as a real server computes it, in one round trip."""
    runner = asyncio.Runner()
    conn = runner.run(asyncpg.connect(pg_url))

    def ask(pairs: list[tuple[Any, Any]]) -> list[bool]:
        rows = runner.run(
            conn.fetch(BATCH_SQL, [_dumps(a) for a, _ in pairs], [_dumps(b) for _, b in pairs])
        )
        return [r[0] for r in rows]

    try:
        yield ask
    finally:
        runner.run(conn.close())
        runner.close()


# --- jsonb_contains: documented cases, checked against the server too ---------------------------

CASES: list[tuple[Any, Any, bool]] = [
    # objects
    ({"a": 1, "b": 2}, {"a": 1}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False),
    ({"a": 1}, {}, True),
    ({}, {}, True),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, True),
    ({"foo": {"bar": "baz"}}, {"bar": "baz"}, False),
    ({"foo": {"bar": "baz"}}, {"foo": {}}, True),
    ({"a": [1, 2]}, {"a": 1}, False),  # no scalar-in-array below the top level
    ({"a": [1, 2]}, {"a": [2]}, True),
    ({"a": {"b": 1}}, {"a": [{"b": 1}]}, False),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"b": None}, False),
    # arrays: order, duplicates, nesting
    ([1, 2, 3], [3, 1], True),
    ([1, 2], [1, 1, 1], True),
    ([1], [1, 2], False),
    ([1, 2], [], True),
    ([], [], True),
    ([1, 2, [1, 3]], [1, 3], False),
    ([1, 2, [1, 3]], [[1, 3]], True),
    ([[1, 2], [3]], [[2, 3]], False),
    ([[1, 2], [3]], [[2], [3]], True),
    ([1], [[]], False),
    ([[1]], [[]], True),
    ([{"a": 1, "b": 2}, {"c": 3}], [{"a": 1}, {"c": 3}], True),
    ([{"a": 1}], [{"a": 1, "c": 3}], False),
    ([{"a": 1}], [[]], False),
    ([[]], [{}], False),
    # top-level scalars
    ([1, 2], 1, True),
    ([1, 2], 3, False),
    ([[1]], 1, False),
    (["a", {"a": 1}], "a", True),
    (1, [1], False),
    (1, [], False),
    (1, 1, True),
    ("a", "a", True),
    ("a", "b", False),
    (None, None, True),
    ([None], None, True),
    (True, True, True),
    ({"a": 1}, "a", False),
    ([{"a": 1}], {"a": 1}, False),
    ({"a": 1}, [{"a": 1}], False),
    ({}, [], False),
    ([], {}, False),
    # numbers and booleans
    (1, 1.0, True),
    ({"a": 1.0}, {"a": 1}, True),
    ([1.5, 2], [2.0], True),
    ({"a": 0}, {"a": -0.0}, True),
    ({"a": True}, {"a": 1}, False),
    ([1], True, False),
    ([True], [1], False),
    ({"a": False}, {"a": 0}, False),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": None}, {"a": False}, False),
    (10**16, 1e16, True),
    (2**60, float(2**60), False),  # the float's JSON text is 1.152921504606847e+18
    (1152921504606847000, float(2**60), True),
    ({"big": 10**30}, {"big": 10**30}, True),
    (0.1, 0.1, True),
    (0.1 + 0.2, 0.3, False),
    # strings
    ({"é": "😀"}, {"é": "😀"}, True),
    ({"": ""}, {"": ""}, True),
]


@pytest.mark.parametrize(("container", "contained", "expected"), CASES)
def test_documented_cases(container: Any, contained: Any, expected: bool) -> None:
    assert jsonb_contains(container, contained) is expected


def test_documented_cases_agree_with_the_server(server_contains: ServerContains) -> None:
    pairs = [(a, b) for a, b, _ in CASES]
    assert server_contains(pairs) == [expected for _, _, expected in CASES]


def test_tuples_and_uuids_count_as_arrays_and_strings() -> None:
    ident = uuid.uuid4()
    assert jsonb_contains({"ids": [str(ident), "x"]}, {"ids": (ident,)})


@pytest.mark.parametrize(
    ("container", "contained", "error", "named"),
    [
        ({"a": {1, 2}}, {}, InvalidValueError, "container['a']"),
        ({}, {"a": float("nan")}, InvalidValueError, "contained['a']"),
        ({1: "a"}, {}, InvalidValueError, "container"),
        ([], b"x", InvalidValueError, "contained"),
        ({}, {"a": "\x00"}, InvalidValueError, "contained['a']"),
        ({}, ["\ud800"], InvalidValueError, "contained[0]"),
    ],
)
def test_non_json_arguments_are_refused(
    container: Any, contained: Any, error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as info:
        jsonb_contains(container, contained)
    assert named in str(info.value)


# --- property: jsonb_contains == the server's @> on random related documents ------------------

KEYS = st.sampled_from(["a", "b", "c", "d", "é"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 1.5, -2.5, 1e16, 2.0**60, 0.1]),
    st.sampled_from([10**16, 2**60, 2**60 + 1, 1152921504606847000, 10**30]),
    st.sampled_from([2**60, 2.0**60, 1e30, 2**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "b", "1", "true"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=3),
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


def _numeric_twin(value: Any) -> Any:
    """The number as the other type (1 ↔ 1.0), equal in Python; JSON may disagree."""
    if isinstance(value, bool):
        return int(value)  # not equal in JSON: a boolean is no number
    if isinstance(value, int):
        return float(value)  # float(2**60) is written 1.152921504606847e+18: no longer equal
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@st.composite
def derived(draw: st.DrawFn, doc: Any, depth: int = 0) -> Any:
    """A document made from ``doc`` by dropping, shuffling, retyping or perturbing parts."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(DOCS)  # unrelated
    if isinstance(doc, dict):
        keys = draw(st.lists(st.sampled_from(sorted(doc)), unique=True)) if doc else []
        out = {k: draw(derived(doc[k], depth + 1)) if draw(st.booleans()) else doc[k] for k in keys}
        if choice == 1:
            out[draw(KEYS)] = draw(SCALARS)
        return out
    if isinstance(doc, list):
        if doc and depth == 0 and choice == 2:
            return draw(st.sampled_from(doc))  # the top-level scalar-in-array case
        picked = draw(st.lists(st.sampled_from(doc), max_size=5)) if doc else []
        out_list = [draw(derived(e, depth + 1)) if draw(st.booleans()) else e for e in picked]
        if choice == 1:
            out_list.append(draw(SCALARS))
        if choice == 3:
            out_list = [out_list]
        return draw(st.permutations(out_list)) if out_list else out_list
    if choice in (1, 2):
        return draw(SCALARS)
    if choice == 3 and depth == 0:
        return [doc]
    return _numeric_twin(doc)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    container = draw(DOCS)
    contained = draw(derived(container))
    return (contained, container) if draw(st.integers(0, 4)) == 0 else (container, contained)


def test_jsonb_contains_matches_the_server_on_random_documents(server_contains: ServerContains) -> None:
    outcomes: Counter[bool] = Counter()

    @settings(
        max_examples=120,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(pairs(), min_size=40, max_size=40))
    def check(batch: list[tuple[Any, Any]]) -> None:
        expected = server_contains(batch)
        for (container, contained), want in zip(batch, expected, strict=True):
            assert jsonb_contains(container, contained) is want, (container, contained)
            outcomes[want] += 1

    check()
    print(f"server comparisons: {dict(outcomes)}")
    assert sum(outcomes.values()) >= 3000
    assert min(outcomes[True], outcomes[False]) >= 600, outcomes


# --- find_* on both backends ---------------------------------------------------------------------

CTX_A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
CTX_B = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def _message(task_id: uuid.UUID, context_id: uuid.UUID, role: str, text: str) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()), "context_id": str(context_id), "task_id": str(task_id),
        "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}],
    }


# name: (context, owner, final state, metadata, agent reply or None, artifact names)
TASKS: dict[str, tuple[uuid.UUID, str | None, str, dict[str, Any], str | None, list[str]]] = {
    "t1": (CTX_A, "did:alice", "completed", {"model": "gpt", "score": 1, "tags": ["x", "y"]},
           "done", ["report"]),
    "t2": (CTX_A, "did:alice", "working", {"model": "gpt", "score": 1.0, "flag": True,
                                          "nested": {"a": 1, "b": 2}}, None, []),
    "t3": (CTX_B, None, "failed", {"model": "claude", "flag": 1, "tags": "x"}, "oops", ["log"]),
    "t4": (CTX_B, None, "completed", {"model": "claude", "nested": {"a": 2}}, "done",
           ["report", "chart"]),
}


async def _seed(storage: Storage) -> dict[str, uuid.UUID]:
    ids: dict[str, uuid.UUID] = {}
    for name, (ctx, owner, state, meta, reply, artifacts) in TASKS.items():
        tid = ids[name] = uuid.uuid4()
        await storage.submit_task(ctx, _message(tid, ctx, "user", f"hello from {name}"), owner)  # type: ignore[arg-type]
        await storage.update_task(
            tid,
            state,
            new_artifacts=[{"artifact_id": str(uuid.uuid4()), "name": a, "parts": []} for a in artifacts],  # type: ignore[misc]
            new_messages=[_message(tid, ctx, "agent", reply)] if reply else None,  # type: ignore[list-item]
            metadata=meta,
        )
    for name, rating in (("t1", 5), ("t1", 2), ("t3", 5.0), ("t4", 1)):
        data = {"rating": rating, "tags": ["ui"] if rating == 5 else []}
        await storage.store_task_feedback(ids[name], data)
    await storage.update_context(CTX_A, {"topic": "billing", "lang": ["en", "fr"]})
    await storage.update_context(CTX_B, {"topic": "support"})
    await storage.append_to_contexts(CTX_B, [_message(ids["t3"], CTX_B, "user", "help")])  # type: ignore[list-item]
    return ids


# kwargs -> expected task names, newest first
TASK_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["t4", "t3", "t2", "t1"]),
    ({"metadata": {}}, ["t4", "t3", "t2", "t1"]),
    ({"history": []}, ["t4", "t3", "t2", "t1"]),
    ({"metadata": {"model": "gpt"}}, ["t2", "t1"]),
    ({"metadata": {"score": 1}}, ["t2", "t1"]),
    ({"metadata": {"score": 1.0}}, ["t2", "t1"]),
    ({"metadata": {"flag": 1}}, ["t3"]),
    ({"metadata": {"flag": True}}, ["t2"]),
    ({"metadata": {"tags": ["x"]}}, ["t1"]),
    ({"metadata": {"tags": "x"}}, ["t3"]),
    ({"metadata": {"nested": {"a": 1}}}, ["t2"]),
    ({"metadata": {"nested": {}}}, ["t4", "t2"]),
    ({"metadata": {"model": "nobody"}}, []),
    ({"history": [{"role": "agent"}]}, ["t4", "t3", "t1"]),
    ({"history": [{"role": "agent", "parts": [{"text": "done"}]}]}, ["t4", "t1"]),
    ({"history": [{"parts": [{"text": "hello from t2"}]}]}, ["t2"]),
    ({"artifacts": [{"name": "report"}]}, ["t4", "t1"]),
    ({"artifacts": [{"name": "report"}, {"name": "chart"}]}, ["t4"]),
    ({"states": "completed"}, ["t4", "t1"]),
    ({"states": ["working", "failed"]}, ["t3", "t2"]),
    ({"states": []}, []),
    ({"states": "completed", "metadata": {"model": "gpt"}}, ["t1"]),
    ({"context_id": CTX_B}, ["t4", "t3"]),
    ({"context_id": str(CTX_A), "metadata": {"flag": True}}, ["t2"]),
    ({"owner_did": "did:alice"}, ["t2", "t1"]),
    ({"metadata": {"model": "claude"}, "limit": 1}, ["t4"]),
    ({"limit": 0}, []),
]


@pytest.mark.parametrize(("kwargs", "expected"), TASK_CASES, ids=[repr(c[0]) for c in TASK_CASES])
async def test_find_tasks(storage: Storage, kwargs: dict[str, Any], expected: list[str]) -> None:
    ids = await _seed(storage)
    names = {tid: name for name, tid in ids.items()}
    found = await find_tasks(storage, **kwargs)
    assert [names[t["id"]] for t in found] == expected
    for task in found:  # whole tasks, as load_task returns them
        assert task == await storage.load_task(task["id"])


FEEDBACK_CASES: list[tuple[dict[str, Any], list[tuple[str, float]]]] = [
    ({}, [("t4", 1), ("t3", 5), ("t1", 2), ("t1", 5)]),
    ({"feedback": {"rating": 5}}, [("t3", 5), ("t1", 5)]),
    ({"feedback": {"rating": 5.0}}, [("t3", 5), ("t1", 5)]),
    ({"feedback": {"tags": ["ui"]}}, [("t3", 5), ("t1", 5)]),
    ({"feedback": {"tags": []}}, [("t4", 1), ("t3", 5), ("t1", 2), ("t1", 5)]),
    ({"metadata": {"model": "gpt"}}, [("t1", 2), ("t1", 5)]),
    ({"feedback": {"rating": 5}, "metadata": {"model": "claude"}}, [("t3", 5)]),
    ({"feedback": {"rating": 5}, "limit": 1}, [("t3", 5)]),
]


@pytest.mark.parametrize(("kwargs", "expected"), FEEDBACK_CASES, ids=[repr(c[0]) for c in FEEDBACK_CASES])
async def test_find_feedback(
    storage: Storage, kwargs: dict[str, Any], expected: list[tuple[str, float]]
) -> None:
    ids = await _seed(storage)
    names = {tid: name for name, tid in ids.items()}
    found = await find_feedback(storage, **kwargs)
    assert [(names[f["task_id"]], f["feedback_data"]["rating"]) for f in found] == expected
    assert [f["id"] for f in found] == sorted((f["id"] for f in found), reverse=True)
    assert set(found[0]) == {"id", "task_id", "feedback_data", "created_at"} if found else True


CONTEXT_CASES: list[tuple[dict[str, Any], list[uuid.UUID]]] = [
    ({}, [CTX_B, CTX_A]),
    ({"context_data": {"topic": "billing"}}, [CTX_A]),
    ({"context_data": {"lang": ["fr"]}}, [CTX_A]),
    ({"context_data": {"lang": "fr"}}, []),
    ({"message_history": [{"role": "user", "parts": [{"text": "help"}]}]}, [CTX_B]),
    ({"message_history": []}, [CTX_B, CTX_A]),
    ({"owner_did": "did:alice"}, [CTX_A]),
    ({"limit": 1}, [CTX_B]),
]


@pytest.mark.parametrize(("kwargs", "expected"), CONTEXT_CASES, ids=[repr(c[0]) for c in CONTEXT_CASES])
async def test_find_contexts(storage: Storage, kwargs: dict[str, Any], expected: list[uuid.UUID]) -> None:
    await _seed(storage)
    found = await find_contexts(storage, **kwargs)
    assert [c["context_id"] for c in found] == expected
    records = {c["context_id"]: c for c in await storage.context_records()}
    assert all(c == records[c["context_id"]] for c in found)


async def test_as_frame_gives_the_loaders_rows_of_the_found_records(storage: Storage) -> None:
    ids = await _seed(storage)
    tasks = await find_tasks(storage, metadata={"model": "gpt"}, as_frame=True)
    same = await frames.tasks_frame(storage, metadata={"model": "gpt"})  # oldest first
    assert list(tasks["id"]) == [str(ids["t2"]), str(ids["t1"])]  # newest first, like the list
    pd.testing.assert_frame_equal(tasks, same.iloc[::-1].reset_index(drop=True))
    assert tasks["metadata.flag"].dtype == "boolean"  # t3's flag is 1: not among the found rows

    by_history = await find_tasks(storage, history=[{"role": "agent", "parts": [{"text": "done"}]}],
                                  limit=1, as_frame=True)
    assert list(by_history["id"]) == [str(ids["t4"])]
    assert list(by_history["artifact_count"]) == [2]

    feedback = await find_feedback(storage, feedback={"rating": 5}, as_frame=True)
    assert list(feedback["task_id"]) == [str(ids["t3"]), str(ids["t1"])]
    assert list(feedback["rating"]) == [5, 5]
    assert str(feedback["rating"].dtype) == "Int64"

    contexts = await find_contexts(storage, context_data={"topic": "support"}, as_frame=True)
    assert list(contexts["context_id"]) == [str(CTX_B)]
    assert list(contexts["message_history_len"]) == [1]
    assert "context_data.lang" not in contexts  # only CTX_A has it

    for empty, loader in (
        (await find_tasks(storage, metadata={"model": "nobody"}, as_frame=True), frames.tasks_frame),
        (await find_feedback(storage, feedback={"rating": 0}, as_frame=True), frames.feedback_frame),
        (await find_contexts(storage, owner_did="did:nobody", as_frame=True), frames.contexts_frame),
    ):
        assert empty.empty
        pd.testing.assert_frame_equal(empty, await loader(storage, limit=0))


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (lambda s: find_tasks(s, metadata=[1]), InvalidTypeError, "metadata"),
        (lambda s: find_tasks(s, metadata={"x": {1, 2}}), InvalidValueError, "metadata['x']"),
        (lambda s: find_tasks(s, history={"role": "agent"}), InvalidTypeError, "history"),
        (lambda s: find_tasks(s, artifacts="report"), InvalidTypeError, "artifacts"),
        (lambda s: find_tasks(s, states="done"), InvalidValueError, "states"),
        (lambda s: find_tasks(s, states=5), InvalidTypeError, "states"),
        (lambda s: find_tasks(s, context_id="not-a-uuid"), InvalidValueError, "context_id"),
        (lambda s: find_tasks(s, owner_did=3), InvalidTypeError, "owner_did"),
        (lambda s: find_tasks(s, limit=-1), InvalidValueError, "limit"),
        (lambda s: find_tasks(s, as_frame="yes"), InvalidTypeError, "as_frame"),
        (lambda s: find_feedback(s, feedback={"r": float("inf")}), InvalidValueError, "feedback['r']"),
        (lambda s: find_feedback(s, metadata=["x"]), InvalidTypeError, "metadata"),
        (lambda s: find_contexts(s, context_data={"k": b"x"}), InvalidValueError, "context_data['k']"),
        (lambda s: find_contexts(s, message_history={"a": 1}), InvalidTypeError, "message_history"),
        (lambda s: find_contexts(s, limit=True), InvalidValueError, "limit"),
    ],
)
async def test_bad_filters_raise_typed_errors_naming_the_argument(
    storage: Storage, call: Callable[[Storage], Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as info:
        await call(storage)
    assert named in str(info.value)


# --- PostgreSQL: the plans use the GIN indexes --------------------------------------------------

def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _plan(
    storage: PostgresStorage, sql: str, args: list[Any], *, no_seqscan: bool
) -> list[dict[str, Any]]:
    assert storage.pool is not None
    async with storage.pool.acquire() as conn, conn.transaction():
        if no_seqscan:  # only bitmap scans left: a full scan of the primary key with the filter
            # applied to each row (which the planner may pick on a small table) is not an index use
            await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return list(_nodes(explained[0]["Plan"]))


async def test_find_tasks_plan_uses_the_metadata_gin_index(pg_storage: PostgresStorage) -> None:
    s = pg_storage.schema
    async with pg_storage.pool.acquire() as conn:  # type: ignore[union-attr]
        await conn.execute(
            f'INSERT INTO "{s}".contexts (id) SELECT md5(i::text)::uuid FROM generate_series(1, 50) i'
        )
        await conn.execute(
            f'INSERT INTO "{s}".tasks (id, context_id, state, state_timestamp, metadata)'
            " SELECT gen_random_uuid(), md5((i % 50 + 1)::text)::uuid, 'completed', now(),"
            "   jsonb_build_object('n', i, 'model', CASE WHEN i % 2 = 0 THEN 'gpt' ELSE 'claude' END)"
            " FROM generate_series(1, 5000) i"
        )
        await conn.execute(f'ANALYZE "{s}".tasks')
    sql, args = tasks_query(s, metadata={"n": 4242}, limit=10)
    nodes = await _plan(pg_storage, sql, args, no_seqscan=False)
    scans = [n for n in nodes if n["Node Type"] == "Bitmap Index Scan"]
    assert [n["Index Name"] for n in scans] == ["idx_tasks_metadata_gin"], nodes
    found = await find_tasks(pg_storage, metadata={"n": 4242}, limit=10)
    assert [t["metadata"] for t in found] == [{"n": 4242, "model": "gpt"}]


@pytest.mark.parametrize(
    ("build", "index"),
    [
        (lambda s: tasks_query(s, history=[{"role": "agent"}]), "idx_tasks_history_gin"),
        (lambda s: tasks_query(s, artifacts=[{"name": "x"}], states="completed"), "idx_tasks_artifacts_gin"),
        (lambda s: feedback_query(s, feedback={"rating": 5}), "idx_task_feedback_data_gin"),
        (lambda s: feedback_query(s, metadata={"model": "gpt"}), "idx_tasks_metadata_gin"),
        (lambda s: contexts_query(s, context_data={"topic": "x"}), "idx_contexts_context_data_gin"),
        (lambda s: contexts_query(s, message_history=[{"role": "user"}]), "idx_contexts_message_history_gin"),
    ],
)
async def test_every_filter_is_gin_indexable(
    pg_storage: PostgresStorage, build: Callable[[str], tuple[str, list[Any]]], index: str
) -> None:
    sql, args = build(pg_storage.schema)
    nodes = await _plan(pg_storage, sql, args, no_seqscan=True)
    assert index in [n.get("Index Name") for n in nodes if n["Node Type"] == "Bitmap Index Scan"], nodes


def test_queries_bind_values_and_qualify_the_schema() -> None:
    sql, args = tasks_query("did_agent", metadata={"q": "'; DROP TABLE tasks; --"}, states="working", limit=3)
    assert sql == (
        'SELECT t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata'
        ' FROM "did_agent".tasks t WHERE t.metadata @> $1::jsonb AND t.state = ANY($2::text[])'
        " ORDER BY t.seq DESC LIMIT $3"
    )
    assert args == [{"q": "'; DROP TABLE tasks; --"}, ["working"], 3]
    with pytest.raises(InvalidValueError, match="schema"):
        tasks_query('x"; --')


async def test_filters_use_the_gin_index_when_selective_and_are_never_planned_generic(
    pg_url: str, pg_storage: PostgresStorage
) -> None:
    """~1% of the tasks match the selective filter, ~60% the broad one: EXPLAIN of the finder's
    statement reads the metadata GIN index for the first and not for the second. The generic
    plan PostgreSQL may switch to after five runs of a prepared statement cannot see the
    fragment and reads the index for both (then sorts most of the table), so the finders run
    with custom plans only, also on their seventh run."""
    s = pg_storage.schema
    async with pg_storage.pool.acquire() as conn:  # type: ignore[union-attr]
        await conn.execute(
            f'INSERT INTO "{s}".contexts (id) SELECT md5(i::text)::uuid FROM generate_series(1, 50) i'
        )
        await conn.execute(
            f'INSERT INTO "{s}".tasks (id, context_id, state, state_timestamp, history, metadata)'
            " SELECT gen_random_uuid(), md5((i % 50 + 1)::text)::uuid, 'completed', now(),"
            "   jsonb_build_array(jsonb_build_object('kind', 'message', 'text', repeat('x', 600))),"
            "   jsonb_build_object('batch', i % 7, 'kind', CASE WHEN i % 100 = 0 THEN 'rare'"
            "     WHEN i % 5 < 3 THEN 'common' ELSE 'other' END)"
            " FROM generate_series(1, 20000) i"
        )
        await conn.execute(f'ANALYZE "{s}".tasks')
    selective, broad = {"kind": "rare"}, {"kind": "common"}

    def gin(nodes: list[dict[str, Any]]) -> bool:
        return "idx_tasks_metadata_gin" in [n.get("Index Name") for n in nodes]

    sql, _ = tasks_query(s, metadata=selective)
    assert gin(await _plan(pg_storage, sql, [selective], no_seqscan=False))
    assert not gin(await _plan(pg_storage, sql, [broad], no_seqscan=False))
    async with pg_storage.pool.acquire() as conn, conn.transaction():  # type: ignore[union-attr]
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE find_common AS {sql}")
        fragment = json.dumps(broad).replace("'", "''")
        generic = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE find_common('{fragment}')")
        await conn.execute("DEALLOCATE find_common")
    assert gin(list(_nodes(generic[0]["Plan"])))  # the broad filter too: the reason for custom plans

    single = postgres_storage(pg_url, schema=s, pool_min=1, pool_max=1)
    await single.connect()
    try:
        for _ in range(7):
            rare = await find_tasks(single, metadata=selective)
            common = await find_tasks(single, metadata=broad)
        assert single.pool is not None
        async with single.pool.acquire() as conn:
            plans = await conn.fetchrow(
                "SELECT sum(generic_plans) AS generic, sum(custom_plans) AS custom"
                " FROM pg_prepared_statements WHERE statement = $1", sql
            )
    finally:
        await single.close()
    assert plans["generic"] == 0 and plans["custom"] >= 14, dict(plans)
    assert len(rare) == 200 and all(t["metadata"]["kind"] == "rare" for t in rare)
    assert len(common) == 11800
