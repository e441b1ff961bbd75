"""One tick per chain: read the next safe range, record its deposits, decide them, move the cursor.

``tick(engine, runtime, now_fn, decide)`` processes one bounded range. Network reads happen
first, outside any transaction, all from one endpoint; then ONE transaction inserts the new deposits
(idempotent on chain, tx hash, log index), calls ``decide(session, new_deposits, now)`` and moves the cursor
(compare-and-set: a concurrent worker's progress discards ours). On an EVM chain the range is also read for our
EVM addresses registered on other chains only: a transfer to one is recorded as an unassigned deposit (audited
and alerted, never decided) in the same transaction. Reads are cross-checked by block hash: the range's last
block before and after eth_getLogs, each deposit's block, and the last block of the previous range; a mismatch
is a reorg (rewind, see :func:`_rewind`) or a flaky node (nothing recorded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chains.rpc import Endpoint
from chains.rpc_errors import RpcRequestError, RpcUnavailable
from chains.scanning import (
    AnchorState,
    DeepReorg,
    Header,
    Heads,
    NodeBehind,
    NodeInconsistent,
    ProviderRefused,
    classify_anchor_mismatch,
    finalized_number,
    find_fork,
    get_headers,
    read_heads,
)
from screener.db import session_scope
from screener.models.deposits import Deposit
from screener.pipeline.addresses import refresh_watch
from screener.pipeline.read import RangeScan, ScanCounts, scan_range, verify_tokens
from screener.pipeline.runtime import ChainRuntime
from screener.pipeline.store import (
    CursorMoved,
    Decide,
    OrphanHandler,
    ScanState,
    deposits_above,
    drop_headers_above,
    drop_undecided_orphans,
    keep_headers,
    load_deposits,
    load_state,
    lock_cursor,
    move_cursor,
    record_range,
)
from screener.review.rules import DepositStatus
from screener_base.clock import utc_now
from screener_base.errors import ChainError, DecodeError

log = logging.getLogger(__name__)
MAX_ENDPOINTS_PER_TICK = 3
# HTTP requests a tick sends on one endpoint: 4 for a new range in the steady state (README "Requests per poll",
# kept true by a test), 6 leaving room for a re-read. A budgeted endpoint is asked only when its day's pace can
# carry them all, so a tick is not started that the budget would cut off halfway (its requests wasted).
REQUESTS_PER_TICK = 6
MAX_UNSTABLE_TICKS = 5
# An endpoint whose head is this far behind another's is passed over (block counts differ a little normally).
MIN_LAG_TOLERANCE_BLOCKS = 3
LAG_TOLERANCE_S = 10.0
MAX_PEERS_PROBED = 2


@dataclass
class ReorgInfo:
    fork_block: int  # newest kept block still canonical; scanning resumes after it
    min_depth_blocks: int  # the reorg replaced at least this many of the blocks we had read
    rescanned_blocks: int  # blocks read again (kept headers are sparse, so possibly more than replaced)
    orphaned: int  # deposits whose block was replaced

    @property
    def depth_blocks(self) -> int:
        """The reorg depth to report (its lower bound)."""
        return self.min_depth_blocks


@dataclass(kw_only=True)
class TickResult(ScanCounts):
    chain: str
    # scanned | idle | reorg | unstable (reads disagreed; retried next tick) | conflict (another worker moved
    # the cursor) | lagging (caught up on an endpoint that another one is clearly ahead of; it is passed over)
    status: str
    endpoint: str | None = None
    from_block: int | None = None
    to_block: int | None = None
    head_block: int | None = None
    safe_block: int | None = None
    lag_blocks: int | None = None  # head - last scanned block
    reorg: ReorgInfo | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


def _load(engine: Engine, rt: ChainRuntime) -> ScanState:
    with session_scope(engine) as session:
        refresh_watch(session, rt)
        return load_state(session, rt.name)


def tick(
    engine: Engine,
    rt: ChainRuntime,
    now_fn: Callable[[], datetime] = utc_now,
    decide: Decide | None = None,
    *,
    on_orphaned: OrphanHandler | None = None,
) -> TickResult:
    """Process the next bounded range of ``rt``'s chain. Fails over between endpoints (at most 3 per tick).

    Raises ChainHalted (NodeInconsistent, DeepReorg) for conditions that need a person, NodeBehind or
    RpcUnavailable when no endpoint could serve the tick; nothing is written in those cases.
    """
    started = time.perf_counter()
    state = _load(engine, rt)
    last: ChainError | None = None
    tried = refused = 0
    for ep in rt.client.candidates()[:MAX_ENDPOINTS_PER_TICK]:
        tried += 1
        try:
            rt.client.reserve(ep, REQUESTS_PER_TICK)
            rt.client.ensure_chain_id(ep)
            verify_tokens(rt, ep)
            result = _tick_on(engine, rt, ep, state, now_fn, decide, on_orphaned or drop_undecided_orphans)
        except (RpcUnavailable, NodeBehind, DecodeError, RpcRequestError) as exc:
            # A permanent error on one endpoint (its own limits, a method it lacks) may not be another's.
            refused += isinstance(exc, RpcRequestError)
            rt.client.demote(ep, str(exc))
            last = exc
            continue
        result.endpoint = ep.label
        if result.status in ("idle", "scanned") and result.to_block in (None, result.safe_block):
            _check_peers(rt, ep, result)
        result.timings_s["total"] = time.perf_counter() - started
        return result
    if last is not None and refused == tried:
        raise ProviderRefused(
            f"{rt.name}: every endpoint tried refused the scan for good ({last.cause})",
            f"check chains.{rt.name}.rpc_urls and the providers' limits; the chain is not scanned until then",
        )
    raise last or RpcUnavailable(f"{rt.name}: no usable RPC endpoint", f"check chains.{rt.name}.rpc_urls")


def _tick_on(
    engine: Engine,
    rt: ChainRuntime,
    ep: Endpoint,
    state: ScanState,
    now_fn: Callable[[], datetime],
    decide: Decide | None,
    on_orphaned: OrphanHandler,
) -> TickResult:
    anchor = state.anchor
    heads = _heads_not_behind(rt, ep, anchor)
    result = TickResult(chain=rt.name, status="idle", head_block=heads.head)
    if heads.safe is None:
        return result
    result.safe_block = heads.safe.number
    start = state.next_block
    if start is None:  # first run: from start_block, else from now on (use `screener backfill` for history)
        start = rt.start_block if rt.start_block is not None else heads.safe.number + 1
    end = min(heads.safe.number, start + rt.sizer.span - 1)
    wanted: list[int | str] = [anchor.number] if anchor else []
    wanted += [end] if end >= start else []
    pre = get_headers(rt.client, ep, wanted) if wanted else []
    if anchor is not None:
        if pre[0] is None:
            raise NodeBehind(f"{ep.label} does not serve block {anchor.number} any more", "failing over")
        if pre[0].hash != anchor.hash:
            return _rewind(engine, rt, ep, state, result, now_fn, on_orphaned)
    result.lag_blocks = heads.head - (start - 1)
    if end < start:
        if state.next_block is None and rt.start_block is None:
            _start_here(engine, rt, heads.safe, heads.head, now_fn)
        return result
    # The first range also keeps the block below it: a lower bound for locating any later reorg.
    scan = scan_range(rt, ep, start, end, pre[-1], anchor, keep_base=state.next_block is None)
    _copy_counts(result, scan)
    if not scan.consistent:
        rt.consecutive_unstable += 1
        if rt.consecutive_unstable >= MAX_UNSTABLE_TICKS:
            raise NodeInconsistent(
                f"{rt.name}: {rt.consecutive_unstable} ticks in a row read inconsistent blocks ({scan.detail})",
                "an endpoint keeps changing its answers; check the providers",
            )
        result.status = "unstable"
        return result
    rt.consecutive_unstable = 0
    recorded = time.perf_counter()
    new = _record(engine, rt, state, scan, heads.head, heads.safe.number, now_fn, decide)
    if new is None:
        result.status = "conflict"
        return result
    result.timings_s["record"] = time.perf_counter() - recorded
    result.status = "scanned"
    result.add_recorded(scan, len(new), sum(d.status == DepositStatus.UNASSIGNED for d in new))
    result.lag_blocks = heads.head - scan.to_block
    return result


def _heads_not_behind(rt: ChainRuntime, ep: Endpoint, anchor: Header | None) -> Heads:
    """Heads from ``ep``; NodeBehind if its head is below the block we already read (read_heads re-asks
    first: behind one URL, the next request may reach a node that is not behind)."""
    floor = anchor.number if anchor is not None else 0
    heads = read_heads(rt.client, ep, rt.spec, rt.tags, rt.finality_client, min_head=floor)
    if heads.head < floor:
        raise NodeBehind(f"{ep.label} is at block {heads.head}, we already read {floor}", "failing over")
    return heads


def _record(
    engine: Engine,
    rt: ChainRuntime,
    state: ScanState,
    scan: RangeScan,
    head: int,
    safe: int,
    now_fn: Callable[[], datetime],
    decide: Decide | None,
) -> list[Deposit] | None:
    """ONE transaction: insert the range's new deposits, decide them (audit and alert the unassigned ones), move
    the cursor; None if another worker moved the cursor (or recorded the same rows) first, in which case
    everything here was rolled back."""
    try:
        with session_scope(engine) as session:
            cursor = lock_cursor(session, rt.name, state.next_block)
            now = now_fn()
            new = record_range(session, scan.deposits(rt.name, now), now, decide)
            keep_headers(session, rt.name, scan.headers_to_keep, now)
            move_cursor(session, cursor, rt.name, scan.to_block + 1, now, head, safe)
    except CursorMoved as exc:
        log.info("tick discarded: %s", exc)
        return None
    except sa.exc.IntegrityError as exc:
        # Before the chain's first cursor row exists there is no row to lock, so two workers can race to insert
        # the same deposits/headers/cursor; the loser's transaction is rolled back whole, as for CursorMoved.
        log.info("tick discarded: another worker recorded the same range first (%s)", exc.orig)
        return None
    return new


def _start_here(engine: Engine, rt: ChainRuntime, safe: Header, head: int, now_fn: Callable[[], datetime]) -> None:
    """First run without start_block: scanning begins after today's safe head, which becomes the anchor."""
    try:
        with session_scope(engine) as session:
            cursor = lock_cursor(session, rt.name, None)
            now = now_fn()
            keep_headers(session, rt.name, [safe], now)
            move_cursor(session, cursor, rt.name, safe.number + 1, now, head, safe.number)
    except (CursorMoved, sa.exc.IntegrityError):
        pass  # another worker started it first


