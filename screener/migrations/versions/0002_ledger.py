"""ledger area tables: accounts, transfers, holds, review flags, audit chain (see screener/models/ledger.py)

Revision ID: 0002_ledger
Revises: 0001_deposits
"""

import sqlalchemy as sa
from alembic import op

from screener.db import Amount

revision = "0002_ledger"
down_revision = "0001_deposits"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(160), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("normal", sa.String(8), nullable=False),
        sa.Column("debits_posted", Amount(), nullable=False),
        sa.Column("debits_pending", Amount(), nullable=False),
        sa.Column("credits_posted", Amount(), nullable=False),
        sa.Column("credits_pending", Amount(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "asset", name="uq_ledger_account"),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("flags", sa.String(16), nullable=False),
        sa.Column("debit_account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False, index=True),
        sa.Column("credit_account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False, index=True),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("amount", Amount(), nullable=False),
        sa.Column("pending_id", sa.String(200), sa.ForeignKey("ledger_transfers.id"), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deposit_id", sa.Integer, sa.ForeignKey("deposits.id"), nullable=False, unique=True),
        sa.Column("pending_transfer_id", sa.String(200)),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(24), nullable=False, index=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_breached_at", sa.DateTime(timezone=True)),
        sa.Column("release_requested_by", sa.String(128)),
        sa.Column("release_requested_at", sa.DateTime(timezone=True)),
        sa.Column("release_reason", sa.Text),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_reason", sa.Text),
        sa.Column("rejected_to", sa.String(32)),
    )
    op.create_table(
        "review_flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deposit_id", sa.Integer, sa.ForeignKey("deposits.id"), nullable=False, index=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("matched_address", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_reason", sa.Text),
        sa.UniqueConstraint("deposit_id", "rule_id", "matched_address", name="uq_review_flag"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(48), nullable=False, index=True),
        sa.Column("subject", sa.String(240), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    # The row every append locks; it must exist before the first event.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    for table in ("audit_head", "audit_events", "review_flags", "holds", "ledger_transfers", "ledger_accounts"):
        op.drop_table(table)
