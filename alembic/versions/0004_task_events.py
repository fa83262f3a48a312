"""task_events: the state-transition log used for lifecycle analysis

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the event table; existing tasks get one event for the state they are in."""
    op.execute(
        """
        CREATE TABLE task_events (
            id BIGSERIAL PRIMARY KEY,
            task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            from_state VARCHAR(50),
            to_state VARCHAR(50) NOT NULL,
            at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        )
        """
    )
    op.execute("CREATE INDEX idx_task_events_task_id ON task_events (task_id, id)")
    op.execute("CREATE INDEX idx_task_events_at ON task_events (at)")
    op.execute(
        """
        INSERT INTO task_events (task_id, from_state, to_state, at)
        SELECT id, NULL, state, state_timestamp FROM tasks ORDER BY created_at, id
        """
    )


def downgrade() -> None:
    """Drop the event log."""
    op.execute("DROP TABLE task_events")
