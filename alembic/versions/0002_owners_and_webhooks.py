"""owners and webhook configs: owner_did on tasks and contexts, a webhook_configs table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the caller DID that owns each task and context, and push-notification configs."""
    op.execute("ALTER TABLE tasks ADD COLUMN owner_did TEXT")
    op.execute("ALTER TABLE contexts ADD COLUMN owner_did TEXT")
    op.execute("CREATE INDEX idx_tasks_owner_did ON tasks (owner_did)")
    op.execute("CREATE INDEX idx_contexts_owner_did ON contexts (owner_did)")
    op.execute(
        """
        CREATE TABLE webhook_configs (
            task_id UUID PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
            config JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        )
        """
    )


def downgrade() -> None:
    """Drop webhook configs and the owner columns."""
    op.execute("DROP TABLE webhook_configs")
    op.execute("DROP INDEX idx_contexts_owner_did")
    op.execute("DROP INDEX idx_tasks_owner_did")
    op.execute("ALTER TABLE contexts DROP COLUMN owner_did")
    op.execute("ALTER TABLE tasks DROP COLUMN owner_did")
