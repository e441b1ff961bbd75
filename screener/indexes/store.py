"""The mixer withdrawal and issuer blacklist indexes: scan jobs, coverage, and the facts screening reads.

Each chain has one cursor per kind (``mixer``, ``blacklist``); every block below ``next_block`` is scanned.
Screening trusts an index for a deposit only when the cursor has passed the deposit's block (otherwise the
deposit is held as "unavailable"), so the decider catches the index up inline before deciding.

Scans only go to the chain's safe head, so reorgs do not reach them. Rows are keyed by (chain, tx, log
index): rescanning a range, or two workers scanning it, changes nothing. New rows go to the caller's
``on_new_facts`` hook in the same transaction (screener.decide.rescreen.make_index_hook re-screens decided
deposits from those addresses: credited ones get a review flag, held ones an annotation).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from chains.blacklists import Interface, scan_issuer_logs
from chains.codec import from_hex20
from chains.mixers import LogFetcher, scan_withdrawals
from chains.multisig import Submission, decode_transactions_result, proposed_blacklisting, transactions_call
from screener.db import session_scope
from screener.indexes.rules import IndexKind, lookback_blocks
from screener.ledger import audit
from screener.models.deposits import Deposit
from screener.models.screening import BlacklistEventRow, IndexCursor, MixerWithdrawalRow
from screener.screening.policy import BlacklistFact, WithdrawalFact
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.clock import ensure_utc
from screener_base.errors import ChainError

# Rows an address lookup may return; far above any real address's history, it bounds a pathological one.
MAX_FACT_ROWS = 10_000
# Rows a scan has just stored, handed over in the same transaction (the daemon and the decider pass
# screener.decide.rescreen.make_index_hook: decided deposits of those addresses are looked at again).
# Every scan entry point requires it (no default, no None), so no caller can skip the re-screen.
NewFactsHook = Callable[[Session, str, Sequence[Any], datetime], object]
# The event sealing newly indexed facts, and who records it (the worker: facts come from the chain, not a person).
FACTS_FOUND_KIND = "index.facts_found"
SYSTEM_ACTOR = "system"
# Start the index this much before the lookback window so deposits right after install are fully covered.
_WINDOW_MARGIN = 1.1


@dataclass(frozen=True)
class BlacklistToken:
    symbol: str
    contract: str  # canonical for the family
    hex20: str  # as in logs and filters
    interface: Interface


@dataclass(frozen=True)
class MultisigWatch:
    """The issuer's multisig owning ``token``: its proposals to blacklist are indexed as "proposed" facts."""

    hex20: str  # the multisig, as in logs
    token: BlacklistToken


# Bumped when the blacklist decoder learns an event or a layout (2: destroyed funds, USD₮0, Tron's indexed Tether).
BLACKLIST_DECODER = "v2"
# Who the interface column names for a fact read from the issuer's multisig instead of the token.
MULTISIG_INTERFACE = "multisig"
PROPOSED_ACTION = "proposed"


@dataclass(frozen=True)
class IndexSource:
    """What one chain's indexes need from the chain (built from the chain runtime; fakes in unit tests).

    ``fetch_logs`` returns every log of the WHOLE requested range or raises: the cursor moves past a range
    as soon as it returns. The runtime's source (screener.indexes.sources) proves it by asking for the range's
    last block in the same request on the same endpoint; a node behind a load balancer would otherwise answer "no logs"
    for blocks it has not reached. Two-hop funding lookups use the same fetcher.
    """

    chain: str
    family: Family
    fetch_logs: LogFetcher
    safe_head: Callable[[], int]
    block_times: Callable[[Sequence[int]], Mapping[int, datetime]]
    max_block_range: int
    block_time_s: float
    start_block: int | None = None
    mixer_pools: tuple[str, ...] = ()  # 0x hex20, lowercase
    tokens: tuple[str, ...] = ()  # 0x hex20 of the watched USDT/USDC contracts (two-hop funding lookups)
    blacklist_tokens: tuple[BlacklistToken, ...] = ()
    multisigs: tuple[MultisigWatch, ...] = ()
    # eth_call(to, data) at the latest block: reads a multisig's stored proposal back (required with multisigs)
    call: Callable[[str, str], str] | None = None

    def contracts(self, kind: str) -> list[str]:
        if kind == IndexKind.MIXER:
            return sorted(self.mixer_pools)
        # The decoder's version is part of what was scanned: ranges read before it knew an event are read again.
        tokens = [f"{t.hex20}:{t.interface}:{BLACKLIST_DECODER}" for t in self.blacklist_tokens]
        return sorted(tokens + [f"{m.hex20}:{MULTISIG_INTERFACE}:{m.token.hex20}" for m in self.multisigs])

    def fingerprint(self, kind: str) -> str:
        text = kind + "|" + ",".join(self.contracts(kind))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def window_start(source: IndexSource, kind: str, settings: Settings, head: int) -> int:
    """First block a fresh index scans: the lookback window (plus margin) before the first deposit block."""
    anchor = head if source.start_block is None else min(head, source.start_block)
    return max(0, anchor - math.ceil(lookback_blocks(settings, kind, source.block_time_s) * _WINDOW_MARGIN))


