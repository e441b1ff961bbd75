"""Rows read as stored, so a malformed value is a finding and never a crash (`screener audit verify`).

The ORM converts every value when it loads a row: a transfer amount ``abc``, a balance ``1e9``, a timestamp
``yesterday`` or findings ``{{`` make that load raise. The checks here read rows raw, convert each value
themselves, and report the ones that do not convert, by table, id and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from screener.db import Amount
from screener_base.clock import ensure_utc

# Where the ORM-based checks read: a malformed value in one of these stops them (and is reported instead).
CHECKED_TABLES = ("audit_events", "ledger_transfers", "ledger_accounts", "holds", "deposits", "review_flags")
MALFORMED_KEY = "__malformed__"  # in a raw event's payload: why the stored event could not be read
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REPORTED = 50
_WHOLE = re.compile(r"^-?[0-9]{1,80}$")


def parse_value(value: Any, column: sa.Column[Any]) -> Any:
    """The stored value as the ORM would load it; ValueError (naming why) when it cannot be."""
    kind = column.type
    if value is None:
        return None
    if isinstance(kind, Amount):
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _WHOLE.match(value):
            return int(value)
        raise ValueError(f"{value!r} is not a whole number of base units")
    if isinstance(kind, sa.JSON):
        return json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(kind, sa.DateTime):
        if isinstance(value, str):
            return ensure_utc(datetime.fromisoformat(value))
        if isinstance(value, datetime):
            return ensure_utc(value)
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(kind, sa.Integer) and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _problem(table: str, key: Any, column: str, exc: Exception) -> str:
    said = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return f"{table} {key} column {column} is malformed: {said}"


def malformed_rows(session: Session, tables: tuple[str, ...] = CHECKED_TABLES, page: int = 2000) -> list[str]:
    """One problem per stored value that does not convert (at most MAX_REPORTED)."""
    problems: list[str] = []
    for name in tables:
        table = SQLModel.metadata.tables[name]
        key = next(iter(table.primary_key.columns))
        after: Any = None
        while len(problems) < MAX_REPORTED:
            where = f"WHERE {key.name} > :after " if after is not None else ""
            columns = ", ".join(c.name for c in table.c)
            stmt = sa.text(f"SELECT {columns} FROM {name} {where}ORDER BY {key.name} LIMIT {int(page)}")
            rows = list(session.execute(stmt, {"after": after}).mappings())
            for row in rows:
                for column in table.c:
                    try:
                        parse_value(row[column.name], column)
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        problems.append(_problem(name, f"{key.name} {row[key.name]!r}", column.name, exc))
            if len(rows) < page:
                break
            after = rows[-1][key.name]
    return problems[:MAX_REPORTED]


def raw_events(session: Session, after: int, page: int) -> Iterator[dict[str, Any]]:
    """A page of events as stored; a field that does not convert is replaced and named in MALFORMED_KEY."""
    table = SQLModel.metadata.tables["audit_events"]
    names = ("seq", "kind", "subject", "actor", "at", "payload", "prev_hash", "hash")
    stmt = sa.text(f"SELECT {', '.join(names)} FROM audit_events WHERE seq > :after ORDER BY seq LIMIT {int(page)}")
    for row in session.execute(stmt, {"after": after}).mappings():
        event = dict(row)
        why = []
        for name, fallback in (("at", EPOCH), ("payload", {})):
            try:
                event[name] = parse_value(event[name], table.c[name])
            except (ValueError, TypeError) as exc:
                why.append(f"{name} {str(exc).splitlines()[0][:80]}")
                event[name] = fallback
        if why:
            event["payload"] = {MALFORMED_KEY: "; ".join(why)}
        yield event
