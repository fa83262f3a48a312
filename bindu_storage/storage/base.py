"""The storage contract, written once: every backend obeys these docstrings identically.

(Over 400 lines on purpose: the whole contract, its rules and one docstring per operation, is
read in one place; the module holds no logic beyond the lifecycle helpers.)

Rules that hold for every operation
-----------------------------------
* **Ids.** ``task_id`` and ``context_id`` arguments are ``uuid.UUID`` objects or canonical UUID
  strings; anything else raises ``InvalidTypeError`` (a ``TypeError``) or ``InvalidValueError``
  (a ``ValueError``) naming the argument. Returned tasks carry ``UUID`` objects in ``id`` and
  ``context_id``; ids inside messages and artifacts are returned as strings.
* **Validation before writing.** Values are checked before anything is written: values that are
  not JSON (sets, bytes, datetimes, NaN...), strings or keys containing NUL, unknown states,
  messages without a ``message_id`` and artifacts without an ``artifact_id``, values nesting
  dicts and lists deeper than 100 levels (``validate.MAX_DEPTH``) raise
  ``InvalidValueError``/``InvalidTypeError`` and nothing changes. Numbers read back as
  PostgreSQL's JSONB keeps them on both backends (``-0.0`` as ``0.0``, ``1e23`` as an integer).
* **Isolation.** Values handed in are never mutated; values handed out are copies.
* **Timestamps.** ``status.timestamp`` is ISO-8601 UTC; it changes when ``update_task`` or
  ``submit_task`` sets a state. Every task and context records ``created_at`` and ``updated_at``.
* **Events.** Every state change (creation included, with ``from_state=None``) is recorded as a
  ``TaskEvent`` in the same atomic step as the change. Every write that changes a task (its
  state, its status message, its messages or artifacts) is recorded as a ``Change`` of the
  change feed in that same step (``changes``; see "The change feed" below).
* **Status message.** A2A's ``TaskStatus`` carries an optional ``message`` (the agent's question
  in input-required, say). ``update_task(..., status_message=m)`` sets ``status.message`` with
  the state; every write that sets the status (``update_task``, ``update_task_state_if``,
  ``submit_task``) sets a whole new status, as the protocol's status update event does, so one
  given no status message clears it (``status`` then has no ``message`` key). A terminal task
  keeps its status: the same status message again is a no-op (a retry), another one raises
  ``TerminalTaskError``. The status message is not added to the history (pass it in
  ``new_messages`` too to keep it there).
* **Idempotent appends.** Messages and artifacts are de-duplicated by ``message_id`` /
  ``artifact_id``: appending one already present is a no-op, so a retried write applies once.
* **States** are A2A's plus upstream Bindu's own (``TASK_STATES``: payment-required,
  negotiation-bid-won...); the terminal ones are A2A's: completed, canceled, failed, rejected.
* **The first terminal state wins.** A terminal task accepts metadata merges only; a state
  change or an append of anything new (a late "completed" after a cancel, say) raises
  ``TerminalTaskError`` and nothing changes. (Under ``integrations.bindu`` upstream's worker
  gets a logged no-op returning the stored task instead, so it carries on.)
* **Order.** ``list_tasks`` and ``list_contexts``: newest first. ``list_tasks_by_context``,
  histories, feedback and events: oldest first. "Newer" means created later (insertion order).
  ``list_tasks_page`` (A2A's ``tasks/list``): most recently *updated* first, by keyset pages.

Push-notification configs (A2A ``tasks/pushNotificationConfig/set|get|list|delete``)
------------------------------------------------------------------------------------
* **Many per task, by id.** A task holds any number of configs, each under its config id:
  ``config["id"]`` when given (a string or UUID, kept as its string), else the task id, as the
  A2A SDK's stores do. ``set_push_config`` adds the config or replaces the one with its id
  (keeping its place: ``list_push_configs`` gives them in the order first set). A config is
  returned as it was given (no ``id`` is added to it). The task must exist
  (``TaskNotFoundError``); configs go with their task (``delete_task``, ``clear_context``,
  ``purge``).
* **Owner-scoped.** With ``owner_did``, a caller reaches only the configs of tasks it created
  (``get_task_owner(task_id) == owner_did``): reads of another caller's task answer nothing
  (``None``, ``[]``), as the owner-filtered listings do, and writes raise ``OwnershipError``
  (``TaskOwnershipError``), as ``submit_task`` into another caller's context does. Without
  ``owner_did`` nothing is scoped (the server's own calls).
* **Upstream's single-config methods** keep their meaning: ``save_webhook_config`` replaces
  all of the task's configs by this one; ``load_webhook_config`` answers the config whose id is
  the task id, else the task's first one; ``delete_webhook_config`` removes all of them;
  ``load_all_webhook_configs`` answers one per task, chosen as ``load_webhook_config`` does.
* **Encryption at rest** (optional, ``storage.push_configs``): with a key
  (``STORAGE__PUSH_CONFIG_KEY``), token and credentials are stored encrypted and decrypted on
  read; a config stored encrypted and read without its key raises ``EncryptionKeyError`` naming
  the config, never a key. ``push_config_records`` (analysis) gives the stored form, never
  decrypted. ``reencrypt_push_configs`` re-encrypts every config with the newest key.

Artifact updates (A2A's artifact update event)
----------------------------------------------
``append_artifact_chunk(task_id, artifact, append=True)`` extends the parts of the artifact with
that ``artifact_id`` (the event's ``append: true``); ``append=False`` replaces that artifact
whole, keeping its place (``append`` false or absent). Either adds the artifact last when no
artifact has its id. ``update_task``'s ``new_artifacts`` only add artifacts whose id is new.

The change feed
---------------
``changes(since)`` answers what changed since a cursor (``storage.feed``): one ``Change`` per
write, oldest first, with monotonic cursors; resuming from the last cursor read returns exactly
the changes after it, none skipped or repeated, also under concurrent writers. It serves streams
that resume elsewhere (A2A ``tasks/resubscribe``) instead of polling ``load_task``.

Deletion and retention
----------------------
* ``delete_task`` removes the task with its feedback, events and push configs; its context
  (data, message history, other tasks) stays. With ``owner_did``, another caller's task raises
  ``OwnershipError``. An unknown task is a no-op (``False``).
* ``purge`` removes the tasks a ``storage.retention.PurgePolicy`` selects (age, states, owner),
  each as ``delete_task`` would, and the contexts the policy leaves empty (see that module), and
  returns the rows removed per table (``PurgeCounts``). ``dry_run=True`` counts the same rows and
  changes nothing. Both backends remove exactly the same rows.

Lifecycle
---------
A storage is *new*, *open* or *closed*:

* **new** — never connected: the first operation connects it (lazily, as if ``connect()`` had
  been called), so ``Storage()`` followed by a call just works.
* **open** — after ``connect()`` (or ``async with storage:``), or the first operation.
* **closed** — after ``close()`` (or ``disconnect()``, or leaving ``async with``): every operation
  raises ``StorageClosedError`` ("PostgresStorage is closed; call connect() to reopen it"),
  naming the backend and never the database password. Nothing reconnects behind the caller's
  back: a closed storage stays closed until ``connect()`` (or ``async with storage:``) reopens
  it explicitly. An argument that is invalid may be refused (``InvalidValueError``) first.

``close()`` is idempotent and never deletes data: after reopening, everything written before is
still there (in memory too). Operations already running when ``close()`` is called either
finish or raise ``StorageClosedError``; ``close()`` waits for those holding a connection.
``closed`` tells the state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from bindu_storage.errors import StorageClosedError
from bindu_storage.storage.feed import DEFAULT_FEED_LIMIT, Change
from bindu_storage.storage.pages import DEFAULT_PAGE_SIZE, TaskPage
from bindu_storage.storage.push_configs import PushConfigRecord
from bindu_storage.storage.retention import PurgeCounts
from bindu_storage.types import (
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

IdLike = UUID | str

ContextT = TypeVar("ContextT")
"""What a context holds; a type parameter only, so ``Storage[Any]`` reads as upstream's does."""


