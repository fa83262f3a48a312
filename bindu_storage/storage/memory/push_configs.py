"""Push-notification configs in memory: by id, and the single-config webhook methods.

Configs holding secrets are sealed with the storage's cipher (``storage.push_configs``)
on the way in and opened on the way out; the webhook methods address the task's default
config (id = the task id, else the first).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from bindu_storage.errors import EncryptionKeyError, TaskNotFoundError
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.isolation import clone
from bindu_storage.storage.memory._state import MemoryState
from bindu_storage.storage.memory.rows import PushConfigRow, window
from bindu_storage.storage.push_configs import (
    KEY_SETTING,
    PushConfigRecord,
    check_config_id,
    config_id_of,
    has_secrets,
    open_config,
    seal_config,
)
from bindu_storage.types import PushNotificationConfig


class MemoryPushConfigs(MemoryState):
    """The push-config and webhook operations of the ``Storage`` contract, in memory."""

    # --- webhook configs ---------------------------------------------------------------------

    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        config_id = config_id_of(tid, data)
        if tid not in self._tasks:
            raise TaskNotFoundError(tid)
        kept = self._webhooks.get(tid, {}).get(config_id)
        self._webhooks[tid] = {config_id: kept} if kept is not None else {}
        self._put_push_config(tid, config_id, data)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        return self._default_push_config(tid, self._webhooks.get(tid, {}))

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        self._ensure_open()
        self._webhooks.pop(v.as_uuid(task_id, "task_id"), None)

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        self._ensure_open()
        found = {tid: self._default_push_config(tid, rows) for tid, rows in self._webhooks.items()}
        return {tid: config for tid, config in found.items() if config is not None}

    # --- push-notification configs by id -----------------------------------------------------

    def _put_push_config(self, tid: UUID, config_id: str, data: dict[str, Any]) -> None:
        stored, encrypted = seal_config(self._push_cipher, data)
        now = self.clock()
        rows = self._webhooks.setdefault(tid, {})
        old = rows.get(config_id)
        if old is None:
            rows[config_id] = PushConfigRow(next(self._push_config_seq), stored, encrypted, now, now)
        else:
            old.config, old.encrypted, old.updated_at = stored, encrypted, now

    def _opened_config(self, tid: UUID, config_id: str, row: PushConfigRow) -> PushNotificationConfig:
        opened = open_config(self._push_cipher, clone(row.config), row.encrypted, tid, config_id)
        return opened  # type: ignore[return-value]

    def _default_push_config(
        self, tid: UUID, rows: dict[str, PushConfigRow]
    ) -> PushNotificationConfig | None:
        """The config the single-config methods address: id = the task id, else the first."""
        config_id = str(tid) if str(tid) in rows else next(iter(rows), None)
        return None if config_id is None else self._opened_config(tid, config_id, rows[config_id])

    async def set_push_config(
        self, task_id: IdLike, config: PushNotificationConfig, *, owner_did: str | None = None
    ) -> str:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        config_id = config_id_of(tid, data)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=True) is None:
            raise TaskNotFoundError(tid)
        self._put_push_config(tid, config_id, data)
        return config_id

    async def get_push_config(
        self, task_id: IdLike, config_id: str, *, owner_did: str | None = None
    ) -> PushNotificationConfig | None:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        cid = check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=False) is None:
            return None
        row = self._webhooks.get(tid, {}).get(cid)
        return None if row is None else self._opened_config(tid, cid, row)

    async def list_push_configs(
        self, task_id: IdLike, *, owner_did: str | None = None
    ) -> list[PushNotificationConfig]:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=False) is None:
            return []
        return [self._opened_config(tid, cid, row) for cid, row in self._webhooks.get(tid, {}).items()]

    async def delete_push_config(
        self, task_id: IdLike, config_id: str | None = None, *, owner_did: str | None = None
    ) -> bool:
        self._ensure_open()
        tid = v.as_uuid(task_id, "task_id")
        cid = str(tid) if config_id is None else check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        if self._scoped_task(tid, owner, write=True) is None:
            return False
        return self._webhooks.get(tid, {}).pop(cid, None) is not None

    async def push_config_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[PushConfigRecord]:
        self._ensure_open()
        v.check_window(limit, offset, "limit")
        rows = sorted(
            ((tid, cid, row) for tid, configs in self._webhooks.items() for cid, row in configs.items()),
            key=lambda found: found[2].seq,
        )
        return [
            {"task_id": tid, "config_id": cid, "config": clone(row.config), "encrypted": row.encrypted,
             "created_at": row.created_at, "updated_at": row.updated_at}
            for tid, cid, row in window(rows, limit, offset)
        ]

    async def reencrypt_push_configs(self) -> int:
        self._ensure_open()
        cipher = self._push_cipher
        if cipher is None:
            raise EncryptionKeyError(f"re-encrypting push configs needs {KEY_SETTING}")
        rewritten: list[tuple[PushConfigRow, dict[str, Any]]] = []
        for tid, configs in self._webhooks.items():  # every config opens, or nothing changes
            for cid, row in configs.items():
                if row.encrypted or has_secrets(row.config):
                    rewritten.append((row, cipher.reseal(clone(row.config), row.encrypted, tid, cid)))
        now = self.clock()
        for row, sealed in rewritten:
            row.config, row.encrypted, row.updated_at = sealed, True, now
        return len(rewritten)
