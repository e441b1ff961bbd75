"""screening area tables: mixer withdrawal index, issuer blacklist events, index cursors (see screener/models/screening.py)

Revision ID: 0005_screening
Revises: 0004_chain
"""

import sqlalchemy as sa
from alembic import op

from screener.db import Amount

revision = "0005_screening"
down_revision = "0004_chain"
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _event_position() -> list[sa.Column]:
    return [
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        _ts("block_time"),
        _ts("indexed_at"),
    ]


def upgrade() -> None:
    op.create_table(
        "mixer_withdrawals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("pool", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False, index=True),
        sa.Column("relayer", sa.String(64), index=True),
        sa.Column("fee", Amount(), nullable=False),
        sa.Column("nullifier_hash", sa.String(66), nullable=False),
        *_event_position(),
        sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_mixer_withdrawal_event"),
    )
    op.create_table(
        "issuer_blacklist_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("token_symbol", sa.String(16), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("interface", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=False, index=True),
        *_event_position(),
        sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_issuer_blacklist_event"),
    )
    op.create_table(
        "index_cursors",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("next_block", sa.BigInteger, nullable=False),
        sa.Column("first_block", sa.BigInteger, nullable=False),
        sa.Column("sources", sa.String(64), nullable=False),
        _ts("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("index_cursors")
    op.drop_table("issuer_blacklist_events")
    op.drop_table("mixer_withdrawals")
