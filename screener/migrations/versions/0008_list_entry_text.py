"""list_entries.entity and .note become TEXT: a real list may name an entity at any length

An SDN entity name with its aliases can exceed 512 characters; PostgreSQL refused such an entry with
"value too long for type character varying(512)" and the whole list failed to activate (SQLite does not
enforce VARCHAR lengths, so it only showed on PostgreSQL).

Revision ID: 0008_list_entry_text
Revises: 0007_redact_endpoints
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_list_entry_text"
down_revision = "0007_redact_endpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("list_entries") as batch:
        batch.alter_column("entity", type_=sa.Text(), existing_type=sa.String(512), existing_nullable=True)
        batch.alter_column("note", type_=sa.Text(), existing_type=sa.String(512), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("list_entries") as batch:
        batch.alter_column("entity", type_=sa.String(512), existing_type=sa.Text(), existing_nullable=True)
        batch.alter_column("note", type_=sa.String(512), existing_type=sa.Text(), existing_nullable=True)
