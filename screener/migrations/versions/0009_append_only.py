"""audit_events and ledger_transfers are append-only: UPDATE and DELETE are refused by triggers

PostgreSQL: for every role but the table's owner (the migrations' role), whatever privileges it was granted, so
a reviewer with psql or a compromised daemon cannot rewrite or remove a recorded event or transfer. SQLite has
no roles: the triggers refuse everyone, which stops mistakes and tools, not someone who holds the file (they can
drop the trigger); docs/security.md says so.

Revision ID: 0009_append_only
Revises: 0008_list_entry_text
"""

from alembic import op

revision = "0009_append_only"
down_revision = "0008_list_entry_text"
branch_labels = None
depends_on = None

TABLES = ("audit_events", "ledger_transfers")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION public.screener_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $fn$
BEGIN
  IF pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
    RETURN CASE WHEN TG_LEVEL = 'STATEMENT' THEN NULL WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused for %', TG_TABLE_NAME, TG_OP, session_user
    USING ERRCODE = '42501';
END
$fn$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER screener_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION public.screener_append_only()"
            )
            # TRUNCATE fires no row trigger: a role granted TRUNCATE would empty the table otherwise.
            op.execute(
                f"CREATE TRIGGER screener_append_only_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION public.screener_append_only()"
            )
        return
    for table in TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS screener_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS screener_append_only_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS public.screener_append_only()")
        return
    for table in TABLES:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
