"""deposits

Revision ID: 0001_deposits
Revises:
"""

import sqlalchemy as sa
from alembic import op

from screener.db import Amount

revision = "0001_deposits"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deposits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain", sa.String(32), nullable=False, index=True),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False, index=True),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True)),
        sa.Column("token_symbol", sa.String(16), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("decimals", sa.Integer, nullable=False),
        sa.Column("amount_raw", Amount(), nullable=False),
        sa.Column("from_address", sa.String(64), nullable=False, index=True),
        sa.Column("initiator", sa.String(64), index=True),
        sa.Column("to_address", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False, index=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("verdict", sa.String(16)),
        sa.Column("list_version_id", sa.Integer),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_deposit_event"),
    )


def downgrade() -> None:
    op.drop_table("deposits")
