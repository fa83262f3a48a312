"""a request key on task events: a retried compare-and-swap recognises its own transition

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

``update_task_state_if`` records the caller's request key with the transition it makes, so a
retry after a lost reply (the first attempt committed, its answer never arrived) finds its own
event and answers True instead of "the task is no longer in from_state". Lookups go through the
existing ``(task_id, id)`` index: a task has few events, so no index of its own is needed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable key (older events have none)."""
    op.execute("ALTER TABLE task_events ADD COLUMN request_key UUID")


def downgrade() -> None:
    """Drop the key."""
    op.execute("ALTER TABLE task_events DROP COLUMN request_key")
