"""The storage contract, proved on both backends.

Every test here takes the parametrised ``storage`` fixture, so it runs once on
``InMemoryStorage`` and once on ``PostgresStorage`` (a real server), with the same assertions.
The rules come from ``bindu_storage/storage/base.py`` and issue 2, section 3.
"""

from __future__ import annotations

import asyncio
import copy
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from conftest import POOLED_BACKENDS, open_backend, postgres_storage

from bindu_storage import (
    InMemoryStorage,
    InvalidTypeError,
    InvalidValueError,
    OwnershipError,
    PostgresStorage,
    Storage,
    StorageClosedError,
    StorageError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.storage.validate import MAX_DEPTH
from bindu_storage.types import TASK_STATES, TERMINAL_STATES

NON_TERMINAL_STATES = sorted(TASK_STATES - TERMINAL_STATES)


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


# --- helpers ---------------------------------------------------------------------------------


def new_id() -> UUID:
    """A fresh random UUID."""
    return uuid.uuid4()


def message(
    task_id: UUID | str,
    context_id: UUID | str,
    text: str = "hello",
    *,
    message_id: str | None = None,
    role: str = "user",
) -> dict[str, Any]:
    """An A2A message of one text part."""
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "task_id": str(task_id),
        "context_id": str(context_id),
        "kind": "message",
        "role": role,
        "parts": [{"kind": "text", "text": text}],
    }


def artifact(name: str = "result", *, artifact_id: str | None = None) -> dict[str, Any]:
    """An A2A artifact of one data part."""
    return {
        "artifact_id": artifact_id or str(uuid.uuid4()),
        "name": name,
        "parts": [{"kind": "data", "data": {"name": name}}],
    }


async def new_task(
    storage: Storage,
    *,
    context_id: UUID | None = None,
    caller_did: str | None = None,
    text: str = "hello",
) -> dict[str, Any]:
    """Submit a new task (in a new context unless one is given) and return it."""
    cid = context_id or new_id()
    tid = new_id()
    return await storage.submit_task(cid, message(tid, cid, text), caller_did=caller_did)  # type: ignore[return-value]


async def task_in_state(storage: Storage, state: str, **kwargs: Any) -> dict[str, Any]:
    """A new task moved to ``state``."""
    task = await new_task(storage, **kwargs)
    if state != "submitted":
        task = await storage.update_task(task["id"], state)  # type: ignore[assignment]
    return task


async def snapshot(storage: Storage) -> dict[str, Any]:
    """Everything the storage holds, through its public read API."""
    return {
        "tasks": await storage.task_records(),
        "contexts": await storage.context_records(),
        "feedback": await storage.feedback_records(),
        "events": await storage.task_events(),
        "webhooks": await storage.load_all_webhook_configs(),
        "listed_tasks": await storage.list_tasks(),
        "listed_contexts": await storage.list_contexts(),
    }


def parse_timestamp(value: str) -> datetime:
    """Parse ``status.timestamp`` and check it is ISO-8601 in UTC."""
    assert isinstance(value, str)
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return parsed


def ids(tasks: list[dict[str, Any]]) -> list[UUID]:
    """The ids of ``tasks`` in order."""
    return [t["id"] for t in tasks]


# --- ids -------------------------------------------------------------------------------------


async def test_ids_accept_uuid_objects_and_canonical_strings(storage: Storage) -> None:
    cid, tid = new_id(), new_id()
    created = await storage.submit_task(str(cid), message(tid, cid))
    assert isinstance(created["id"], UUID) and created["id"] == tid
    assert isinstance(created["context_id"], UUID) and created["context_id"] == cid
    by_object = await storage.load_task(tid)
    by_string = await storage.load_task(str(tid))
    assert by_object == by_string
    assert by_object is not None and isinstance(by_object["id"], UUID)
    assert (await storage.list_tasks_by_context(str(cid)))[0]["id"] == tid
    # ids inside messages come back as strings
    assert by_object["history"][0]["task_id"] == str(tid)


async def test_message_with_uuid_objects_is_stored_with_string_ids(storage: Storage) -> None:
    cid, tid, mid = new_id(), new_id(), new_id()
    msg = {**message(tid, cid), "message_id": mid, "task_id": tid, "context_id": cid}
    task = await storage.submit_task(cid, msg)  # type: ignore[arg-type]
    stored = task["history"][0]
    assert stored["message_id"] == str(mid)
    assert stored["task_id"] == str(tid) and stored["context_id"] == str(cid)
    assert msg["message_id"] is mid  # the caller's dict is not touched


BAD_IDS = [
    pytest.param(12345, TypeError, id="int"),
    pytest.param(None, TypeError, id="none"),
    pytest.param(b"0" * 16, TypeError, id="bytes"),
    pytest.param(1.5, TypeError, id="float"),
    pytest.param("not-a-uuid", ValueError, id="garbage"),
    pytest.param("", ValueError, id="empty"),
    pytest.param("12345678123456781234567812345678", ValueError, id="hex-no-hyphens"),
    pytest.param("{12345678-1234-5678-1234-567812345678}", ValueError, id="braces"),
    pytest.param("urn:uuid:12345678-1234-5678-1234-567812345678", ValueError, id="urn"),
]

ID_OPERATIONS: dict[str, tuple[str, Any]] = {
    "load_task": ("task_id", lambda s, x: s.load_task(x)),
    "update_task": ("task_id", lambda s, x: s.update_task(x, "working")),
    "update_task_state_if": ("task_id", lambda s, x: s.update_task_state_if(x, "submitted", "working")),
    "get_task_owner": ("task_id", lambda s, x: s.get_task_owner(x)),
    "store_task_feedback": ("task_id", lambda s, x: s.store_task_feedback(x, {"r": 1})),
    "get_task_feedback": ("task_id", lambda s, x: s.get_task_feedback(x)),
    "save_webhook_config": ("task_id", lambda s, x: s.save_webhook_config(x, {"url": "https://e.x"})),
    "load_webhook_config": ("task_id", lambda s, x: s.load_webhook_config(x)),
    "delete_webhook_config": ("task_id", lambda s, x: s.delete_webhook_config(x)),
    "task_events": ("task_id", lambda s, x: s.task_events(x)),
    "submit_task": ("context_id", lambda s, x: s.submit_task(x, message(new_id(), new_id()))),
    "submit_task_message": (
        "task_id",
        lambda s, x: s.submit_task(new_id(), {**message(new_id(), new_id()), "task_id": x}),
    ),
    "load_context": ("context_id", lambda s, x: s.load_context(x)),
    "update_context": ("context_id", lambda s, x: s.update_context(x, {"a": 1})),
    "append_to_contexts": ("context_id", lambda s, x: s.append_to_contexts(x, [])),
    "list_tasks_by_context": ("context_id", lambda s, x: s.list_tasks_by_context(x)),
    "list_tasks_page": ("context_id", lambda s, x: s.list_tasks_page(context_id=x)),
    "get_context_owner": ("context_id", lambda s, x: s.get_context_owner(x)),
    "clear_context": ("context_id", lambda s, x: s.clear_context(x)),
}


BAD_ID_CASES = [
    pytest.param(operation, *case.values, id=f"{operation}-{case.id}")
    for operation in sorted(ID_OPERATIONS)
    for case in BAD_IDS
    # None there means "all tasks"
    if not (operation in ("task_events", "list_tasks_page") and case.values[0] is None)
]


@pytest.mark.parametrize("operation, bad, error", BAD_ID_CASES)
async def test_bad_ids_raise_naming_the_argument(
    storage: Storage, operation: str, bad: object, error: type[Exception]
) -> None:
    await new_task(storage)
    before = await snapshot(storage)
    if operation == "submit_task_message" and isinstance(bad, bytes):
        error = ValueError  # a message is JSON-checked first: bytes are not JSON
    argument, call = ID_OPERATIONS[operation]
    with pytest.raises(error) as raised:
        await call(storage, bad)
    assert isinstance(raised.value, StorageError)
    assert isinstance(raised.value, InvalidTypeError if error is TypeError else InvalidValueError)
    assert argument in str(raised.value)
    assert await snapshot(storage) == before


