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
from screener.ledger.seals import BASELINE_KIND, ROWS_KEY, SEALED_TABLES, entries_digest, iter_rows
from screener_base.errors import AuditError

# Columns that never change after a row is first sealed: a later seal of another value (the next legitimate
# decision sealing an edit made in SQL before it) is still an edit.
IMMUTABLE = {
    "deposits": (
        "chain", "tx_hash", "log_index", "block_number", "block_hash", "block_time", "token_symbol",
        "token_contract", "decimals", "amount_raw", "from_address", "initiator", "to_address", "account",
        "observed_at",
    ),
    "holds": ("deposit_id", "pending_transfer_id", "opened_at"),
    "review_flags": ("deposit_id", "rule_id", "matched_address", "raised_at"),
    "list_versions": (
        "seq", "source", "source_format", "sha256", "size_bytes", "fetched_at", "published_at", "activated_at",
        "entry_count", "counts", "meta",
    ),
    "deposit_addresses": ("chain", "address", "account", "created_at"),
    "mixer_withdrawals": (
        "chain", "pool", "recipient", "relayer", "fee", "nullifier_hash", "tx_hash", "log_index", "block_number",
        "block_hash", "block_time", "indexed_at",
    ),
    "issuer_blacklist_events": (
        "chain", "token_symbol", "token_contract", "interface", "action", "address", "tx_hash", "log_index",
        "block_number", "block_hash", "block_time", "indexed_at",
    ),
}  # fmt: skip
# Who acted, per row: the column, and the event kinds whose actor it must be.
ACTORS = {
    "holds": (
        ("release_requested_by", ("hold.release_requested",)),
        ("resolved_by", ("hold.released", "hold.rejected", "hold.cleared")),
    ),
    "review_flags": (("resolved_by", ("flag.resolved",)),),
}
_SUBJECT_TABLE = {"hold": "holds", "flag": "review_flags"}


@dataclass
class _Table:
    seals: dict[int, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)  # id -> (seq, row | None)
    baseline: int = 0  # rows 1..baseline predate sealing (audit.seals_began)
    baseline_recorded: bool = False
    unsealed: int = 0  # rows that should carry a seal and carry none
    first: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # id -> its first seal
    actors: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)  # (id, kind) -> (seq, actor)
    problems: list[str] = field(default_factory=list)


def _take_baseline(tables: dict[str, _Table], ids: Any) -> None:
    """A baseline counts for each table it names that has no baseline yet and no seal yet: one recorded later
    (for a table sealed since) cannot widen what goes unchecked. A table added to sealing by an upgrade gets its
    baseline from the next `db upgrade`, before its first seal."""
    if not isinstance(ids, dict):
        return
    for name, entry in tables.items():
        if name not in ids or entry.baseline_recorded or entry.seals:
            continue
        value = ids.get(name)
        entry.baseline = value if isinstance(value, int) and not isinstance(value, bool) else 0
        entry.baseline_recorded = True


def _collect(session: Session, activated: dict[int, tuple[int, str, int]]) -> dict[str, _Table]:
    """Each sealed row's newest seal; ``activated`` gets each list version's entries digest and count."""
    tables = {name: _Table() for name in SEALED_TABLES}
    for event in iter_events(session):
        if event.kind == BASELINE_KIND and isinstance(event.payload, dict):
            _take_baseline(tables, event.payload.get("pre_sealing_max_ids"))
        if event.kind == "list.activated" and isinstance(event.payload, dict):
            version, digest, count = (event.payload.get(k) for k in ("version_id", "entries_digest", "entry_count"))
            if isinstance(version, int) and isinstance(digest, str) and isinstance(count, int):
                activated[version] = (event.seq, digest, count)
        _note_actor(tables, event.subject, event.kind, event.seq, event.actor)
        rows = event.payload.get(ROWS_KEY) if isinstance(event.payload, dict) else None
        if not isinstance(rows, dict):
            continue
        for key, sealed in rows.items():
            table, _, raw = str(key).partition(":")
            if table in tables and raw.isascii() and raw.isdigit():
                row = sealed if isinstance(sealed, dict) else None
                tables[table].seals[int(raw)] = (event.seq, row)
                if row is None:  # a sealed deletion: SQLite may hand the id to a new row, which starts afresh
                    tables[table].first.pop(int(raw), None)
                else:
                    tables[table].first.setdefault(int(raw), (event.seq, row))
    return tables


def _note_actor(tables: dict[str, _Table], subject: str, kind: str, seq: int, actor: str) -> None:
    prefix, _, raw = subject.partition(":")
    name = _SUBJECT_TABLE.get(prefix)
    if name is not None and raw.isascii() and raw.isdigit():
        tables[name].actors[(int(raw), kind)] = (seq, actor)


def _semantic(name: str, table: _Table, row_id: int, row: dict[str, Any]) -> str | None:
    """An immutable column changed since the first seal, or a who-acted column that is not its event's actor."""
    first = table.first.get(row_id)
    for column in IMMUTABLE.get(name, ()) if first is not None else ():
        assert first is not None
        if row.get(column) != first[1].get(column):
            was = _short(first[1].get(column))
            return f"column {column} is {_short(row.get(column))}, first sealed as {was} by event {first[0]}"
    for column, kinds in ACTORS.get(name, ()):
        value = row.get(column)
        if value is None:
            continue
        recorded = [table.actors[(row_id, k)] for k in kinds if (row_id, k) in table.actors]
        if not recorded:
            return f"column {column} is {_short(value)}, but no audit event records that person acting"
        seq, actor = max(recorded)
        if actor != value:
            return f"column {column} is {_short(value)}, but event {seq} records {_short(actor)} acting"
    return None


def _difference(row: dict[str, Any], sealed: dict[str, Any]) -> str:
    for column in sorted(set(row) | set(sealed)):
        if row.get(column) != sealed.get(column):
            return f"column {column} is {_short(row.get(column))}, sealed as {_short(sealed.get(column))}"
    return "differs"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_table(session: Session, name: str, table: _Table) -> None:
    present: set[int] = set()
    for row_id, row in iter_rows(session, name):
        present.add(row_id)
        sealed = table.seals.get(row_id)
        where = f"{name} id {row_id}"
        if sealed is None:
            undecided = name == "deposits" and row.get("status") == "recorded"
            if not (1 <= row_id <= table.baseline or undecided):
                table.unsealed += 1
                table.problems.append(f"{where}: the row is in no audit event (inserted behind the CLI's back)")
        elif sealed[1] is None:
            table.problems.append(f"{where}: event {sealed[0]} recorded it as deleted, but it exists")
        elif sealed[1] != row:
            table.problems.append(
                f"{where}: {_difference(row, sealed[1])} by event {sealed[0]} (edited behind the CLI)"
            )
        elif (why := _semantic(name, table, row_id, row)) is not None:
            table.problems.append(f"{where}: {why} (edited behind the CLI, then sealed again)")
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
    unsealed = any(t.unsealed for t in tables.values())
    if unsealed and not any(t.seals or t.baseline_recorded for t in tables.values()):
        # Nothing in the chain is sealed and no baseline says what predates sealing: a database written by a
        # version before row seals, not (necessarily) tampering. Fail closed, as "could not check".
        raise AuditError(
            "this database predates row seals: its rows were never committed to the audit chain",
            "run `screener db upgrade` once (it records which rows predate sealing), then verify again",
        )
    for name, table in tables.items():
        if table.problems:
            more = len(table.problems) - 1
            report.add(table.problems[0] + (f" (and {more} more row problem(s) in {name})" if more else ""))
    return report
