"""The database half of the pipeline: scan state, idempotent deposit inserts, the cursor, kept headers.

All functions take a Session and never commit; screener.pipeline.tick opens one transaction per range so that
deposits, their decisions (or, for an unassigned deposit, its audit event and alert) and the cursor move together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from chains.scanning import DeepReorg, Header
from screener.amounts import format_units
from screener.db import insert_ignore
from screener.ledger import audit
from screener.ledger.rules import asset_code
from screener.models.chain import ChainHeader, ScanCursor
from screener.models.daemon import AlertOutbox
from screener.models.deposits import Deposit
from screener.ops.outbox_rules import AlertKind, outbox_row
from screener.review.rules import DepositStatus
from screener_base.errors import ScreenerError

# Headers kept per chain (range ends and deposit blocks): the window in which a reorg can be located.
KEEP_HEADERS = 512
_IN_CHUNK = 500

SYSTEM = "system"  # the actor of what the pipeline records
OUTBOX: sa.Table = AlertOutbox.__table__  # type: ignore[attr-defined]

Decide = Callable[[Session, list[Deposit], datetime], None]
OrphanHandler = Callable[[Session, list[Deposit], datetime], None]


class CursorMoved(ScreenerError):
    """Another worker moved the cursor since we read it; this tick's work is discarded (not an error)."""


@dataclass
class ScanState:
    next_block: int | None  # None: the chain was never scanned
    kept: list[Header]

    @property
    def anchor(self) -> Header | None:
        """The kept header of the last scanned block (its hash must still be canonical)."""
        if self.next_block is None:
            return None
        for header in self.kept:
            if header.number == self.next_block - 1:
                return header
        return None


def load_state(session: Session, chain: str) -> ScanState:
    cursor = session.get(ScanCursor, chain)
    rows = session.exec(select(ChainHeader).where(ChainHeader.chain == chain)).all()
    kept = [Header(r.number, r.hash, r.parent_hash, int(r.block_time.timestamp()) if r.block_time else 0) for r in rows]
    return ScanState(next_block=cursor.next_block if cursor else None, kept=kept)


def lock_cursor(session: Session, chain: str, expected_next: int | None) -> ScanCursor | None:
    """The cursor row, locked (PostgreSQL FOR UPDATE; SQLite holds the write lock from BEGIN IMMEDIATE).

    Raises CursorMoved when it no longer says ``expected_next``.
    """
    cursor = session.exec(select(ScanCursor).where(ScanCursor.chain == chain).with_for_update()).first()
    current = cursor.next_block if cursor else None
    if current != expected_next:
        raise CursorMoved(f"{chain}: cursor is at {current}, expected {expected_next}")
    return cursor


def move_cursor(
    session: Session,
    cursor: ScanCursor | None,
    chain: str,
    next_block: int,
    now: datetime,
    head: int | None = None,
    safe: int | None = None,
    reorg: bool = False,
) -> None:
    if cursor is None:
        cursor = ScanCursor(chain=chain, next_block=next_block, updated_at=now, reorgs=0)
    cursor.next_block = next_block
    cursor.updated_at = now
    cursor.head_block = head if head is not None else cursor.head_block
    cursor.safe_block = safe if safe is not None else cursor.safe_block
    cursor.reorgs = (cursor.reorgs or 0) + (1 if reorg else 0)
    session.add(cursor)


def _in_chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> list[Deposit]:
    """Insert the rows whose (chain, tx_hash, log_index) is not recorded yet; return those as ORM objects.

    Rows are Deposit column values. A Core executemany plus one load is several times faster than the ORM
    unit of work for the thousands of deposits a catch-up range can hold.
    """
    if not rows:
        return []
    chain = rows[0]["chain"]
    hashes = sorted({r["tx_hash"] for r in rows})
    present: set[tuple[str, int]] = set()
    for chunk in _in_chunks(hashes):
        found = session.execute(
            sa.select(col(Deposit.tx_hash), col(Deposit.log_index)).where(
                col(Deposit.chain) == chain, col(Deposit.tx_hash).in_(chunk)
            )
        )
        present.update((h, i) for h, i in found)
    new: list[dict[str, Any]] = []
    for row in rows:
        key = (row["tx_hash"], row["log_index"])
        if key not in present:
            present.add(key)
            new.append(row)
    if not new:
        return []
    session.execute(sa.insert(Deposit), new)
    wanted = {(r["tx_hash"], r["log_index"]) for r in new}
    loaded: list[Deposit] = []
    for chunk in _in_chunks(sorted({r["tx_hash"] for r in new})):
        stmt = select(Deposit).where(Deposit.chain == chain, col(Deposit.tx_hash).in_(chunk))
        loaded += [d for d in session.exec(stmt) if (d.tx_hash, d.log_index) in wanted]
    return sorted(loaded, key=lambda d: d.id or 0)


def record_range(
    session: Session, rows: Sequence[dict[str, Any]], now: datetime, decide: Decide | None
) -> list[Deposit]:
    """A range's deposits in the caller's transaction: insert the new rows, ``decide`` the recorded ones, then seal,
    audit and alert the unassigned ones (after the decider: it takes the list version before the audit head)."""
    new = insert_new(session, rows)
    recorded = [d for d in new if d.status == DepositStatus.RECORDED]
    if recorded and decide is not None:
        decide(session, recorded, now)
    record_unassigned(session, [d for d in new if d.status == DepositStatus.UNASSIGNED], now)
    return new