async def test_uppercase_uuid_string_names_the_same_task(storage: Storage) -> None:
    task = await new_task(storage)
    assert await storage.load_task(str(task["id"]).upper()) == await storage.load_task(task["id"])


# --- submit_task -----------------------------------------------------------------------------


async def test_submit_creates_task_and_context(storage: Storage) -> None:
    cid, tid = new_id(), new_id()
    msg = message(tid, cid, "first")
    task = await storage.submit_task(cid, msg, caller_did="did:key:alice")
    assert task["id"] == tid and task["context_id"] == cid and task["kind"] == "task"
    assert task["status"]["state"] == "submitted"
    parse_timestamp(task["status"]["timestamp"])
    assert task["history"] == [msg]
    assert task["artifacts"] == [] and task["metadata"] == {}
    assert await storage.load_task(tid) == task
    assert await storage.load_context(cid) == {}
    assert await storage.get_context_owner(cid) == "did:key:alice"
    assert await storage.get_task_owner(tid) == "did:key:alice"
    assert await storage.list_contexts() == [
        {"context_id": cid, "context_data": {}, "task_count": 1, "task_ids": [tid]}
    ]
    events = await storage.task_events(tid)
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "submitted")]


async def test_submit_into_existing_context_adds_a_task(storage: Storage) -> None:
    first = await new_task(storage, caller_did="did:a")
    second = await new_task(storage, context_id=first["context_id"], caller_did="did:a")
    listed = await storage.list_tasks_by_context(first["context_id"])
    assert ids(listed) == [first["id"], second["id"]]
    assert len(await storage.list_contexts()) == 1


@pytest.mark.parametrize("state", [s for s in NON_TERMINAL_STATES if s != "submitted"])
async def test_submit_continues_non_terminal_task(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    follow_up = message(task["id"], task["context_id"], "more")
    continued = await storage.submit_task(task["context_id"], follow_up)
    assert continued["status"]["state"] == "submitted"
    assert continued["history"] == [*task["history"], follow_up]
    assert parse_timestamp(continued["status"]["timestamp"]) >= parse_timestamp(
        task["status"]["timestamp"]
    )
    events = await storage.task_events(task["id"])
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "submitted"), ("submitted", state), (state, "submitted"),
    ]
    assert await storage.load_task(task["id"]) == continued


async def test_submit_continue_of_submitted_task_records_no_event(storage: Storage) -> None:
    task = await new_task(storage)
    continued = await storage.submit_task(
        task["context_id"], message(task["id"], task["context_id"], "again")
    )
    assert len(continued["history"]) == 2
    assert len(await storage.task_events(task["id"])) == 1


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
async def test_submit_refuses_terminal_task_and_changes_nothing(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    before = await snapshot(storage)
    with pytest.raises(TerminalTaskError) as raised:
        await storage.submit_task(task["context_id"], message(task["id"], task["context_id"], "late"))
    assert isinstance(raised.value, ValueError)
    assert str(task["id"]) in str(raised.value)
    assert await snapshot(storage) == before


@pytest.mark.parametrize("state", ["working", "completed"])
async def test_submit_replaying_an_existing_message_is_a_no_op(storage: Storage, state: str) -> None:
    cid, tid = new_id(), new_id()
    first = message(tid, cid, "first")
    await storage.submit_task(cid, first)
    await storage.update_task(tid, state)
    before = await snapshot(storage)
    replayed = await storage.submit_task(cid, copy.deepcopy(first))
    assert replayed == await storage.load_task(tid)
    assert replayed["status"]["state"] == state
    assert len(replayed["history"]) == 1
    assert await snapshot(storage) == before


async def test_submit_of_task_into_another_context_is_refused(storage: Storage) -> None:
    task = await new_task(storage)
    other = new_id()
    before = await snapshot(storage)
    with pytest.raises(InvalidValueError) as raised:
        await storage.submit_task(other, message(task["id"], other, "wrong context"))
    assert "context" in str(raised.value)
    assert await snapshot(storage) == before
    assert await storage.load_context(other) is None


@pytest.mark.parametrize(
    "bad_message, error, needle",
    [
        pytest.param("not a dict", TypeError, "message", id="not-a-dict"),
        pytest.param({"task_id": str(uuid.uuid4()), "parts": []}, ValueError, "message_id", id="no-id"),
        pytest.param({"message_id": "", "task_id": str(uuid.uuid4())}, ValueError, "message_id",
                     id="empty-id"),
        pytest.param({"message_id": 7, "task_id": str(uuid.uuid4())}, ValueError, "message_id",
                     id="int-id"),
        pytest.param({"message_id": "m1", "parts": []}, TypeError, "task_id", id="no-task-id"),
    ],
)
async def test_submit_refuses_malformed_messages(
    storage: Storage, bad_message: object, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error) as raised:
        await storage.submit_task(new_id(), bad_message)  # type: ignore[arg-type]
    assert needle in str(raised.value)
    assert await storage.list_contexts() == [] and await storage.count_tasks() == 0


# --- ownership -------------------------------------------------------------------------------


async def test_create_into_another_callers_context_is_refused(storage: Storage) -> None:
    alice = await new_task(storage, caller_did="did:alice")
    cid, tid = alice["context_id"], new_id()
    before = await snapshot(storage)
    with pytest.raises(OwnershipError) as raised:
        await storage.submit_task(cid, message(tid, cid), caller_did="did:mallory")
    assert isinstance(raised.value, PermissionError)
    assert await storage.load_task(tid) is None
    assert await snapshot(storage) == before


async def test_continue_in_another_callers_context_is_refused(storage: Storage) -> None:
    alice = await new_task(storage, caller_did="did:alice")
    cid = alice["context_id"]
    before = await snapshot(storage)
    for intruder in ("did:mallory", None):
        with pytest.raises(OwnershipError):
            await storage.submit_task(cid, message(alice["id"], cid, "hijack"), caller_did=intruder)
    assert await snapshot(storage) == before
    continued = await storage.submit_task(cid, message(alice["id"], cid, "mine"), caller_did="did:alice")
    assert len(continued["history"]) == 2


async def test_unowned_context_accepts_any_caller(storage: Storage) -> None:
    cid = new_id()
    await storage.update_context(cid, {"topic": "shared"})
    assert await storage.get_context_owner(cid) is None
    task = await new_task(storage, context_id=cid, caller_did="did:bob")
    assert await storage.get_task_owner(task["id"]) == "did:bob"
    assert await storage.get_context_owner(cid) is None
    other = await new_task(storage, context_id=cid, caller_did="did:carol")
    assert ids(await storage.list_tasks_by_context(cid)) == [task["id"], other["id"]]


async def test_owners_of_unknown_records_are_none(storage: Storage) -> None:
    assert await storage.get_task_owner(new_id()) is None
    assert await storage.get_context_owner(new_id()) is None
    task = await new_task(storage)
    assert await storage.get_task_owner(task["id"]) is None
    assert await storage.get_context_owner(task["context_id"]) is None


async def test_caller_did_must_be_a_string(storage: Storage) -> None:
    cid, tid = new_id(), new_id()
    with pytest.raises(InvalidTypeError, match="caller_did"):
        await storage.submit_task(cid, message(tid, cid), caller_did=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="caller_did"):
        await storage.submit_task(cid, message(tid, cid), caller_did="did:\x00")
    assert await storage.count_tasks() == 0


# --- update_task -----------------------------------------------------------------------------


async def test_update_task_sets_state_and_timestamp(storage: Storage) -> None:
    task = await new_task(storage)
    updated = await storage.update_task(task["id"], "working")
    assert updated["status"]["state"] == "working"
    assert parse_timestamp(updated["status"]["timestamp"]) >= parse_timestamp(task["status"]["timestamp"])
    assert await storage.load_task(task["id"]) == updated


async def test_update_task_appends_in_order_and_deduplicates(storage: Storage) -> None:
    task = await new_task(storage)
    tid, cid = task["id"], task["context_id"]
    m1, m2 = message(tid, cid, "a", role="agent"), message(tid, cid, "b", role="agent")
    a1, a2 = artifact("one"), artifact("two")
    await storage.update_task(tid, "working", new_artifacts=[a1], new_messages=[m1])
    updated = await storage.update_task(tid, "working", new_artifacts=[a1, a2], new_messages=[m1, m2, m2])
    assert updated["history"] == [*task["history"], m1, m2]
    assert updated["artifacts"] == [a1, a2]


async def test_update_task_merges_metadata_shallowly(storage: Storage) -> None:
    task = await new_task(storage)
    await storage.update_task(task["id"], "working", metadata={"a": {"x": 1}, "b": 1})
    merged = await storage.update_task(task["id"], "working", metadata={"a": {"y": 2}, "c": [1]})
    assert merged["metadata"] == {"a": {"y": 2}, "b": 1, "c": [1]}
    unchanged = await storage.update_task(task["id"], "working", metadata={})
    assert unchanged["metadata"] == merged["metadata"]


async def test_update_unknown_task_is_a_key_error(storage: Storage) -> None:
    tid = new_id()
    with pytest.raises(TaskNotFoundError) as raised:
        await storage.update_task(tid, "working")
    assert isinstance(raised.value, KeyError)
    assert str(tid) in str(raised.value)
    assert await storage.count_tasks() == 0


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
async def test_terminal_task_accepts_metadata_merge_only(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    merged = await storage.update_task(task["id"], state, metadata={"rating": 5})
    assert merged["metadata"] == {"rating": 5}
    assert merged["status"] == task["status"]  # the timestamp stays that of the terminal move
    assert len(await storage.task_events(task["id"])) == 2


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
@pytest.mark.parametrize(
    "change",
    ["state", "message", "artifact", "state+metadata", "message+metadata"],
)
async def test_terminal_task_refuses_changes_and_nothing_changes(
    storage: Storage, state: str, change: str
) -> None:
    task = await task_in_state(storage, state)
    tid, cid = task["id"], task["context_id"]
    kwargs: dict[str, Any] = {}
    new_state = "working" if "state" in change else state
    if "message" in change:
        kwargs["new_messages"] = [message(tid, cid, "late")]
    if "artifact" in change:
        kwargs["new_artifacts"] = [artifact("late")]
    if "metadata" in change:
        kwargs["metadata"] = {"sneaky": True}
    before = await snapshot(storage)
    with pytest.raises(TerminalTaskError) as raised:
        await storage.update_task(tid, new_state, **kwargs)
    assert isinstance(raised.value, ValueError)
    assert raised.value.state == state
    assert await snapshot(storage) == before


async def test_terminal_task_accepts_replay_of_present_appends(storage: Storage) -> None:
    task = await new_task(storage)
    tid, cid = task["id"], task["context_id"]
    reply, result = message(tid, cid, "done", role="agent"), artifact("answer")
    done = await storage.update_task(tid, "completed", new_artifacts=[result], new_messages=[reply])
    again = await storage.update_task(tid, "completed", new_artifacts=[result], new_messages=[reply])
    assert again == done


@pytest.mark.parametrize("bad_state", ["done", "", "COMPLETED", None, 3])
async def test_update_task_refuses_unknown_states(storage: Storage, bad_state: object) -> None:
    task = await new_task(storage)
    before = await snapshot(storage)
    with pytest.raises(InvalidValueError, match="state"):
        await storage.update_task(task["id"], bad_state)  # type: ignore[arg-type]
    assert await snapshot(storage) == before


@pytest.mark.parametrize(
    "kwargs, error, needle",
    [
        pytest.param({"new_messages": {"message_id": "x"}}, TypeError, "new_messages", id="msgs-dict"),
        pytest.param({"new_messages": "abc"}, TypeError, "new_messages", id="msgs-str"),
        pytest.param({"new_messages": [{"parts": []}]}, ValueError, "message_id", id="msg-no-id"),
        pytest.param({"new_messages": ["text"]}, TypeError, "new_messages[0]", id="msg-not-dict"),
        pytest.param({"new_artifacts": [{"parts": []}]}, ValueError, "artifact_id", id="art-no-id"),
        pytest.param({"new_artifacts": 5}, TypeError, "new_artifacts", id="arts-int"),
        pytest.param({"metadata": ["a"]}, TypeError, "metadata", id="meta-list"),
    ],
)
async def test_update_task_refuses_malformed_appends(
    storage: Storage, kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    task = await new_task(storage)
    before = await snapshot(storage)
    with pytest.raises(error) as raised:
        await storage.update_task(task["id"], "working", **kwargs)
    assert needle in str(raised.value)
    assert await snapshot(storage) == before


async def test_every_state_change_records_an_event(storage: Storage) -> None:
    task = await new_task(storage)
    tid = task["id"]
    for state in ["working", "working", "input-required", "working", "completed"]:
        await storage.update_task(tid, state)
    events = await storage.task_events(tid)
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "submitted"), ("submitted", "working"), ("working", "input-required"),
        ("input-required", "working"), ("working", "completed"),
    ]
    assert all(e["task_id"] == tid for e in events)
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})
    stamps = [e["at"] for e in events]
    assert all(isinstance(at, datetime) and at.tzinfo is not None for at in stamps)
    assert stamps == sorted(stamps)
    final = await storage.load_task(tid)
    assert final is not None and parse_timestamp(final["status"]["timestamp"]) == stamps[-1]