def _cursor(session: Session, chain: str, kind: str, *, lock: bool = False) -> IndexCursor | None:
    stmt = select(IndexCursor).where(IndexCursor.chain == chain, IndexCursor.kind == kind)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.exec(stmt).first()


def lock_cursors(session: Session, chains: Sequence[str]) -> None:
    """Lock the existing index cursors of ``chains`` in (chain, kind) order. The decider calls it before any
    catch-up: a catch-up that finds facts then takes the audit head while holding cursors, and a scan job holds one
    cursor and wants the head; taking every cursor first leaves no cursor to wait for while holding the head."""
    if not chains:
        return
    stmt = (
        select(IndexCursor)
        .where(col(IndexCursor.chain).in_(sorted(set(chains))))
        .order_by(col(IndexCursor.chain), col(IndexCursor.kind))
        .with_for_update()
    )
    list(session.exec(stmt))


def _ensure_cursor(
    session: Session, source: IndexSource, kind: str, settings: Settings, head: int, now: datetime
) -> int:
    """The cursor's next block, (re)starting it when new or when the scanned contracts changed."""
    cursor = _cursor(session, source.chain, kind, lock=True)
    fingerprint = source.fingerprint(kind)
    if cursor is None or cursor.sources != fingerprint:
        # With nothing to scan the index is complete from genesis; otherwise it starts at the window.
        start = window_start(source, kind, settings, head) if source.contracts(kind) else 0
        cursor = cursor or IndexCursor(
            chain=source.chain, kind=kind, next_block=start, first_block=start, sources="", updated_at=now
        )
        cursor.next_block = cursor.first_block = start
        cursor.sources, cursor.updated_at = fingerprint, now
        session.add(cursor)
        session.flush()
    return int(cursor.next_block)


def fetch_rows(source: IndexSource, kind: str, lo: int, hi: int, now: datetime) -> list[Any]:
    """Rows for [lo, hi], from the chain (no database); raises unless the range was served whole."""
    if kind == IndexKind.MIXER:
        return _fetch_withdrawals(source, lo, hi, now)
    return _fetch_blacklist(source, lo, hi, now)


def _fetch_withdrawals(source: IndexSource, lo: int, hi: int, now: datetime) -> list[MixerWithdrawalRow]:
    withdrawals = scan_withdrawals(source.fetch_logs, source.mixer_pools, lo, hi, source.family)
    times = _times(source, [w.block_number for w in withdrawals])
    return [
        MixerWithdrawalRow(
            chain=source.chain,
            pool=w.pool,
            recipient=w.recipient,
            relayer=w.relayer,
            fee=w.fee,
            nullifier_hash=w.nullifier_hash,
            tx_hash=w.tx_hash,
            log_index=w.log_index,
            block_number=w.block_number,
            block_hash=w.block_hash,
            block_time=times[w.block_number],
            indexed_at=now,
        )
        for w in withdrawals
    ]


def _fetch_blacklist(source: IndexSource, lo: int, hi: int, now: datetime) -> list[BlacklistEventRow]:
    pairs = [(t.hex20, t.interface) for t in source.blacklist_tokens]
    owners = [m.hex20 for m in source.multisigs]
    events, submissions = scan_issuer_logs(source.fetch_logs, pairs, owners, lo, hi, source.family)
    proposals = _proposals(source, submissions)
    times = _times(source, [e.block_number for e in events] + [s.block_number for s, _, _ in proposals])
    by_contract = {t.contract: t for t in source.blacklist_tokens}
    rows = [
        _fact_row(source, by_contract[e.token_contract], e.interface.value, e.action.value, e.address, e, times, now)
        for e in events
    ]
    rows += [
        _fact_row(source, token, MULTISIG_INTERFACE, PROPOSED_ACTION, address, s, times, now)
        for s, token, address in proposals
    ]
    return sorted(rows, key=lambda r: (r.block_number, r.log_index))


