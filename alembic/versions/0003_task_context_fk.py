"""tasks reference their context: backfill missing contexts, then a cascading foreign key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create a context row for every orphan task, then add the foreign key."""
    op.execute(
        """
        INSERT INTO contexts (id, created_at, updated_at)
        SELECT context_id, min(created_at), max(updated_at) FROM tasks GROUP BY context_id
        ON CONFLICT (id) DO NOTHING
        """
    )
    op.execute(
        "ALTER TABLE tasks ADD CONSTRAINT fk_tasks_context_id "
        "FOREIGN KEY (context_id) REFERENCES contexts(id) ON DELETE CASCADE"
    )


def downgrade() -> None:
    """Drop the foreign key (backfilled contexts stay)."""
    op.execute("ALTER TABLE tasks DROP CONSTRAINT fk_tasks_context_id")