def record_unassigned(session: Session, deposits: Sequence[Deposit], now: datetime) -> None:
    """Per unassigned deposit (wrong network): a ``deposit.unassigned`` audit event sealing its row, and an
    ``unassigned_deposit`` alert keyed by its event label. Nothing else: it is never screened or credited."""
    if not deposits:
        return
    audit.lock_head(session)
    for deposit in deposits:
        evidence = deposit.findings[0] if deposit.findings else {}
        payload = {
            "deposit_id": deposit.id,
            "event": deposit.event_label,
            "chain": deposit.chain,
            "tx_hash": deposit.tx_hash,
            "log_index": deposit.log_index,
            "status": deposit.status,
            "amount": str(deposit.amount_raw),
            "asset": asset_code(deposit.token_symbol, deposit.chain),
            "from_address": deposit.from_address,
            "to_address": deposit.to_address,
            "registered_on": evidence.get("registered_on", []),
            "accounts": evidence.get("accounts", []),
        }
        subject = f"deposit:{deposit.id}"
        audit.append(session, "deposit.unassigned", subject, payload, SYSTEM, now, rows=[("deposits", deposit.id)])
        text = _unassigned_text(deposit, payload)
        row = outbox_row(AlertKind.UNASSIGNED_DEPOSIT, deposit.event_label, text, now, payload, ref_id=deposit.id)
        insert_ignore(session, OUTBOX, row, ["dedup_key"])


def _unassigned_text(deposit: Deposit, payload: dict[str, Any]) -> str:
    amount = format_units(deposit.amount_raw, deposit.decimals)
    where = ", ".join(payload["registered_on"]) or "another chain"
    accounts = ", ".join(payload["accounts"]) or "?"
    return (
        f"unassigned deposit {deposit.event_label}: {amount} {deposit.token_symbol} on {deposit.chain} from "
        f"{deposit.from_address} to {deposit.to_address}, which is registered on {where} (account {accounts}), not "
        f"on {deposit.chain}: sent on the wrong network. Nothing was credited; return it to the sender or credit "
        "the customer by hand, outside screener"
    )


def keep_headers(session: Session, chain: str, headers: Sequence[Header], now: datetime) -> None:
    """Upsert ``headers`` and prune to the newest KEEP_HEADERS for the chain."""
    for h in {h.number: h for h in headers}.values():
        session.merge(
            ChainHeader(
                chain=chain,
                number=h.number,
                hash=h.hash,
                parent_hash=h.parent_hash,
                block_time=datetime.fromtimestamp(h.timestamp, UTC),
                seen_at=now,
            )
        )
    session.flush()
    cutoff = session.execute(
        sa.select(col(ChainHeader.number))
        .where(col(ChainHeader.chain) == chain)
        .order_by(col(ChainHeader.number).desc())
        .offset(KEEP_HEADERS)
        .limit(1)
    ).scalar()
    if cutoff is not None:
        session.execute(
            sa.delete(ChainHeader).where(col(ChainHeader.chain) == chain, col(ChainHeader.number) <= cutoff)
        )


def drop_headers_above(session: Session, chain: str, number: int) -> None:
    session.execute(sa.delete(ChainHeader).where(col(ChainHeader.chain) == chain, col(ChainHeader.number) > number))


def deposits_above(session: Session, chain: str, number: int) -> list[tuple[int, int, str]]:
    """(id, block_number, block_hash) of the chain's deposits in blocks above ``number``."""
    rows = session.execute(
        sa.select(col(Deposit.id), col(Deposit.block_number), col(Deposit.block_hash)).where(
            col(Deposit.chain) == chain, col(Deposit.block_number) > number
        )
    )
    return [(int(i), int(n), str(h)) for i, n, h in rows]


def load_deposits(session: Session, ids: Sequence[int]) -> list[Deposit]:
    if not ids:
        return []
    return list(session.exec(select(Deposit).where(col(Deposit.id).in_(list(ids))).order_by(col(Deposit.id))))


def drop_undecided_orphans(session: Session, orphans: list[Deposit], now: datetime) -> None:
    """Default reaction to deposits whose block was replaced: forget undecided ones, refuse otherwise.

    A decided deposit may already be credited; reversing a credit is a ledger/review decision, so the whole
    rewind is refused (DeepReorg rolls the transaction back and the chain stays halted until handled). An
    unassigned deposit moved no money: it is forgotten too, openly (``deposit.orphaned`` seals its deletion).
    """
    decided = [d for d in orphans if d.status not in (DepositStatus.RECORDED, DepositStatus.UNASSIGNED)]
    if decided:
        ids = ", ".join(str(d.id) for d in decided[:20])
        raise DeepReorg(
            f"{len(decided)} already decided deposit(s) are in replaced blocks (ids {ids}); nothing was rewound",
            "check them on a block explorer; reverse or confirm their credits, then resolve the chain by hand",
        )
    unassigned = [d for d in orphans if d.status == DepositStatus.UNASSIGNED]
    if unassigned:
        audit.lock_head(session)  # first lock (lock order), before the deposit rows
    for deposit in orphans:
        session.delete(deposit)
    session.flush()
    for deposit in unassigned:
        payload = {"deposit_id": deposit.id, "event": deposit.event_label, "block_hash": deposit.block_hash}
        subject = f"deposit:{deposit.id}"
        audit.append(session, "deposit.orphaned", subject, payload, SYSTEM, now, rows=[("deposits", deposit.id)])
