"""PostgresStorage: the storage contract on PostgreSQL, over the schema the alembic revisions declare.

Each operation validates its arguments, then runs one statement of ``storage.sql`` where SQL
allows it (``update_task`` is one CTE that locks the row, de-duplicates appends, updates and
logs the event; ``submit_task`` of a new task is one statement too, and only a continuation, a
retry or a concurrent creation takes the short transaction), so a call is one round trip and a
retry after a lost connection applies a write at most once. The pool, the
lifecycle (``close()`` leaves the storage closed until ``connect()``) and the retries are
``PostgresBase``'s (``storage.postgres_base``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from bindu_storage.errors import (
    InvalidValueError,
    OwnershipError,
    TaskNotFoundError,
    TerminalTaskError,
)
from bindu_storage.storage import validate as v
from bindu_storage.storage.base import IdLike
from bindu_storage.storage.postgres_base import PostgresBase
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


class PostgresStorage(PostgresBase):
    """The PostgreSQL backend (asyncpg pool, JSONB columns, alembic migrations).

    ``PostgresStorage(database_url, schema=..., pool_max=...)``: ``schema`` (or ``did``, from
    which upstream's ``did_…`` schema name is derived) scopes the storage to one PostgreSQL
    schema; every statement is qualified with it. Options left out come from the settings.
    """

    # --- tasks -------------------------------------------------------------------------------

    async def load_task(self, task_id: IdLike, history_length: int | None = None) -> Task | None:
        tid = v.as_uuid(task_id, "task_id")
        if history_length is not None:
            v.check_window(history_length, 0, "history_length")
        row = await self._fetchrow(self.sql.load_task, tid, history_length)
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
    ) -> Task:
        tid = v.as_uuid(task_id, "task_id")
        v.check_state(state)
        arts = v.artifacts(new_artifacts)
        msgs = v.messages(new_messages)
        meta = v.json_object(metadata, "metadata") if metadata is not None else {}
        row = await self._fetchrow(self.sql.update_task, tid, state, msgs, arts, meta)
        if row is None:
            raise TaskNotFoundError(tid)
        if row["id"] is None:
            prior = row["prior_state"]
            detail = f"cannot move to {state}" if state != prior else "cannot append messages or artifacts"
            raise TerminalTaskError(tid, prior, detail)
        return task_from_row(row)

    async def append_artifact_chunk(self, task_id: IdLike, artifact: Artifact) -> None:
        tid = v.as_uuid(task_id, "task_id")
        chunk = v.artifacts([artifact], "artifact")[0]
        row = await self._with_conn(
            lambda c: c.fetchrow(self.sql.append_artifact_chunk, tid, chunk),
            "append_artifact_chunk",
            idempotent=False,
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

    async def count_tasks(self, status: str | None = None) -> int:
        if status is not None:
            v.check_state(status, "status")
        return int(await self._fetchval(self.sql.count_tasks, status))

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
        saved = await self._fetchval(self.sql.save_webhook, tid, v.json_object(config, "config"))
        if saved is None:
            raise TaskNotFoundError(tid)

    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        return await self._fetchval(self.sql.load_webhook, v.as_uuid(task_id, "task_id"))

    async def delete_webhook_config(self, task_id: IdLike) -> None:
        await self._execute(self.sql.delete_webhook, v.as_uuid(task_id, "task_id"))

    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        rows = await self._fetch(self.sql.load_all_webhooks)
        return {r["task_id"]: r["config"] for r in rows}

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
