"""Adopting databases upstream Bindu made, and handing them back: with upstream itself.

Upstream Bindu (its PyPI package, in its own virtualenv: ``tests/upstream.py``) writes a
``public`` schema carrying its alembic version marker and an agent's ``did_…`` schema (a DID
longer than 63 characters, so the hashed schema name). Our ``PostgresStorage`` adopts both on
connect and writes more; every record reads back the same through both libraries; the
hand-back (``migrate.to_upstream``, the CLI's ``migrate to-upstream``) leaves schemas upstream's
own storage reads, including what we wrote, and keeps writing to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import asyncpg
import pandas as pd
import pytest
from conftest import execute

from bindu_storage import PostgresStorage
from bindu_storage.analysis import frames as F
from bindu_storage.analysis.diagnostics import Diagnostics, health_report
from bindu_storage.analysis.filters import find_tasks
from bindu_storage.errors import MigrationError
from bindu_storage.sqlnames import schema_for_did
from bindu_storage.storage import adopt, migrate, schema

DID = "did:bindu:acme_research_lab:literature-review-agent:5f0c2a7e-9d41-4b8e-a3c6-1e2f3a4b5c6d"
RACE_DID = "did:bindu:acme_research_lab:race-agent:0b9e8d7c-6a5f-4e3d-9c2b-1a0f9e8d7c6b"
OLD_DID = "did:bindu:acme_research_lab:old-agent"
ALICE, BOB = "did:bindu:alice", "did:bindu:bob"

UPSTREAM = r'''
import asyncio, json, sys, uuid
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from bindu.server.storage.postgres_storage import PostgresStorage
from bindu.utils.schema_manager import initialize_did_schema

ALICE, BOB = "did:bindu:alice", "did:bindu:bob"
# What upstream's alembic revisions leave in public besides the tables (20251207_0001 and
# 20250614_0001): a function keeping updated_at fresh and triggers calling it.
TRIGGERS = [
    "CREATE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$ BEGIN NEW.updated_at = NOW(); "
    "RETURN NEW; END; $$ LANGUAGE plpgsql",
    *[f"CREATE TRIGGER update_{t}_updated_at BEFORE UPDATE ON {t} FOR EACH ROW "
      "EXECUTE FUNCTION update_updated_at_column()" for t in ("tasks", "contexts", "webhook_configs")],
]


def uid(*parts):
    return uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts)))


def message(tag, task, ctx, n, text, role="user"):
    return {"message_id": uid(tag, task, "m", n), "task_id": task, "context_id": ctx, "kind": "message",
            "role": role, "parts": [{"kind": "text", "text": text}]}


def storage_for(url, target):
    if target == "public":
        return PostgresStorage(database_url=url)
    return PostgresStorage(database_url=url, did=target)


async def make_public(url):
    # Upstream's wheel and sdist do not ship its alembic scripts, so upstream's own code makes the
    # tables (initialize_did_schema: metadata.create_all) and alembic_version records its newest
    # revision, as `alembic upgrade head` in upstream's checkout would leave it.
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    await initialize_did_schema(engine, "public")
    async with engine.begin() as conn:
        await conn.execute(text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
        await conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('20260418_0001')"))
        for statement in TRIGGERS:
            await conn.execute(text(statement))
    await engine.dispose()


async def write(storage, tag):
    """Four tasks in three contexts: completed, failed, input-required, submitted (no owner)."""
    ctx_a, ctx_b, ctx_c = uid(tag, "ctx", "a"), uid(tag, "ctx", "b"), uid(tag, "ctx", "c")
    t = [uid(tag, "task", i) for i in range(4)]
    owners = [ALICE, ALICE, BOB, None]
    for i, task in enumerate(t):
        ctx = [ctx_a, ctx_a, ctx_b, ctx_c][i]
        await storage.submit_task(ctx, message(tag, task, ctx, 1, f"question {i} — ünïcode ✓"),
                                  caller_did=owners[i])
    await storage.update_task(t[0], "working", metadata={"agent": "upstream", "usage": {"tokens": 12}})
    await storage.update_task(
        t[0], "completed", new_messages=[message(tag, t[0], ctx_a, 2, "the answer", "agent")],
        new_artifacts=[{"artifact_id": uid(tag, "art", 0), "name": "answer",
                        "parts": [{"kind": "text", "text": "42"},
                                  {"kind": "data", "data": {"k": [1, 2.5]}}]}],
        metadata={"score": 0.75})
    await storage.update_task(t[1], "failed", metadata={"error": "boom", "agent": "upstream"})
    await storage.update_task(t[2], "input-required",
                              new_messages=[message(tag, t[2], ctx_b, 2, "which one?", "agent")])
    await storage.update_context(ctx_a, {"topic": "papers", "nested": {"depth": [1, {"x": None}]}})
    await storage.store_task_feedback(t[0], {"rating": 5, "feedback": "spot on", "metadata": {"via": "api"}})
    await storage.store_task_feedback(t[0], {"rating": 3, "feedback": "second thoughts"})
    await storage.store_task_feedback(t[1], {"rating": 1, "feedback": "broken"})
    await storage.save_webhook_config(t[2], {"id": uid(tag, "hook", 2), "url": "https://hooks.example/2",
                                             "token": "tok-2"})
    await storage.save_webhook_config(t[3], {"id": uid(tag, "hook", 3), "url": "https://hooks.example/3",
                                             "authentication": {"schemes": ["Bearer"]}})
    return [str(x) for x in t], [str(ctx_a), str(ctx_b), str(ctx_c)]


async def dump(storage, tasks, contexts):
    tasks = [uuid.UUID(x) for x in tasks]
    contexts = [uuid.UUID(x) for x in contexts]
    out = {
        "tasks": {str(x): await storage.load_task(x) for x in tasks},
        "list_tasks": await storage.list_tasks(),
        "alice": await storage.list_tasks(owner_did=ALICE),
        "by_context": {str(c): await storage.list_tasks_by_context(c) for c in contexts},
        "contexts": {str(c): await storage.load_context(c) for c in contexts},
        "feedback": {str(x): await storage.get_task_feedback(x) for x in tasks},
        "webhooks": {str(x): await storage.load_webhook_config(x) for x in tasks},
        "all_webhooks": {str(k): v for k, v in (await storage.load_all_webhook_configs()).items()},
        "owners": {str(x): await storage.get_task_owner(x) for x in tasks},
        "context_owners": {str(c): await storage.get_context_owner(c) for c in contexts},
        "count": await storage.count_tasks(),
    }
    return json.loads(json.dumps(out, default=str))


async def main(url, phase, spec):
    spec = json.loads(spec)
    result = {}
    if phase == "write":
        await make_public(url)
    for target, ids in spec.items():
        storage = storage_for(url, target)
        await storage.connect()
        try:
            entry = {"schema": storage.schema_name or "public"}
            if phase == "write":
                ids = dict(zip(("tasks", "contexts"), await write(storage, target)))
                entry.update(ids)
            if ids:
                entry["dump"] = await dump(storage, ids["tasks"], ids["contexts"])
            if phase == "write-after":
                ctx = uid(target, "ctx", "upstream-again")
                task = uid(target, "task", "upstream-again")
                await storage.submit_task(ctx, message(target, task, ctx, 1, "upstream again"),
                                          caller_did=BOB)
                await storage.update_task(task, "completed", metadata={"again": True})
                await storage.store_task_feedback(task, {"rating": 4})
                await storage.save_webhook_config(task, {"id": uid(target, "hook", "again"),
                                                         "url": "https://hooks.example/again"})
                entry["again"] = await dump(storage, [str(task)], [str(ctx)])
                entry["after_write"] = await dump(storage, ids["tasks"] + [str(task)], ids["contexts"])
            result[target] = entry
        finally:
            await storage.close()
    print("RESULT " + json.dumps(result, default=str))

asyncio.run(main(*sys.argv[1:]))
'''


# --- helpers ---------------------------------------------------------------------------------


async def fetch(url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of one query as dicts, on a fresh connection."""
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


