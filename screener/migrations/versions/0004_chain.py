"""chain area tables: deposit_addresses, scan_cursors, chain_headers (see screener/models/chain.py)

Revision ID: 0004_chain
Revises: 0003_lists
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_chain"
down_revision = "0003_lists"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deposit_addresses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain", sa.String(32), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False, index=True),
        _ts("created_at"),
        sa.UniqueConstraint("chain", "address", name="uq_deposit_address"),
    )
    op.create_table(
        "scan_cursors",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("next_block", sa.BigInteger, nullable=False),
        sa.Column("head_block", sa.BigInteger),
        sa.Column("safe_block", sa.BigInteger),
        sa.Column("reorgs", sa.Integer, nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "chain_headers",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("parent_hash", sa.String(66), nullable=False),
        _ts("block_time", nullable=True),
        _ts("seen_at"),
    )


def downgrade() -> None:
    op.drop_table("chain_headers")
    op.drop_table("scan_cursors")
    op.drop_table("deposit_addresses")
