"""The in-memory backend's isolation: no caller can change stored state through a value it
handed in or got back, at any nesting level.

``InMemoryStorage`` keeps each task's values as it stored them (never changed in place) and
makes the copies it hands out from cached JSON text (``memory.rows.TaskRow``); values orjson
cannot write exactly (integers beyond 64 bits, ``str`` subclasses) are copied by ``clone``. Each
test mutates every dict and list it can reach (``scribble``) and checks that the storage still
returns what it returned before, so a copy sharing any container with the stored value fails.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from bindu_storage import InMemoryStorage


def scribble(value: Any) -> None:
    """Change every dict and list inside ``value`` in place (depth first)."""
    if isinstance(value, dict):
        for item in list(value.values()):
            scribble(item)
        value["scribbled"] = True
        for key in [k for k in value if k != "scribbled"][:1]:
            value[key] = "changed"
    elif isinstance(value, list):
        for item in value:
            scribble(item)
        value.append("scribbled")


def message(
    task_id: uuid.UUID, context_id: uuid.UUID, text: str = "hi", role: str = "user"
) -> dict[str, Any]:
    """A message with nested parts: a text part and a data part holding a nested object."""
    return {
        "message_id": str(uuid.uuid4()),
        "task_id": str(task_id),
        "context_id": str(context_id),
        "kind": "message",
        "role": role,
        "parts": [
            {"kind": "text", "text": text},
            {"kind": "data", "data": {"rows": [{"n": 1, "tags": ["a", "b"]}], "deep": {"x": {"y": [1.5]}}}},
        ],
        "metadata": {"trace": {"spans": [1, 2, 3]}},
    }


def artifact(name: str = "result") -> dict[str, Any]:
    """An artifact with nested parts and metadata."""
    return {
        "artifact_id": str(uuid.uuid4()),
        "name": name,
        "parts": [{"kind": "text", "text": "body"}, {"kind": "data", "data": {"k": [{"v": 1}]}}],
        "metadata": {"nested": {"list": [1, {"two": 2}]}},
    }


async def full_task(storage: InMemoryStorage) -> tuple[uuid.UUID, uuid.UUID]:
    """A task with history, artifacts, nested metadata, a status message and feedback."""
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid))
    await storage.update_task(
        tid,
        "input-required",
        new_artifacts=[artifact()],
        new_messages=[message(tid, cid, "reply", "agent")],
        metadata={"labels": {"team": ["x", "y"]}, "score": 0.25, "n": 7},
        status_message=message(tid, cid, "need more", "agent"),
    )
    await storage.store_task_feedback(tid, {"rating": 4, "details": {"tags": ["fast"], "by": {"id": 1}}})
    return cid, tid


async def everything(storage: InMemoryStorage, tid: uuid.UUID, cid: uuid.UUID) -> Any:
    """Every read of the task, as returned (deep-copied by the test, so comparable later)."""
    return copy.deepcopy(
        {
            "load": await storage.load_task(tid),
            "load_h1": await storage.load_task(tid, history_length=1),
            "load_str": await storage.load_task(str(tid)),
            "list": await storage.list_tasks(),
            "by_context": await storage.list_tasks_by_context(str(cid)),
            "page": await storage.list_tasks_page(include_artifacts=True),
            "feedback": await storage.get_task_feedback(str(tid)),
            "records": await storage.task_records(),
            "feedback_records": await storage.feedback_records(),
            "changes": await storage.changes(),
            "snapshot": storage.task_snapshot(),
        }
    )


async def test_what_a_caller_hands_in_is_never_aliased() -> None:
    storage = InMemoryStorage()
    cid, tid = uuid.uuid4(), uuid.uuid4()
    first = message(tid, cid)
    await storage.submit_task(cid, first)
    scribble(first)
    arts, msgs = [artifact()], [message(tid, cid, "reply", "agent")]
    meta = {"labels": {"team": ["x"]}}
    said = message(tid, cid, "status", "agent")
    await storage.update_task(
        tid, "working", new_artifacts=arts, new_messages=msgs, metadata=meta, status_message=said
    )
    feedback = {"rating": 5, "details": {"tags": ["a"]}}
    await storage.store_task_feedback(tid, feedback)
    chunk = artifact("streamed")
    await storage.append_artifact_chunk(tid, chunk)
    for value in (arts, msgs, meta, said, feedback, chunk):
        scribble(value)

    task = await storage.load_task(tid)
    assert task is not None
    assert [m["parts"][0]["text"] for m in task["history"]] == ["hi", "reply"]
    assert task["history"][0]["parts"][1]["data"] == {
        "rows": [{"n": 1, "tags": ["a", "b"]}],
        "deep": {"x": {"y": [1.5]}},
    }
    assert task["history"][0]["metadata"] == {"trace": {"spans": [1, 2, 3]}}
    assert [a["name"] for a in task["artifacts"]] == ["result", "streamed"]
    assert task["artifacts"][0]["parts"][1]["data"] == {"k": [{"v": 1}]}
    assert task["artifacts"][0]["metadata"] == {"nested": {"list": [1, {"two": 2}]}}
    assert task["metadata"] == {"labels": {"team": ["x"]}}
    assert task["status"]["message"]["parts"][0]["text"] == "status"
    assert "scribbled" not in task["status"]["message"]
    assert await storage.get_task_feedback(tid) == [{"rating": 5, "details": {"tags": ["a"]}}]


@pytest.mark.parametrize(
    "read",
    [
        "load",
        "load_h1",
        "list",
        "by_context",
        "page",
        "feedback",
        "records",
        "feedback_records",
        "changes",
        "submit",
        "update",
        "update_working",
    ],
)
async def test_what_a_caller_gets_back_is_its_own(read: str) -> None:
    storage = InMemoryStorage()
    cid, tid = await full_task(storage)
    before = await everything(storage, tid, cid)

    for _ in range(2):  # the second round reads from the cached copies' text, if any
        if read == "load":
            got: Any = await storage.load_task(tid)
        elif read == "load_h1":
            got = await storage.load_task(tid, history_length=1)
        elif read == "list":
            got = await storage.list_tasks()
        elif read == "by_context":
            got = await storage.list_tasks_by_context(cid)
        elif read == "page":
            got = await storage.list_tasks_page(include_artifacts=True)
        elif read == "feedback":
            got = await storage.get_task_feedback(tid)
        elif read == "records":
            got = await storage.task_records()
        elif read == "feedback_records":
            got = await storage.feedback_records()
        elif read == "changes":
            got = await storage.changes()
        elif read == "submit":  # a replay of the first message: nothing changes, the task comes back
            task = await storage.load_task(tid)
            assert task is not None
            got = await storage.submit_task(cid, copy.deepcopy(task["history"][0]))
        elif read == "update":  # nothing new (the same status message): the same task back
            task = await storage.load_task(tid)
            assert task is not None
            got = await storage.update_task(
                tid, "input-required", status_message=copy.deepcopy(task["status"]["message"])
            )
        else:
            got = await storage.load_task(tid)
        scribble(got)

    if read == "update":  # update_task set the status timestamp again; everything else is as it was
        after = await everything(storage, tid, cid)
        for name in ("load", "load_h1", "load_str"):
            after[name]["status"]["timestamp"] = before[name]["status"]["timestamp"]
        assert after["load"] == before["load"]
        assert after["feedback"] == before["feedback"]
    else:
        assert await everything(storage, tid, cid) == before


async def test_a_write_returns_a_copy_not_the_stored_values() -> None:
    storage = InMemoryStorage()
    cid, tid = uuid.uuid4(), uuid.uuid4()
    returned = await storage.submit_task(cid, message(tid, cid))
    scribble(returned)
    returned = await storage.update_task(
        tid,
        "working",
        new_artifacts=[artifact()],
        new_messages=[message(tid, cid, "reply", "agent")],
        metadata={"a": {"b": [1]}},
        status_message=message(tid, cid, "status", "agent"),
    )
    scribble(returned)
    task = await storage.load_task(tid)
    assert task is not None
    assert "scribbled" not in task["history"] and len(task["history"]) == 2
    assert task["history"][0]["parts"][0] == {"kind": "text", "text": "hi"}
    assert task["artifacts"][0]["parts"][0] == {"kind": "text", "text": "body"}
    assert task["metadata"] == {"a": {"b": [1]}}
    assert task["status"]["message"]["parts"][0] == {"kind": "text", "text": "status"}
    snapshot = storage.task_snapshot()[0]["task"]
    assert snapshot["metadata"] == {"a": {"b": [1]}} and len(snapshot["history"]) == 2


async def test_two_reads_share_nothing() -> None:
    storage = InMemoryStorage()
    _, tid = await full_task(storage)
    one, two = await storage.load_task(tid), await storage.load_task(tid)
    assert one == two
    assert one is not None and two is not None

    def containers(value: Any) -> list[int]:
        found = [id(value)] if isinstance(value, dict | list) else []
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            found += containers(child)
        return found

    assert not set(containers(one)) & set(containers(two))
    stored = storage.task_snapshot()[0]["task"]
    assert not set(containers(one)) & set(containers(stored)) - {id(stored)}


class Tag(str):
    """A str subclass: validation keeps it, so the copies must too (orjson would not)."""


@pytest.mark.parametrize(
    "value",
    [
        2**64 + 1,
        -(2**63) - 1,
        10**30,
        2**64 - 1,
        -(2**63),
        0.1,
        1e-300,
        123456789012345.67,
        "é ☃ 𝄞",
        Tag("tagged"),
    ],
)
async def test_values_read_back_exactly_and_isolated(value: Any) -> None:
    storage = InMemoryStorage()
    cid, tid = uuid.uuid4(), uuid.uuid4()
    msg = message(tid, cid)
    msg["parts"][1]["data"] = {"value": value, "list": [value, {"again": value}]}
    await storage.submit_task(cid, msg)
    said = message(tid, cid, "status", "agent")
    said["parts"][1]["data"] = {"value": value}
    made = artifact()
    made["metadata"] = {"value": value}
    await storage.update_task(
        tid,
        "working",
        new_artifacts=[made],
        metadata={"value": value, "nested": {"v": [value]}},
        status_message=said,
    )
    for _ in range(2):
        task = await storage.load_task(tid)
        assert task is not None
        data = task["history"][0]["parts"][1]["data"]
        assert data == {"value": value, "list": [value, {"again": value}]}
        assert type(data["value"]) is type(value) and type(data["list"][1]["again"]) is type(value)
        assert task["metadata"] == {"value": value, "nested": {"v": [value]}}
        assert type(task["metadata"]["value"]) is type(value)
        assert task["status"]["message"]["parts"][1]["data"] == {"value": value}
        assert type(task["status"]["message"]["parts"][1]["data"]["value"]) is type(value)
        assert task["artifacts"][0]["metadata"] == {"value": value} and len(task["artifacts"]) == 1
        assert task["artifacts"][0]["parts"][1]["data"] == {"k": [{"v": 1}]}
        scribble(task)
    assert storage.task_snapshot()[0]["task"]["metadata"] == {"value": value, "nested": {"v": [value]}}


async def test_ids_as_text_or_uuid_find_the_same_task_and_deleted_ids_are_gone() -> None:
    storage = InMemoryStorage()
    cid, tid = await full_task(storage)
    by_uuid, by_text = await storage.load_task(tid), await storage.load_task(str(tid))
    assert by_uuid == by_text == await storage.load_task(str(tid).upper())
    assert await storage.get_task_owner(str(tid)) is None
    assert len(await storage.list_tasks_by_context(str(cid))) == 1
    assert await storage.delete_task(str(tid))
    assert await storage.load_task(str(tid)) is None
    assert await storage.get_task_feedback(str(tid)) is None
    assert await storage.list_tasks_by_context(str(cid)) == []
    cid2, tid2 = await full_task(storage)
    await storage.clear_context(str(cid2))
    assert await storage.load_task(str(tid2)) is None
    assert await storage.list_tasks_by_context(str(cid2)) == []
    await full_task(storage)
    await storage.clear_all()
    assert await storage.list_tasks() == []