class _LogPosition(Protocol):
    """Where a fact's log is: BlacklistEvent and Submission both say it the same way."""

    @property
    def tx_hash(self) -> str: ...
    @property
    def log_index(self) -> int: ...
    @property
    def block_number(self) -> int: ...
    @property
    def block_hash(self) -> str: ...


def _fact_row(
    source: IndexSource,
    token: BlacklistToken,
    interface: str,
    action: str,
    address: str,
    log: _LogPosition,
    times: Mapping[int, datetime],
    now: datetime,
) -> BlacklistEventRow:
    return BlacklistEventRow(
        chain=source.chain,
        token_symbol=token.symbol,
        token_contract=token.contract,
        interface=interface,
        action=action,
        address=address,
        tx_hash=log.tx_hash,
        log_index=log.log_index,
        block_number=log.block_number,
        block_hash=log.block_hash,
        block_time=times[log.block_number],
        indexed_at=now,
    )


def _proposals(source: IndexSource, submissions: list[Submission]) -> list[tuple[Submission, BlacklistToken, str]]:
    """The submissions that propose ``addBlackList`` on the multisig's own token, with the address to freeze.

    Each proposal is read back (the log does not carry the call; what was proposed never changes); any other proposal
    (issue, redeem, removeBlackList, ...) is not a fact for screening.
    """
    if not submissions:
        return []
    if source.call is None:
        raise ChainError(f"{source.chain}: multisig submissions but no eth_call reader", "build the source with one")
    by_multisig = {m.hex20: m for m in source.multisigs}
    out = []
    for sub in submissions:
        watch = by_multisig[sub.multisig]
        call = decode_transactions_result(source.call(watch.hex20, transactions_call(sub.transaction_id)))
        target = proposed_blacklisting(call, watch.token.hex20)
        if target is not None:
            out.append((sub, watch.token, from_hex20(source.family, target)))
    return out


def _times(source: IndexSource, blocks: list[int]) -> dict[int, datetime]:
    if not blocks:
        return {}
    wanted = sorted(set(blocks))
    got = source.block_times(wanted)
    missing = [b for b in wanted if b not in got]
    if missing:
        raise ChainError(f"{source.chain}: no timestamp for blocks {missing[:5]}", "check the RPC endpoint")
    return {b: ensure_utc(got[b]) for b in wanted}


def _insert_new(
    session: Session, source: IndexSource, kind: str, rows: list[Any], span: tuple[int, int], now: datetime
) -> list[Any]:
    """Insert the rows not stored yet (the caller holds the cursor row's lock) and seal them; returns them.

    The seal (an ``index.facts_found`` event carrying each new row, screener.ledger.seals) lets `audit verify`
    name a fact deleted or edited later in SQL: these rows are evidence a later screen relies on.
    """
    if not rows:
        return []
    table = MixerWithdrawalRow if kind == IndexKind.MIXER else BlacklistEventRow
    hashes = sorted({r.tx_hash for r in rows})
    stmt = select(table.tx_hash, table.log_index).where(table.chain == source.chain, col(table.tx_hash).in_(hashes))
    existing = {(h, i) for h, i in session.exec(stmt)}
    new = [r for r in rows if (r.tx_hash, r.log_index) not in existing]
    if not new:
        return []
    session.add_all(new)
    session.flush()
    payload = {"chain": source.chain, "kind": kind, "blocks": list(span), "count": len(new)}
    sealed = [(str(table.__tablename__), r.id) for r in new]
    audit.append(session, FACTS_FOUND_KIND, f"index:{source.chain}:{kind}", payload, SYSTEM_ACTOR, now, rows=sealed)
    return new


def _store(
    session: Session, source: IndexSource, kind: str, rows: list[Any], lo: int, next_block: int, now: datetime
) -> list[Any]:
    """Insert rows not yet present and advance the cursor (only if [lo, ...) continues it); returns new rows."""
    cursor = _cursor(session, source.chain, kind, lock=True)
    if cursor is None or cursor.sources != source.fingerprint(kind) or cursor.next_block < lo:
        return []  # reset or moved by someone else meanwhile; the next scan starts from the stored cursor
    new = _insert_new(session, source, kind, rows, (lo, next_block - 1), now)
    cursor.next_block = max(cursor.next_block, next_block)
    cursor.updated_at = now
    session.add(cursor)
    session.flush()
    return new