# --- append_artifact_chunk (streaming) -------------------------------------------------------


async def test_artifact_chunks_extend_the_artifact_with_the_same_id(storage: Storage) -> None:
    task = await task_in_state(storage, "working")
    tid = task["id"]
    first = {"artifact_id": "stream", "name": "answer", "parts": [{"kind": "text", "text": "Hel"}]}
    await storage.append_artifact_chunk(tid, first)
    await storage.append_artifact_chunk(tid, {"artifact_id": "other", "parts": []})
    await storage.append_artifact_chunk(
        tid, {"artifact_id": "stream", "parts": [{"kind": "text", "text": "lo"}]}
    )
    stored = await storage.load_task(tid)
    assert stored is not None
    assert [a["artifact_id"] for a in stored["artifacts"]] == ["stream", "other"]
    assert stored["artifacts"][0]["name"] == "answer"
    assert [p["text"] for p in stored["artifacts"][0]["parts"]] == ["Hel", "lo"]
    assert first["parts"] == [{"kind": "text", "text": "Hel"}]  # the input was not mutated
    assert stored["status"]["state"] == "working"


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
async def test_artifact_chunks_are_refused_on_terminal_tasks(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    before = await snapshot(storage)
    with pytest.raises(TerminalTaskError):
        await storage.append_artifact_chunk(task["id"], artifact())
    assert await snapshot(storage) == before


async def test_artifact_chunk_bad_input(storage: Storage) -> None:
    with pytest.raises(TaskNotFoundError):
        await storage.append_artifact_chunk(new_id(), artifact())
    task = await new_task(storage)
    with pytest.raises(InvalidValueError, match="artifact_id"):
        await storage.append_artifact_chunk(task["id"], {"parts": []})  # type: ignore[typeddict-item]
    with pytest.raises(InvalidValueError, match="not JSON"):
        await storage.append_artifact_chunk(task["id"], {"artifact_id": "a", "parts": [{1, 2}]})  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError):
        await storage.append_artifact_chunk(task["id"], "chunk")  # type: ignore[arg-type]


# --- update_task_state_if --------------------------------------------------------------------


async def test_state_if_moves_when_the_state_matches(storage: Storage) -> None:
    task = await new_task(storage)
    assert await storage.update_task_state_if(task["id"], "submitted", "working") is True
    loaded = await storage.load_task(task["id"])
    assert loaded is not None and loaded["status"]["state"] == "working"
    events = await storage.task_events(task["id"])
    assert (events[-1]["from_state"], events[-1]["to_state"]) == ("submitted", "working")


