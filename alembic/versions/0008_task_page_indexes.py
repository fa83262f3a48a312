"""indexes for paged task listing (A2A tasks/list): most recently updated first, by keyset

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

``list_tasks_page`` orders tasks by ``(updated_at DESC, id DESC)`` and reads the page after a
token with the keyset condition ``(updated_at, id) < (token's updated_at, token's id)``. Each
index below serves that order for one way of scoping the listing, so a page reads about
``page_size`` index entries however many tasks there are: all tasks, the tasks of one context,
the tasks of one owner (the usual case: a server lists its caller's tasks).

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "idx_tasks_updated_id": "(updated_at DESC, id DESC)",
    "idx_tasks_context_updated_id": "(context_id, updated_at DESC, id DESC)",
    "idx_tasks_owner_updated_id": "(owner_did, updated_at DESC, id DESC)",
}


def upgrade() -> None:
    """Create the three keyset indexes on tasks."""
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks {columns}")


def downgrade() -> None:
    """Drop them."""
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
