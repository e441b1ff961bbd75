"""Row seals: the audit chain commits to every column of the rows that decide money, evidence or who acted.

When an event records a change to a hold, a deposit or a review flag, it carries ``rows``: each such row as the
database holds it right after the change (``"holds:12": {column: value, ...}``). `screener audit verify` reads
every row again and compares it with the newest seal of that row in the chain, so an edit made in SQL behind the
CLI's back shows with its table, column and id, and a row inserted or deleted that way shows too.

Rows are read raw (``SELECT *`` without the ORM's type processing) on both sides, at sealing and at verifying:
what is compared is what the database stores, and a malformed value is a difference, never a crash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from screener_base.clock import ensure_utc

# The tables sealed, by the column naming a row (its primary key).
SEALED_TABLES = {
    "deposits": "id",
    "holds": "id",
    "review_flags": "id",
    "list_versions": "id",
    "deposit_addresses": "id",
    # The index facts (screener.indexes.store): sealed once, when found; a later screen relies on them.
    "mixer_withdrawals": "id",
    "issuer_blacklist_events": "id",
}
ROWS_KEY = "rows"
# Recorded once, by `screener db upgrade`: the highest id of each sealed table when sealing began. Rows up to it
# predate sealing and are not checked; every other row (any id above it, or zero and below) must carry a seal.
BASELINE_KIND = "audit.seals_began"


def row_key(table: str, row_id: int) -> str:
    return f"{table}:{row_id}"


def canonical_value(value: Any) -> Any:
    """A stored value as JSON: the same stored value gives the same JSON, whatever the driver returned."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    return repr(value)


def canonical_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): canonical_value(v) for k, v in row.items()}


def _check_table(table: str) -> str:
    if table not in SEALED_TABLES:
        raise ValueError(f"{table} is not a sealed table")
    return table


def read_row(session: Session, table: str, row_id: int) -> dict[str, Any] | None:
    key = SEALED_TABLES[_check_table(table)]
    stmt = sa.text(f"SELECT * FROM {table} WHERE {key} = :id")
    row = session.execute(stmt, {"id": row_id}).mappings().first()
    return canonical_row(dict(row)) if row is not None else None


# Ids read back per statement when sealing many rows at once (an index range can find thousands of facts).
_SNAPSHOT_CHUNK = 500


def snapshot(session: Session, rows: Iterable[tuple[str, int | None]]) -> dict[str, Any]:
    """The seals of ``rows`` as stored now (flush first); a row that no longer exists seals as None."""
    session.flush()
    wanted: dict[str, list[int]] = {}
    for table, row_id in rows:
        if row_id is not None:
            wanted.setdefault(_check_table(table), []).append(int(row_id))
    out: dict[str, Any] = {}
    for table, ids in wanted.items():
        if len(ids) == 1:
            out[row_key(table, ids[0])] = read_row(session, table, ids[0])
            continue
        key, found = SEALED_TABLES[table], {}
        for start in range(0, len(ids), _SNAPSHOT_CHUNK):
            chunk = sorted(set(ids[start : start + _SNAPSHOT_CHUNK]))
            stmt = sa.text(f"SELECT * FROM {table} WHERE {key} IN :ids").bindparams(sa.bindparam("ids", expanding=True))
            found.update({r[key]: canonical_row(dict(r)) for r in session.execute(stmt, {"ids": chunk}).mappings()})
        out.update({row_key(table, i): found.get(i) for i in ids})
    return out


def iter_rows(session: Session, table: str, page: int = 2000) -> Iterable[tuple[int, dict[str, Any]]]:
    """Every row of a sealed table, raw and canonical, in id order (keyset pages: bounded memory)."""
    key = SEALED_TABLES[_check_table(table)]
    after: Any = None
    while True:
        where = f"WHERE {key} > :after " if after is not None else ""
        stmt = sa.text(f"SELECT * FROM {table} {where}ORDER BY {key} LIMIT {int(page)}")
        rows = list(session.execute(stmt, {"after": after}).mappings())
        for row in rows:
            yield row[key], canonical_row(dict(row))
        if len(rows) < page:
            return
        after = rows[-1][key]


def entries_digest(session: Session, version_id: int) -> tuple[str, int]:
    """sha256 of a list version's entries as stored (every column but the row id, in a fixed order), and their
    count: the activation event commits to it, so an entry deleted, added or edited later shows."""
    stmt = sa.text("SELECT * FROM list_entries WHERE version_id = :v")
    rows = [
        canonical_row({k: v for k, v in dict(r).items() if k != "id"})
        for r in session.execute(stmt, {"v": version_id}).mappings()
    ]
    lines = sorted(json.dumps(r, sort_keys=True, separators=(",", ":"), default=str) for r in rows)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def baseline_rows(session: Session) -> dict[str, int]:
    """The highest id of each sealed table now (0 for an empty table)."""
    found = {}
    for table, key in SEALED_TABLES.items():
        value = session.execute(sa.text(f"SELECT max({key}) FROM {table}")).scalar()
        found[table] = int(value) if isinstance(value, int) and value > 0 else 0
    return found