async def test_state_if_refuses_when_the_state_differs(storage: Storage) -> None:
    task = await task_in_state(storage, "working")
    before = await snapshot(storage)
    assert await storage.update_task_state_if(task["id"], "submitted", "canceled") is False
    assert await snapshot(storage) == before


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
async def test_state_if_cannot_leave_a_terminal_state(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    before = await snapshot(storage)
    with pytest.raises(TerminalTaskError):
        await storage.update_task_state_if(task["id"], state, "working")
    assert await storage.update_task_state_if(task["id"], "working", "submitted") is False
    assert await snapshot(storage) == before


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
async def test_state_if_staying_in_a_terminal_state_changes_nothing(storage: Storage, state: str) -> None:
    task = await task_in_state(storage, state)
    before = await snapshot(storage)
    assert await storage.update_task_state_if(task["id"], state, state) is True
    assert await snapshot(storage) == before


async def test_state_if_same_state_refreshes_the_timestamp_without_an_event(storage: Storage) -> None:
    task = await task_in_state(storage, "working")
    assert await storage.update_task_state_if(task["id"], "working", "working") is True
    loaded = await storage.load_task(task["id"])
    assert loaded is not None and loaded["status"]["state"] == "working"
    assert parse_timestamp(loaded["status"]["timestamp"]) >= parse_timestamp(task["status"]["timestamp"])
    assert len(await storage.task_events(task["id"])) == 2


async def test_state_if_unknown_task_and_bad_states(storage: Storage) -> None:
    with pytest.raises(TaskNotFoundError):
        await storage.update_task_state_if(new_id(), "submitted", "working")
    task = await new_task(storage)
    with pytest.raises(InvalidValueError, match="from_state"):
        await storage.update_task_state_if(task["id"], "nope", "working")
    with pytest.raises(InvalidValueError, match="to_state"):
        await storage.update_task_state_if(task["id"], "submitted", "nope")
    loaded = await storage.load_task(task["id"])
    assert loaded is not None and loaded["status"]["state"] == "submitted"


# --- listing ---------------------------------------------------------------------------------


async def test_list_tasks_newest_first_with_length_and_offset(storage: Storage) -> None:
    created = [await new_task(storage, text=str(i)) for i in range(5)]
    newest_first = ids(created)[::-1]
    # updating an old task does not make it "newer": order is creation order
    await storage.update_task(created[0]["id"], "working")
    assert ids(await storage.list_tasks()) == newest_first
    assert ids(await storage.list_tasks(length=2)) == newest_first[:2]
    assert ids(await storage.list_tasks(length=2, offset=2)) == newest_first[2:4]
    assert ids(await storage.list_tasks(offset=3)) == newest_first[3:]
    assert await storage.list_tasks(length=0) == []
    assert await storage.list_tasks(offset=10) == []
    assert (await storage.list_tasks())[-1] == await storage.load_task(created[0]["id"])


async def test_list_tasks_by_context_oldest_first(storage: Storage) -> None:
    cid = new_id()
    tasks = [await new_task(storage, context_id=cid, text=str(i)) for i in range(4)]
    await new_task(storage)  # another context
    oldest_first = ids(tasks)
    assert ids(await storage.list_tasks_by_context(cid)) == oldest_first
    assert ids(await storage.list_tasks_by_context(cid, length=2)) == oldest_first[:2]
    assert ids(await storage.list_tasks_by_context(cid, length=2, offset=1)) == oldest_first[1:3]
    assert ids(await storage.list_tasks_by_context(cid, offset=3)) == oldest_first[3:]
    assert await storage.list_tasks_by_context(new_id()) == []


async def test_list_contexts_newest_first_with_counts(storage: Storage) -> None:
    c1, c2, c3 = new_id(), new_id(), new_id()
    t1 = await new_task(storage, context_id=c1)
    await storage.update_context(c2, {"topic": "empty"})
    t3a = await new_task(storage, context_id=c3)
    t3b = await new_task(storage, context_id=c3)
    t1b = await new_task(storage, context_id=c1)  # adding a task does not reorder contexts
    listed = await storage.list_contexts()
    assert listed == [
        {"context_id": c3, "context_data": {}, "task_count": 2, "task_ids": [t3a["id"], t3b["id"]]},
        {"context_id": c2, "context_data": {"topic": "empty"}, "task_count": 0, "task_ids": []},
        {"context_id": c1, "context_data": {}, "task_count": 2, "task_ids": [t1["id"], t1b["id"]]},
    ]
    assert [c["context_id"] for c in await storage.list_contexts(length=1, offset=1)] == [c2]
    assert [c["context_id"] for c in await storage.list_contexts(offset=2)] == [c1]
    assert await storage.list_contexts(length=0) == []


async def test_owner_did_filters_listings(storage: Storage) -> None:
    alice1 = await new_task(storage, caller_did="did:alice")
    bob = await new_task(storage, caller_did="did:bob")
    alice2 = await new_task(storage, caller_did="did:alice")
    anon = await new_task(storage)
    assert ids(await storage.list_tasks(owner_did="did:alice")) == [alice2["id"], alice1["id"]]
    assert ids(await storage.list_tasks(owner_did="did:alice", length=1, offset=1)) == [alice1["id"]]
    assert ids(await storage.list_tasks(owner_did="did:bob")) == [bob["id"]]
    assert await storage.list_tasks(owner_did="did:nobody") == []
    assert ids(await storage.list_tasks()) == [anon["id"], alice2["id"], bob["id"], alice1["id"]]
    contexts = await storage.list_contexts(owner_did="did:alice")
    assert [c["context_id"] for c in contexts] == [alice2["context_id"], alice1["context_id"]]
    # list_tasks_by_context filters on the task's owner
    shared = new_id()
    await storage.update_context(shared, {})
    mine = await new_task(storage, context_id=shared, caller_did="did:alice")
    await new_task(storage, context_id=shared, caller_did="did:bob")
    assert ids(await storage.list_tasks_by_context(shared, owner_did="did:alice")) == [mine["id"]]
    assert len(await storage.list_tasks_by_context(shared)) == 2


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"length": -1}, "length"),
        ({"length": 1.5}, "length"),
        ({"length": True}, "length"),
        ({"length": "3"}, "length"),
        ({"offset": -1}, "offset"),
        ({"offset": None}, "offset"),
        ({"offset": 2.0}, "offset"),
    ],
)
@pytest.mark.parametrize("listing", ["list_tasks", "list_contexts", "list_tasks_by_context"])
async def test_listings_refuse_bad_windows(
    storage: Storage, listing: str, kwargs: dict[str, Any], needle: str
) -> None:
    call = getattr(storage, listing)
    args = (new_id(),) if listing == "list_tasks_by_context" else ()
    with pytest.raises(InvalidValueError) as raised:
        await call(*args, **kwargs)
    assert needle in str(raised.value)


@pytest.mark.parametrize("listing", ["list_tasks", "list_contexts", "list_tasks_by_context"])
async def test_listings_refuse_bad_owner(storage: Storage, listing: str) -> None:
    call = getattr(storage, listing)
    args = (new_id(),) if listing == "list_tasks_by_context" else ()
    with pytest.raises(InvalidTypeError, match="owner_did"):
        await call(*args, owner_did=7)


async def test_count_tasks(storage: Storage) -> None:
    assert await storage.count_tasks() == 0
    for state in ["submitted", "working", "working", "completed"]:
        await task_in_state(storage, state)
    assert await storage.count_tasks() == 4
    assert await storage.count_tasks("working") == 2
    assert await storage.count_tasks(status="completed") == 1
    assert await storage.count_tasks("failed") == 0
    with pytest.raises(InvalidValueError, match="status"):
        await storage.count_tasks("finished")


# --- contexts --------------------------------------------------------------------------------


async def test_load_context_semantics(storage: Storage) -> None:
    assert await storage.load_context(new_id()) is None
    task = await new_task(storage)
    cid = task["context_id"]
    assert await storage.load_context(cid) == {}
    await storage.update_context(cid, {"a": 1, "b": {"c": 2}})
    assert await storage.load_context(cid) == {"a": 1, "b": {"c": 2}}
    await storage.update_context(cid, {"z": 0})  # replaces, does not merge
    assert await storage.load_context(cid) == {"z": 0}
    await storage.append_to_contexts(cid, [message(task["id"], cid)])
    assert await storage.load_context(cid) == {"z": 0}
    await storage.update_context(cid, {})
    assert await storage.load_context(cid) == {}


