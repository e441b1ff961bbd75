"""`screener db upgrade|status`."""

from __future__ import annotations

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
    typer.echo(f"schema at {schema_revision(engine)}")


@db_app.command("status")
@handle_errors
def status_cmd() -> None:
    """Show the schema revision of the database and the one this version needs."""
    engine = state().engine(check=False)
    typer.echo(f"database: {schema_revision(engine) or 'empty'}; needed: {head_revision()}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
