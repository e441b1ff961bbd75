"""`screener audit index`: read an index's covered range again from the chain and compare it with the stored facts.

`audit verify` finds a stored fact edited or deleted after it was sealed, without a node. What it cannot see is
a fact that was never stored because the index cursor was moved past its range in SQL (the cursor is not sealed:
it moves every poll, see docs/security.md). Rescanning the range the decisions relied on (recorded in each
decision as ``indexes``) finds both: facts on the chain the database lacks, facts the database has that the chain
does not, and facts with another value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from screener.db import session_scope
from screener.indexes.rules import FactComparison, IndexKind, compare_facts
from screener.indexes.store import IndexSource, fetch_rows, index_matches, scanned_range
from screener.models.screening import BlacklistEventRow, MixerWithdrawalRow
from screener_base.clock import ensure_utc
from screener_base.errors import ConfigError

# Ranges read per recheck unless the caller allows more (each is one verified eth_getLogs).
DEFAULT_MAX_RANGES = 10_000
# Stored facts compared per range; far above a real range's logs, it bounds a pathological table.
_MAX_STORED_PER_RANGE = 100_000


@dataclass
class RecheckResult:
    chain: str
    kind: str
    from_block: int
    to_block: int  # the last block actually compared (below the requested end when max_ranges stopped it)
    requested_to_block: int
    ranges: int
    comparison: FactComparison

    @property
    def complete(self) -> bool:
        return self.to_block >= self.requested_to_block


def _stored(session: Session, chain: str, kind: str, lo: int, hi: int) -> list[dict[str, Any]]:
    table: Any = MixerWithdrawalRow if kind == IndexKind.MIXER else BlacklistEventRow
    stmt = (
        select(table)
        .where(table.chain == chain, col(table.block_number) >= lo, col(table.block_number) <= hi)
        .limit(_MAX_STORED_PER_RANGE)
    )
    return [r.model_dump() for r in session.exec(stmt)]


def _bounds(session: Session, source: IndexSource, kind: str, lo: int | None, hi: int | None) -> tuple[int, int]:
    """The range to compare: the requested one, within what the index covers (outside it no fact was ever stored,
    so every fact there would look deleted)."""
    if lo is not None and hi is not None and (lo < 0 or hi < lo):
        raise ConfigError(f"block range {lo}..{hi} is empty", "pass --from-block at or below --to-block")
    covered = scanned_range(session, source.chain, kind)
    if covered is None:
        raise ConfigError(f"{source.chain} has no {kind} index yet", "let the daemon scan first")
    if not index_matches(session, source, kind):
        raise ConfigError(
            f"{source.chain}'s {kind} index was built for other contracts than configured now",
            "run it with the configuration the index was built with (the next scan restarts the index)",
        )
    first, last = covered
    lo, hi = max(first, first if lo is None else lo), min(last, last if hi is None else hi)
    if hi < lo:
        raise ConfigError(
            f"blocks {lo}..{hi} are outside what the {kind} index covers ({first}..{last})",
            "pass a range inside it; nothing outside it was ever indexed",
        )
    return lo, hi


def recheck_index(
    engine: Engine,
    source: IndexSource,
    kind: str,
    now: datetime,
    *,
    from_block: int | None = None,
    to_block: int | None = None,
    max_ranges: int = DEFAULT_MAX_RANGES,
) -> RecheckResult:
    """Compare stored facts with the chain over [from_block, to_block] (default and bound: what the index covers).

    Reads the chain outside any transaction and each range's stored facts in a short one of its own: on SQLite a
    transaction holds the write lock, and a long check must not stall the daemon."""
    with session_scope(engine) as session:
        lo, hi = _bounds(session, source, kind, from_block, to_block)
    total, ranges, done = FactComparison(), 0, lo - 1
    start = lo
    while start <= hi and ranges < max_ranges and source.contracts(kind):
        end = min(hi, start + source.max_block_range - 1)
        chain_rows = [r.model_dump() for r in fetch_rows(source, kind, start, end, ensure_utc(now))]
        try:
            with session_scope(engine) as session:
                stored = _stored(session, source.chain, kind, start, end)
        except (SQLAlchemyError, ValueError, TypeError) as exc:
            total.note("differing", f"stored facts of blocks {start}..{end} are malformed ({type(exc).__name__})")
            stored = []
        compare_facts(chain_rows, stored, total)
        ranges, done, start = ranges + 1, end, end + 1
    if not source.contracts(kind):
        done = hi  # nothing to scan on this chain: trivially complete, as the index treats it
    return RecheckResult(source.chain, kind, lo, done, hi, ranges, total)