async def test_update_context_creates_an_unowned_context(storage: Storage) -> None:
    cid = new_id()
    await storage.update_context(cid, {"k": "v"})
    assert await storage.load_context(cid) == {"k": "v"}
    assert await storage.get_context_owner(cid) is None
    assert await storage.list_tasks_by_context(cid) == []
    with pytest.raises(InvalidTypeError, match="context"):
        await storage.update_context(cid, [1, 2])  # type: ignore[arg-type]
    assert await storage.load_context(cid) == {"k": "v"}


async def test_append_to_contexts(storage: Storage) -> None:
    cid, tid = new_id(), new_id()
    m1, m2, m3 = (message(tid, cid, t) for t in "abc")
    await storage.append_to_contexts(cid, [m1, m2])
    assert await storage.load_context(cid) == {}
    await storage.append_to_contexts(cid, [m2, m3, m3])
    await storage.append_to_contexts(cid, [])
    (record,) = await storage.context_records()
    assert record["context_id"] == cid
    assert record["message_history"] == [m1, m2, m3]
    assert record["owner_did"] is None
    empty = new_id()
    await storage.append_to_contexts(empty, [])
    assert await storage.load_context(empty) == {}


@pytest.mark.parametrize(
    "messages, error, needle",
    [
        pytest.param({"message_id": "m"}, TypeError, "messages", id="dict"),
        pytest.param([{"text": "no id"}], ValueError, "message_id", id="no-id"),
        pytest.param([1], TypeError, "messages[0]", id="int-item"),
        pytest.param(None, TypeError, "messages", id="none"),
    ],
)
async def test_append_to_contexts_refuses_bad_messages(
    storage: Storage, messages: object, error: type[Exception], needle: str
) -> None:
    cid = new_id()
    with pytest.raises(error) as raised:
        await storage.append_to_contexts(cid, messages)  # type: ignore[arg-type]
    assert needle in str(raised.value)
    assert await storage.load_context(cid) is None


async def test_clear_context_removes_everything_attached(storage: Storage) -> None:
    doomed = await new_task(storage, caller_did="did:a")
    sibling = await new_task(storage, context_id=doomed["context_id"], caller_did="did:a")
    kept = await new_task(storage, caller_did="did:a")
    for task in (doomed, sibling, kept):
        await storage.update_task(task["id"], "working")
        await storage.store_task_feedback(task["id"], {"rating": 1})
        await storage.save_webhook_config(task["id"], {"url": f"https://hooks.example/{task['id']}"})
    await storage.append_to_contexts(doomed["context_id"], [message(doomed["id"], doomed["context_id"])])
    kept_before = {
        "task": await storage.load_task(kept["id"]),
        "events": await storage.task_events(kept["id"]),
        "feedback": await storage.get_task_feedback(kept["id"]),
        "webhook": await storage.load_webhook_config(kept["id"]),
    }

    await storage.clear_context(doomed["context_id"])

    for task in (doomed, sibling):
        assert await storage.load_task(task["id"]) is None
        assert await storage.get_task_feedback(task["id"]) is None
        assert await storage.task_events(task["id"]) == []
        assert await storage.load_webhook_config(task["id"]) is None
        assert await storage.get_task_owner(task["id"]) is None
    assert await storage.load_context(doomed["context_id"]) is None
    assert await storage.list_tasks_by_context(doomed["context_id"]) == []
    assert [c["context_id"] for c in await storage.list_contexts()] == [kept["context_id"]]
    assert ids(await storage.list_tasks()) == [kept["id"]]
    assert {f["task_id"] for f in await storage.feedback_records()} == {kept["id"]}
    assert {e["task_id"] for e in await storage.task_events()} == {kept["id"]}
    assert list(await storage.load_all_webhook_configs()) == [kept["id"]]
    assert [r["context_id"] for r in await storage.context_records()] == [kept["context_id"]]
    assert kept_before == {
        "task": await storage.load_task(kept["id"]),
        "events": await storage.task_events(kept["id"]),
        "feedback": await storage.get_task_feedback(kept["id"]),
        "webhook": await storage.load_webhook_config(kept["id"]),
    }
    await storage.clear_context(new_id())  # unknown: a no-op
    await storage.clear_context(doomed["context_id"])  # twice: a no-op
    assert await storage.count_tasks() == 1


async def test_clear_all_removes_everything(storage: Storage) -> None:
    for _ in range(3):
        task = await task_in_state(storage, "working", caller_did="did:x")
        await storage.store_task_feedback(task["id"], {"ok": True})
        await storage.save_webhook_config(task["id"], {"url": "https://hooks.example"})
    await storage.update_context(new_id(), {"orphan": True})
    await storage.clear_all()
    assert await snapshot(storage) == {
        "tasks": [], "contexts": [], "feedback": [], "events": [], "webhooks": {},
        "listed_tasks": [], "listed_contexts": [],
    }
    assert await storage.count_tasks() == 0
    # still usable afterwards
    again = await new_task(storage)
    assert ids(await storage.list_tasks()) == [again["id"]]


# --- feedback --------------------------------------------------------------------------------


async def test_feedback_oldest_first_and_none_when_empty(storage: Storage) -> None:
    task = await new_task(storage)
    other = await new_task(storage)
    assert await storage.get_task_feedback(task["id"]) is None
    assert await storage.get_task_feedback(new_id()) is None
    entries = [{"rating": i, "comment": f"c{i}"} for i in range(3)]
    for entry in entries:
        await storage.store_task_feedback(task["id"], entry)
    await storage.store_task_feedback(other["id"], {"rating": 9})
    await storage.store_task_feedback(task["id"], {"rating": 4})
    assert await storage.get_task_feedback(task["id"]) == [*entries, {"rating": 4}]
    assert await storage.get_task_feedback(other["id"]) == [{"rating": 9}]
    records = await storage.feedback_records()
    assert [r["task_id"] for r in records] == [task["id"]] * 3 + [other["id"], task["id"]]
    assert [r["feedback_data"] for r in records][:3] == entries
    assert [r["id"] for r in records] == sorted({r["id"] for r in records})
    assert all(isinstance(r["id"], int) for r in records)
    stamps = [r["created_at"] for r in records]
    assert all(s.tzinfo is not None for s in stamps) and stamps == sorted(stamps)
    assert await storage.feedback_records(limit=2, offset=1) == records[1:3]


async def test_feedback_for_unknown_task_is_refused(storage: Storage) -> None:
    tid = new_id()
    with pytest.raises(TaskNotFoundError) as raised:
        await storage.store_task_feedback(tid, {"rating": 5})
    assert isinstance(raised.value, KeyError)
    assert await storage.feedback_records() == []
    task = await new_task(storage)
    with pytest.raises(InvalidTypeError, match="feedback_data"):
        await storage.store_task_feedback(task["id"], "great")  # type: ignore[arg-type]
    assert await storage.get_task_feedback(task["id"]) is None


async def test_feedback_is_allowed_on_terminal_tasks(storage: Storage) -> None:
    task = await task_in_state(storage, "completed")
    await storage.store_task_feedback(task["id"], {"rating": 5})
    assert await storage.get_task_feedback(task["id"]) == [{"rating": 5}]


# --- webhook configs -------------------------------------------------------------------------


async def test_webhook_configs_crud(storage: Storage) -> None:
    t1, t2 = await new_task(storage), await new_task(storage)
    assert await storage.load_webhook_config(t1["id"]) is None
    assert await storage.load_all_webhook_configs() == {}
    first = {"id": "cfg-1", "url": "https://hooks.example/1", "token": "secret-token"}
    await storage.save_webhook_config(t1["id"], first)
    assert await storage.load_webhook_config(t1["id"]) == first
    replaced = {"url": "https://hooks.example/2", "authentication": {"schemes": ["Bearer"]}}
    await storage.save_webhook_config(t1["id"], replaced)
    assert await storage.load_webhook_config(t1["id"]) == replaced
    await storage.save_webhook_config(str(t2["id"]), first)
    assert await storage.load_all_webhook_configs() == {t1["id"]: replaced, t2["id"]: first}
    assert all(isinstance(k, UUID) for k in await storage.load_all_webhook_configs())
    await storage.delete_webhook_config(t1["id"])
    await storage.delete_webhook_config(t1["id"])  # no-op the second time
    await storage.delete_webhook_config(new_id())
    assert await storage.load_webhook_config(t1["id"]) is None
    assert await storage.load_all_webhook_configs() == {t2["id"]: first}


