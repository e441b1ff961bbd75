"""lists area tables: list_versions, list_entries, list_refreshes (see screener/models/lists.py)

Revision ID: 0003_lists
Revises: 0002_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_lists"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "list_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("source_format", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        _ts("fetched_at"),
        _ts("published_at", nullable=True),
        _ts("activated_at"),
        _ts("last_verified_at"),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.UniqueConstraint("seq", name="uq_list_version_seq"),
    )
    op.create_table(
        "list_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("list_versions.id"), nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("canonical", sa.String(256), nullable=False),
        sa.Column("family", sa.String(16), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(512)),
        sa.Column("programs", sa.JSON, nullable=False),
        sa.Column("profile_id", sa.String(32)),
        sa.Column("note", sa.String(512)),
    )
    op.create_index("ix_list_entries_lookup", "list_entries", ["version_id", "family", "canonical"])
    op.create_table(
        "list_refreshes",
        sa.Column("id", sa.Integer, primary_key=True),
        _ts("attempted_at"),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("entry_count", sa.Integer),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("list_versions.id")),
    )
    op.create_index("ix_list_refreshes_attempted_at", "list_refreshes", ["attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_list_refreshes_attempted_at", table_name="list_refreshes")
    op.drop_table("list_refreshes")
    op.drop_index("ix_list_entries_lookup", table_name="list_entries")
    op.drop_table("list_entries")
    op.drop_table("list_versions")