def _check_peers(rt: ChainRuntime, ep: Endpoint, result: TickResult) -> None:
    """Caught up on ``ep``: if another endpoint is clearly ahead, ``ep`` lags; pass it over from now on.

    Only heads are compared; whatever the next endpoint serves is verified by hash as usual.
    """
    if result.head_block is None:
        return
    tolerance = max(MIN_LAG_TOLERANCE_BLOCKS, int(LAG_TOLERANCE_S / rt.spec.block_time_s))
    for peer in [p for p in rt.client.candidates() if p is not ep][:MAX_PEERS_PROBED]:
        head = rt.client.probe_head(peer)
        if head is not None and head > result.head_block + tolerance:
            rt.client.demote(ep, f"{ep.label} is at block {result.head_block}, {peer.label} at {head}")
            result.status = "lagging"
            return


def _copy_counts(result: TickResult, scan: RangeScan) -> None:
    result.from_block, result.to_block = scan.from_block, scan.to_block
    result.add_read(scan)
    result.timings_s.update(scan.timings_s)


def _rewind(
    engine: Engine,
    rt: ChainRuntime,
    ep: Endpoint,
    state: ScanState,
    result: TickResult,
    now_fn: Callable[[], datetime],
    on_orphaned: OrphanHandler,
) -> TickResult:
    """The last scanned block changed: confirm it is a reorg, find the fork, handle orphans, move back."""
    anchor = state.anchor
    assert anchor is not None
    check = classify_anchor_mismatch(rt.client, ep, anchor)
    if check.state is AnchorState.SAME:
        result.status = "unstable"
        return result
    if check.state is AnchorState.BEHIND:
        raise NodeBehind(check.detail, "failing over")
    final = finalized_number(rt.client, ep, rt.spec, rt.tags)
    if final is not None and anchor.number <= final:
        raise DeepReorg(
            f"{rt.name}: block {anchor.number} changed although block {final} is finalized; nothing rewound",
            "the endpoint is broken or the chain broke finality; check it against another provider",
        )
    found = find_fork(rt.client, ep, state.kept, anchor)
    min_depth = anchor.number - found.lowest_replaced + 1
    fork = found.base
    if fork is None or min_depth > rt.spec.max_reorg_depth:
        raise DeepReorg(
            f"{rt.name}: reorg of at least {min_depth} blocks below block {anchor.number}, deeper than "
            f"max_reorg_depth {rt.spec.max_reorg_depth} or than the kept headers; nothing rewound",
            "confirm on an explorer; raise max_reorg_depth or re-scan with `screener backfill` after review",
        )
    candidates = _orphan_ids(engine, rt, ep, fork.number)
    with session_scope(engine) as session:
        cursor = lock_cursor(session, rt.name, state.next_block)
        now = now_fn()
        orphans = load_deposits(session, candidates)
        if orphans:
            on_orphaned(session, orphans, now)
        drop_headers_above(session, rt.name, fork.number)
        move_cursor(session, cursor, rt.name, fork.number + 1, now, reorg=True)
    log.warning(
        "%s: reorg of >= %d blocks at %d; rescanning from %d", rt.name, min_depth, anchor.number, fork.number + 1
    )
    result.status = "reorg"
    result.reorg = ReorgInfo(
        fork_block=fork.number,
        min_depth_blocks=min_depth,
        rescanned_blocks=anchor.number - fork.number,
        orphaned=len(candidates),
    )
    return result


def _orphan_ids(engine: Engine, rt: ChainRuntime, ep: Endpoint, fork_block: int) -> list[int]:
    """Ids of deposits above the fork whose block hash is no longer canonical."""
    with session_scope(engine) as session:
        recorded = deposits_above(session, rt.name, fork_block)
    numbers = sorted({n for _, n, _ in recorded})
    canonical: dict[int, Header | None] = dict(zip(numbers, get_headers(rt.client, ep, numbers), strict=True))
    out = []
    for deposit_id, number, block_hash in recorded:
        header = canonical[number]
        if header is None or header.hash != block_hash:
            out.append(deposit_id)
    return out