async def test_webhook_config_needs_an_existing_task_and_a_dict(storage: Storage) -> None:
    tid = new_id()
    with pytest.raises(TaskNotFoundError):
        await storage.save_webhook_config(tid, {"url": "https://hooks.example"})
    assert await storage.load_all_webhook_configs() == {}
    task = await new_task(storage)
    with pytest.raises(InvalidTypeError, match="config"):
        await storage.save_webhook_config(task["id"], "https://hooks.example")  # type: ignore[arg-type]
    assert await storage.load_webhook_config(task["id"]) is None


# --- analysis read API -----------------------------------------------------------------------


async def test_task_records_carry_owner_and_timestamps(storage: Storage) -> None:
    first = await new_task(storage, caller_did="did:a")
    second = await new_task(storage)
    records = await storage.task_records()
    assert [r["task"]["id"] for r in records] == [first["id"], second["id"]]  # oldest first
    assert records[0]["owner_did"] == "did:a" and records[1]["owner_did"] is None
    assert records[0]["task"] == first
    for record in records:
        assert isinstance(record["created_at"], datetime) and record["created_at"].tzinfo is not None
        assert record["created_at"] <= record["updated_at"]
    assert records[0]["created_at"] <= records[1]["created_at"]
    created, updated = records[0]["created_at"], records[0]["updated_at"]
    await storage.update_task(first["id"], "working", metadata={"m": 1})
    (after,) = [r for r in await storage.task_records() if r["task"]["id"] == first["id"]]
    assert after["created_at"] == created and after["updated_at"] >= updated
    assert after["updated_at"] >= records[1]["updated_at"]
    since = await storage.task_records(since=after["updated_at"])
    assert [r["task"]["id"] for r in since] == [first["id"]]
    assert await storage.task_records(since=datetime(1970, 1, 1, tzinfo=UTC)) == await storage.task_records()
    assert [r["task"]["id"] for r in await storage.task_records(limit=1, offset=1)] == [second["id"]]


async def test_context_records_carry_owner_and_timestamps(storage: Storage) -> None:
    owned = await new_task(storage, caller_did="did:a")
    plain = new_id()
    await storage.update_context(plain, {"x": 1})
    records = await storage.context_records()
    assert [r["context_id"] for r in records] == [owned["context_id"], plain]
    assert records[0]["owner_did"] == "did:a" and records[1]["owner_did"] is None
    assert records[0]["context_data"] == {} and records[1]["context_data"] == {"x": 1}
    assert records[0]["message_history"] == [] == records[1]["message_history"]
    for record in records:
        assert record["created_at"].tzinfo is not None and record["created_at"] <= record["updated_at"]
    created = records[1]["created_at"]
    await storage.update_context(plain, {"x": 2})
    later = (await storage.context_records())[1]
    assert later["created_at"] == created and later["updated_at"] >= records[1]["updated_at"]
    assert await storage.context_records(limit=1, offset=1) == [later]


async def test_task_events_of_all_tasks_with_paging(storage: Storage) -> None:
    a = await new_task(storage)
    b = await new_task(storage)
    await storage.update_task(a["id"], "working")
    await storage.update_task(b["id"], "failed")
    events = await storage.task_events()
    assert [(e["task_id"], e["from_state"], e["to_state"]) for e in events] == [
        (a["id"], None, "submitted"), (b["id"], None, "submitted"),
        (a["id"], "submitted", "working"), (b["id"], "submitted", "failed"),
    ]
    assert await storage.task_events(limit=2, offset=1) == events[1:3]
    assert await storage.task_events(b["id"], limit=1, offset=1) == [events[3]]
    assert await storage.task_events(new_id()) == []
    assert all(set(e) == {"id", "task_id", "from_state", "to_state", "at"} for e in events)


@pytest.mark.parametrize("reader", ["task_records", "context_records", "feedback_records", "task_events"])
@pytest.mark.parametrize("kwargs", [{"limit": -1}, {"limit": "2"}, {"offset": -3}])
async def test_read_api_refuses_bad_windows(storage: Storage, reader: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError) as raised:
        await getattr(storage, reader)(**kwargs)
    assert next(iter(kwargs)) in str(raised.value)


# --- history_length and timestamps -----------------------------------------------------------


async def test_history_length(storage: Storage) -> None:
    task = await new_task(storage)
    tid, cid = task["id"], task["context_id"]
    extra = [message(tid, cid, str(i), role="agent") for i in range(3)]
    full = await storage.update_task(tid, "working", new_messages=extra)
    history = full["history"]
    assert len(history) == 4
    assert (await storage.load_task(tid))["history"] == history  # type: ignore[index]
    assert (await storage.load_task(tid, history_length=None))["history"] == history  # type: ignore[index]
    assert (await storage.load_task(tid, history_length=0))["history"] == []  # type: ignore[index]
    assert (await storage.load_task(tid, history_length=1))["history"] == history[-1:]  # type: ignore[index]
    assert (await storage.load_task(tid, history_length=3))["history"] == history[-3:]  # type: ignore[index]
    assert (await storage.load_task(tid, history_length=10))["history"] == history  # type: ignore[index]
    sliced = await storage.load_task(tid, history_length=2)
    assert sliced is not None and {k: v for k, v in sliced.items() if k != "history"} == {
        k: v for k, v in full.items() if k != "history"
    }
    assert await storage.load_task(new_id(), history_length=2) is None


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
async def test_history_length_must_be_a_non_negative_int(storage: Storage, bad: object) -> None:
    task = await new_task(storage)
    with pytest.raises(InvalidValueError, match="history_length"):
        await storage.load_task(task["id"], history_length=bad)  # type: ignore[arg-type]


async def test_status_timestamp_is_iso_8601_utc(storage: Storage) -> None:
    task = await new_task(storage)
    stamps = [task["status"]["timestamp"]]
    stamps.append((await storage.update_task(task["id"], "working"))["status"]["timestamp"])
    await storage.update_task_state_if(task["id"], "working", "completed")
    stamps.append((await storage.load_task(task["id"]))["status"]["timestamp"])  # type: ignore[index]
    parsed = [parse_timestamp(s) for s in stamps]
    assert all(s.endswith("+00:00") for s in stamps)
    assert parsed == sorted(parsed)
    assert abs((datetime.now(UTC) - parsed[-1]).total_seconds()) < 3600  # UTC, not local time


# --- close: a closed storage stays closed until connect() --------------------------------------


def unopened(request: pytest.FixtureRequest) -> Storage:
    """A new storage of the backend under test, never connected (over the same data)."""
    if request.node.callspec.params["storage"] == "memory":
        return InMemoryStorage()
    if request.node.callspec.params["storage"] == "pgbouncer":
        return postgres_storage(request.getfixturevalue("pgbouncer_url"), statement_cache_size=0)
    return postgres_storage(request.getfixturevalue("pg_url"))


