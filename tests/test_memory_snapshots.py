"""The in-memory backend's read-only snapshots (``storage.read.RecordSnapshots``).

Analysis reads an ``InMemoryStorage`` through snapshots that share the stored values instead of
copying every record. That is safe only because the storage never changes a stored value in
place: every write replaces a task's history, artifacts or metadata. These tests hold it to that.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from bindu_storage import InMemoryStorage, PostgresStorage, StorageClosedError
from bindu_storage.storage.read import record_snapshots


def message(task_id: uuid.UUID, context_id: uuid.UUID, text: str = "hi") -> dict[str, Any]:
    """A one-part text message with a fresh id."""
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}],
    }


def test_only_the_memory_backend_lends_snapshots() -> None:
    assert record_snapshots(InMemoryStorage()) is not None
    assert record_snapshots(PostgresStorage("postgresql://u:p@127.0.0.1:1/db")) is None


async def test_a_snapshot_holds_the_records_without_copies() -> None:
    storage = InMemoryStorage()
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid))
    await storage.store_task_feedback(tid, {"rating": 4})
    assert storage.task_snapshot() == await storage.task_records()
    assert storage.feedback_snapshot() == await storage.feedback_records()
    first, second = storage.task_snapshot(), storage.task_snapshot()
    assert first[0]["task"]["history"] is second[0]["task"]["history"]  # shared, not copied
    assert storage.task_snapshot(since=first[0]["updated_at"]) == first
    await storage.close()
    with pytest.raises(StorageClosedError):
        storage.task_snapshot()


async def test_writes_replace_stored_values_so_a_snapshot_keeps_its_moment() -> None:
    storage = InMemoryStorage()
    cid, tid = uuid.uuid4(), uuid.uuid4()
    await storage.submit_task(cid, message(tid, cid))
    await storage.update_task(
        tid, "working", new_artifacts=[{"artifact_id": "a", "parts": [{"kind": "text", "text": "x"}]}],
        metadata={"k": {"n": 1}},
    )
    snapshot = storage.task_snapshot()
    feedback = storage.feedback_snapshot()
    frozen = copy.deepcopy((snapshot, feedback))

    await storage.submit_task(cid, message(tid, cid, "more"))  # a continuation appends
    await storage.update_task(tid, "working", new_messages=[message(tid, cid)], metadata={"k": 2})
    await storage.append_artifact_chunk(tid, {"artifact_id": "a", "parts": [{"kind": "text", "text": "y"}]})
    await storage.append_artifact_chunk(tid, {"artifact_id": "b", "parts": []})
    await storage.update_task_state_if(tid, "working", "completed")
    await storage.store_task_feedback(tid, {"rating": 5})

    assert (snapshot, feedback) == frozen
    (now,) = storage.task_snapshot()
    assert len(now["task"]["history"]) == 3
    assert [p["text"] for p in now["task"]["artifacts"][0]["parts"]] == ["x", "y"]
    assert now["task"]["metadata"] == {"k": 2}
    assert now["task"]["status"]["state"] == "completed"
