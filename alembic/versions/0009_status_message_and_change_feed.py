"""the task's status message, and the change feed in task_events

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

``tasks.status_message``: A2A's ``TaskStatus.message`` (the agent's question in
input-required, say), NULL when the status has none.

``task_events`` becomes the change feed (``storage.feed``): one row per write that changes a
task. ``kind`` says which (``status``: the status was set, the rows this table held so far;
``artifact`` / ``artifact-chunk``: an artifact update), ``status_message``, ``messages`` and
``artifacts`` what the write set and appended (NULL in the rows written before), and ``xact``
the id of the writing transaction (``pg_current_xact_id()``): the feed shows a change once that
transaction is older than every running one, so a late commit never lands behind a cursor
already handed out. Older rows get ``xact`` 0 (long committed), a constant default, so adding
the column rewrites nothing; new rows take the writer's id from the column's default, so no
statement has to name it. ``idx_task_events_feed`` serves the feed's order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the status message and the feed's columns and index."""
    op.execute("ALTER TABLE tasks ADD COLUMN status_message JSONB")
    op.execute(
        """
        ALTER TABLE task_events
            ADD COLUMN kind TEXT NOT NULL DEFAULT 'status',
            ADD COLUMN status_message JSONB,
            ADD COLUMN messages JSONB,
            ADD COLUMN artifacts JSONB,
            ADD COLUMN xact XID8 NOT NULL DEFAULT '0'
        """
    )
    op.execute("ALTER TABLE task_events ALTER COLUMN xact SET DEFAULT pg_current_xact_id()")
    op.execute(
        "ALTER TABLE task_events ADD CONSTRAINT task_events_kind_check "
        "CHECK (kind IN ('status', 'artifact', 'artifact-chunk'))"
    )
    op.execute("CREATE INDEX idx_task_events_feed ON task_events (xact, id)")


def downgrade() -> None:
    """Drop them (the feed's artifact rows go: the state changes stay)."""
    op.execute("DROP INDEX idx_task_events_feed")
    op.execute("DELETE FROM task_events WHERE kind <> 'status'")
    op.execute(
        """
        ALTER TABLE task_events
            DROP COLUMN xact,
            DROP COLUMN artifacts,
            DROP COLUMN messages,
            DROP COLUMN status_message,
            DROP COLUMN kind
        """
    )
    op.execute("ALTER TABLE tasks DROP COLUMN status_message")