def every_operation(task_id: UUID, context_id: UUID) -> dict[str, Any]:
    """One call of each operation of the contract, with valid arguments (coroutine factories)."""
    tid, cid = task_id, context_id
    return {
        "load_task": lambda s: s.load_task(tid),
        "submit_task": lambda s: s.submit_task(cid, message(tid, cid)),
        "update_task": lambda s: s.update_task(tid, "working"),
        "append_artifact_chunk": lambda s: s.append_artifact_chunk(tid, artifact()),
        "update_task_state_if": lambda s: s.update_task_state_if(tid, "submitted", "working"),
        "list_tasks": lambda s: s.list_tasks(),
        "count_tasks": lambda s: s.count_tasks(),
        "list_tasks_by_context": lambda s: s.list_tasks_by_context(cid),
        "get_task_owner": lambda s: s.get_task_owner(tid),
        "list_tasks_page": lambda s: s.list_tasks_page(),
        "load_context": lambda s: s.load_context(cid),
        "update_context": lambda s: s.update_context(cid, {"a": 1}),
        "append_to_contexts": lambda s: s.append_to_contexts(cid, [message(tid, cid)]),
        "list_contexts": lambda s: s.list_contexts(),
        "get_context_owner": lambda s: s.get_context_owner(cid),
        "clear_context": lambda s: s.clear_context(cid),
        "clear_all": lambda s: s.clear_all(),
        "store_task_feedback": lambda s: s.store_task_feedback(tid, {"rating": 1}),
        "get_task_feedback": lambda s: s.get_task_feedback(tid),
        "save_webhook_config": lambda s: s.save_webhook_config(tid, {"id": "w", "url": "https://x"}),
        "load_webhook_config": lambda s: s.load_webhook_config(tid),
        "delete_webhook_config": lambda s: s.delete_webhook_config(tid),
        "load_all_webhook_configs": lambda s: s.load_all_webhook_configs(),
        "task_records": lambda s: s.task_records(),
        "context_records": lambda s: s.context_records(),
        "feedback_records": lambda s: s.feedback_records(),
        "task_events": lambda s: s.task_events(),
        "changes": lambda s: s.changes(),
        "set_push_config": lambda s: s.set_push_config(tid, {"id": "p", "url": "https://x"}),
        "get_push_config": lambda s: s.get_push_config(tid, "p"),
        "list_push_configs": lambda s: s.list_push_configs(tid),
        "delete_push_config": lambda s: s.delete_push_config(tid, "p"),
        "push_config_records": lambda s: s.push_config_records(),
        "reencrypt_push_configs": lambda s: s.reencrypt_push_configs(),
        "delete_task": lambda s: s.delete_task(tid),
        "purge": lambda s: s.purge(older_than=timedelta(days=1), states=["completed"]),
    }


def test_every_operation_is_covered() -> None:
    """``every_operation`` names each abstract operation of the contract (lifecycle aside)."""
    lifecycle = {"connect", "close"}
    assert set(every_operation(new_id(), new_id())) == Storage.__abstractmethods__ - lifecycle


async def test_close_keeps_the_data(storage: Storage, request: pytest.FixtureRequest) -> None:
    task = await new_task(storage, caller_did="did:keep")
    await storage.store_task_feedback(task["id"], {"rating": 3})
    await storage.update_context(task["context_id"], {"kept": True})
    before = await snapshot(storage)
    await storage.close()
    await storage.close()  # idempotent
    assert storage.closed
    if isinstance(storage, PostgresStorage):
        assert storage.pool is None
        async with unopened(request) as other:  # another storage sees the data meanwhile
            assert await snapshot(other) == before
    await storage.connect()  # reopens explicitly
    assert not storage.closed
    assert await snapshot(storage) == before
    assert await storage.load_context(task["context_id"]) == {"kept": True}


async def test_a_closed_storage_refuses_every_operation(storage: Storage) -> None:
    task = await new_task(storage)
    before = await snapshot(storage)
    await storage.close()
    name = type(storage).__name__
    for operation, call in every_operation(task["id"], task["context_id"]).items():
        with pytest.raises(StorageClosedError, match=f"^{name} is closed; call connect\\(\\) to reopen it$"):
            await call(storage)
        assert storage.closed, operation
    if isinstance(storage, PostgresStorage):
        assert storage.pool is None  # nothing reconnected (nor migrated) behind the caller's back
        assert storage.pool_stats() is None
    await storage.connect()
    assert await snapshot(storage) == before  # the refused writes changed nothing


async def test_closed_error_is_a_storage_error_and_names_no_secret(storage: Storage) -> None:
    await storage.close()
    with pytest.raises(StorageError) as caught:
        await storage.list_tasks()
    error = caught.value
    assert isinstance(error, StorageClosedError) and isinstance(error, RuntimeError)
    assert error.backend == type(storage).__name__
    if isinstance(storage, PostgresStorage):
        password = storage.connection_dsn.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        assert password and password not in str(error) and password not in repr(storage)


async def test_repr_says_closed(storage: Storage) -> None:
    assert "closed" not in repr(storage)
    await storage.close()
    assert "closed" in repr(storage)
    await storage.connect()
    assert "closed" not in repr(storage)


async def test_disconnect_is_close(storage: Storage) -> None:
    task = await new_task(storage)
    await storage.disconnect()  # the upstream alias
    assert storage.closed
    with pytest.raises(StorageClosedError):
        await storage.load_task(task["id"])
    await storage.connect()
    assert await storage.load_task(task["id"]) == task


async def test_a_new_storage_connects_lazily(storage: Storage, request: pytest.FixtureRequest) -> None:
    fresh = unopened(request)
    try:
        assert not fresh.closed
        task = await new_task(fresh)  # no connect() first
        assert await fresh.load_task(task["id"]) == task
    finally:
        await fresh.close()


async def test_async_context_manager(storage: Storage) -> None:
    async with storage as entered:
        assert entered is storage
        task = await new_task(entered)
    assert storage.closed
    with pytest.raises(StorageClosedError):
        await storage.load_task(task["id"])
    async with storage:  # reopens
        assert await storage.load_task(task["id"]) == task


async def test_operations_in_flight_when_closing_finish_or_say_closed(storage: Storage) -> None:
    calls = [new_task(storage) for _ in range(20)]
    results = await asyncio.gather(*calls, storage.close(), return_exceptions=True)
    for result in results[:-1]:
        assert isinstance(result, dict | StorageClosedError), repr(result)
    assert results[-1] is None
    await storage.connect()
    created = [r for r in results[:-1] if isinstance(r, dict)]
    assert await storage.count_tasks() == len(created)


# --- isolation -------------------------------------------------------------------------------


async def test_inputs_are_not_mutated_and_not_aliased(storage: Storage) -> None:
    cid, tid = new_id(), new_id()
    msg = message(tid, cid, "original")
    msg["metadata"] = {"tags": ["a"]}
    msg_copy = copy.deepcopy(msg)
    await storage.submit_task(cid, msg)
    assert msg == msg_copy
    msg["parts"][0]["text"] = "changed"
    msg["metadata"]["tags"].append("b")

    reply, result = message(tid, cid, "reply", role="agent"), artifact("x")
    meta = {"nested": {"k": [1]}}
    args_copy = copy.deepcopy((reply, result, meta))
    await storage.update_task(tid, "working", new_artifacts=[result], new_messages=[reply], metadata=meta)
    assert (reply, result, meta) == args_copy
    reply["parts"].clear()
    result["name"] = "changed"
    meta["nested"]["k"].append(2)

    context_data = {"list": [1, 2]}
    await storage.update_context(cid, context_data)
    context_data["list"].append(3)
    feedback = {"scores": [1]}
    await storage.store_task_feedback(tid, feedback)
    feedback["scores"].append(2)
    config = {"url": "https://hooks.example", "authentication": {"schemes": ["Bearer"]}}
    await storage.save_webhook_config(tid, config)
    config["authentication"]["schemes"].append("Basic")
    history_msg = message(tid, cid, "ctx")
    await storage.append_to_contexts(cid, [history_msg])
    history_msg["parts"][0]["text"] = "changed"

    task = await storage.load_task(tid)
    assert task is not None
    assert task["history"] == [msg_copy, args_copy[0]]
    assert task["artifacts"] == [args_copy[1]]
    assert task["metadata"] == {"nested": {"k": [1]}}
    assert await storage.load_context(cid) == {"list": [1, 2]}
    assert await storage.get_task_feedback(tid) == [{"scores": [1]}]
    assert await storage.load_webhook_config(tid) == {
        "url": "https://hooks.example", "authentication": {"schemes": ["Bearer"]}
    }
    (record,) = await storage.context_records()
    assert record["message_history"][0]["parts"][0]["text"] == "ctx"


