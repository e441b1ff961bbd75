"""`screener db upgrade|status|roles`."""

from __future__ import annotations

from typing import Any

import typer

from screener.cli.common import handle_errors, state
from screener.db import head_revision, schema_revision, upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@handle_errors
def upgrade_cmd() -> None:
    """Create or upgrade the schema to the newest revision."""
    engine = state().engine(check=False)
    upgrade(engine)
    began = _record_seal_baseline(engine)
    typer.echo(f"schema at {schema_revision(engine)}" + (f"; rows sealed from now on ({began})" if began else ""))


def _record_seal_baseline(engine: Any) -> str | None:
    """Once per database: which rows predate row seals (docs/security.md). None when already recorded."""
    from screener.db import session_scope
    from screener.ledger.audit import record_seal_baseline
    from screener_base.clock import utc_now

    with session_scope(engine) as s:
        rows = record_seal_baseline(s, utc_now())
    if rows is None:
        return None
    return ", ".join(f"{t} above id {n}" for t, n in rows.items() if n) or "every row"


@db_app.command("status")
@handle_errors
def status_cmd() -> None:
    """Show the schema revision of the database and the one this version needs."""
    engine = state().engine(check=False)
    typer.echo(f"database: {schema_revision(engine) or 'empty'}; needed: {head_revision()}")


@db_app.command("roles")
@handle_errors
def roles_cmd(
    worker: str = typer.Option(..., "--worker", help="the daemon's login role"),
    reviewers: str = typer.Option(..., "--reviewers", help="reviewers' login roles, comma-separated (two or more)"),
    auditor: str | None = typer.Option(None, "--auditor", help="a read-only login role"),
    sql_only: bool = typer.Option(False, "--sql", help="print the SQL instead of running it"),
) -> None:
    """Separate the worker, the reviewers and an auditor in PostgreSQL (privileges and guard triggers).

    Idempotent; run it as the schema's owner after `screener db upgrade`, and again after each upgrade or change
    of review.four_eyes_above_units (the database enforces the threshold of the config it was run with). Login
    roles that do not exist are created without a password: set up how each person logs in. Example:
    `screener db roles --worker screener_daemon --reviewers alice,bob --auditor audit`.
    """
    import sqlalchemy as sa

    from screener.db import is_postgres
    from screener.review.roles import role_statements
    from screener_base.errors import ConfigError

    engine = state().engine()
    if not is_postgres(engine):
        raise ConfigError("`db roles` needs PostgreSQL (SQLite has no logins)", "set database.url to postgresql://...")
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
    names = [n.strip() for n in reviewers.split(",") if n.strip()]
    threshold = state().settings.review.four_eyes_above_units  # the owner's config, written into the trigger
    statements = role_statements(worker, names, auditor, sorted(tables), threshold)
    if sql_only:
        typer.echo(";\n".join(statements) + ";")
        return
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement.replace(":", "\\:")))  # the PL/pgSQL bodies hold ":" (not binds)
    typer.echo(
        f"roles set: worker {worker}; reviewers {', '.join(names)}"
        + (f"; auditor {auditor}" if auditor else "")
        + f"; guards on holds, review_flags, ledger_transfers and ledger_accounts ({len(tables)} tables granted)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
