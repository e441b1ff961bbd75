"""Tampering behind the CLI's back, as someone with the database file (SQLite) or the owner's login would."""

from __future__ import annotations

import sqlalchemy as sa

APPEND_ONLY_TABLES = ("audit_events", "ledger_transfers", "mixer_withdrawals", "issuer_blacklist_events")
SQLITE_APPEND_ONLY_TRIGGERS = tuple(
    f"{table}_no_{action}" for table in APPEND_ONLY_TABLES for action in ("update", "delete")
)


def drop_append_only(conn: sa.Connection) -> None:
    """On SQLite, drop the append-only triggers (they stop mistakes, not the file's holder); the owner of a
    PostgreSQL schema is not stopped by them in the first place."""
    if conn.dialect.name == "sqlite":
        for trigger in SQLITE_APPEND_ONLY_TRIGGERS:
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))
