"""PostgresStorage: the storage contract on PostgreSQL, over the schema the alembic revisions declare.

Each operation validates its arguments, then runs one statement of ``storage.sql`` where SQL
allows it (``update_task`` is one CTE that locks the row, de-duplicates appends, updates and
logs the event; ``submit_task`` of a new task is one statement too, and only a continuation, a
retry or a concurrent creation takes the short transaction), so a call is one round trip and a
retry after a lost connection applies a write at most once. The pool, the
lifecycle (``close()`` leaves the storage closed until ``connect()``) and the retries are
``PostgresBase``'s (``storage.postgres_base``).

A little over 400 lines: one method per operation of the contract (push configs by id,
deletion and retention included), as ``storage.memory`` has; the SQL itself is ``storage.sql``.

``PURGE_BATCH`` bounds how many tasks one statement of ``purge`` removes, so a large purge holds
its row locks briefly, one batch at a time, instead of for the whole backlog.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from bindu_storage.errors import (
    EncryptionKeyError,
    InvalidTypeError,
    InvalidValueError,
    OwnershipError,
    TaskNotFoundError,
    TaskOwnershipError,
    TerminalTaskError,
)
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.feed import (
    DEFAULT_FEED_LIMIT,
    Change,
    change_from_row,
    check_feed_request,
    pack_cursor,
    unpack_cursor,
)
from bindu_storage.storage.pages import (
    DEFAULT_PAGE_SIZE,
    PageCursor,
    TaskFilter,
    TaskPage,
    check_page_request,
    count_filter,
    decode_token,
    encode_token,
    task_filter,
    without_artifacts,
)
from bindu_storage.storage.postgres_base import PostgresBase
from bindu_storage.storage.push_configs import (
    KEY_SETTING,
    PushConfigCipher,
    PushConfigRecord,
    check_config_id,
    config_id_of,
    has_secrets,
    open_config,
    seal_config,
)
from bindu_storage.storage.retention import PURGED_TABLES, PurgeCounts, PurgePolicy, no_counts
from bindu_storage.storage.rows import task_from_row
from bindu_storage.types import (
    TERMINAL_STATES,
    Artifact,
    ContextRecord,
    ContextSummary,
    FeedbackRecord,
    Message,
    PushNotificationConfig,
    Task,
    TaskEvent,
    TaskRecord,
)

PURGE_BATCH = 1000
"""Tasks removed per statement by ``purge`` (each batch commits on its own)."""


class PostgresStorage(PostgresBase):
    """The PostgreSQL backend (asyncpg pool, JSONB columns, alembic migrations).

    ``PostgresStorage(database_url, schema=..., pool_max=...)``: ``schema`` (or ``did``, from
    which upstream's ``did_…`` schema name is derived) scopes the storage to one PostgreSQL
    schema; every statement is qualified with it. Options left out come from the settings.
    """

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(
        self, task_id: IdLike, history_length: int | None = None, *, owner_did: str | None = None
    ) -> Task | None:
        tid = v.as_uuid(task_id, "task_id")
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        owner = v.check_optional_str(owner_did, "owner_did")
        if owner is None:
            row = await self._fetchrow(self.sql.load_task, tid, history_length)
        else:
            row = await self._fetchrow(self.sql.load_owned_task, tid, history_length, owner)
        return task_from_row(row) if row else None

    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        cid = v.as_uuid(context_id, "context_id")
        caller = v.check_optional_str(caller_did, "caller_did")
        msg = v.messages([message], "message")[0]
        tid = v.as_uuid(msg.get("task_id"), "message['task_id']")
        # a new task: one statement (the common case)
        first = await self._fetchrow(self.sql.submit_task, tid, cid, msg, caller)
        assert first is not None
        if first["id"] is not None:
            return task_from_row(first)
        if first["context_seen"] and not first["allowed"]:
            raise OwnershipError(cid, caller)

        # an existing task (a continuation, or the retry of a submit whose reply was lost), or
        # a context or task created concurrently: the transaction that reads each step
        async def work(conn: asyncpg.Connection) -> Task:
            async with conn.transaction():
                owners = await conn.fetch(self.sql.ensure_context, cid, caller)
                if not owners:  # created by a concurrent transaction after our snapshot
                    owners = await conn.fetch(self.sql.context_owner, cid)
                owner = owners[0]["owner_did"]
                if owner is not None and owner != caller:
                    raise OwnershipError(cid, caller)
                created = await conn.fetchrow(self.sql.insert_task, tid, cid, msg, caller)
                if created is not None:
                    return task_from_row(created)
                row = await conn.fetchrow(self.sql.continue_task, tid, msg, cid)
                assert row is not None and row["prior_state"] is not None
                if row["prior_context"] != cid:
                    raise InvalidValueError(
                        f"task {tid} belongs to context {row['prior_context']}, not {cid}"
                    )
                if row["id"] is not None:
                    return task_from_row(row)
                if not row["replay"] and row["prior_state"] in TERMINAL_STATES:
                    raise TerminalTaskError(tid, row["prior_state"], "cannot continue it with a new message")
                current = await conn.fetchrow(self.sql.load_task, tid, None)
                return task_from_row(current)

        return await self._with_conn(work, "submit_task")

    async def update_task(
        self,
        task_id: IdLike,
        state: str,
        new_artifacts: Sequence[Artifact] | None = None,
        new_messages: Sequence[Message] | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        status_message: Message | None = None,
    ) -> Task:
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(state)
        arts = v.artifacts(new_artifacts)
        msgs = v.messages(new_messages)
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        said = v.messages([status_message], "status_message")[0] if status_message is not None else None
        row = await self._fetchrow(self.sql.update_task, tid, state, msgs, arts, meta, said)
        if row is None:
            raise TaskNotFoundError(tid)
        if row["id"] is None:
            prior = row["prior_state"]
            if state != prior:
                detail = f"cannot move to {state}"
            elif row["grows"]:
                detail = "cannot append messages or artifacts"
            else:
                detail = "cannot change its status message"
            raise TerminalTaskError(tid, prior, detail)
        return task_from_row(row)

    async def append_artifact_chunk(
        self, task_id: IdLike, artifact: Artifact, *, append: bool = True
    ) -> None:
        tid = v.as_uuid(task_id, "task_id")
        chunk = v.artifacts([artifact], "artifact")[0]
        if not isinstance(append, bool):
            raise InvalidTypeError(f"append must be a bool, not {type(append).__name__}")
        row = await self._with_conn(
            lambda c: c.fetchrow(self.sql.append_artifact_chunk, tid, chunk, append),
            "append_artifact_chunk",
            idempotent=not append,  # a replacement applies the same twice; a chunk would not
        )
        if row is None:
            raise TaskNotFoundError(tid)
        if not row["appended"]:
            raise TerminalTaskError(tid, row["prior_state"], "cannot append artifact chunks")

    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(from_state, "from_state")
        v.check_state(to_state, "to_state")
        request_key = uuid.uuid4()  # fixed across retries: a retry recognises its own transition
        row = await self._fetchrow(self.sql.update_task_state_if, tid, from_state, to_state, request_key)
        if row is None:
            raise TaskNotFoundError(tid)
        if row["moved"]:
            return True
        if row["prior_state"] == from_state:  # in from_state, but terminal and asked to move
            raise TerminalTaskError(tid, from_state, f"cannot move to {to_state}")
        return False

    async def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_tasks, length, offset, owner)
        return [task_from_row(r) for r in rows]

    async def count_tasks(
        self,
        status: str | None = None,
        *,
        owner_did: str | None = None,
        context_id: IdLike | None = None,
        states: str | Sequence[str] | None = None,
        updated_after: datetime | None = None,
    ) -> int:
        filters = count_filter(status, context_id, states, updated_after, owner_did)
        if (owner_did, context_id, states, updated_after) == (None, None, None, None):
            return int(await self._fetchval(self.sql.count_tasks, status))  # upstream's form
        return int(await self._fetchval(self.sql.count_tasks_filtered, *_filter_args(filters)))

    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        cid = v.as_uuid(context_id, "context_id")
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_tasks_by_context, cid, length, offset, owner)
        return [task_from_row(r) for r in rows]

    async def get_task_owner(self, task_id: IdLike) -> str | None:
        return await self._fetchval(self.sql.get_task_owner, v.as_uuid(task_id, "task_id"))

    async def list_tasks_page(
        self,
        *,
        context_id: IdLike | None = None,
        states: str | Sequence[str] | None = None,
        updated_after: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        history_length: int | None = None,
        include_artifacts: bool = False,
        owner_did: str | None = None,
    ) -> TaskPage:
        filters = task_filter(
            context_id=context_id, states=states, updated_after=updated_after, owner_did=owner_did
        )
        size = check_page_request(page_size, history_length, include_artifacts)
        cursor = decode_token(page_token, filters)
        after = (cursor.updated_at, cursor.task_id) if cursor else (None, None)

        async def work(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], int]:
            # one snapshot for the page and its total, so they agree
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = await conn.fetch(
                    self.sql.list_tasks_page, *_filter_args(filters), *after, size + 1,
                    history_length, include_artifacts,
                )
                total = await conn.fetchval(self.sql.count_tasks_filtered, *_filter_args(filters))
            return rows, int(total)

        rows, total = await self._with_conn(work, "list_tasks_page")
        shown = rows[:size]
        tasks = [task_from_row(r) for r in shown]
        more = len(rows) > size
        return {
            "tasks": tasks if include_artifacts else [without_artifacts(t) for t in tasks],
            "next_page_token": encode_token(
                PageCursor(shown[-1]["updated_at"], shown[-1]["id"]), filters
            ) if more else "",
            "page_size": size,
            "total_size": total,
        }

    # --- contexts ----------------------------------------------------------------------------

    async def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        row = await self._fetchrow(self.sql.load_context, v.as_uuid(context_id, "context_id"))
        return row["context_data"] if row else None

    async def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        cid = v.as_uuid(context_id, "context_id")
        await self._execute(self.sql.update_context, cid, v.json_object(context, "context"))

    async def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        cid = v.as_uuid(context_id, "context_id")
        await self._execute(self.sql.append_to_context, cid, v.required_messages(messages, "messages"))

    async def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[ContextSummary]:
        v.check_window(length, offset)
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_contexts, length, offset, owner)
        return [
            {
                "context_id": r["context_id"],
                "context_data": r["context_data"],
                "task_count": int(r["task_count"]),
                "task_ids": list(r["task_ids"]),
            }
            for r in rows
        ]

    async def get_context_owner(self, context_id: IdLike) -> str | None:
        return await self._fetchval(self.sql.get_context_owner, v.as_uuid(context_id, "context_id"))

    async def clear_context(self, context_id: IdLike) -> None:
        await self._execute(self.sql.clear_context, v.as_uuid(context_id, "context_id"))

    async def clear_all(self) -> None:
        await self._execute(self.sql.clear_all)

    # --- feedback ----------------------------------------------------------------------------

    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(feedback_data, "feedback_data")
        request_key = uuid.uuid4()  # fixed across retries: the insert applies at most once

        async def work(conn: asyncpg.Connection) -> None:
            inserted = await conn.fetchval(self.sql.store_feedback, tid, data, request_key)
            if inserted is None and not await conn.fetchval(self.sql.task_exists, tid):
                raise TaskNotFoundError(tid)

        await self._with_conn(work, "store_task_feedback")

    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        rows = await self._fetch(self.sql.get_feedback, v.as_uuid(task_id, "task_id"))
        return [r["feedback_data"] for r in rows] or None

    # --- webhook configs ---------------------------------------------------------------------

    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        config_id = config_id_of(tid, data)
        stored, encrypted = seal_config(self._push_cipher, data)
        saved = await self._fetchval(self.sql.save_webhook, tid, config_id, stored, encrypted)
        if saved is None:
            raise TaskNotFoundError(tid)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        tid = v.as_uuid(task_id, "task_id")
        row = await self._fetchrow(self.sql.load_webhook, tid)
        return None if row is None else self._opened_config(tid, row)

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        await self._execute(self.sql.delete_webhook, v.as_uuid(task_id, "task_id"))

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        rows = await self._fetch(self.sql.load_all_webhooks)
        return {r["task_id"]: self._opened_config(r["task_id"], r) for r in rows}

    # --- analysis read API -------------------------------------------------------------------

    async def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        v.check_window(limit, offset, "limit")
        rows = await self._fetch(self.sql.task_records, limit, offset, since)
        return [
            {"task": task_from_row(r), "owner_did": r["owner_did"],
             "created_at": r["created_at"], "updated_at": r["updated_at"]}
            for r in rows
        ]

    async def context_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        v.check_window(limit, offset, "limit")
        return [dict(r) for r in await self._fetch(self.sql.context_records, limit, offset)]  # type: ignore[misc]

    async def feedback_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[FeedbackRecord]:
        v.check_window(limit, offset, "limit")
        return [dict(r) for r in await self._fetch(self.sql.feedback_records, limit, offset)]  # type: ignore[misc]

    async def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        v.check_window(limit, offset, "limit")
        tid = v.as_uuid(task_id, "task_id") if task_id is not None else None
        return [dict(r) for r in await self._fetch(self.sql.task_events, tid, limit, offset)]  # type: ignore[misc]

    async def changes(
        self,
        since: int | None = None,
        *,
        task_id: IdLike | None = None,
        owner_did: str | None = None,
        limit: int = DEFAULT_FEED_LIMIT,
    ) -> list[Change]:
        after = check_feed_request(since, limit)
        tid = v.as_uuid(task_id, "task_id") if task_id is not None else None
        owner = v.check_optional_str(owner_did, "owner_did")
        xact, event_id = unpack_cursor(after or 0)
        rows = await self._fetch(self.sql.changes, str(xact), event_id, tid, owner, limit)
        return [change_from_row(r, pack_cursor(r["xact"], r["id"])) for r in rows]

    # --- push-notification configs by id -----------------------------------------------------

    def _opened_config(self, tid: UUID, row: Any) -> PushNotificationConfig:
        """The config of a row (config_id, config, encrypted), decrypted if stored encrypted."""
        opened = open_config(self._push_cipher, row["config"], row["encrypted"], tid, row["config_id"])
        return opened  # type: ignore[return-value]

    async def set_push_config(
        self, task_id: IdLike, config: PushNotificationConfig, *, owner_did: str | None = None
    ) -> str:
        tid = v.as_uuid(task_id, "task_id")
        data = v.json_object(config, "config")
        config_id = config_id_of(tid, data)
        owner = v.check_optional_str(owner_did, "owner_did")
        stored, encrypted = seal_config(self._push_cipher, data)

        async def work(conn: asyncpg.Connection) -> str:
            saved = await conn.fetchval(self.sql.set_push_config, tid, config_id, stored, encrypted, owner)
            if saved is not None:
                return str(saved)
            if not await conn.fetchval(self.sql.task_exists, tid):
                raise TaskNotFoundError(tid)
            raise TaskOwnershipError(tid, owner)

        return await self._with_conn(work, "set_push_config")

    async def get_push_config(
        self, task_id: IdLike, config_id: str, *, owner_did: str | None = None
    ) -> PushNotificationConfig | None:
        tid = v.as_uuid(task_id, "task_id")
        cid = check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        row = await self._fetchrow(self.sql.get_push_config, tid, cid, owner)
        return None if row is None else self._opened_config(tid, row)

    async def list_push_configs(
        self, task_id: IdLike, *, owner_did: str | None = None
    ) -> list[PushNotificationConfig]:
        tid = v.as_uuid(task_id, "task_id")
        owner = v.check_optional_str(owner_did, "owner_did")
        rows = await self._fetch(self.sql.list_push_configs, tid, owner)
        return [self._opened_config(tid, r) for r in rows]

    async def delete_push_config(
        self, task_id: IdLike, config_id: str | None = None, *, owner_did: str | None = None
    ) -> bool:
        tid = v.as_uuid(task_id, "task_id")
        cid = str(tid) if config_id is None else check_config_id(config_id)
        owner = v.check_optional_str(owner_did, "owner_did")
        row = await self._fetchrow(self.sql.delete_push_config, tid, cid, owner)
        return self._scoped_outcome(tid, owner, row)

    @staticmethod
    def _scoped_outcome(tid: UUID, owner: str | None, row: Any) -> bool:
        """What a scoped delete answers: False for an unknown task, raises for another caller's."""
        if row is None:
            return False
        if owner is not None and row["owner_did"] != owner:
            raise TaskOwnershipError(tid, owner)
        return bool(row["deleted"])

    async def push_config_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[PushConfigRecord]:
        v.check_window(limit, offset, "limit")
        return [dict(r) for r in await self._fetch(self.sql.push_config_records, limit, offset)]  # type: ignore[misc]

    def _resealed(self, cipher: PushConfigCipher, row: Any) -> dict[str, Any]:
        """The config of a row encrypted with the newest key."""
        return cipher.reseal(row["config"], row["encrypted"], row["task_id"], row["config_id"])

    async def reencrypt_push_configs(self) -> int:
        self._ensure_open()  # a closed storage says so before a missing key does
        cipher = self._push_cipher
        if cipher is None:
            raise EncryptionKeyError(f"re-encrypting push configs needs {KEY_SETTING}")
        rows = await self._fetch(self.sql.push_config_records, None, 0)
        updates = [  # every config opens, or nothing changes
            (r["task_id"], r["config_id"], self._resealed(cipher, r), r["config"])
            for r in rows
            if r["encrypted"] or has_secrets(r["config"])
        ]

        async def work(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(self.sql.reencrypt_push_config, updates)

        if updates:
            await self._with_conn(work, "reencrypt_push_config")
        return len(updates)

    # --- deletion and retention --------------------------------------------------------------

    async def delete_task(self, task_id: IdLike, *, owner_did: str | None = None) -> bool:
        tid = v.as_uuid(task_id, "task_id")
        owner = v.check_optional_str(owner_did, "owner_did")
        row = await self._fetchrow(self.sql.delete_task, tid, owner)
        return self._scoped_outcome(tid, owner, row)

    async def purge(
        self,
        *,
        older_than: timedelta | datetime | None = None,
        states: Iterable[str] | None = None,
        owner_did: str | None = None,
        dry_run: bool = False,
    ) -> PurgeCounts:
        # "now" is the server's: the timestamps compared with the cutoff are its now() too
        now = await self._fetchval("SELECT now()") if isinstance(older_than, timedelta) else None
        policy = PurgePolicy.of(older_than, states, owner_did, now or datetime.now(UTC))
        args = (policy.cutoff, list(policy.states) if policy.states else None, policy.owner_did)
        if dry_run:
            row = await self._fetchrow(self.sql.purge_preview, *args)
            return {name: int(row[name]) for name in PURGED_TABLES}  # type: ignore[index,return-value]
        counts = no_counts()
        while True:
            row = await self._fetchrow(self.sql.purge_batch, *args, PURGE_BATCH)
            for name in PURGED_TABLES:
                counts[name] += int(row[name])  # type: ignore[index,literal-required]
            if int(row["tasks"]) < PURGE_BATCH:  # type: ignore[index]
                return counts

def _filter_args(filters: TaskFilter) -> tuple[Any, ...]:
    """The filter parameters ($1 to $4) of ``list_tasks_page`` and ``count_tasks_filtered``."""
    return filters.context_id, filters.state_list, filters.updated_after, filters.owner_did