async def test_outputs_are_copies(storage: Storage) -> None:
    task = await new_task(storage)
    tid, cid = task["id"], task["context_id"]
    await storage.update_task(tid, "working", new_artifacts=[artifact("a")], metadata={"m": {"n": 1}})
    await storage.update_context(cid, {"d": [1]})
    await storage.store_task_feedback(tid, {"f": [1]})
    await storage.save_webhook_config(tid, {"url": "https://hooks.example", "x": [1]})
    await storage.append_to_contexts(cid, [message(tid, cid)])
    before = await snapshot(storage)

    def vandalise(value: Any) -> None:
        if isinstance(value, dict):
            for item in list(value.values()):
                vandalise(item)
            value["vandal"] = True
        elif isinstance(value, list):
            for item in value:
                vandalise(item)
            value.append("vandal")

    outputs = [
        await storage.load_task(tid), await storage.load_task(tid, history_length=1),
        await storage.list_tasks(), await storage.list_tasks_by_context(cid),
        await storage.list_contexts(), await storage.load_context(cid),
        await storage.get_task_feedback(tid), await storage.load_webhook_config(tid),
        await storage.load_all_webhook_configs(), await storage.task_records(),
        await storage.context_records(), await storage.feedback_records(), await storage.task_events(),
        await storage.update_task(tid, "working"),
        await storage.submit_task(cid, copy.deepcopy(task["history"][0])),
    ]
    vandalise(outputs)
    after = await snapshot(storage)
    for record in after["tasks"] + before["tasks"]:  # the replayed update moved the timestamps
        record.pop("updated_at")
        record["task"]["status"].pop("timestamp")
    for task_ in after["listed_tasks"] + before["listed_tasks"]:
        task_["status"].pop("timestamp")
    assert after == before


# --- values that cannot be stored ------------------------------------------------------------


class Opaque:
    """Not JSON."""


def nested(levels: int, container: type = dict) -> Any:
    """A value of exactly ``levels`` nested dicts (or lists) around a string."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value} if container is dict else [value]
    return value


BAD_VALUES = [
    pytest.param({1, 2}, "set", id="set"),
    pytest.param(b"bytes", "bytes", id="bytes"),
    pytest.param(datetime(2024, 1, 1, tzinfo=UTC), "datetime", id="datetime"),
    pytest.param(math.nan, "nan", id="nan"),
    pytest.param(math.inf, "inf", id="inf"),
    pytest.param(-math.inf, "inf", id="-inf"),
    pytest.param(Opaque(), "Opaque", id="object"),
    pytest.param("a\x00b", "NUL", id="nul-string"),
    pytest.param({"k\x00": 1}, "NUL", id="nul-key"),
    pytest.param({1: "one"}, "key", id="int-key"),
    pytest.param({("a",): "tuple"}, "key", id="tuple-key"),
    pytest.param("lone \ud800 surrogate", "surrogate", id="surrogate"),
    pytest.param({"\udfff": 1}, "surrogate", id="surrogate-key"),
    pytest.param([1, [2, {"deep": {3}}]], "set", id="nested-set"),
    pytest.param(10**5000, "large", id="huge-int"),
    pytest.param(nested(150), "deeper than 100", id="deep-dict"),
    pytest.param(nested(5000, list), "deeper than 100", id="very-deep-list"),
]

BAD_VALUE_WRITES: dict[str, tuple[str, Any]] = {
    "submit_task.message": (
        "message", lambda s, t, v: s.submit_task(t["context_id"], {
            **message(t["id"], t["context_id"]), "metadata": {"bad": v}}),
    ),
    "submit_task.new": (
        "message", lambda s, t, v: s.submit_task(new_id(), {**message(new_id(), new_id()), "extra": v}),
    ),
    "update_task.metadata": (
        "metadata", lambda s, t, v: s.update_task(t["id"], "working", metadata={"x": v}),
    ),
    "update_task.messages": (
        "new_messages", lambda s, t, v: s.update_task(t["id"], "working", new_messages=[
            message(t["id"], t["context_id"]), {**message(t["id"], t["context_id"]), "parts": [v]}]),
    ),
    "update_task.artifacts": (
        "new_artifacts", lambda s, t, v: s.update_task(t["id"], "working", new_artifacts=[
            {**artifact(), "metadata": {"v": v}}]),
    ),
    "update_context": ("context", lambda s, t, v: s.update_context(t["context_id"], {"v": v})),
    "append_to_contexts": (
        "messages", lambda s, t, v: s.append_to_contexts(t["context_id"], [
            {**message(t["id"], t["context_id"]), "v": v}]),
    ),
    "store_task_feedback": ("feedback_data", lambda s, t, v: s.store_task_feedback(t["id"], {"v": v})),
    "save_webhook_config": (
        "config", lambda s, t, v: s.save_webhook_config(t["id"], {"url": "https://h.example", "v": v}),
    ),
}


@pytest.mark.parametrize("value, needle", BAD_VALUES)
@pytest.mark.parametrize("write", sorted(BAD_VALUE_WRITES))
async def test_unstorable_values_are_refused_before_writing(
    storage: Storage, write: str, value: object, needle: str
) -> None:
    task = await new_task(storage)
    before = await snapshot(storage)
    argument, call = BAD_VALUE_WRITES[write]
    with pytest.raises(InvalidValueError) as raised:
        await call(storage, task, value)
    text = str(raised.value)
    assert argument in text
    assert needle.lower() in text.lower()
    assert await snapshot(storage) == before


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1e23, id="1e23"),
        pytest.param(-1.2345678901234567e300, id="-1.23e300"),
        pytest.param(1e16, id="1e16"),
        pytest.param(123456789012345.5, id="15-digits"),
        pytest.param(5e-324, id="subnormal"),
        pytest.param(0.1 + 0.2, id="0.30000000000000004"),
        pytest.param(2**70, id="2**70"),
        pytest.param(-(2**63), id="-2**63"),
    ],
)
async def test_numbers_come_back_identically(storage: Storage, value: float | int) -> None:
    """A number reads back as the value PostgreSQL's JSONB keeps: the same on both backends."""
    task = await new_task(storage)
    stored = (await storage.update_task(task["id"], "working", metadata={"n": value}))["metadata"]["n"]
    if isinstance(value, float) and abs(value) >= 1e16:
        # the JSON text of such a float ("1e+23") denotes an exact decimal integer: PostgreSQL
        # keeps that integer, and the memory backend hands back the same one
        assert type(stored) is int and stored == int(Decimal(repr(value)))
    else:
        assert stored == value and type(stored) is type(value)
    assert (await storage.load_task(task["id"]))["metadata"]["n"] == stored  # type: ignore[index]


async def test_values_nest_up_to_the_documented_depth(storage: Storage) -> None:
    """100 levels of dicts and lists are stored and read back; 101 are refused, nothing written."""
    task = await new_task(storage)
    deepest = {"x": nested(MAX_DEPTH - 1)}  # metadata itself is level 1
    stored = await storage.update_task(task["id"], "working", metadata=deepest)
    assert stored["metadata"] == deepest
    with pytest.raises(InvalidValueError, match="metadata nests deeper than 100"):
        await storage.update_task(task["id"], "working", metadata={"x": nested(MAX_DEPTH)})
    assert (await storage.load_task(task["id"]))["metadata"] == deepest  # type: ignore[index]
    assert len(await storage.list_tasks()) == 1  # and listing still works


async def test_negative_zero_reads_back_as_zero(storage: Storage) -> None:
    """-0.0 comes back as 0.0 from both backends (PostgreSQL's numeric has no negative zero)."""
    task = await new_task(storage)
    stored = await storage.update_task(task["id"], "working", metadata={"z": -0.0, "l": [-0.0]})
    loaded = await storage.load_task(task["id"])
    for document in (stored["metadata"], loaded["metadata"]):  # type: ignore[index]
        assert math.copysign(1.0, document["z"]) == 1.0 and math.copysign(1.0, document["l"][0]) == 1.0


async def test_unicode_and_json_shapes_round_trip(storage: Storage) -> None:
    task = await new_task(storage)
    value = {
        "emoji": "🦜 naïve — ünïcödé 中文",
        "empty": {"": [], "list": [None, True, False, 0, -1, 1.5, "", {}]},
        "escapes": "quote\" backslash\\ newline\n tab\t",
        "tuple": (1, 2),
    }
    stored = await storage.update_task(task["id"], "working", metadata=value)
    assert stored["metadata"] == {**value, "tuple": [1, 2]}
    assert (await storage.load_task(task["id"]))["metadata"] == stored["metadata"]  # type: ignore[index]