class Storage(ABC, Generic[ContextT]):
    """Abstract storage of A2A tasks, contexts, feedback and webhook configs."""

    # --- tasks -------------------------------------------------------------------------------

    @abstractmethod
    async def load_task(
        self, task_id: IdLike, history_length: int | None = None, *, owner_did: str | None = None
    ) -> Task | None:
        """Return the task, with only the last ``history_length`` messages if given, or None.

        ``owner_did`` scopes the read to one caller, as the listings' ``owner_did`` filter does:
        a task created by another caller (or by none) reads as None, exactly like an unknown
        task, so a caller cannot tell another tenant's task ids from free ones.
        """

    @abstractmethod
    async def submit_task(
        self, context_id: IdLike, message: Message, caller_did: str | None = None
    ) -> Task:
        """Create the task named by ``message["task_id"]`` or continue it.

        A new id creates the task (state ``submitted``, history ``[message]``) and its context if
        needed (owned by ``caller_did``). An existing non-terminal task gets the message appended
        and goes back to ``submitted``; a terminal one raises ``TerminalTaskError``. A context
        owned by another caller raises ``OwnershipError``. Concurrent submits of one new id all
        succeed: one creates, the others continue.
        """

    @abstractmethod
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
        """Set the status, append artifacts and messages, shallow-merge metadata; return the task.

        The status is ``state`` with ``status_message`` (None: no message; a message needs a
        ``message_id``): see "Status message" above. Raises ``TaskNotFoundError`` for an unknown
        task and ``TerminalTaskError`` when a terminal task would change state, status message
        or grow. Concurrent updates never lose an append.
        """

    @abstractmethod
    async def append_artifact_chunk(
        self, task_id: IdLike, artifact: Artifact, *, append: bool = True
    ) -> None:
        """Streaming: extend (``append=True``) or replace the artifact with this ``artifact_id``.

        An artifact with a new id is added last either way. Refused on a terminal task. An
        appended chunk carries no id of its own, so unlike other writes it is not retried once
        it may have reached the server (``StorageConnectionError`` instead); a replacement is.
        """

    @abstractmethod
    async def update_task_state_if(self, task_id: IdLike, from_state: str, to_state: str) -> bool:
        """Atomically move the task from ``from_state`` to ``to_state``; False if not in it.

        The answer is exact: a retry after a lost reply recognises its own transition.
        """

    @abstractmethod
    async def list_tasks(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[Task]:
        """Tasks newest first: the most recent ``length`` after skipping ``offset``."""

    @abstractmethod
    async def count_tasks(
        self,
        status: str | None = None,
        *,
        owner_did: str | None = None,
        context_id: IdLike | None = None,
        states: str | Sequence[str] | None = None,
        updated_after: datetime | None = None,
    ) -> int:
        """Number of tasks, or of tasks in state ``status``, under the filters given.

        The keyword filters are those of ``list_tasks_page`` with the same meaning, so the count
        equals that listing's ``total_size``. ``status`` (upstream's positional argument) is a
        single state; give it or ``states``, not both (``InvalidValueError``).
        """

    @abstractmethod
    async def list_tasks_by_context(
        self,
        context_id: IdLike,
        length: int | None = None,
        offset: int = 0,
        owner_did: str | None = None,
    ) -> list[Task]:
        """The context's tasks oldest first (conversation order)."""

    @abstractmethod
    async def get_task_owner(self, task_id: IdLike) -> str | None:
        """The ``caller_did`` that created the task, or None (also for an unknown task)."""

    @abstractmethod
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
        """One page of tasks, most recently updated first: A2A's ``tasks/list``.

        **Filters** (None: any): ``context_id``; ``states``, one state name or several (the
        protocol's ``status``); ``updated_after``, an aware datetime: tasks whose
        ``updated_at`` is at or after it (every write moves ``updated_at``, a state change
        included, so this is the protocol's "status timestamp after" widened to any change);
        ``owner_did``, the caller the listing is scoped to (tasks it created).

        **Order.** ``updated_at`` descending, ties by ``id`` descending: a total order.

        **Pages.** ``page_size`` tasks at most (default 50, 1 to 100). ``next_page_token`` is
        ``''`` on the last page, else the token that gives the next page when passed back as
        ``page_token`` with the same filters (``page_size``, ``history_length`` and
        ``include_artifacts`` may change between pages). Tokens are keyset cursors: the page
        after a token holds the tasks that come after the last task shown, in the order above,
        as they are when that page is read.

        **Guarantee under concurrent writes.** During a walk from the first page to the last, a
        task that matches the filters, exists when the walk starts and is not written during
        the walk is listed exactly once, and no task is listed twice while ``updated_at`` only
        grows. A task created during the walk may or may not be listed. A task updated during
        the walk moves to the front of the order: it is missed if the walk had not reached it
        yet and not listed again if it had. (``updated_at`` is the writer's clock, ``now()`` on
        PostgreSQL, i.e. its transaction's start: a write that waited for another write of the
        same task can set an earlier time than the one before it; such a task may then be
        listed twice.) A caller that needs every change walks again with ``updated_after`` set
        to the time the first walk started.

        **Totals.** ``total_size`` is the number of tasks under the same filters (owner
        included) when the page is read, as ``count_tasks`` gives it.

        **Shape.** ``history_length`` keeps the last messages of each history (as in
        ``load_task``); ``include_artifacts=False`` (the default, as in the protocol) leaves
        the ``artifacts`` key out of each task.

        **Errors, before anything is read.** A bad filter, ``page_size`` (0, 101, not an int)
        or ``history_length`` raises ``InvalidValueError``/``InvalidTypeError`` naming it; a
        token this storage did not issue, or issued under other filters, raises
        ``InvalidPageTokenError`` (an ``InvalidValueError``) saying which.
        """

    # --- contexts ----------------------------------------------------------------------------

    @abstractmethod
    async def load_context(self, context_id: IdLike) -> dict[str, Any] | None:
        """The data last stored by ``update_context``; ``{}`` if never set; None if unknown."""

    @abstractmethod
    async def update_context(self, context_id: IdLike, context: dict[str, Any]) -> None:
        """Replace the context's data, creating the context if needed."""

    @abstractmethod
    async def append_to_contexts(self, context_id: IdLike, messages: Sequence[Message]) -> None:
        """Append messages to the context's message history, creating the context if needed."""

    @abstractmethod
    async def list_contexts(
        self, length: int | None = None, offset: int = 0, owner_did: str | None = None
    ) -> list[ContextSummary]:
        """Contexts newest first, each with its data, task count and task ids (oldest first)."""

    @abstractmethod
    async def get_context_owner(self, context_id: IdLike) -> str | None:
        """The ``caller_did`` that created the context, or None (also for an unknown one)."""

    @abstractmethod
    async def clear_context(self, context_id: IdLike) -> None:
        """Remove the context, its tasks and everything attached to them (no-op if unknown)."""

    @abstractmethod
    async def clear_all(self) -> None:
        """Remove everything (destructive)."""

    # --- feedback ----------------------------------------------------------------------------

    @abstractmethod
    async def store_task_feedback(self, task_id: IdLike, feedback_data: dict[str, Any]) -> None:
        """Store one feedback entry; ``TaskNotFoundError`` for an unknown task."""

    @abstractmethod
    async def get_task_feedback(self, task_id: IdLike) -> list[dict[str, Any]] | None:
        """The task's feedback entries oldest first, or None when there are none."""

    # --- webhook configs ---------------------------------------------------------------------

    @abstractmethod
    async def save_webhook_config(self, task_id: IdLike, config: PushNotificationConfig) -> None:
        """Store the task's one push-notification config, replacing all it had; the task must exist."""

    @abstractmethod
    async def load_webhook_config(self, task_id: IdLike) -> PushNotificationConfig | None:
        """The task's config whose id is the task id, else its first config, or None."""

    @abstractmethod
    async def delete_webhook_config(self, task_id: IdLike) -> None:
        """Remove every push-notification config of the task (no-op if none)."""

    @abstractmethod
    async def load_all_webhook_configs(self) -> dict[UUID, PushNotificationConfig]:
        """One push-notification config per task that has any (as ``load_webhook_config``)."""

    # --- analysis read API -------------------------------------------------------------------

    @abstractmethod
    async def task_records(
        self, limit: int | None = None, offset: int = 0, since: datetime | None = None
    ) -> list[TaskRecord]:
        """Tasks oldest first with owner and ``created_at``/``updated_at`` (updated ≥ since)."""

    @abstractmethod
    async def context_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        """Contexts oldest first with data, message history, owner and timestamps."""

    @abstractmethod
    async def feedback_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[FeedbackRecord]:
        """All feedback entries oldest first, with ids and timestamps."""

    @abstractmethod
    async def task_events(
        self, task_id: IdLike | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TaskEvent]:
        """Recorded state changes oldest first, of one task or of all."""

    # --- the change feed (see "The change feed" above and storage.feed) ----------------------

    @abstractmethod
    async def changes(
        self,
        since: int | None = None,
        *,
        task_id: IdLike | None = None,
        owner_did: str | None = None,
        limit: int = DEFAULT_FEED_LIMIT,
    ) -> list[Change]:
        """The changes after cursor ``since`` (None: from the start), oldest first.

        ``task_id`` keeps one task's changes, ``owner_did`` those of the tasks that caller
        created; at most ``limit`` (1 to 10,000) come back. Pass the ``cursor`` of the last one
        as ``since`` to read on: the changes come exactly once, in order, while writers commit
        concurrently. On PostgreSQL a change shows once every transaction that was running
        when it was written has ended (a long transaction delays the feed, never reorders it).
        """

    # --- lifecycle (see "Lifecycle" in the module docstring) ---------------------------------

    _closed: bool = False
    """Set by ``close()``, cleared by ``connect()``; every backend keeps it so."""

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called and ``connect()`` not since."""
        return self._closed

    def _closed_error(self) -> StorageClosedError:
        """The error every operation of a closed storage raises."""
        return StorageClosedError(type(self).__name__)

    def _ensure_open(self) -> None:
        """Raise ``StorageClosedError`` when the storage is closed."""
        if self._closed:
            raise self._closed_error()

    async def connect(self) -> None:
        """Open the storage: acquire its resources (a pool) and reopen it if it was closed.

        Idempotent. Optional before the first operation (a new storage connects lazily), but
        required to use a closed storage again; the data written before ``close()`` is there.
        This default, for a backend with no resources, only reopens.
        """
        self._closed = False

    @abstractmethod
    async def close(self) -> None:
        """Close the storage: release its resources; later operations raise ``StorageClosedError``
        until ``connect()``. Never deletes data. Idempotent.

        A backend sets ``_closed`` here and checks it (``_ensure_open``) in every operation.
        """

    async def disconnect(self) -> None:
        """Alias of ``close`` (upstream's name)."""
        await self.close()

    async def __aenter__(self) -> Self:
        """Open the storage (``connect()``, reopening it if closed)."""
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the storage (``close()``)."""
        await self.close()

    # --- push-notification configs by id (see "Push-notification configs" above) -------------

    @abstractmethod
    async def set_push_config(
        self, task_id: IdLike, config: PushNotificationConfig, *, owner_did: str | None = None
    ) -> str:
        """Add the config, or replace the task's config with its id; return the config id."""

    @abstractmethod
    async def get_push_config(
        self, task_id: IdLike, config_id: str, *, owner_did: str | None = None
    ) -> PushNotificationConfig | None:
        """The task's config with this id, or None."""

    @abstractmethod
    async def list_push_configs(
        self, task_id: IdLike, *, owner_did: str | None = None
    ) -> list[PushNotificationConfig]:
        """The task's configs in the order first set; ``[]`` when none (or not the caller's)."""

    @abstractmethod
    async def delete_push_config(
        self, task_id: IdLike, config_id: str | None = None, *, owner_did: str | None = None
    ) -> bool:
        """Remove the task's config with this id (None: the task id); False if there was none."""

    @abstractmethod
    async def push_config_records(
        self, limit: int | None = None, offset: int = 0
    ) -> list[PushConfigRecord]:
        """Every stored config in the order set, as stored (secrets never decrypted)."""

    @abstractmethod
    async def reencrypt_push_configs(self) -> int:
        """Re-encrypt every config holding secrets with the newest key; the number rewritten.

        Plain configs get encrypted, encrypted ones re-encrypted (rotation). Needs a key
        (``EncryptionKeyError`` otherwise); a config no configured key opens raises it too.
        """

    # --- deletion and retention (see "Deletion and retention" above) --------------------------

    @abstractmethod
    async def delete_task(self, task_id: IdLike, *, owner_did: str | None = None) -> bool:
        """Remove the task, its feedback, events and push configs (not its context).

        True when a task was removed, False for an unknown task.
        """

    @abstractmethod
    async def purge(
        self,
        *,
        older_than: timedelta | datetime | None = None,
        states: Iterable[str] | None = None,
        owner_did: str | None = None,
        dry_run: bool = False,
    ) -> PurgeCounts:
        """Remove what the retention policy selects (``storage.retention``); rows per table."""
