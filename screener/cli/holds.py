"""`screener` commands: holds list/show/release/approve/reject/note/export and balances (issue 2)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
