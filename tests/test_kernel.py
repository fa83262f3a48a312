"""The async API and the sync facade inside a real Jupyter kernel (nbclient), on both backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from conftest import truncate
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

SETUP = """
import asyncio, os, uuid
import bindu_storage.analysis.notebook as bn
from bindu_storage import create_storage

def message(task_id, context_id, text):
    return {"message_id": str(uuid.uuid4()), "context_id": str(context_id), "task_id": str(task_id),
            "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}]}
"""

ASYNC_API = """
astore = await create_storage()  # top-level await on the kernel's own loop
ctx, tid = uuid.uuid4(), uuid.uuid4()
await astore.submit_task(ctx, message(tid, ctx, "async hello"))
task = await astore.update_task(tid, "completed", metadata={"via": "async"})
print("async:", type(astore).__name__, task["status"]["state"], await astore.count_tasks())
"""

SYNC_FIRST = """
st = bn.open_storage()  # the same settings, through the facade
pool = getattr(st.storage, "pool", None)
for i in range(3):
    t = uuid.uuid4()
    st.submit_task(ctx, message(t, ctx, f"sync {i}"))
    st.update_task(t, "working", metadata={"via": "sync", "i": i})
print("sync1:", st.count_tasks(), [t["metadata"]["i"] for t in st.find_tasks(metadata={"via": "sync"})])
"""

SYNC_AGAIN = """
df = st.tasks_frame(states=["working"])
print("sync2:", len(df), [int(i) for i in df["metadata.i"]], getattr(st.storage, "pool", None) is pool)
df[["id", "state"]].shape
"""

BOTH = """
await asyncio.sleep(0)
print("loops:", bn.background_loop() is not asyncio.get_running_loop(), await astore.count_tasks(),
      st.count_tasks("completed"))
"""

CLOSE = """
st.close()
await astore.close()
print("closed:", st.closed)
"""


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The python3 kernelspec, installed for this interpreter when missing."""
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
        KernelSpecManager().get_kernel_spec("python3")
    return "python3"


def _run_notebook(kernel: str, env: dict[str, str], cwd: Path) -> list[str]:
    nb = nbformat.v4.new_notebook()
    sources = (SETUP, ASYNC_API, SYNC_FIRST, SYNC_AGAIN, BOTH, CLOSE)
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=120, startup_timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", output
            if output["output_type"] == "stream":
                assert output["name"] == "stdout", output["text"]  # no warnings on stderr
                texts.append(output["text"].strip())
            elif output["output_type"] == "execute_result":
                texts.append(output["data"]["text/plain"])
    return texts


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE", "DATABASE_URL"))}
    return {**env, **extra}


def test_memory_backend_in_a_kernel(kernel_name: str, tmp_path: Path) -> None:
    outputs = _run_notebook(kernel_name, _env(STORAGE_BACKEND="memory"), tmp_path)
    assert outputs == [
        "async: InMemoryStorage completed 1",
        "sync1: 3 [2, 1, 0]",  # the facade's storage is its own in-memory store
        "sync2: 3 [0, 1, 2] True",
        "(3, 2)",
        "loops: True 1 0",
        "closed: True",
    ]


def test_postgres_in_a_kernel(kernel_name: str, pg_url: str, tmp_path: Path) -> None:
    asyncio.run(truncate(pg_url))
    env = _env(STORAGE_BACKEND="postgres", DATABASE_URL=pg_url, STORAGE__RUN_MIGRATIONS_ON_STARTUP="false")
    outputs = _run_notebook(kernel_name, env, tmp_path)
    assert outputs == [
        "async: PostgresStorage completed 1",
        "sync1: 4 [2, 1, 0]",  # one database: the async cell's task is there too
        "sync2: 3 [0, 1, 2] True",
        "(3, 2)",
        "loops: True 4 1",
        "closed: True",
    ]
    password = urlsplit(pg_url).password
    assert password and not any(password in text for text in outputs)
