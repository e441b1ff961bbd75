"""ledger area tables (owner fills in; keep op.* calls in step with screener/models/ledger.py (accounts, transfers, holds, audit))

Revision ID: 0002_ledger
Revises: 0001_deposits
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_ledger"
down_revision = "0001_deposits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
