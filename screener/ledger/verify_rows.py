"""`screener audit verify`: every sealed row (screener.ledger.seals) against its newest seal in the chain.

For each sealed table, the first row that differs is named by table, id and column (and how many more rows of
that table differ): an edit in SQL behind the CLI's back. A row the chain never sealed, with an id above the
first sealed one, was inserted that way (a deposit still ``recorded``, i.e. undecided, is the exception: it moved
no money and is sealed by its decision); a sealed row that is gone was deleted that way. Rows older than the
first seal of their table (a database from before sealing) are not checked: their columns were never committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from screener.ledger.audit import VerifyReport, iter_events
from screener.ledger.seals import ROWS_KEY, SEALED_TABLES, entries_digest, iter_rows


@dataclass
class _Table:
    seals: dict[int, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)  # id -> (seq, row | None)
    problems: list[str] = field(default_factory=list)


def _collect(session: Session, activated: dict[int, tuple[int, str, int]]) -> dict[str, _Table]:
    """Each sealed row's newest seal; ``activated`` gets each list version's entries digest and count."""
    tables = {name: _Table() for name in SEALED_TABLES}
    for event in iter_events(session):
        if event.kind == "list.activated" and isinstance(event.payload, dict):
            version, digest, count = (event.payload.get(k) for k in ("version_id", "entries_digest", "entry_count"))
            if isinstance(version, int) and isinstance(digest, str) and isinstance(count, int):
                activated[version] = (event.seq, digest, count)
        rows = event.payload.get(ROWS_KEY) if isinstance(event.payload, dict) else None
        if not isinstance(rows, dict):
            continue
        for key, sealed in rows.items():
            table, _, raw = str(key).partition(":")
            if table in tables and raw.isascii() and raw.isdigit():
                tables[table].seals[int(raw)] = (event.seq, sealed if isinstance(sealed, dict) else None)
    return tables


def _difference(row: dict[str, Any], sealed: dict[str, Any]) -> str:
    for column in sorted(set(row) | set(sealed)):
        if row.get(column) != sealed.get(column):
            return f"column {column} is {_short(row.get(column))}, sealed as {_short(sealed.get(column))}"
    return "differs"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_table(session: Session, name: str, table: _Table) -> None:
    first = min(table.seals) if table.seals else None
    present: set[int] = set()
    for row_id, row in iter_rows(session, name):
        present.add(row_id)
        sealed = table.seals.get(row_id)
        where = f"{name} id {row_id}"
        if sealed is None:
            undecided = name == "deposits" and row.get("status") == "recorded"
            if first is not None and row_id > first and not undecided:
                table.problems.append(f"{where}: the row is in no audit event (inserted behind the CLI's back)")
        elif sealed[1] is None:
            table.problems.append(f"{where}: event {sealed[0]} recorded it as deleted, but it exists")
        elif sealed[1] != row:
            table.problems.append(
                f"{where}: {_difference(row, sealed[1])} by event {sealed[0]} (edited behind the CLI)"
            )
    for row_id, (seq, sealed_row) in sorted(table.seals.items()):
        if sealed_row is not None and row_id not in present:
            table.problems.append(f"{name} id {row_id}: sealed by event {seq}, but the row is gone (deleted)")


def _check_entries(session: Session, activated: dict[int, tuple[int, str, int]], report: VerifyReport) -> None:
    for version, (seq, digest, count) in sorted(activated.items()):
        now_digest, now_count = entries_digest(session, version)
        if now_digest != digest:
            report.add(
                f"list_entries of version {version}: {now_count} stored, {count} activated by event {seq}, and their "
                "contents differ (an entry was deleted, added or edited behind the CLI)"
            )
            return


def verify_rows(session: Session, report: VerifyReport) -> VerifyReport:
    """Add one problem per sealed table with rows that differ from the chain (the first such row, and a count),
    and one for the first list version whose entries are not those its activation recorded."""
    activated: dict[int, tuple[int, str, int]] = {}
    tables = _collect(session, activated)
    _check_entries(session, activated, report)
    for name, table in tables.items():
        _check_table(session, name, table)
        if table.problems:
            more = len(table.problems) - 1
            report.add(table.problems[0] + (f" (and {more} more row problem(s) in {name})" if more else ""))
    return report
