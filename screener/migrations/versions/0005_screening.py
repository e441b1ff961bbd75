"""screening area tables (owner fills in; keep op.* calls in step with screener/models/screening.py)

Revision ID: 0005_screening
Revises: 0004_chain
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_screening"
down_revision = "0004_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
