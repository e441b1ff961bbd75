"""``screener backfill``: record the deposits of an explicit past block range, below the live cursor.

Same reads and checks as a tick (screener.pipeline.read) and the same idempotent record + decide (unassigned
deposits audited and alerted), one transaction per range; the live cursor is never moved, and the range must lie
below it and below the safe head, so a backfill and the running worker cannot overlap in a way that matters
(duplicates are ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from chains.rpc import Endpoint
from chains.rpc_errors import RpcRequestError, RpcUnavailable
from chains.scanning import NodeBehind, NodeInconsistent, ProviderRefused, get_headers, read_heads
from screener.db import session_scope
from screener.pipeline.addresses import refresh_watch
from screener.pipeline.read import ScanCounts, scan_range, verify_tokens
from screener.pipeline.runtime import ChainRuntime
from screener.pipeline.store import Decide, load_state, record_range
from screener.review.rules import DepositStatus
from screener_base.clock import utc_now
from screener_base.errors import ChainError, DecodeError, ScreenerError

MAX_ENDPOINT_FAILURES = 6
MAX_UNSTABLE_RANGES = 5

Progress = Callable[[int, int], None]  # (blocks done, blocks total)


class BlockRangeError(ScreenerError):
    """A requested block range is invalid or not allowed."""


@dataclass(kw_only=True)
class BackfillResult(ScanCounts):
    chain: str
    from_block: int
    to_block: int
    ranges: int = 0


def plan_range(from_block: int, to_block: int | None, safe_block: int, cursor_next: int | None) -> tuple[int, int]:
    """The validated [from, to]; BlockRangeError with the reason otherwise. Pure."""
    if from_block < 0:
        raise BlockRangeError(f"--from-block {from_block} is negative", "give a block number >= 0")
    limit = safe_block if cursor_next is None else min(safe_block, cursor_next - 1)
    end = limit if to_block is None else to_block
    if end < from_block:
        raise BlockRangeError(f"--to-block {end} is before --from-block {from_block}", "swap or correct them")
    if end > safe_block:
        raise BlockRangeError(f"block {end} is not final yet (safe head {safe_block})", "wait, or lower --to-block")
    if cursor_next is not None and end >= cursor_next:
        raise BlockRangeError(
            f"blocks from {cursor_next} on are the live scanner's (its cursor)", f"backfill up to {cursor_next - 1}"
        )
    return from_block, end


def _endpoint(rt: ChainRuntime) -> Endpoint:
    for ep in rt.client.candidates():
        try:
            rt.client.ensure_chain_id(ep)
            verify_tokens(rt, ep)
            return ep
        except RpcUnavailable as exc:
            rt.client.demote(ep, str(exc))
    raise RpcUnavailable(f"{rt.name}: no usable RPC endpoint", f"check chains.{rt.name}.rpc_urls")


def backfill(
    engine: Engine,
    rt: ChainRuntime,
    from_block: int,
    to_block: int | None = None,
    *,
    now_fn: Callable[[], datetime] = utc_now,
    decide: Decide | None = None,
    progress: Progress | None = None,
) -> BackfillResult:
    """Record deposits in [from_block, to_block] (default: up to the cursor or safe head)."""
    with session_scope(engine) as session:
        cursor_next = load_state(session, rt.name).next_block
        refresh_watch(session, rt)
    ep = _endpoint(rt)
    heads = read_heads(rt.client, ep, rt.spec, rt.tags, rt.finality_client)
    if heads.safe is None:
        raise BlockRangeError(f"{rt.name} has no final block yet", "wait for the chain to grow")
    start, end = plan_range(from_block, to_block, heads.safe.number, cursor_next)
    result = BackfillResult(chain=rt.name, from_block=start, to_block=end)
    current, failures, unstable, refused = start, 0, 0, 0
    while current <= end:
        chunk_end = min(end, current + rt.sizer.span - 1)
        try:
            scan = scan_range(rt, ep, current, chunk_end, get_headers(rt.client, ep, [chunk_end])[0], None)
        except (RpcUnavailable, NodeBehind, DecodeError, RpcRequestError) as exc:
            failures += 1
            refused = refused + 1 if isinstance(exc, RpcRequestError) else 0
            if refused >= len(rt.client.endpoints):
                raise ProviderRefused(
                    f"backfill of {rt.name} stopped at block {current}: every endpoint refused it ({exc.cause})",
                    f"check chains.{rt.name}.rpc_urls and the providers' eth_getLogs limits",
                ) from exc
            if failures > MAX_ENDPOINT_FAILURES:
                raise ChainError(f"backfill of {rt.name} stopped at block {current}: {exc}", "run it again") from exc
            rt.client.demote(ep, str(exc))
            ep = _endpoint(rt)
            continue
        if not scan.consistent:
            unstable += 1
            if unstable > MAX_UNSTABLE_RANGES:
                raise NodeInconsistent(f"backfill of {rt.name}: {scan.detail}", "check the endpoints; run it again")
            continue
        with session_scope(engine) as session:
            now = now_fn()
            new = record_range(session, scan.deposits(rt.name, now), now, decide)
        refused = 0
        result.ranges += 1
        result.add_read(scan)
        result.add_recorded(scan, len(new), sum(d.status == DepositStatus.UNASSIGNED for d in new))
        current = scan.to_block + 1
        if progress is not None:
            progress(current - start, end - start + 1)
    return result
