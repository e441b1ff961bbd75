"""address_generation: a counter every deposit address change moves, so workers never keep a stale watch map

(count, max id) of deposit_addresses stays the same when the newest address is removed and another added: SQLite
reuses the freed highest id. The counter changes in the transaction of each add, remove and import.

Revision ID: 0012_address_generation
Revises: 0011_rpc_usage
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_address_generation"
down_revision = "0011_rpc_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "address_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("address_generation")
