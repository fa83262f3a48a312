"""The README tells the truth: every Python block runs as it stands, and the demo output it
shows is what the demo prints.

The blocks run in order in one fresh interpreter, like cells of a notebook (top-level ``await``
allowed), with ``STORAGE_BACKEND=memory`` and ``DATABASE_URL`` naming the suite's throwaway
server for the blocks that read one (the diagnostics). The drop-in block needs upstream Bindu
(Python >= 3.12), so it runs in upstream's virtualenv (``tests/upstream.py``); the only seam is
that the server it starts is handed back instead of served, and one JSON-RPC call then goes
through its real lifespan.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)
UPSTREAM_BLOCKS = [b for b in BLOCKS if "from bindu." in b]
OUR_BLOCKS = [b for b in BLOCKS if "from bindu." not in b]

_RUNNER = r"""
import ast, asyncio, json, sys
import pandas as pd

async def main(blocks):
    namespace = {"__name__": "__readme__"}
    for n, source in enumerate(blocks):
        code = compile(source, f"README block {n + 1}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            await result
    frames = {k: len(v) for k, v in namespace.items() if isinstance(v, pd.DataFrame)}
    print("FRAMES " + json.dumps(frames))

asyncio.run(main(json.loads(sys.stdin.read())))
"""


def test_every_python_block_runs_as_it_stands(pg_url: str, tmp_path: Path) -> None:
    assert len(OUR_BLOCKS) >= 5 and len(UPSTREAM_BLOCKS) == 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE", "DATABASE_URL"))}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER], input=json.dumps(OUR_BLOCKS), capture_output=True, text=True,
        cwd=tmp_path, timeout=300, env={**env, "STORAGE_BACKEND": "memory", "DATABASE_URL": pg_url},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "completed 2 [{'rating': 5, 'comment': 'Great response!'}]" in done.stdout
    assert "schema='did_bindu_alice_agent', not connected" in done.stdout
    frames = json.loads(done.stdout.split("FRAMES ", 1)[1].splitlines()[0])
    assert frames["failed"] > 0 and frames["ratings"] > 0 and frames["lifecycle"] > 0  # nothing empty
    assert "pass" not in done.stdout  # the password of the example URL is never printed


_DROP_IN = r"""
import asyncio, json, os, sys, uuid
import httpx
import bindu.penguin.bindufy
bindufy_module = sys.modules["bindu.penguin.bindufy"]  # the attribute of that name is the function

served = {}
bindufy_module.start_uvicorn_server = lambda app, **kwargs: served.setdefault("app", app)
exec(compile(sys.stdin.read(), "README drop-in block", "exec"), {"__name__": "__readme__"})
app = served["app"]

async def main():
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    lifespan = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
        ctx, tid = str(uuid.uuid4()), str(uuid.uuid4())
        message = {"message_id": str(uuid.uuid4()), "context_id": ctx, "task_id": tid, "kind": "message",
                   "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
        await client.post("/", json={"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "message/send",
                                     "params": {"message": message, "configuration": {
                                         "accepted_output_modes": ["text/plain"]}}})
        for _ in range(500):
            request = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "tasks/get",
                       "params": {"task_id": tid}}
            got = (await client.post("/", json=request)).json()
            if got.get("result", {}).get("status", {}).get("state") == "completed":
                break
            await asyncio.sleep(0.01)
        storage = type(app._storage.storage).__module__
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await lifespan
    print("RESULT " + json.dumps({"task": got["result"], "storage": storage}))

asyncio.run(main())
"""


def test_the_drop_in_block_runs_upstreams_server_on_bindu_storage(upstream, tmp_path: Path) -> None:
    (block,) = UPSTREAM_BLOCKS
    done = upstream.run(_DROP_IN, input_text=block, env={"HOME": str(tmp_path)}, timeout=300)
    result = json.loads([x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
    assert result["storage"] == "bindu_storage.storage.memory"
    assert result["task"]["status"]["state"] == "completed"
    texts = [p.get("text") for a in result["task"]["artifacts"] for p in a["parts"]]
    assert "echo: hi" in texts


_DURATION = re.compile(r"\d+(\.\d+)? ?(µs|ms|s|min)\b")


def _normal(line: str) -> str:
    """The line with times replaced and runs of spaces or dashes collapsed (a column of times
    is as wide as its widest time, which varies from run to run)."""
    return re.sub(r"-{2,}", "-", re.sub(r" {2,}", "  ", _DURATION.sub("<time>", line.rstrip())))


def test_the_demo_output_shown_is_what_the_demo_prints(tmp_path: Path) -> None:
    shown = README.split("prints what you came for", 1)[1].split("```\n", 2)[1]
    expected = [_normal(line) for line in shown.splitlines() if line.strip() not in ("", "...")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE", "DATABASE_URL"))}
    done = subprocess.run([sys.executable, "-m", "bindu_storage", "demo"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = {_normal(line) for line in done.stdout.splitlines()}
    assert len(expected) >= 10
    assert [line for line in expected if line not in printed] == []
