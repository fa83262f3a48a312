"""Upstream Bindu's real agent server runs on bindu-storage through ``integrations.bindu.install()``.

Each backend gets one script run in upstream's Python 3.12 virtualenv (``tests/upstream.py``):
``bindufy(...)`` builds upstream's real ``BinduApplication`` for an echo agent (with a real DID),
the app's real lifespan runs (upstream's storage factory, scheduler, TaskManager and
ManifestWorker), and JSON-RPC requests go through ``httpx.ASGITransport`` with no network. Two
callers are told apart the way upstream's auth middleware does it (``request.state.user``'s
``client_id``). The only seams: ``start_uvicorn_server`` hands the app back instead of serving
it, a pass-through spy records how ``ManifestWorker.run_task`` ended, and a tiny ASGI wrapper
sets the caller identity that upstream's Hydra middleware would set.

The script checks what upstream answers and what bindu-storage stored, and reports both; the
PostgreSQL test then reads the agent's ``did_…`` schema directly.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "2026.20.3"  # the oldest upstream release this file was run against (2026.36.7 by default)

SCRIPT = r'''
import asyncio, importlib, json, logging, sys, tempfile, uuid

BACKEND, DATABASE_URL, DB_PASSWORD, HOOK_TOKEN = sys.argv[1:5]

import httpx
import bindu_storage
from bindu_storage.integrations import bindu as integration
import bindu.server.storage as up_storage_pkg
import bindu.server.storage.factory as up_factory
from bindu.server.storage.base import OwnershipError as UpOwnershipError, Storage as UpStorage
from bindu.settings import app_settings
from bindu.utils.schema_manager import sanitize_did_for_schema

bindufy_module = importlib.import_module("bindu.penguin.bindufy")
worker_module = importlib.import_module("bindu.server.workers.manifest_worker")

mismatches = []
def expect(name, actual, expected):
    if actual != expected:
        mismatches.append(f"{name}: got {actual!r}, expected {expected!r}")

# our own log records (the no-op warnings), to check them and that no secret reaches them
records = []
class Collect(logging.Handler):
    def emit(self, record):
        records.append(self.format(record))
ours = logging.getLogger("bindu_storage")
ours.addHandler(Collect())
ours.setLevel(logging.DEBUG)

# --- install: idempotent, replaces the factory and its re-export ----------------------------
UP_CREATE, UP_CLOSE = up_factory.create_storage, up_factory.close_storage
expect("installed before install()", integration.is_installed(), False)
integration.install()
patched_once = len(integration._patched)
integration.install()
expect("second install() patches nothing more", len(integration._patched), patched_once)
expect("factory.create_storage replaced", up_factory.create_storage, integration.create_storage)
expect("factory.close_storage replaced", up_factory.close_storage, integration.close_storage)
expect("bindu.server.storage.create_storage replaced", up_storage_pkg.create_storage,
       integration.create_storage)
expect("bindu.server.storage.close_storage replaced", up_storage_pkg.close_storage,
       integration.close_storage)

# --- the agent: an echo handler that can be held mid-work and can fail ----------------------
started, gates = {}, {}
def gate(text):
    started[text], gates[text] = asyncio.Event(), asyncio.Event()

async def handler(messages):
    last = messages[-1]  # A2A parts; releases before 2026.2x handed agents {role, content}
    text = last["parts"][0]["text"] if "parts" in last else last["content"]
    if text in gates:
        started[text].set()
        await gates[text].wait()
    if "boom" in text:
        raise RuntimeError("the agent failed on purpose")
    return f"echo: {text}"

# upstream's run_task, recorded (it still runs in full)
run_outcomes = {}
original_run_task = worker_module.ManifestWorker.run_task
async def recorded_run_task(self, params):
    try:
        await original_run_task(self, params)
    except BaseException as exc:
        run_outcomes[str(params["task_id"])] = type(exc).__name__
        raise
    run_outcomes[str(params["task_id"])] = "returned"
worker_module.ManifestWorker.run_task = recorded_run_task

captured = {}
bindufy_module.start_uvicorn_server = lambda app, **kwargs: captured.setdefault("app", app)
storage_config = {"type": "postgres", "postgres_url": DATABASE_URL} if BACKEND == "postgres" else {
    "type": "memory"}
manifest = bindufy_module.bindufy(
    {"author": "tests@example.com", "name": "echo-agent", "description": "echoes",
     "deployment": {"url": "http://127.0.0.1:3773", "expose": False},
     "capabilities": {"push_notifications": True}, "storage": storage_config},
    handler, key_dir=tempfile.mkdtemp(),
)
app = captured["app"]
DID = manifest.did_extension.did

# callers as upstream's auth middleware would identify them
app_settings.auth.enabled = True
app_settings.auth.require_permissions = False
# options the lifespan leaves alone: they must reach bindu-storage's backend
app_settings.storage.postgres_pool_max = 4
app_settings.storage.postgres_command_timeout = 7
async def with_caller(scope, receive, send):
    if scope["type"] == "http":
        caller = dict(scope["headers"]).get(b"x-caller")
        if caller:
            scope = {**scope, "state": {**scope.get("state", {}), "user": {"client_id": caller.decode()}}}
    await app(scope, receive, send)

class Lifespan:
    """Runs the app's real ASGI lifespan (startup on enter, shutdown on exit)."""
    async def __aenter__(self):
        self.inbox, self.outbox = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.create_task(app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message
    async def __aexit__(self, *exc):
        await self.inbox.put({"type": "lifespan.shutdown"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.shutdown.complete", message
        await self.task

ALICE, BOB = "did:bindu:alice", "did:bindu:bob"
NOT_FOUND = -32001

async def main():
    out = {"did": DID, "schema": sanitize_did_for_schema(DID)}
    transport = httpx.ASGITransport(app=with_caller)
    async with Lifespan(), httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        storage = app._storage
        inner = storage.storage
        expect("lifespan storage is the adapter", type(storage).__name__, "BinduStorage")
        expect("adapter is upstream's Storage", isinstance(storage, UpStorage), True)
        expect("backend", type(inner).__name__,
               "PostgresStorage" if BACKEND == "postgres" else "InMemoryStorage")
        if BACKEND == "postgres":
            expect("schema is upstream's for the DID", inner.schema, out["schema"])
            expect("upstream's options", (inner.pool_max, inner.command_timeout), (4, 7))
            expect("migrations run for a DID though the lifespan turned them off",
                   (app_settings.storage.run_migrations_on_startup, inner.run_migrations), (False, True))
            without_did = integration.storage_settings(app_settings.storage)
            expect("without a DID upstream's flag decides", without_did.run_migrations_on_startup, False)

        async def rpc(caller, method, params):
            body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
            response = await client.post("/", json=body, headers={"x-caller": caller})
            return response.json()

        def message(ctx, tid, text):
            return {"message": {"message_id": str(uuid.uuid4()), "context_id": str(ctx),
                                "task_id": str(tid), "kind": "message", "role": "user",
                                "parts": [{"kind": "text", "text": text}]},
                    "configuration": {"accepted_output_modes": ["text/plain"]}}

        async def send(caller, ctx, tid, text):
            return await rpc(caller, "message/send", message(ctx, tid, text))

        async def state(tid):
            task = await inner.load_task(tid)
            return task and task["status"]["state"]

        async def settle(tid, states=("completed", "failed", "canceled"), timeout=30.0):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (current := await state(tid)) not in states:
                assert loop.time() < deadline, f"task {tid} stuck in {current}"
                await asyncio.sleep(0.01)
            return current

        def error_code(reply):
            return reply.get("error", {}).get("code")

        # --- message/send and tasks/get --------------------------------------------------------
        a1, b1 = uuid.uuid4(), uuid.uuid4()
        t1, t2, t3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        reply = await send(ALICE, a1, t1, "hello")
        expect("message/send answers the submitted task",
               (reply["result"]["id"], reply["result"]["status"]["state"]), (str(t1), "submitted"))
        expect("t1 completes", await settle(t1), "completed")
        got = (await rpc(ALICE, "tasks/get", {"task_id": str(t1)}))["result"]
        expect("tasks/get: the echo artifact", [p["text"] for a in got["artifacts"] for p in a["parts"]],
               ["echo: hello"])
        expect("tasks/get: user and agent messages", [m["role"] for m in got["history"]], ["user", "agent"])
        await send(ALICE, a1, t2, "second")
        await send(BOB, b1, t3, "bob here")
        expect("t2 completes", await settle(t2), "completed")
        expect("t3 completes", await settle(t3), "completed")
        # message/stream: upstream's SSE loop polls load_task until the task is terminal
        ts = uuid.uuid4()
        body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "message/stream",
                "params": message(b1, ts, "streamed")}
        response = await client.post("/", json=body, headers={"x-caller": BOB})
        events = [json.loads(line[len("data: "):]) for line in response.text.splitlines()
                  if line.startswith("data: ")]
        statuses = [(e["status"]["state"], e["final"]) for e in events if e["kind"] == "status-update"]
        expect("message/stream status events", statuses[-1], ("completed", True))
        expect("message/stream sent the artifact",
               [p["text"] for e in events if e["kind"] == "artifact-update" for p in e["artifact"]["parts"]],
               ["echo: streamed"])

        # --- two callers never see or extend each other's tasks or contexts --------------------
        expect("bob cannot get alice's task", error_code(await rpc(BOB, "tasks/get", {"task_id": str(t1)})),
               NOT_FOUND)
        t4 = uuid.uuid4()
        reply = await send(BOB, a1, t4, "into alice's context")
        expect("bob submitting into alice's context: upstream's context-not-found",
               (reply.get("error", {}).get("code"), reply.get("error", {}).get("message")),
               (NOT_FOUND, "Context not found"))
        expect("bob's task was not created", await inner.load_task(t4), None)
        expect("alice's context keeps its owner", await inner.get_context_owner(a1), ALICE)
        listed = (await rpc(ALICE, "tasks/list", {}))["result"]
        expect("tasks/list alice", sorted(t["id"] for t in listed), sorted([str(t1), str(t2)]))
        listed = (await rpc(BOB, "tasks/list", {}))["result"]
        expect("tasks/list bob", sorted(t["id"] for t in listed), sorted([str(t3), str(ts)]))
        contexts = (await rpc(ALICE, "contexts/list", {}))["result"]
        expect("contexts/list alice", [(c["context_id"], c["task_count"]) for c in contexts], [(str(a1), 2)])
        expect("contexts/list entries in upstream's shape", sorted(contexts[0]), ["context_id", "task_count",
                                                                                 "task_ids"])
        contexts = (await rpc(BOB, "contexts/list", {}))["result"]
        expect("contexts/list bob", [(c["context_id"], c["task_count"]) for c in contexts], [(str(b1), 2)])

        # --- tasks/feedback -------------------------------------------------------------------
        feedback = {"task_id": str(t1), "feedback": "spot on", "rating": 5, "metadata": {"channel": "api"}}
        reply = await rpc(ALICE, "tasks/feedback", feedback)
        expect("tasks/feedback accepted", reply.get("result", {}).get("task_id"), str(t1))
        expect("bob cannot rate alice's task",
               error_code(await rpc(BOB, "tasks/feedback", {**feedback, "rating": 1})), NOT_FOUND)
        stored = await inner.get_task_feedback(t1)
        expect("feedback stored once", [(f["rating"], f["feedback"], f["task_id"]) for f in stored],
               [(5, "spot on", str(t1))])

        # --- push-notification configs: set / get / list / delete ------------------------------
        config_id = uuid.uuid4()
        # TEST-NET-1, never routed; an IP literal needs no DNS, and older releases refuse loopback.
        # Nothing is sent to it: t1 is finished, and no lifecycle event follows.
        push = {"id": str(config_id), "url": "https://192.0.2.1/hook", "token": HOOK_TOKEN}
        reply = await rpc(ALICE, "tasks/pushNotificationConfig/set",
                          {"id": str(t1), "push_notification_config": push, "long_running": True})
        expect("push config set", reply.get("result", {}).get("push_notification_config", {}).get("url"),
               push["url"])
        saved = await inner.load_webhook_config(t1)
        expect("long-running push config persisted", (saved or {}).get("url"), push["url"])
        expect("persisted configs come back with upstream's UUID ids",
               {k: v["id"] for k, v in (await storage.load_all_webhook_configs()).items()}, {t1: config_id})
        expect("bob cannot set a config on alice's task", error_code(await rpc(
            BOB, "tasks/pushNotificationConfig/set",
            {"id": str(t1), "push_notification_config": push})), NOT_FOUND)
        reply = await rpc(ALICE, "tasks/pushNotificationConfig/get", {"task_id": str(t1)})
        expect("push config get", reply.get("result", {}).get("id"), str(t1))
        expect("bob cannot get it", "error" in await rpc(BOB, "tasks/pushNotificationConfig/get",
                                                          {"task_id": str(t1)}), True)
        reply = await rpc(ALICE, "tasks/pushNotificationConfig/list", {"id": str(t1)})
        expect("push config list", reply.get("result", {}).get("id"), str(t1))
        expect("bob cannot delete it", "error" in await rpc(
            BOB, "tasks/pushNotificationConfig/delete",
            {"id": str(t1), "push_notification_config_id": str(config_id)}), True)
        reply = await rpc(ALICE, "tasks/pushNotificationConfig/delete",
                          {"id": str(t1), "push_notification_config_id": str(config_id)})
        expect("push config delete", reply.get("result", {}).get("id"), str(t1))
        expect("push config gone", "error" in await rpc(ALICE, "tasks/pushNotificationConfig/get",
                                                         {"task_id": str(t1)}), True)

        # --- the cancel race with upstream's ManifestWorker ------------------------------------
        # t5 is canceled while the agent works on it, t6 while it waits in the queue behind t5,
        # t7 while the agent works and then fails; t8 must still complete afterwards.
        a2 = uuid.uuid4()
        t5, t6, t7, t8, t9 = (uuid.uuid4() for _ in range(5))
        gate("slow"), gate("slow boom")
        await send(ALICE, a2, t5, "slow")
        await asyncio.wait_for(started["slow"].wait(), 30)
        await send(ALICE, a2, t6, "queued")
        reply = await rpc(ALICE, "tasks/cancel", {"task_id": str(t5)})
        expect("cancel during work", reply.get("result", {}).get("status", {}).get("state"), "canceled")
        reply = await rpc(ALICE, "tasks/cancel", {"task_id": str(t6)})
        expect("cancel while queued", reply.get("result", {}).get("status", {}).get("state"), "canceled")
        expect("bob cannot cancel alice's task",
               error_code(await rpc(BOB, "tasks/cancel", {"task_id": str(t5)})), NOT_FOUND)
        gates["slow"].set()  # the agent finishes; upstream now writes "completed" + artifacts
        await send(ALICE, a2, t7, "slow boom")
        await asyncio.wait_for(started["slow boom"].wait(), 30)
        reply = await rpc(ALICE, "tasks/cancel", {"task_id": str(t7)})
        expect("cancel during failing work", reply["result"]["status"]["state"], "canceled")
        gates["slow boom"].set()  # the agent raises; upstream now writes "failed" (twice)
        await send(ALICE, a2, t8, "after")
        expect("the next task completes", await settle(t8), "completed")
        await send(ALICE, a2, t9, "boom")
        expect("an agent failure still fails its task", await settle(t9), "failed")
        for name, tid in (("t5", t5), ("t6", t6), ("t7", t7)):
            task = await inner.load_task(tid)
            expect(f"{name} stays canceled", task["status"]["state"], "canceled")
            expect(f"{name} got no late artifacts", task.get("artifacts", []), [])
            expect(f"{name} got no late messages", [m["role"] for m in task["history"]], ["user"])
            events = [(e["from_state"], e["to_state"]) for e in await inner.task_events(tid)]
            expect(f"{name} ends with the cancel", events[-1][1], "canceled")
        expect("run_task outcomes", {k: run_outcomes.get(str(v)) for k, v in
                                     (("t5", t5), ("t6", t6), ("t7", t7), ("t8", t8))},
               {"t5": "returned", "t6": "ValueError", "t7": "RuntimeError", "t8": "returned"})
        reply = await rpc(ALICE, "tasks/cancel", {"task_id": str(t8)})
        expect("cancel after completion refused", "cannot be canceled in 'completed'" in reply.get(
            "error", {}).get("message", ""), True)
        expect("t8 stays completed", await state(t8), "completed")
        ignored = [r for r in records if "ignored update_task" in r]
        expect("late writes logged as ignored", len(ignored) >= 3, True)

        # --- the adapter answers the way upstream's handlers expect ----------------------------
        try:
            await storage.submit_task(a1, {"message_id": str(uuid.uuid4()), "task_id": str(uuid.uuid4()),
                                           "context_id": str(a1), "kind": "message", "role": "user",
                                           "parts": [{"kind": "text", "text": "x"}]}, caller_did=BOB)
            expect("foreign submit raises", False, True)
        except UpOwnershipError as err:
            expect("OwnershipError is ours too", isinstance(err, bindu_storage.OwnershipError), True)
        late = [{"artifact_id": str(uuid.uuid4()), "parts": [{"kind": "text", "text": "late"}]}]
        unchanged = await storage.update_task(t5, "completed", new_artifacts=late, metadata={"x": 1})
        expect("update_task on a terminal task returns it unchanged",
               (unchanged["status"]["state"], unchanged.get("artifacts", []), unchanged.get("metadata", {})),
               ("canceled", [], {}))
        cas = storage.update_task_state_if
        expect("CAS on an unknown task", await cas(uuid.uuid4(), "working", "canceled"), False)
        expect("CAS off a terminal state", await cas(t5, "canceled", "working"), False)
        try:
            await storage.clear_context(uuid.uuid4())
            expect("clearing an unknown context raises", False, True)
        except ValueError as err:
            expect("unknown context error is ours", isinstance(err, bindu_storage.StorageError), True)

        # --- contexts/clear --------------------------------------------------------------------
        expect("bob cannot clear alice's context",
               error_code(await rpc(BOB, "contexts/clear", {"contextId": str(a1)})), NOT_FOUND)
        reply = await rpc(ALICE, "contexts/clear", {"contextId": str(a1)})
        expect("contexts/clear", "cleared" in reply.get("result", {}).get("message", ""), True)
        reply = await rpc(ALICE, "tasks/get", {"task_id": str(t1)})
        expect("cleared task gone", error_code(reply), NOT_FOUND)
        expect("cleared: tasks", [await inner.load_task(t) for t in (t1, t2)], [None, None])
        expect("cleared: feedback", await inner.get_task_feedback(t1), None)
        expect("cleared: webhook config", await inner.load_webhook_config(t1), None)
        expect("bob's context untouched", await state(t3), "completed")

        out["tasks"] = {name: str(tid) for name, tid in (("t3", t3), ("t5", t5), ("t6", t6), ("t7", t7),
                                                          ("t8", t8), ("t9", t9))}
        out["records"] = [
            {"id": str(r["task"]["id"]), "state": r["task"]["status"]["state"], "owner": r["owner_did"]}
            for r in await inner.task_records()
        ]
        out["inner"] = inner

    if BACKEND == "postgres":
        expect("lifespan shutdown closed the pool", out["inner"].pool, None)
    del out["inner"]

    # --- uninstall restores upstream, installed() installs for a block ---------------------------
    integration.uninstall()
    expect("uninstalled", integration.is_installed(), False)
    expect("factory.create_storage restored", up_factory.create_storage, UP_CREATE)
    expect("factory.close_storage restored", up_factory.close_storage, UP_CLOSE)
    expect("package re-export restored", up_storage_pkg.create_storage, UP_CREATE)
    with integration.installed():
        expect("installed() installs", up_factory.create_storage, integration.create_storage)
    expect("installed() restores", up_factory.create_storage, UP_CREATE)

    secrets = [s for s in (HOOK_TOKEN, DB_PASSWORD) if s]
    expect("no secret in bindu-storage's log records",
           [s for s in secrets for r in records if s in r], [])
    out["mismatches"] = mismatches
    print("RESULT " + json.dumps(out))

asyncio.run(main())
'''


def _run(upstream: Any, backend: str, url: str = "", password: str = "") -> dict[str, Any]:
    """Run the script; check its findings and that no secret reached its output or logs."""
    token = f"hook-token-{uuid.uuid4().hex}"
    done = upstream.run(SCRIPT, backend, url, password, token, timeout=180)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the script reported nothing:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["mismatches"] == [], "\n".join(result["mismatches"])
    for secret in filter(None, (token, password)):
        assert secret not in done.stdout and secret not in done.stderr
    return result


def _check(result: dict[str, Any]) -> dict[str, str]:
    states = {r["id"]: r["state"] for r in result["records"]}
    tasks = result["tasks"]
    assert [states[tasks[n]] for n in ("t3", "t5", "t6", "t7", "t8", "t9")] == [
        "completed", "canceled", "canceled", "canceled", "completed", "failed",
    ]
    return tasks


def test_upstream_bindu_server_on_memory(upstream: Any) -> None:
    _check(_run(upstream, "memory"))


def test_upstream_bindu_server_on_postgres(upstream: Any, fresh_database: str) -> None:
    password = re.match(r"postgres(?:ql)?://[^:/@]*:([^@]*)@", fresh_database)
    result = _run(upstream, "postgres", fresh_database, password.group(1) if password else "")
    tasks = _check(result)
    schema = result["schema"]
    assert schema.startswith("did_") and len(schema) <= 63

    async def stored() -> tuple[list[Any], list[Any], list[str]]:
        conn = await asyncpg.connect(fresh_database)
        try:
            rows = await conn.fetch(f'SELECT id::text, state, owner_did FROM "{schema}".tasks')
            events = await conn.fetch(
                f'SELECT from_state, to_state FROM "{schema}".task_events'
                " WHERE task_id = $1::uuid ORDER BY id",
                tasks["t5"],
            )
            public = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        return list(rows), list(events), [r["table_name"] for r in public]

    rows, events, public = asyncio.run(stored())
    by_id = {r["id"]: (r["state"], r["owner_did"]) for r in rows}
    assert by_id[tasks["t3"]] == ("completed", "did:bindu:bob")
    assert by_id[tasks["t5"]] == ("canceled", "did:bindu:alice")
    assert by_id[tasks["t8"]] == ("completed", "did:bindu:alice")
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "submitted"), ("submitted", "working"), ("working", "canceled"),
    ]
    assert public == []  # everything went into the agent's own schema


def test_bindu_stays_optional() -> None:
    """Only ``integrations/bindu.py`` imports bindu; nothing imports ``integrations``; an extra pins it."""
    package = ROOT / "bindu_storage"
    for path in package.rglob("*.py"):
        text = path.read_text()
        if path != package / "integrations" / "bindu.py":
            assert not re.search(r"^\s*(from|import)\s+bindu(\.|\s|$)", text, re.M), path
        if path.parent != package / "integrations":
            assert "integrations" not in re.findall(r"^\s*(?:from|import)\s+\S*", text, re.M), path
            assert not re.search(r"^\s*(from|import)\s+bindu_storage\.integrations", text, re.M), path
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [r for r in extras["bindu"] if r.split(">")[0].split(";")[0].strip() == "bindu"] == [
        f"bindu>={FLOOR}; python_version >= '3.12'"
    ]


@pytest.mark.parametrize("module", ["bindu_storage", "bindu_storage.integrations"])
def test_importing_the_package_does_not_import_bindu(module: str) -> None:
    code = f"import sys, {module}; assert not [m for m in sys.modules if m.split('.')[0] == 'bindu']"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
