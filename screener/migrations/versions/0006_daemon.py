"""daemon area tables (owner fills in; keep op.* calls in step with screener/models/daemon.py)

Revision ID: 0006_daemon
Revises: 0005_screening
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_daemon"
down_revision = "0005_screening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