def _ranges(lo: int, head: int, width: int, max_ranges: int) -> Iterator[tuple[int, int]]:
    for _ in range(max_ranges):
        if lo > head:
            return
        hi = min(head, lo + width - 1)
        yield lo, hi
        lo = hi + 1


def _scan(
    sessions: Callable[[], AbstractContextManager[Session]],
    source: IndexSource,
    kind: str,
    settings: Settings,
    now: datetime,
    to_block: int | None,
    on_new_facts: NewFactsHook,
) -> int:
    head = source.safe_head() if to_block is None else to_block
    with sessions() as session:
        next_block = _ensure_cursor(session, source, kind, settings, head, now)
    if not source.contracts(kind):
        # Nothing to scan on this chain (no pools, no blacklisting token): the index is trivially complete.
        with sessions() as session:
            _store(session, source, kind, [], next_block, head + 1, now)
        return 0
    count = 0
    for lo, hi in _ranges(next_block, head, source.max_block_range, settings.screening.index_max_ranges_per_scan):
        rows = fetch_rows(source, kind, lo, hi, now)  # raises unless [lo, hi] was served whole: the cursor stays
        with sessions() as session:
            new = _store(session, source, kind, rows, lo, hi + 1, now)
            if new:
                on_new_facts(session, kind, new, now)
        count += len(new)
    return count


def scan_mixer_index(
    engine: Engine, source: IndexSource, settings: Settings, now: datetime, *, on_new_facts: NewFactsHook
) -> int:
    """Scheduled job: index the chain's mixer Withdrawal events up to its safe head; returns new rows."""
    sessions = partial(session_scope, engine)
    return _scan(sessions, source, IndexKind.MIXER, settings, ensure_utc(now), None, on_new_facts)


def scan_blacklist_index(
    engine: Engine, source: IndexSource, settings: Settings, now: datetime, *, on_new_facts: NewFactsHook
) -> int:
    """Scheduled job: index the chain's USDT/USDC blacklist events up to its safe head; returns new rows."""
    sessions = partial(session_scope, engine)
    return _scan(sessions, source, IndexKind.BLACKLIST, settings, ensure_utc(now), None, on_new_facts)


def catch_up(
    session: Session,
    source: IndexSource,
    kind: str,
    settings: Settings,
    now: datetime,
    to_block: int,
    *,
    on_new_facts: NewFactsHook,
) -> int:
    """Scan up to ``to_block`` inside the caller's transaction (the decider, before deciding)."""
    return _scan(lambda: nullcontext(session), source, kind, settings, ensure_utc(now), to_block, on_new_facts)


def extend_back(
    session: Session,
    source: IndexSource,
    kind: str,
    settings: Settings,
    now: datetime,
    down_to_block: int,
    *,
    on_new_facts: NewFactsHook,
) -> int:
    """Scan below the index's first block, newest range first, inside the caller's transaction.

    For deposits older than the index (a backfill): coverage stays one contiguous range because
    ``first_block`` only moves down over ranges just scanned. Bounded by index_max_ranges_per_scan.
    """
    now = ensure_utc(now)
    cursor = _cursor(session, source.chain, kind, lock=True)
    if cursor is None or cursor.sources != source.fingerprint(kind):
        return 0  # the forward scan creates or resets the cursor first
    count = 0
    for _ in range(settings.screening.index_max_ranges_per_scan):
        if cursor.first_block <= max(0, down_to_block):
            break
        hi = cursor.first_block - 1
        lo = max(0, down_to_block, hi - source.max_block_range + 1)
        fetched = fetch_rows(source, kind, lo, hi, now) if source.contracts(kind) else []
        new = _insert_new(session, source, kind, fetched, (lo, hi), now)
        cursor.first_block, cursor.updated_at = lo, now
        session.add(cursor)
        session.flush()
        if new:
            on_new_facts(session, kind, new, now)
        count += len(new)
    return count


