"""chain area tables (owner fills in; keep op.* calls in step with screener/models/chain.py)

Revision ID: 0004_chain
Revises: 0003_lists
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_chain"
down_revision = "0003_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
