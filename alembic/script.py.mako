"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

from alembic import op

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    """Apply this revision: raw SQL via op.execute, unqualified names (search_path is the schema)."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Undo exactly what upgrade() did."""
    ${downgrades if downgrades else "pass"}
