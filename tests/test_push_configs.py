"""Push-notification configs by id (issue 12, item 2), proved on both backends.

The rules are the "Push-notification configs" section of ``storage/base.py``: many configs per
task keyed by config id (default: the task id), owner-scoped, upstream's single-config methods
kept, and optional encryption at rest of token and credentials (``storage/push_configs.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from conftest import POOLED_BACKENDS, execute, open_backend, postgres_storage, truncate
from cryptography.fernet import Fernet

from bindu_storage import InMemoryStorage, OwnershipError, Storage, TaskNotFoundError
from bindu_storage.errors import EncryptionKeyError, InvalidTypeError, InvalidValueError, TaskOwnershipError
from bindu_storage.storage import migrate
from bindu_storage.storage.push_configs import make_cipher

KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()


@pytest.fixture(params=POOLED_BACKENDS)
async def storage(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[Storage]:
    """Each backend in turn, PostgreSQL also through PgBouncer in transaction mode."""
    async with open_backend(request, pg_url) as opened:
        yield opened


def rekey(storage: Storage, key: str | None) -> None:
    """Use another key from now on, as a restart with another STORAGE__PUSH_CONFIG_KEY would."""
    storage._push_cipher = make_cipher(key)  # type: ignore[attr-defined]


async def new_task(storage: Storage, caller_did: str | None = None) -> UUID:
    task_id = uuid.uuid4()
    message = {"message_id": str(uuid.uuid4()), "task_id": str(task_id), "role": "user",
               "parts": [{"kind": "text", "text": "hi"}], "kind": "message"}
    await storage.submit_task(uuid.uuid4(), message, caller_did)  # type: ignore[arg-type]
    return task_id


def hook(config_id: str | None, n: int = 0, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"url": f"https://hooks.example/{n}", "token": f"tok-{n}", **extra}
    if config_id is not None:
        config["id"] = config_id
    return config


# --- many per task, by id --------------------------------------------------------------------


async def test_many_configs_per_task_by_id(storage: Storage) -> None:
    tid = await new_task(storage)
    assert await storage.set_push_config(tid, hook("a", 1)) == "a"
    assert await storage.set_push_config(tid, hook("b", 2)) == "b"
    assert await storage.set_push_config(tid, hook(None, 3)) == str(tid)  # default id: the task's
    assert await storage.list_push_configs(tid) == [hook("a", 1), hook("b", 2), hook(None, 3)]
    assert await storage.get_push_config(tid, "b") == hook("b", 2)
    assert await storage.get_push_config(tid, str(tid)) == hook(None, 3)  # returned as given
    assert await storage.get_push_config(tid, "missing") is None

    await storage.set_push_config(tid, hook("a", 9))  # replaces "a", keeping its place
    assert await storage.list_push_configs(tid) == [hook("a", 9), hook("b", 2), hook(None, 3)]

    assert await storage.delete_push_config(tid, "b") is True
    assert await storage.delete_push_config(tid, "b") is False
    assert await storage.delete_push_config(tid) is True  # None: the config whose id is the task id
    assert await storage.list_push_configs(tid) == [hook("a", 9)]


async def test_configs_of_tasks_are_separate_and_uuid_ids_are_strings(storage: Storage) -> None:
    t1, t2 = await new_task(storage), await new_task(storage)
    cid = uuid.uuid4()
    assert await storage.set_push_config(str(t1), {"id": cid, "url": "https://a.example"}) == str(cid)
    await storage.set_push_config(t2, {"id": str(cid), "url": "https://b.example"})
    assert await storage.get_push_config(t1, str(cid)) == {"id": str(cid), "url": "https://a.example"}
    assert await storage.get_push_config(t2, cid) == {"id": str(cid), "url": "https://b.example"}  # type: ignore[arg-type]
    assert await storage.delete_push_config(t1, str(cid))
    assert await storage.list_push_configs(t2) == [{"id": str(cid), "url": "https://b.example"}]


async def test_unknown_tasks_and_bad_arguments(storage: Storage) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(TaskNotFoundError):
        await storage.set_push_config(unknown, hook("a"))
    assert await storage.get_push_config(unknown, "a") is None
    assert await storage.list_push_configs(unknown) == []
    assert await storage.delete_push_config(unknown, "a") is False
    tid = await new_task(storage)
    with pytest.raises(InvalidTypeError):
        await storage.set_push_config(tid, {"id": 7, "url": "https://x.example"})  # type: ignore[typeddict-item]
    with pytest.raises(InvalidValueError):
        await storage.set_push_config(tid, {"id": "", "url": "https://x.example"})
    with pytest.raises(InvalidTypeError):
        await storage.set_push_config(tid, "https://x.example")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        await storage.get_push_config(tid, "")
    with pytest.raises(InvalidTypeError):
        await storage.get_push_config(tid, None)  # type: ignore[arg-type]
    assert await storage.list_push_configs(tid) == []


# --- owner scoping ---------------------------------------------------------------------------


async def test_a_caller_reaches_only_the_configs_of_its_own_tasks(storage: Storage) -> None:
    alice = await new_task(storage, "did:alice")
    anonymous = await new_task(storage, None)
    assert await storage.set_push_config(alice, hook("a", 1), owner_did="did:alice") == "a"
    await storage.set_push_config(anonymous, hook("n", 2))

    assert await storage.get_push_config(alice, "a", owner_did="did:alice") == hook("a", 1)
    assert await storage.list_push_configs(alice, owner_did="did:alice") == [hook("a", 1)]
    # reads of another caller's task answer nothing
    assert await storage.get_push_config(alice, "a", owner_did="did:bob") is None
    assert await storage.list_push_configs(alice, owner_did="did:bob") == []
    assert await storage.list_push_configs(anonymous, owner_did="did:bob") == []
    # writes are refused, and nothing changes
    with pytest.raises(OwnershipError) as refused:
        await storage.set_push_config(alice, hook("b", 3), owner_did="did:bob")
    assert isinstance(refused.value, TaskOwnershipError) and str(alice) in str(refused.value)
    with pytest.raises(OwnershipError):
        await storage.delete_push_config(alice, "a", owner_did="did:bob")
    with pytest.raises(OwnershipError):
        await storage.delete_push_config(alice, "missing", owner_did="did:bob")
    assert await storage.list_push_configs(alice) == [hook("a", 1)]
    # unscoped calls (the server's own) reach everything
    assert await storage.delete_push_config(alice, "a") is True
    assert await storage.delete_push_config(anonymous, "n", owner_did=None) is True


# --- upstream's single-config methods --------------------------------------------------------


async def test_single_config_methods_address_the_default_config(storage: Storage) -> None:
    t1, t2 = await new_task(storage), await new_task(storage)
    await storage.set_push_config(t1, hook("first", 1))
    await storage.set_push_config(t1, hook("second", 2))
    assert await storage.load_webhook_config(t1) == hook("first", 1)  # no task-id config: the first
    await storage.set_push_config(t1, hook(None, 3))
    assert await storage.load_webhook_config(t1) == hook(None, 3)  # the one whose id is the task id
    await storage.set_push_config(t2, hook("x", 4))
    assert await storage.load_all_webhook_configs() == {t1: hook(None, 3), t2: hook("x", 4)}

    await storage.save_webhook_config(t1, hook("upstream", 5))  # replaces all of t1's configs
    assert await storage.list_push_configs(t1) == [hook("upstream", 5)]
    assert await storage.load_webhook_config(t1) == hook("upstream", 5)
    await storage.save_webhook_config(t1, hook("upstream", 6))
    assert await storage.list_push_configs(t1) == [hook("upstream", 6)]

    await storage.set_push_config(t2, hook("y", 7))
    await storage.delete_webhook_config(t2)  # removes all of them
    assert await storage.list_push_configs(t2) == []
    assert await storage.load_all_webhook_configs() == {t1: hook("upstream", 6)}


async def test_configs_go_with_their_task(storage: Storage) -> None:
    doomed, kept = await new_task(storage), await new_task(storage)
    for tid in (doomed, kept):
        await storage.set_push_config(tid, hook("a"))
        await storage.set_push_config(tid, hook("b"))
    assert await storage.delete_task(doomed) is True
    assert await storage.list_push_configs(doomed) == []
    assert [r["task_id"] for r in await storage.push_config_records()] == [kept, kept]


async def test_records_give_the_stored_form_in_the_order_set(storage: Storage) -> None:
    t1, t2 = await new_task(storage), await new_task(storage)
    await storage.set_push_config(t1, hook("a", 1))
    await storage.set_push_config(t2, hook(None, 2))
    await storage.set_push_config(t1, hook("b", 3))
    records = await storage.push_config_records()
    assert [(r["task_id"], r["config_id"], r["config"], r["encrypted"]) for r in records] == [
        (t1, "a", hook("a", 1), False), (t2, str(t2), hook(None, 2), False), (t1, "b", hook("b", 3), False),
    ]
    assert all(r["created_at"] <= r["updated_at"] for r in records)
    assert [r["config_id"] for r in await storage.push_config_records(limit=1, offset=1)] == [str(t2)]


# --- encryption at rest ----------------------------------------------------------------------

SECRET = "tok-Sx7Qw9Zp"
CREDENTIALS = "cred-Sx4Rt8Lm"


def secret_hook(config_id: str = "c1") -> dict[str, Any]:
    return {"id": config_id, "url": "https://hooks.example/s", "token": SECRET,
            "authentication": {"schemes": ["Bearer"], "credentials": CREDENTIALS}}


async def test_secrets_are_encrypted_at_rest_and_decrypted_on_read(storage: Storage) -> None:
    rekey(storage, KEY)
    tid = await new_task(storage)
    await storage.set_push_config(tid, secret_hook())
    await storage.set_push_config(tid, {"id": "plain", "url": "https://hooks.example/p"})
    assert await storage.get_push_config(tid, "c1") == secret_hook()
    assert await storage.load_webhook_config(tid) == secret_hook()
    records = await storage.push_config_records()
    stored = records[0]["config"]
    assert records[0]["encrypted"] is True and records[1]["encrypted"] is False  # nothing to seal
    assert SECRET not in repr(records) and CREDENTIALS not in repr(records)
    assert stored["url"] == "https://hooks.example/s" and stored["authentication"]["schemes"] == ["Bearer"]
    assert Fernet(KEY.encode()).decrypt(stored["token"].encode()).decode() == SECRET
    if hasattr(storage, "connection"):  # PostgreSQL: the row itself holds no secret
        async with storage.connection() as conn:  # type: ignore[attr-defined]
            raw = await conn.fetchval("SELECT string_agg(config::text, ' ') FROM webhook_configs")
        assert SECRET not in raw and CREDENTIALS not in raw


async def test_a_missing_or_wrong_key_is_a_typed_error_naming_no_key(storage: Storage) -> None:
    rekey(storage, KEY)
    tid = await new_task(storage)
    await storage.set_push_config(tid, secret_hook())
    for key, needle in ((None, "is not set"), (OTHER_KEY, "another key encrypted it")):
        rekey(storage, key)
        for read in (storage.get_push_config(tid, "c1"), storage.list_push_configs(tid),
                     storage.load_webhook_config(tid), storage.load_all_webhook_configs()):
            with pytest.raises(EncryptionKeyError) as failed:
                await read
            text = f"{failed.value} {failed.value!r}"
            assert needle in text and "STORAGE__PUSH_CONFIG_KEY" in text and "'c1'" in text
            assert KEY not in text and OTHER_KEY not in text and SECRET not in text
    rekey(storage, None)
    assert len(await storage.push_config_records()) == 1  # analysis reads the stored form, no key needed
    with pytest.raises(EncryptionKeyError):
        await storage.reencrypt_push_configs()


async def test_key_rotation_and_reencryption(storage: Storage) -> None:
    tid = await new_task(storage)
    await storage.set_push_config(tid, secret_hook("plain-before"))  # written before any key
    rekey(storage, KEY)
    await storage.set_push_config(tid, secret_hook("old-key"))
    assert await storage.get_push_config(tid, "plain-before") == secret_hook("plain-before")

    rekey(storage, f"{OTHER_KEY},{KEY}")  # the new key first; the old still decrypts
    assert [c["id"] for c in await storage.list_push_configs(tid)] == ["plain-before", "old-key"]
    assert await storage.reencrypt_push_configs() == 2
    rekey(storage, OTHER_KEY)  # the old key dropped
    assert await storage.list_push_configs(tid) == [secret_hook("plain-before"), secret_hook("old-key")]
    assert all(r["encrypted"] for r in await storage.push_config_records())


def test_the_cipher_and_the_settings_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from bindu_storage.settings import StorageSettings

    cipher = make_cipher(KEY)
    assert KEY not in repr(cipher)
    monkeypatch.setenv("STORAGE__PUSH_CONFIG_KEY", f"{KEY},{OTHER_KEY}")
    settings = StorageSettings()
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    storage = InMemoryStorage(push_config_key=settings.push_config_key)
    assert KEY not in repr(storage) and KEY not in repr(vars(storage))
    monkeypatch.setenv("STORAGE__PUSH_CONFIG_KEY", "not-a-key-Sx9Kd3Vb")
    with pytest.raises(ValueError) as bad:
        StorageSettings()
    assert "STORAGE__PUSH_CONFIG_KEY" in str(bad.value) and "Sx9Kd3Vb" not in str(bad.value)


# --- migration 0007 keeps every config stored before ------------------------------------------


async def test_migration_keys_old_configs_by_id_without_losing_any(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database, revision="0006")
    with_id, without_id, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    context = uuid.uuid4()
    statements = [f"INSERT INTO contexts (id) VALUES ('{context}')"]
    for tid in (with_id, without_id, other):
        statements.append(
            "INSERT INTO tasks (id, context_id, state, state_timestamp) "
            f"VALUES ('{tid}', '{context}', 'working', now())"
        )
    statements += [
        "INSERT INTO webhook_configs (task_id, config, created_at) VALUES "
        f"('{with_id}', '{{\"id\": \"cfg-1\", \"url\": \"https://a.example\", \"token\": \"t\"}}', "
        "now() - interval '2 days'), "
        f"('{without_id}', '{{\"url\": \"https://b.example\"}}', now() - interval '1 day'), "
        f"('{other}', '{{\"id\": \"{other}\", \"url\": \"https://c.example\"}}', now())",
    ]
    await execute(fresh_database, *statements)
    await migrate.upgrade(fresh_database)

    storage = postgres_storage(fresh_database)
    async with storage:
        assert await storage.get_push_config(with_id, "cfg-1") == {
            "id": "cfg-1", "url": "https://a.example", "token": "t"}
        assert await storage.get_push_config(without_id, str(without_id)) == {"url": "https://b.example"}
        assert await storage.load_webhook_config(other) == {"id": str(other), "url": "https://c.example"}
        assert [(r["task_id"], r["encrypted"]) for r in await storage.push_config_records()] == [
            (with_id, False), (without_id, False), (other, False)]  # the order they were set
        await storage.set_push_config(with_id, {"id": "cfg-2", "url": "https://d.example"})

    await migrate.downgrade(fresh_database, revision="0006")  # one config per task again: the default one
    conn = await asyncpg.connect(fresh_database)
    try:
        rows = await conn.fetch("SELECT task_id, config ->> 'url' AS url FROM webhook_configs ORDER BY 2")
    finally:
        await conn.close()
    assert [(r["task_id"], r["url"]) for r in rows] == [
        (with_id, "https://a.example"), (without_id, "https://b.example"), (other, "https://c.example")]


async def test_downgrade_refuses_while_configs_are_encrypted(fresh_database: str) -> None:
    await migrate.upgrade(fresh_database)
    storage = postgres_storage(fresh_database, push_config_key=KEY)
    async with storage:
        tid = await new_task(storage)
        await storage.set_push_config(tid, secret_hook())
    with pytest.raises(Exception, match="stored encrypted") as refused:
        await migrate.downgrade(fresh_database, revision="0006")
    assert KEY not in str(refused.value)
    # nothing was downgraded: the refusal rolled back the whole downgrade, later revisions included
    assert await migrate.current_revision(fresh_database) == migrate.head_revision()


async def test_truncate_helper_knows_the_table(pg_url: str) -> None:
    await truncate(pg_url)  # the conftest helper still empties every table at the new head


# --- the webhooks frame ----------------------------------------------------------------------


async def test_webhooks_frame_shows_every_config_redacted_and_never_decrypts(storage: Storage) -> None:
    from bindu_storage.analysis.frames import webhooks_frame

    t1, t2 = await new_task(storage), await new_task(storage)
    await storage.set_push_config(t1, {"url": "https://hooks.example/plain", "token": "plain-Sx5Tq2Wn"})
    rekey(storage, KEY)
    await storage.set_push_config(t1, secret_hook("sealed"))
    await storage.set_push_config(t2, {"id": "no-secrets", "url": "https://hooks.example/n"})
    rekey(storage, None)  # the frame needs no key: it never decrypts

    df = await webhooks_frame(storage)
    assert df.astype(object).where(df.notna(), None).to_dict("records") == [
        {"task_id": str(t1), "config_id": str(t1), "url": "https://hooks.example/plain", "token": "***",
         "schemes": None, "credentials": None},
        {"task_id": str(t1), "config_id": "sealed", "url": "https://hooks.example/s", "token": "***",
         "schemes": "Bearer", "credentials": "***"},
        {"task_id": str(t2), "config_id": "no-secrets", "url": "https://hooks.example/n", "token": None,
         "schemes": None, "credentials": None},
    ]
    shown = df.to_json()
    assert "Sx5Tq2Wn" not in shown and SECRET not in shown and CREDENTIALS not in shown
    chunks = [c async for c in webhooks_frame(storage, chunksize=1)]
    assert [c["config_id"].tolist() for c in chunks] == [[str(t1)], ["sealed"], ["no-secrets"]]
