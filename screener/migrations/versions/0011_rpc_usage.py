"""rpc_endpoint_usage: requests per endpoint and UTC day, the cluster-wide count each request budget starts from

A provider's daily limit (TronGrid: 100,000 requests a day) is per key, not per worker: workers add what they sent,
and a worker that starts or takes over a chain seeds its budgets with the day's total (screener.daemon.state).

Revision ID: 0011_rpc_usage
Revises: 0010_index_facts_append_only
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_rpc_usage"
down_revision = "0010_index_facts_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rpc_endpoint_usage",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),  # UTC, YYYY-MM-DD
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rpc_endpoint_usage")
