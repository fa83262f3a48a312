"""initial schema: tasks, contexts, task_feedback exactly as the storage spec declares them

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the spec's three tables with their B-tree and GIN indexes."""
    op.execute(
        """
        CREATE TABLE tasks (
            id UUID PRIMARY KEY,
            context_id UUID NOT NULL,
            kind VARCHAR(50) NOT NULL DEFAULT 'task',
            state VARCHAR(50) NOT NULL,
            state_timestamp TIMESTAMPTZ NOT NULL,
            history JSONB NOT NULL DEFAULT '[]',
            artifacts JSONB DEFAULT '[]',
            metadata JSONB DEFAULT '{}',
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE contexts (
            id UUID PRIMARY KEY,
            context_data JSONB NOT NULL DEFAULT '{}',
            message_history JSONB DEFAULT '[]',
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE task_feedback (
            id SERIAL PRIMARY KEY,
            task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            feedback_data JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        )
        """
    )
    for statement in (
        "CREATE INDEX idx_tasks_context_id ON tasks (context_id)",
        "CREATE INDEX idx_tasks_state ON tasks (state)",
        "CREATE INDEX idx_tasks_state_timestamp ON tasks (state_timestamp)",
        "CREATE INDEX idx_tasks_created_at ON tasks (created_at)",
        "CREATE INDEX idx_tasks_updated_at ON tasks (updated_at)",
        "CREATE INDEX idx_contexts_created_at ON contexts (created_at)",
        "CREATE INDEX idx_contexts_updated_at ON contexts (updated_at)",
        "CREATE INDEX idx_task_feedback_task_id ON task_feedback (task_id)",
        "CREATE INDEX idx_task_feedback_created_at ON task_feedback (created_at)",
        "CREATE INDEX idx_tasks_history_gin ON tasks USING GIN (history jsonb_path_ops)",
        "CREATE INDEX idx_tasks_artifacts_gin ON tasks USING GIN (artifacts jsonb_path_ops)",
        "CREATE INDEX idx_tasks_metadata_gin ON tasks USING GIN (metadata jsonb_path_ops)",
        "CREATE INDEX idx_contexts_context_data_gin ON contexts USING GIN (context_data jsonb_path_ops)",
        "CREATE INDEX idx_contexts_message_history_gin ON contexts "
        "USING GIN (message_history jsonb_path_ops)",
        "CREATE INDEX idx_task_feedback_data_gin ON task_feedback "
        "USING GIN (feedback_data jsonb_path_ops)",
    ):
        op.execute(statement)


def downgrade() -> None:
    """Drop the three tables (and with them their indexes)."""
    op.execute("DROP TABLE task_feedback")
    op.execute("DROP TABLE tasks")
    op.execute("DROP TABLE contexts")
