"""mixer_withdrawals and issuer_blacklist_events are append-only, as audit_events and ledger_transfers are

Index facts come from chain logs and are sealed when found (screener.indexes.store): nothing in the worker
updates or deletes them, so the same triggers as in 0009 refuse it (on PostgreSQL for every role but the owner,
on SQLite for everyone). The revision also makes `screener db upgrade` run on existing databases, which records
the seal baseline of these two tables before their first seal (screener.ledger.audit.record_seal_baseline).

Revision ID: 0010_index_facts_append_only
Revises: 0009_append_only
"""

from alembic import op

revision = "0010_index_facts_append_only"
down_revision = "0009_append_only"
branch_labels = None
depends_on = None

TABLES = ("mixer_withdrawals", "issuer_blacklist_events")


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        if bind.dialect.name == "postgresql":
            # public.screener_append_only() is 0009's: the owner passes, every other role is refused.
            op.execute(
                f"CREATE TRIGGER screener_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION public.screener_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER screener_append_only_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION public.screener_append_only()"
            )
            continue
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS screener_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS screener_append_only_truncate ON {table}")
            continue
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