RAW = {
    "tasks": "SELECT id, context_id, kind, state, state_timestamp, history::text, artifacts::text,"
             " metadata::text, owner_did, created_at, updated_at FROM {s}.tasks ORDER BY id",
    "contexts": "SELECT id, context_data::text, message_history::text, owner_did, created_at, updated_at"
                " FROM {s}.contexts ORDER BY id",
    "task_feedback": "SELECT id, task_id, feedback_data::text, created_at FROM {s}.task_feedback ORDER BY id",
    "webhook_configs": "SELECT task_id, config::text, created_at, updated_at FROM {s}.webhook_configs"
                       " ORDER BY task_id",
}
"""Every value upstream keeps, as stored (JSONB as its text)."""


async def raw(url: str, schema_name: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of the four upstream tables, byte for byte."""
    return {table: await fetch(url, sql.format(s=f'"{schema_name}"')) for table, sql in RAW.items()}


async def snapshot(url: str, schema_name: str) -> schema.SchemaSnapshot:
    """The catalog view of a schema."""
    conn = await asyncpg.connect(url)
    try:
        return await schema.introspect(conn, schema_name)
    finally:
        await conn.close()


def jsonable(value: Any) -> Any:
    """``value`` as JSON would carry it (UUIDs and datetimes as text)."""
    return json.loads(json.dumps(value, default=str))


def same_task(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """A task read by us equals the same task read by upstream (timestamps compared as instants)."""
    mine, other = jsonable(ours), dict(theirs)
    assert datetime.fromisoformat(mine["status"].pop("timestamp")) == datetime.fromisoformat(
        other["status"]["timestamp"]
    )
    other["status"] = {k: v for k, v in other["status"].items() if k != "timestamp"}
    assert mine == other


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rpartition("/")[0] + "/" + name


# --- the round trip (one upstream write for the whole module) ----------------------------------


@pytest.fixture(scope="module")
def world(upstream: Any, admin_url: str) -> Iterator[dict[str, Any]]:
    """A database upstream Bindu made and filled: public (with its version marker), an agent's
    schema, and two more agent schemas for the concurrency and older-revision tests."""
    name = f"bindu_adopt_{uuid.uuid4().hex[:8]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = _database_url(admin_url, name)
    try:
        spec = {"public": {}, DID: {}, RACE_DID: {}, OLD_DID: {}}
        written = upstream.result(UPSTREAM, url, "write", json.dumps(spec))
        yield {"url": url, "upstream": upstream, "written": written}
    finally:
        asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _ours_write(storage: PostgresStorage, tag: str, upstream_ctx: str) -> tuple[list[str], list[str]]:
    """What our storage writes into an adopted schema: into upstream's context and a new one."""
    ctx_new = uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/ours/ctx")
    mine = [uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/ours/{i}") for i in range(2)]

    def message(task: uuid.UUID, ctx: uuid.UUID, n: int, text: str, role: str = "user") -> dict[str, Any]:
        return {"message_id": str(uuid.uuid5(task, str(n))), "task_id": str(task), "context_id": str(ctx),
                "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}]}

    old_ctx = uuid.UUID(upstream_ctx)
    await storage.submit_task(old_ctx, message(mine[0], old_ctx, 1, "ours in upstream's context"),
                              caller_did=ALICE)
    await storage.update_task(mine[0], "completed",
                              new_messages=[message(mine[0], old_ctx, 2, "done", "agent")],
                              new_artifacts=[{"artifact_id": str(uuid.uuid5(mine[0], "a")), "name": "ours",
                                              "parts": [{"kind": "text", "text": "x"}]}],
                              metadata={"agent": "bindu-storage"})
    await storage.submit_task(ctx_new, message(mine[1], ctx_new, 1, "ours, new context"), caller_did=BOB)
    await storage.update_task(mine[1], "failed", metadata={"error": "ours"})
    await storage.update_context(ctx_new, {"topic": "ours"})
    await storage.store_task_feedback(mine[0], {"rating": 2, "feedback": "ours"})
    await storage.save_webhook_config(mine[1], {"id": str(uuid.uuid5(mine[1], "h")), "url": "https://h.example/o"})
    return [str(t) for t in mine], [str(ctx_new)]


@pytest.fixture(scope="module")
def round_trip(world: dict[str, Any]) -> dict[str, Any]:
    """Upstream wrote → we adopt and write more → upstream reads → we hand back → upstream reads
    and writes. Returns every reading along the way."""
    url, upstream, written = world["url"], world["upstream"], world["written"]
    targets = {"public": {"storage": {"schema": "public"}}, DID: {"storage": {"did": DID}}}
    state: dict[str, Any] = {}

    async def adopt_and_write() -> None:
        for target, how in targets.items():
            name = written[target]["schema"]
            before = await raw(url, name)
            storage = PostgresStorage(url, run_migrations=True, pool_min=1, pool_max=2, **how["storage"])
            await storage.connect()
            try:
                after = await raw(url, name)
                tasks, contexts = written[target]["tasks"], written[target]["contexts"]
                ours = {
                    "tasks": {t: await storage.load_task(uuid.UUID(t)) for t in tasks},
                    "contexts": {c: await storage.load_context(uuid.UUID(c)) for c in contexts},
                    "feedback": {t: await storage.get_task_feedback(uuid.UUID(t)) for t in tasks},
                    "webhooks": {t: await storage.load_webhook_config(uuid.UUID(t)) for t in tasks},
                    "owners": {t: await storage.get_task_owner(uuid.UUID(t)) for t in tasks},
                }
                new_tasks, new_contexts = await _ours_write(storage, target, contexts[0])
                mine = {t: await storage.load_task(uuid.UUID(t)) for t in new_tasks}
                revision = await migrate.current_revision(url, name)
                found = [str(t["id"]) for t in await find_tasks(storage, metadata={"agent": "upstream"})]
            finally:
                await storage.close()
            state[target] = {"schema": name, "before": before, "after": after, "ours": ours,
                             "new_tasks": new_tasks, "new_contexts": new_contexts, "mine": mine,
                             "revision": revision, "found": found,
                             "frames": await F.tasks_frame(url, schema=name),
                             "events": await F.events_frame(url, schema=name),
                             "drift": await _drift(url, name), "triggers": await _triggers(url, name)}

    asyncio.run(adopt_and_write())

    def spec() -> str:
        return json.dumps({
            t: {"tasks": written[t]["tasks"] + state[t]["new_tasks"],
                "contexts": written[t]["contexts"] + state[t]["new_contexts"]} for t in targets
        })

    adopted = upstream.result(UPSTREAM, url, "read", spec())
    public = asyncio.run(migrate.to_upstream(url))
    cli = subprocess.run(
        [sys.executable, "-m", "bindu_storage", "migrate", "to-upstream", "--did", DID,
         "--database-url", url],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("STORAGE", "DATABASE_URL"))},
    )
    assert cli.returncode == 0, cli.stderr
    markers = {t: asyncio.run(_version_table(url, state[t]["schema"])) for t in targets}
    triggers = {t: asyncio.run(_triggers(url, state[t]["schema"])) for t in targets}
    handed_back = upstream.result(UPSTREAM, url, "write-after", spec())
    return {"url": url, "written": written, "state": state, "adopted": adopted, "public": public,
            "cli": cli.stdout, "markers": markers, "triggers": triggers, "handed_back": handed_back}


async def _triggers(url: str, schema_name: str) -> list[str]:
    rows = await fetch(url, "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                            " JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY tgname", schema_name)
    return [r["tgname"] for r in rows]


async def _version_table(url: str, schema_name: str) -> list[str] | None:
    table = f'"{schema_name}".alembic_version'
    if not (await fetch(url, "SELECT to_regclass($1) IS NOT NULL AS present", table))[0]["present"]:
        return None
    return [r["version_num"] for r in await fetch(url, f"SELECT version_num FROM {table}")]


async def _drift(url: str, schema_name: str) -> dict[str, Any]:
    async with Diagnostics(url, schema=schema_name) as diag:
        drift = await diag.schema_drift()
        status = (await diag.migration_status()).iloc[0].to_dict()
    report = await health_report(url, schema=schema_name)
    findings = {f.check: f for f in report.findings}
    return {"drift": drift, "status": status, "migrations": findings["migrations"],
            "schema drift": findings["schema drift"]}


async def _status(url: str, schema_name: str) -> tuple[str | None, str]:
    async with Diagnostics(url, schema=schema_name) as diag:
        row = (await diag.migration_status()).iloc[0]
    return (None if pd.isna(row["database_revision"]) else row["database_revision"]), row["status"]


TARGETS = ["public", DID]


@pytest.mark.parametrize("target", TARGETS)
def test_adoption_keeps_every_upstream_value(round_trip: dict[str, Any], target: str) -> None:
    state = round_trip["state"][target]
    for table, rows in state["before"].items():  # byte for byte, created_at and updated_at included
        changed = [(k, a[k], b[k]) for a, b in zip(rows, state["after"][table], strict=True)
                   for k in a if a[k] != b[k]]
        assert not changed, (table, changed[:1])
    assert len(state["before"]["tasks"]) == 4 and len(state["before"]["task_feedback"]) == 3
    assert len(state["before"]["webhook_configs"]) == 2
    assert state["revision"] == migrate.head_revision()
    if target == DID:
        assert state["schema"] == schema_for_did(DID) and len(state["schema"]) == 63


@pytest.mark.parametrize("target", TARGETS)
def test_every_record_reads_the_same_through_both_libraries(round_trip: dict[str, Any], target: str) -> None:
    written = round_trip["written"][target]
    before = written["dump"]
    adopted = round_trip["adopted"][target]["dump"]
    ours = round_trip["state"][target]["ours"]
    new_tasks = round_trip["state"][target]["new_tasks"]
    tasks, contexts = written["tasks"], written["contexts"]
    # upstream reads its own records the same after adoption (and our writes beside them)
    for key in ("tasks", "contexts", "feedback", "webhooks", "owners"):
        assert {k: adopted[key][k] for k in before[key]} == before[key], key
    assert {k: adopted["all_webhooks"][k] for k in before["all_webhooks"]} == before["all_webhooks"]
    assert adopted["context_owners"] == {**before["context_owners"],
                                         **{c: adopted["context_owners"][c] for c in adopted["context_owners"]
                                            if c not in before["context_owners"]}}
    assert adopted["count"] == before["count"] + 2
    listed = [t["id"] for t in before["list_tasks"]]
    assert [t["id"] for t in adopted["list_tasks"]] == new_tasks[::-1] + listed
    assert [t["id"] for t in adopted["alice"]] == [new_tasks[0]] + [t["id"] for t in before["alice"]]
    # ... and we read exactly what upstream reads, for its records and for ours
    for task in tasks:
        same_task(ours["tasks"][task], before["tasks"][task])
        assert jsonable(ours["feedback"][task]) == before["feedback"][task]
        assert jsonable(ours["webhooks"][task]) == before["webhooks"][task]
        assert ours["owners"][task] == before["owners"][task]
    for context in contexts:
        assert jsonable(ours["contexts"][context]) == before["contexts"][context]
    for task, mine in round_trip["state"][target]["mine"].items():
        same_task(mine, adopted["tasks"][task])
    assert adopted["owners"][new_tasks[0]] == ALICE and adopted["owners"][new_tasks[1]] == BOB
    assert adopted["feedback"][new_tasks[0]] == [{"rating": 2, "feedback": "ours"}]
    assert adopted["webhooks"][new_tasks[1]]["url"] == "https://h.example/o"


@pytest.mark.parametrize("target", TARGETS)
def test_hand_back_leaves_what_upstream_reads_and_writes(round_trip: dict[str, Any], target: str) -> None:
    adopted = round_trip["adopted"][target]["dump"]
    back = round_trip["handed_back"][target]
    assert back["dump"] == adopted  # everything, our tasks included, reads the same after the hand-back
    again = back["again"]
    (task,) = again["tasks"]
    assert again["tasks"][task]["status"]["state"] == "completed"
    assert again["tasks"][task]["metadata"] == {"again": True}
    assert again["feedback"][task] == [{"rating": 4}] and again["owners"][task] == BOB
    assert back["after_write"]["count"] == adopted["count"] + 1
    schema_name = round_trip["state"][target]["schema"]
    assert round_trip["state"][target]["triggers"] == []  # adoption dropped upstream's updated_at triggers
    if target == "public":  # ... and the hand-back made them again where upstream's alembic had them
        assert round_trip["triggers"]["public"] == sorted(adopt.UPSTREAM_TRIGGERS.values())
        assert round_trip["markers"]["public"] == [adopt.UPSTREAM_HEAD]
        expected = migrate.HandBack("public", migrate.head_revision(), adopt.UPSTREAM_HEAD, True)
        assert round_trip["public"] == expected
    else:
        assert round_trip["markers"][target] is None  # upstream's did_ schemas have no version table
        assert round_trip["triggers"][target] == []
        assert f"(schema {schema_name}): handed back to upstream Bindu" in round_trip["cli"]
    live = asyncio.run(snapshot(round_trip["url"], schema_name))
    assert "task_events" not in live.tables
    assert {c.name for c in live.tables["tasks"]} >= {"owner_did", "history", "created_at"}
    assert "seq" not in {c.name for c in live.tables["tasks"]}
    assert "request_key" not in {c.name for c in live.tables["task_feedback"]}


@pytest.mark.parametrize("target", TARGETS)
def test_adopted_schemas_have_no_drift_and_read_as_ours(round_trip: dict[str, Any], target: str) -> None:
    state = round_trip["state"][target]
    diagnosed = state["drift"]
    assert diagnosed["drift"].empty and "note" not in diagnosed["drift"].attrs, diagnosed["drift"]
    assert diagnosed["status"]["status"] == "up to date"
    assert diagnosed["migrations"].status == "ok" and diagnosed["schema drift"].status == "ok"
    frame, events = state["frames"], state["events"]
    written = round_trip["written"][target]
    assert frame["id"].tolist() == written["tasks"] + state["new_tasks"]  # creation order, backfilled
    assert frame["state"].tolist() == ["completed", "failed", "input-required", "submitted",
                                       "completed", "failed"]
    assert frame["owner_did"].tolist()[:3] == [ALICE, ALICE, BOB] and frame["owner_did"].isna().iloc[3]
    assert frame["feedback_count"].tolist() == [2, 1, 0, 0, 1, 0]
    assert state["found"] == [written["tasks"][1], written["tasks"][0]]  # JSONB filters, newest first
    # upstream's tasks: one event each for the state they were adopted in; ours: every transition
    assert len(events) == 4 + 4
    first = events.drop_duplicates("task_id").set_index("task_id")
    assert first.loc[written["tasks"][0], "to_state"] == "completed"


# --- adoption on its own -----------------------------------------------------------------------


def test_four_storages_adopt_at_once_exactly_once(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    url, name = world["url"], world["written"][RACE_DID]["schema"]

    before = asyncio.run(raw(url, name))

    async def race() -> tuple[list[Any], Any]:
        storages = [PostgresStorage(url, did=RACE_DID, run_migrations=True, pool_min=1, pool_max=1)
                    for _ in range(4)]
        try:
            await asyncio.gather(*(s.connect() for s in storages))
            counts = [await s.count_tasks() for s in storages]
        finally:
            await asyncio.gather(*(s.close() for s in storages))
        assert await raw(url, name) == before
        return counts, await snapshot(url, name)

    with caplog.at_level(logging.INFO):
        counts, live = asyncio.run(race())
    assert counts == [4, 4, 4, 4]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("adopting schema" in m for m in messages) == 1, messages
    assert sum("Running upgrade 0004 -> 0005" in m for m in messages) == 1, messages
    assert schema.diff(schema.EXPECTED, live) == []

    async def again() -> tuple[schema.SchemaSnapshot, schema.SchemaSnapshot]:
        await migrate.upgrade(url, name)  # nothing left to do
        unchanged = await snapshot(url, name)
        await migrate.to_upstream(url, name)  # back to upstream, then adopted a second time
        assert await migrate.current_revision(url, name) is None
        await migrate.upgrade(url, name)
        return unchanged, await snapshot(url, name)

    assert asyncio.run(again()) == (live, live)
    assert asyncio.run(raw(url, name)) == before


def test_an_older_upstream_revision_is_adopted(world: dict[str, Any]) -> None:
    """Upstream's first revision: no owners, no webhook table, no foreign key, DESC indexes."""
    url, name = world["url"], world["written"][OLD_DID]["schema"]
    orphan_task, orphan_ctx = uuid.uuid4(), uuid.uuid4()
    asyncio.run(execute(
        url,
        f'SET search_path TO "{name}"',
        "DROP TABLE webhook_configs",
        "ALTER TABLE tasks DROP CONSTRAINT tasks_context_id_fkey",
        "ALTER TABLE tasks DROP COLUMN owner_did",
        "ALTER TABLE contexts DROP COLUMN owner_did",
        "DROP INDEX idx_tasks_created_at",
        "CREATE INDEX idx_tasks_created_at ON tasks (created_at DESC)",
        "CREATE INDEX idx_tasks_history_gin ON tasks USING gin (history)",
        "CREATE INDEX idx_contexts_history_gin ON contexts USING gin (message_history)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        "INSERT INTO alembic_version VALUES ('20251207_0001')",
        # upstream's first revision had no foreign key: a task whose context row is missing
        "INSERT INTO tasks (id, context_id, kind, state, state_timestamp, created_at, updated_at) VALUES "
        f"('{orphan_task}', '{orphan_ctx}', 'task', 'working', '2025-12-08 10:05Z', '2025-12-08 10:00Z',"
        " '2025-12-08 10:05Z')",
    ))
    with pytest.raises(MigrationError, match=r"by upstream Bindu \(revision 20251207_0001\): an upgrade"):
        asyncio.run(migrate.downgrade(url, name))
    assert asyncio.run(_status(url, name)) == ("20251207_0001", "upstream Bindu")
    rows = f'SELECT id, history::text, created_at FROM "{name}".tasks ORDER BY id'
    before = asyncio.run(fetch(url, rows))
    asyncio.run(migrate.upgrade(url, name))
    assert asyncio.run(migrate.current_revision(url, name)) == migrate.head_revision()
    assert schema.diff(schema.EXPECTED, asyncio.run(snapshot(url, name))) == []
    assert asyncio.run(fetch(url, rows)) == before
    backfilled = asyncio.run(fetch(url, f'SELECT created_at FROM "{name}".contexts WHERE id = $1',
                                   orphan_ctx))
    assert backfilled[0]["created_at"].isoformat() == "2025-12-08T10:00:00+00:00"


def test_a_foreign_revision_fails_clearly(fresh_database: str) -> None:
    asyncio.run(execute(
        fresh_database,
        "CREATE SCHEMA elsewhere",
        "CREATE TABLE elsewhere.alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
        "INSERT INTO elsewhere.alembic_version VALUES ('f00dcafe1234')",
    ))
    for attempt in (
        migrate.upgrade(fresh_database, "elsewhere"),
        migrate.to_upstream(fresh_database, "elsewhere"),
        PostgresStorage(fresh_database, schema="elsewhere", run_migrations=True).connect(),
    ):
        with pytest.raises(MigrationError) as refused:
            asyncio.run(attempt)
        assert "'f00dcafe1234'" in str(refused.value)
        assert "neither a bindu-storage revision" in str(refused.value)
        assert adopt.UPSTREAM_HEAD in str(refused.value)
    assert asyncio.run(fetch(fresh_database, "SELECT version_num FROM elsewhere.alembic_version")) == [
        {"version_num": "f00dcafe1234"}
    ]
    assert asyncio.run(snapshot(fresh_database, "elsewhere")).tables == {}


def test_hand_back_of_a_schema_of_ours_and_of_nothing(fresh_database: str) -> None:
    asyncio.run(migrate.upgrade(fresh_database, "did_ours", revision="0002"))
    done = asyncio.run(migrate.to_upstream(fresh_database, "did_ours"))
    assert done == migrate.HandBack("did_ours", "0002", None, True)
    assert asyncio.run(migrate.current_revision(fresh_database, "did_ours")) is None
    again = asyncio.run(migrate.to_upstream(fresh_database, "did_ours"))
    assert again == migrate.HandBack("did_ours", None, None, False)
    assert asyncio.run(_status(fresh_database, "did_ours")) == (None, "upstream Bindu")
    assert asyncio.run(_status(fresh_database, "did_nothing")) == (None, "not migrated")
    with pytest.raises(MigrationError, match="holds no Bindu tables"):
        asyncio.run(migrate.to_upstream(fresh_database, "did_nothing"))
    asyncio.run(migrate.upgrade(fresh_database, "did_ours"))  # re-adopted
    assert schema.diff(schema.EXPECTED, asyncio.run(snapshot(fresh_database, "did_ours"))) == []
