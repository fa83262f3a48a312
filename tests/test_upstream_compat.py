"""Frames read a database written by upstream Bindu itself (the ``bindu`` package from PyPI).

Upstream runs in its own Python 3.12 virtualenv (``tests/upstream.py``). A script run there
uses upstream's own ``PostgresStorage`` with a DID, which creates its tables in a ``did_…`` schema: no ``seq``
columns, no ``task_events`` table, no feedback ``request_key``. Every frame must read that schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest

from bindu_storage.analysis import frames as F
from bindu_storage.analysis.dtypes import STATE_DTYPE

DID = "did:bindu:frames-test:agent"
SECRETS = ("up-secret", "up-hook-secret", "up-cred")

WRITER = '''
import asyncio, json, sys, uuid
from datetime import datetime, timezone
from bindu.server.storage.postgres_storage import PostgresStorage

async def main(url, did):
    storage = PostgresStorage(database_url=url, did=did)
    await storage.connect()
    ctx = uuid.UUID(int=0xC1)
    tasks = [uuid.UUID(int=0x200 + i) for i in range(3)]

    def message(task, n, text, role="user"):
        return {"message_id": uuid.UUID(int=task.int * 10 + n), "task_id": task, "context_id": ctx,
                "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}]}

    for i, task in enumerate(tasks):
        await storage.submit_task(ctx, message(task, 1, f"question {i}"), caller_did="did:bindu:caller")
    await storage.update_task(tasks[0], "working", metadata={
        "agent": "upstream", "usage": {"tokens_in": 10, "latency": 0.25}, "auth_token": "up-secret"})
    await storage.update_task(
        tasks[0], "completed", new_messages=[message(tasks[0], 2, "the answer", "agent")],
        new_artifacts=[{"artifact_id": uuid.UUID(int=0x300), "name": "answer",
                        "parts": [{"kind": "text", "text": "42"}]}])
    await storage.update_task(tasks[1], "failed", metadata={"agent": "upstream", "error": "boom"})
    await storage.store_task_feedback(tasks[0], {
        "task_id": str(tasks[0]), "feedback": "spot on", "rating": 5, "metadata": {"channel": "api"},
        "timestamp": datetime.now(timezone.utc).isoformat()})
    await storage.save_webhook_config(tasks[2], {
        "id": uuid.UUID(int=0x400), "url": "https://hooks.example/up", "token": "up-hook-secret",
        "authentication": {"schemes": ["Bearer"], "credentials": "up-cred"}})
    written = {"schema": storage.schema_name, "tasks": [str(t) for t in tasks], "context": str(ctx)}
    print("WRITTEN " + json.dumps(written))
    await storage.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
'''


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rpartition("/")[0] + "/" + name


@pytest.fixture(scope="module")
def upstream_db(upstream_python: Path, admin_url: str) -> Iterator[dict[str, Any]]:
    """A database whose ``did_…`` schema upstream Bindu created and filled."""
    name = f"bindu_upstream_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _database_url(admin_url, name)
    try:
        run = subprocess.run(
            [str(upstream_python), "-c", WRITER, url, DID],
            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""},
        )
        assert run.returncode == 0, f"upstream writer failed:\n{run.stderr[-3000:]}"
        lines = [line for line in run.stdout.splitlines() if line.startswith("WRITTEN ")]
        assert lines, f"upstream writer reported nothing:\n{run.stdout[-3000:]}"
        written = json.loads(lines[-1].removeprefix("WRITTEN "))
        yield {"url": url, **written}
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def up(upstream_db: dict[str, Any]) -> dict[str, Any]:
    """What the upstream writer reports: url, schema, task ids (in creation order), context."""
    return upstream_db


async def test_upstream_schema_really_lacks_our_additions(up: dict[str, Any]) -> None:
    assert up["schema"].startswith("did_")
    conn = await asyncpg.connect(up["url"])
    try:
        tables = {r["table_name"]: set(r["cols"]) for r in await conn.fetch(
            "SELECT table_name, array_agg(column_name::text) AS cols FROM information_schema.columns"
            " WHERE table_schema = $1 GROUP BY table_name", up["schema"],
        )}
    finally:
        await conn.close()
    assert "task_events" not in tables and "seq" not in tables["tasks"] and "seq" not in tables["contexts"]
    assert "owner_did" in tables["tasks"] and "request_key" not in tables["task_feedback"]


async def test_list_schemas_finds_the_agent_schema(up: dict[str, Any]) -> None:
    assert up["schema"] in await F.list_schemas(up["url"])


async def test_tasks_frame_of_an_upstream_schema(up: dict[str, Any]) -> None:
    df = await F.tasks_frame(up["url"], schema=up["schema"])
    assert df["id"].tolist() == up["tasks"]
    assert df["state"].dtype == STATE_DTYPE
    assert df["state"].tolist() == ["completed", "failed", "submitted"]
    assert df["history_len"].tolist() == [2, 1, 1] and df["artifact_count"].tolist() == [1, 0, 0]
    assert df["feedback_count"].tolist() == [1, 0, 0]
    assert df["mean_rating"].iloc[0] == 5.0 and df["mean_rating"].iloc[1:].isna().all()
    assert df["owner_did"].tolist() == ["did:bindu:caller"] * 3
    assert df["context_id"].tolist() == [up["context"]] * 3
    assert str(df["created_at"].dtype) == "datetime64[us, UTC]" and df["created_at"].is_monotonic_increasing
    assert df["metadata.agent"].tolist()[:2] == ["upstream", "upstream"]
    assert df["metadata.auth_token"].tolist()[0] == "***"
    assert str(df["metadata.usage.tokens_in"].dtype) == "Int64"
    assert df["metadata.usage.tokens_in"].iloc[0] == 10
    assert df["metadata.usage.latency"].iloc[0] == 0.25
    assert df["metadata.error"].tolist()[1] == "boom"
    filtered = await F.tasks_frame(
        up["url"], schema=up["schema"], states="failed", metadata={"agent": "upstream"}
    )
    assert filtered["id"].tolist() == [up["tasks"][1]]
    assert len(await F.tasks_frame(up["url"], schema=up["schema"], owner_did="did:bindu:caller")) == 3


async def test_child_frames_of_an_upstream_schema(up: dict[str, Any]) -> None:
    url, schema = up["url"], up["schema"]
    messages = await F.messages_frame(url, schema=schema)
    assert messages["text"].tolist() == ["question 0", "the answer", "question 1", "question 2"]
    assert messages["role"].tolist() == ["user", "agent", "user", "user"]
    assert messages["message_id"].tolist()[0] == str(uuid.UUID(int=uuid.UUID(up["tasks"][0]).int * 10 + 1))
    artifacts = await F.artifacts_frame(url, schema=schema)
    assert artifacts[["name", "text", "artifact_id"]].values.tolist() == [
        ["answer", "42", str(uuid.UUID(int=0x300))],
    ]
    contexts = await F.contexts_frame(url, schema=schema)
    assert contexts["context_id"].tolist() == [up["context"]] and contexts["task_count"].tolist() == [3]
    assert contexts["owner_did"].tolist() == ["did:bindu:caller"]
    feedback = await F.feedback_frame(url, schema=schema, task_metadata_columns=["agent"])
    assert feedback["rating"].tolist() == [5] and feedback["comment"].tolist() == ["spot on"]
    assert feedback["feedback.metadata.channel"].tolist() == ["api"]
    assert feedback["feedback.task_id"].tolist() == [up["tasks"][0]]
    assert feedback["metadata.agent"].tolist() == ["upstream"] and feedback["state"].tolist() == ["completed"]
    webhooks = await F.webhooks_frame(url, schema=schema)
    assert webhooks[["task_id", "url", "token", "credentials", "schemes"]].values.tolist() == [
        [up["tasks"][2], "https://hooks.example/up", "***", "***", "Bearer"],
    ]


async def test_what_upstream_does_not_keep_is_an_empty_frame(up: dict[str, Any]) -> None:
    events = await F.events_frame(up["url"], schema=up["schema"])
    assert len(events) == 0
    assert list(events.columns) == [
        "id", "task_id", "from_state", "to_state", "at", "duration_s", "in_state_s",
    ]
    assert events["to_state"].dtype == STATE_DTYPE and events["id"].dtype == np.int64
    chunks = [c async for c in F.events_frame(up["url"], schema=up["schema"], chunksize=50_000)]
    assert len(chunks) == 1 and len(chunks[0]) == 0


async def test_streaming_an_upstream_schema_pages_by_created_at_and_id(up: dict[str, Any]) -> None:
    url, schema = up["url"], up["schema"]
    whole = await F.tasks_frame(url, schema=schema)
    for size in (1, 2):
        chunks = [c async for c in F.tasks_frame(url, schema=schema, chunksize=size)]
        assert [len(c) for c in chunks] == ([1, 1, 1] if size == 1 else [2, 1])
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    messages = [c async for c in F.messages_frame(url, schema=schema, chunksize=1)]
    assert pd.concat(messages)["text"].tolist() == ["question 0", "the answer", "question 1", "question 2"]
    feedback = [c async for c in F.feedback_frame(url, schema=schema, chunksize=1)]
    assert len(feedback) == 1 and feedback[0]["rating"].tolist() == [5]


async def test_no_upstream_secret_reaches_a_frame(up: dict[str, Any]) -> None:
    url, schema = up["url"], up["schema"]
    for load in (F.tasks_frame, F.feedback_frame, F.webhooks_frame, F.contexts_frame, F.messages_frame):
        shown = (await load(url, schema=schema)).to_json(orient="records", date_format="iso")
        for secret in SECRETS:
            assert secret not in shown
