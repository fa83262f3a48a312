"""A2A protocol types as stored by bindu-storage (snake_case keys, as in the storage spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict
from uuid import UUID

TaskState = Literal[
    "submitted",
    "working",
    "input-required",
    "auth-required",
    "completed",
    "canceled",
    "failed",
    "rejected",
    "unknown",
    # Bindu's own states (upstream's TaskState; its x402 flow sets payment-required)
    "payment-required",
    "trust-verification-required",
    "pending",
    "suspended",
    "resumed",
    "negotiation-bid-submitted",
    "negotiation-bid-lost",
    "negotiation-bid-won",
]
"""Every state a task can be in: A2A's, then upstream Bindu's additions (none terminal)."""

TASK_STATES: frozenset[str] = frozenset(TaskState.__args__)  # type: ignore[attr-defined]
"""The set of valid task states."""

TERMINAL_STATES: frozenset[str] = frozenset({"completed", "canceled", "failed", "rejected"})
"""States a task never leaves: it accepts metadata merges only."""

Role = Literal["user", "agent"]


class TextPart(TypedDict):
    """A plain-text message or artifact part."""

    kind: Literal["text"]
    text: str
    metadata: NotRequired[dict[str, Any]]


class FileWithBytes(TypedDict):
    """File content inlined as base64."""

    bytes: str
    mime_type: NotRequired[str]
    name: NotRequired[str]


class FileWithUri(TypedDict):
    """File content referenced by URI."""

    uri: str
    mime_type: NotRequired[str]
    name: NotRequired[str]


class FilePart(TypedDict):
    """A file attached to a message or artifact."""

    kind: Literal["file"]
    file: FileWithBytes | FileWithUri
    metadata: NotRequired[dict[str, Any]]


class DataPart(TypedDict):
    """Structured JSON data."""

    kind: Literal["data"]
    data: dict[str, Any]
    metadata: NotRequired[dict[str, Any]]


Part = TextPart | FilePart | DataPart


class Message(TypedDict):
    """One turn of a conversation."""

    message_id: UUID | str
    context_id: UUID | str
    task_id: UUID | str
    kind: Literal["message"]
    role: Role
    parts: list[Part]
    reference_task_ids: NotRequired[list[UUID | str]]
    metadata: NotRequired[dict[str, Any]]


class Artifact(TypedDict):
    """An output produced by a task."""

    artifact_id: UUID | str
    name: NotRequired[str]
    description: NotRequired[str]
    parts: list[Part]
    metadata: NotRequired[dict[str, Any]]


class TaskStatus(TypedDict):
    """The state of a task and when it was entered (ISO-8601, UTC)."""

    state: TaskState
    timestamp: str
    message: NotRequired[Message]


class Task(TypedDict):
    """An A2A task as the storage returns it."""

    id: UUID
    context_id: UUID
    kind: Literal["task"]
    status: TaskStatus
    history: NotRequired[list[Message]]
    artifacts: NotRequired[list[Artifact]]
    metadata: NotRequired[dict[str, Any]]


class PushNotificationAuthenticationInfo(TypedDict):
    """How a webhook call authenticates (credentials are secrets)."""

    schemes: list[str]
    credentials: NotRequired[str]


class PushNotificationConfig(TypedDict):
    """Where and how to push task updates (the token is a secret)."""

    id: NotRequired[UUID | str]
    url: str
    token: NotRequired[str]
    authentication: NotRequired[PushNotificationAuthenticationInfo]


class ContextSummary(TypedDict):
    """One entry of `list_contexts`."""

    context_id: UUID
    context_data: dict[str, Any]
    task_count: int
    task_ids: list[UUID]


class TaskRecord(TypedDict):
    """A task with its bookkeeping, as the analysis read API returns it."""

    task: Task
    owner_did: str | None
    created_at: datetime
    updated_at: datetime


class ContextRecord(TypedDict):
    """A context with its bookkeeping, as the analysis read API returns it."""

    context_id: UUID
    context_data: dict[str, Any]
    message_history: list[dict[str, Any]]
    owner_did: str | None
    created_at: datetime
    updated_at: datetime


class FeedbackRecord(TypedDict):
    """One stored feedback entry."""

    id: int
    task_id: UUID
    feedback_data: dict[str, Any]
    created_at: datetime


class TaskEvent(TypedDict):
    """One recorded state change of a task (`from_state` is None for the creation)."""

    id: int
    task_id: UUID
    from_state: str | None
    to_state: str
    at: datetime
