"""daemon area tables: leases, workers, alert outbox, chain status, RPC error totals (see screener/models/daemon.py)

Revision ID: 0006_daemon
Revises: 0005_screening
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_daemon"
down_revision = "0005_screening"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("holder", sa.String(128)),
        sa.Column("holder_instance", sa.String(32)),
        sa.Column("token", sa.BigInteger, nullable=False),
        _ts("acquired_at"),
        _ts("renewed_at"),
        _ts("expires_at", nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("instance", sa.String(32), primary_key=True),
        sa.Column("worker_id", sa.String(128), nullable=False, index=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        _ts("started_at", nullable=False),
        _ts("last_seen_at", nullable=False),
        _ts("stopped_at"),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
        sa.Column("ref_id", sa.Integer),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
        _ts("delivered_at"),
        sa.Column("delivered_to", sa.JSON, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Index("ix_alert_outbox_kind_ref", "kind", "ref_id"),
    )
    op.create_table(
        "chain_status",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("head_block", sa.BigInteger),
        sa.Column("safe_head_block", sa.BigInteger),
        _ts("last_tick_at"),
        _ts("last_progress_at"),
        sa.Column("ticks_ok", sa.BigInteger, nullable=False),
        sa.Column("ticks_failed", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        _ts("last_error_at"),
    )
    op.create_table(
        "rpc_endpoint_errors",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("errors_total", sa.BigInteger, nullable=False),
        _ts("updated_at", nullable=False),
    )


def downgrade() -> None:
    for table in ("rpc_endpoint_errors", "chain_status", "alert_outbox", "workers", "leases"):
        op.drop_table(table)
