"""Every SQL statement of the PostgreSQL backend: one whole statement per operation.

Each statement below reads top to bottom as the SQL the server runs. The only placeholder is
``{schema}``: ``Statements.for_schema(name)`` validates the schema name, quotes it once and puts
it in place with ``str.replace`` (never ``str.format``), so JSON literals such as ``'{}'`` and
paths such as ``'{parts}'`` are written as plain SQL. Every table is schema-qualified, so nothing
depends on a session ``search_path`` (which PgBouncer in transaction mode does not keep).

Parameters are positional (``$1``, ``$2``…); the comment heading each statement names them.
The terminal states are written out, ``('canceled', 'completed', 'failed', 'rejected')``; an
import-time check keeps that list equal to ``types.TERMINAL_STATES``.

Why writes are single statements: a write whose reply is lost is retried (``storage.retry``),
so each one must apply at most once. A data-modifying CTE locks the task (``FOR UPDATE``),
leaves out messages and artifacts already present (by ``message_id`` / ``artifact_id``),
updates and logs the state change to ``task_events`` in one atomic step.

One module per topic, each a frozen dataclass whose fields are its statements; ``Statements``
is all of them at once (one field per operation, the names ``PostgresStorage`` runs them by):

- ``task_writes``: submit, continue, update, append a chunk, compare-and-set
- ``task_reads``: load, list, count, owner
- ``pages``: A2A ``tasks/list`` pages and their count
- ``contexts``, ``feedback``, ``push_configs`` (webhook and by id)
- ``records``: the analysis read API; ``feed``: the change feed
- ``retention``: delete a task, purge, clear all
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage.sql.contexts import ContextStatements
from bindu_storage.storage.sql.feed import FeedStatements
from bindu_storage.storage.sql.feedback import FeedbackStatements
from bindu_storage.storage.sql.pages import PageStatements
from bindu_storage.storage.sql.push_configs import PushConfigStatements
from bindu_storage.storage.sql.records import RecordStatements
from bindu_storage.storage.sql.retention import RetentionStatements
from bindu_storage.storage.sql.task_reads import TaskReadStatements
from bindu_storage.storage.sql.task_writes import TaskWriteStatements
from bindu_storage.types import TERMINAL_STATES

__all__ = ["SCHEMA_PLACEHOLDER", "TASK_COLUMNS", "Statements", "quote_ident", "validate_schema_name"]

SCHEMA_PLACEHOLDER = "{schema}"
"""The token each statement names its schema with; ``Statements.for_schema`` replaces it."""

TASK_COLUMNS = (
    "t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata"
)
"""The columns that make up an A2A task (``t`` is the tasks table); analysis reuses them."""

_SPELLED_OUT_TERMINAL_STATES = frozenset({"canceled", "completed", "failed", "rejected"})
if TERMINAL_STATES != _SPELLED_OUT_TERMINAL_STATES:
    raise AssertionError("storage.sql spells out the terminal states: update it to TERMINAL_STATES")


@dataclass(frozen=True)
class Statements(
    TaskReadStatements,
    TaskWriteStatements,
    PageStatements,
    ContextStatements,
    FeedbackStatements,
    PushConfigStatements,
    RecordStatements,
    FeedStatements,
    RetentionStatements,
):
    """The backend's statements, one field per operation, rendered for one schema.

    The defaults are the templates (over ``{schema}``); ``for_schema`` gives the rendered set.
    """

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        """Every statement with ``{schema}`` replaced by ``schema``, validated and quoted."""
        quoted = quote_ident(validate_schema_name(schema))
        templates = {f.name: f.default for f in fields(cls) if isinstance(f.default, str)}
        return cls(**{name: _render(template, quoted) for name, template in templates.items()})

    @cached_property
    def _names(self) -> dict[str, str]:
        return {getattr(self, f.name): f.name for f in fields(self)}

    def name_of(self, statement: str) -> str:
        """The name of one of these statements (for error messages and logs)."""
        return self._names.get(statement, "statement")


def _render(template: str, quoted_schema: str) -> str:
    """The statement of ``template`` for one schema, without the indentation of this file."""
    lines = [line.strip() and line for line in template.strip("\n").splitlines()]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line)
    text = "\n".join(line[indent:] for line in lines).rstrip()
    return text.replace(SCHEMA_PLACEHOLDER, quoted_schema)
