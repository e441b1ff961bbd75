"""lists area tables (owner fills in; keep op.* calls in step with screener/models/lists.py)

Revision ID: 0003_lists
Revises: 0002_ledger
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_lists"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
