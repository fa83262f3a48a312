"""The embedded PostgreSQL (STORAGE_BACKEND=embedded): end to end, shared across processes, persistent.

One server for the module, in a temporary data directory. As root (CI) the wheel runs the server
as an unprivileged user; the tests check that too.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bindu_storage import create_storage
from bindu_storage.dsn import password_of
from bindu_storage.embedded import default_data_dir, embedded_database_url, stop_embedded_server
from bindu_storage.errors import InvalidValueError
from bindu_storage.settings import StorageSettings


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("embedded") / "pg"
    yield path
    stop_embedded_server(path)


@pytest.fixture
def embedded_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> StorageSettings:
    monkeypatch.setenv("STORAGE_BACKEND", "embedded")
    monkeypatch.setenv("STORAGE__EMBEDDED_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return StorageSettings(_env_file=None)  # type: ignore[call-arg]


def _message(task_id: uuid.UUID, context_id: uuid.UUID, text: str) -> dict:
    return {"message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
            "kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}]}


async def _postmaster_started(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
    finally:
        await conn.close()


_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    import asyncpg
    from bindu_storage import create_storage
    from bindu_storage.embedded import embedded_database_url

    async def main():
        storage = await create_storage()
        try:
            task = await storage.load_task(sys.argv[1])
            url = embedded_database_url()
            conn = await asyncpg.connect(url)
            started = str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
            await conn.close()
            print(json.dumps({"state": task["status"]["state"], "count": await storage.count_tasks(),
                              "url": url, "started": started}))
        finally:
            await storage.close()

    asyncio.run(main())
    """
)


async def test_embedded_backend_end_to_end_and_shared_with_another_process(
    embedded_env: StorageSettings, data_dir: Path
) -> None:
    storage = await create_storage(settings=embedded_env)
    try:
        cid, tid = uuid.uuid4(), uuid.uuid4()
        await storage.submit_task(cid, _message(tid, cid, "hello"))  # type: ignore[arg-type]
        await storage.update_task(tid, "completed", metadata={"agent": "embedded"})
        await storage.store_task_feedback(tid, {"rating": 5})
        assert (await storage.load_task(tid))["status"]["state"] == "completed"  # type: ignore[index]
        assert await storage.get_task_feedback(tid) == [{"rating": 5}]
    finally:
        await storage.close()

    url = embedded_database_url(data_dir)
    assert password_of(url) is None, "a local socket needs no password"
    assert url.startswith("postgresql://postgres@/bindu?host=")
    started = await _postmaster_started(url)

    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tid)], capture_output=True, text=True, timeout=120,
        env={**os.environ}, check=False,
    )
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["state"] == "completed" and seen["count"] >= 1
    assert seen["url"] == url
    assert seen["started"] == started, "the second process reused the running server"
    assert await _postmaster_started(url) == started, "and left it running for us"


async def test_data_survives_a_restart(embedded_env: StorageSettings, data_dir: Path) -> None:
    storage = await create_storage(settings=embedded_env)
    cid, tid = uuid.uuid4(), uuid.uuid4()
    try:
        await storage.submit_task(cid, _message(tid, cid, "keep me"))  # type: ignore[arg-type]
    finally:
        await storage.close()
    before = await _postmaster_started(embedded_database_url(data_dir))
    stop_embedded_server(data_dir)  # the last user lets go: the server stops
    await asyncio.sleep(0.1)
    assert not (data_dir / "postmaster.pid").exists()
    storage = await create_storage(settings=embedded_env)
    try:
        assert await storage.load_task(tid) is not None
    finally:
        await storage.close()
    assert await _postmaster_started(embedded_database_url(data_dir)) != before, "a new server, same data"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs the unprivileged server user")
async def test_as_root_the_server_runs_unprivileged(embedded_env: StorageSettings, data_dir: Path) -> None:
    embedded_database_url(data_dir)
    owner = data_dir.stat().st_uid
    assert owner != 0, "initdb refuses root: the data directory belongs to an unprivileged user"
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid == owner


def test_default_data_dir_is_per_user() -> None:
    path = default_data_dir()
    assert path.parts[-2:] == ("bindu-storage", "pg")
    assert str(path).startswith(str(Path.home()))


def test_bad_arguments(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InvalidValueError, match="is a file"):
        embedded_database_url(a_file)
    with pytest.raises(InvalidValueError, match="database must be a plain name"):
        embedded_database_url(tmp_path / "pg", database="bad; drop")
    with pytest.raises(InvalidValueError, match="data_dir must be a path"):
        embedded_database_url(42)  # type: ignore[arg-type]