def coverage_gap(session: Session, chain: str, kind: str, block_number: int, window_blocks: int = 0) -> str | None:
    """None when the chain's index of ``kind`` covers ``block_number`` and the ``window_blocks`` before it."""
    cursor = _cursor(session, chain, kind)
    if cursor is None:
        return f"{chain} has no {kind} index yet"
    if cursor.next_block <= block_number:
        return f"{chain} {kind} index scanned to block {cursor.next_block - 1}, deposit is in block {block_number}"
    needed = max(0, block_number - window_blocks)
    if cursor.first_block > needed:
        return f"{chain} {kind} index starts at block {cursor.first_block}, its window needs block {needed}"
    return None


def index_matches(session: Session, source: IndexSource, kind: str) -> bool:
    """Whether the chain's index of ``kind`` was built for the contracts ``source`` scans now."""
    cursor = _cursor(session, source.chain, kind)
    return cursor is not None and cursor.sources == source.fingerprint(kind)


def scanned_range(session: Session, chain: str, kind: str) -> tuple[int, int] | None:
    """The blocks the chain's index of ``kind`` covers (first, last); None when it has scanned nothing yet."""
    cursor = _cursor(session, chain, kind)
    if cursor is None or cursor.next_block <= cursor.first_block:
        return None
    return int(cursor.first_block), int(cursor.next_block) - 1


def scanned_to(session: Session, chain: str, kind: str) -> int | None:
    """The last block the chain's index of ``kind`` has scanned; None when it has none yet."""
    cursor = _cursor(session, chain, kind)
    return None if cursor is None else cursor.next_block - 1


def index_coverage(session: Session, chain: str) -> dict[str, list[int] | None]:
    """The block range each of the chain's indexes covered (first, last scanned), as a decision records it: an
    auditor can rescan exactly what a decision relied on (`screener audit index`)."""
    out: dict[str, list[int] | None] = {}
    for kind in (IndexKind.MIXER, IndexKind.BLACKLIST):
        cursor = _cursor(session, chain, kind)
        out[str(kind)] = None if cursor is None else [int(cursor.first_block), int(cursor.next_block) - 1]
    return out


def withdrawal_fact(row: MixerWithdrawalRow) -> WithdrawalFact:
    return WithdrawalFact(
        address=row.recipient,
        chain=row.chain,
        pool=row.pool,
        relayer=row.relayer,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_time=ensure_utc(row.block_time),
    )


def withdrawals_to(session: Session, addresses: Sequence[str]) -> list[WithdrawalFact]:
    """Every indexed withdrawal (any chain) paying one of ``addresses``; the policy picks those that count."""
    if not addresses:
        return []
    stmt = select(MixerWithdrawalRow).where(col(MixerWithdrawalRow.recipient).in_(list(addresses)))
    return [withdrawal_fact(r) for r in session.exec(stmt.limit(MAX_FACT_ROWS))]


def relayers_among(session: Session, addresses: Sequence[str]) -> dict[str, str]:
    """Addresses that acted as a relayer in an indexed withdrawal -> the withdrawal tx that shows it."""
    if not addresses:
        return {}
    stmt = select(MixerWithdrawalRow).where(col(MixerWithdrawalRow.relayer).in_(list(addresses)))
    out: dict[str, str] = {}
    for row in session.exec(stmt.limit(MAX_FACT_ROWS)):
        if row.relayer is not None:
            out.setdefault(row.relayer, row.tx_hash)
    return out


def blacklist_facts(session: Session, addresses: Sequence[str]) -> list[BlacklistFact]:
    if not addresses:
        return []
    stmt = select(BlacklistEventRow).where(col(BlacklistEventRow.address).in_(list(addresses)))
    return [
        BlacklistFact(
            address=r.address,
            chain=r.chain,
            token_symbol=r.token_symbol,
            token_contract=r.token_contract,
            action=r.action,
            tx_hash=r.tx_hash,
            block_number=r.block_number,
            block_time=ensure_utc(r.block_time),
        )
        for r in session.exec(stmt.limit(MAX_FACT_ROWS))
    ]


def deposits_touching(session: Session, addresses: Sequence[str], statuses: Sequence[str]) -> list[Any]:
    """Deposits whose sender or initiator is one of ``addresses`` (bounded)."""
    if not addresses:
        return []
    addrs = list(addresses)
    stmt = (
        select(Deposit)
        .where(or_(col(Deposit.from_address).in_(addrs), col(Deposit.initiator).in_(addrs)))
        .where(col(Deposit.status).in_(list(statuses)))
        .order_by(col(Deposit.id))
        .limit(MAX_FACT_ROWS)
    )
    return list(session.exec(stmt))
