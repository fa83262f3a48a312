"""Faults worse than a lost packet: a writer killed with SIGKILL mid-write, eight processes
starting their storage at the same moment on an empty database, and a role that owns nothing
but its own schema. Real processes, the real server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from conftest import execute, postgres_storage

from bindu_storage import PostgresStorage
from bindu_storage.analysis import frames as F

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE", "DATABASE_URL"))}
    return {**base, "PYTHONPATH": str(REPO), **extra}


_WRITER = """
import asyncio, sys, uuid
from bindu_storage import PostgresStorage

async def main(url):
    storage = PostgresStorage(url, schema="killed", pool_min=1, pool_max=4)
    await storage.connect()
    n = 0
    while True:
        n += 1
        cid, tid = uuid.uuid4(), uuid.uuid4()
        msg = lambda i: {"message_id": f"{tid}-{i}", "task_id": str(tid), "context_id": str(cid),
                         "kind": "message", "role": "user", "parts": [{"kind": "text", "text": "x" * 2000}]}
        await storage.submit_task(cid, msg(0))
        await storage.update_task(tid, "working", new_messages=[msg(1), msg(2)], metadata={"n": n})
        await storage.update_task(tid, "completed", new_artifacts=[{"artifact_id": f"{tid}-a",
                                  "parts": [{"kind": "text", "text": "done"}]}])
        print(f"ACK {tid}", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_writer_killed_mid_write_leaves_every_acknowledged_task_whole(fresh_database: str) -> None:
    storage = postgres_storage(fresh_database, schema="killed", run_migrations=True)
    await storage.connect()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, fresh_database], stdout=subprocess.PIPE, text=True, env=_env(),
    )
    acked: list[str] = []
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + 120
        while len(acked) < 40 and time.monotonic() < deadline:
            line = await asyncio.to_thread(writer.stdout.readline)
            if line.startswith("ACK "):
                acked.append(line.split()[1])
        os.kill(writer.pid, signal.SIGKILL)  # in the middle of its next task
        writer.wait(timeout=30)
        acked += [line.split()[1] for line in writer.stdout.read().splitlines() if line.startswith("ACK ")]
        assert len(acked) >= 40
        rows = await storage.fetch(
            "SELECT t.id::text AS id, t.state, jsonb_array_length(t.history) AS messages,"
            " jsonb_array_length(t.artifacts) AS artifacts,"
            " (SELECT count(*) FROM killed.task_events e WHERE e.task_id = t.id) AS events"
            " FROM killed.tasks t"
        )
        by_id = {r["id"]: r for r in rows}
        for tid in acked:  # acknowledged: there, complete, with its whole event log
            row = by_id[tid]
            assert (row["state"], row["messages"], row["artifacts"], row["events"]) == ("completed", 3, 1, 3)
        for row in by_id.values():  # the task cut short is in one of the states a write leaves
            assert (row["state"], row["messages"], row["artifacts"], row["events"]) in {
                ("submitted", 1, 0, 1), ("working", 3, 0, 2), ("completed", 3, 1, 3),
            }
        assert len(await F.tasks_frame(storage)) == len(by_id)  # and everything reads back
    finally:
        if writer.poll() is None:
            writer.kill()
        await storage.close()


_STARTER = """
import asyncio, os, sys, time, uuid
from pathlib import Path
from bindu_storage import PostgresStorage

async def main(url, did, ready, go):
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.002)
    storage = PostgresStorage(url, did=did, pool_min=1, pool_max=2)
    async with storage:
        cid, tid = uuid.uuid4(), uuid.uuid4()
        await storage.submit_task(cid, {"message_id": str(uuid.uuid4()), "task_id": str(tid),
            "context_id": str(cid), "kind": "message", "role": "user", "parts": []})
        print("STARTED", storage.schema, flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


def test_eight_agents_starting_at_once_on_an_empty_database(fresh_database: str, tmp_path: Path) -> None:
    did = "did:bindu:acme_research_lab:literature-review-agent:" + str(uuid.uuid4())
    go = tmp_path / "go"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER, fresh_database, did, str(tmp_path / f"ready{n}"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )
        for n in range(8)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{n}").exists() for n in range(8)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in starters]
    assert [p.returncode for p in starters] == [0] * 8, [err[-2000:] for _, err in outputs]
    schemas = {out.split()[-1] for out, _ in outputs}
    assert len(schemas) == 1 and len(schemas.pop()) == 63  # one hashed did_ schema for all eight

    async def check() -> None:
        storage = postgres_storage(fresh_database, did=did)
        async with storage:
            assert await storage.count_tasks() == 8
            events = await storage.task_events()
            assert len(events) == 8  # each start created its task once

    asyncio.run(check())


def _as(url: str, role: str, password: str) -> str:
    credentials = url.split("://", 1)[1].split("@", 1)[0]
    return url.replace(credentials, f"{role}:{password}", 1)


async def test_the_storage_runs_under_a_role_that_owns_only_its_schema(fresh_database: str) -> None:
    """The README's least-privilege SQL, verbatim: the agent's role owns its schema, nothing else."""
    suffix = uuid.uuid4().hex[:8]
    agent, password = f"agent_{suffix}", uuid.uuid4().hex
    database = fresh_database.rsplit("/", 1)[1]
    await execute(
        fresh_database,
        f"CREATE ROLE {agent} LOGIN PASSWORD '{password}'",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {database} TO {agent}",
        f"CREATE SCHEMA did_agent AUTHORIZATION {agent}",
        "CREATE TABLE public.someone_elses (secret text)",
    )
    url = _as(fresh_database, agent, password)
    storage = PostgresStorage(url, schema="did_agent", run_migrations=True, pool_min=1, pool_max=2)
    try:
        async with storage:  # migrates its own schema on startup
            cid, tid = uuid.uuid4(), uuid.uuid4()
            message = {"message_id": str(uuid.uuid4()), "task_id": str(tid), "context_id": str(cid),
                       "kind": "message", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
            await storage.submit_task(cid, message, caller_did="did:caller")
            assert await storage.update_task_state_if(tid, "submitted", "working")
            await storage.update_task(tid, "completed", metadata={"ok": True})
            await storage.store_task_feedback(tid, {"rating": 5})
            await storage.save_webhook_config(tid, {"url": "https://hooks.example/x"})
            assert [t["id"] for t in await storage.list_tasks(owner_did="did:caller")] == [tid]
            assert len(await F.tasks_frame(storage)) == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await storage.fetch("SELECT * FROM public.someone_elses")
            await storage.clear_context(cid)
            assert await storage.count_tasks() == 0
    finally:
        await execute(fresh_database, "DROP SCHEMA did_agent CASCADE", f"DROP OWNED BY {agent}",
                       f"DROP ROLE {agent}")
