"""The real ``decide`` for the pipeline: gather each deposit's facts, run the policy, apply the verdict.

Runs inside the pipeline's transaction, so the deposit, its verdict, its credit or hold and their audit
events commit together. Anything that cannot be checked becomes an ``unavailable`` fact and the policy
holds the deposit; an exception here would roll the whole tick back, so only bugs may raise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from screener.decide.gather import ListState, RpcLookup, gather, window_blocks
from screener.decide.rescreen import make_index_hook
from screener.indexes.rules import IndexKind
from screener.indexes.store import catch_up, coverage_gap, extend_back, index_coverage, lock_cursors
from screener.models.deposits import Deposit
from screener.pipeline.store import Decide
from screener.review import service as review
from screener.screening.policy import screen
from screener.screening.verdicts import Verdict
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ScreenerError

log = logging.getLogger(__name__)


def make_decider(settings: Settings, rpc_lookup: RpcLookup | None = None) -> Decide:
    """``decide(session, new_deposits, now)`` for screener.pipeline.tick.tick.

    With ``rpc_lookup`` the decider catches a lagging mixer/blacklist index up to the deposits' blocks and
    runs two-hop lookups; without it, a lagging index or a needed two-hop lookup holds the deposit.
    """

    def decide(session: Session, deposits: list[Deposit], now: datetime) -> None:
        decide_deposits(session, deposits, settings, now, rpc_lookup)

    return decide


def decide_deposits(
    session: Session,
    deposits: Sequence[Deposit],
    settings: Settings,
    now: datetime,
    rpc_lookup: RpcLookup | None = None,
) -> list[Verdict]:
    now = ensure_utc(now)
    lists = ListState.active(session, settings, now)
    _catch_up(session, deposits, settings, now, rpc_lookup)
    verdicts = []
    coverage: dict[str, dict[str, list[int] | None]] = {}
    for deposit in deposits:
        inp = gather(session, deposit, lists, settings, rpc_lookup)
        verdict = screen(inp, settings.screening, now)
        if deposit.chain not in coverage:
            coverage[deposit.chain] = index_coverage(session, deposit.chain)
        relied_on = coverage[deposit.chain]
        review.apply_verdict(session, deposit, verdict, settings, now, relied_on=dict(relied_on))
        verdicts.append(verdict)
    return verdicts


def _catch_up(
    session: Session, deposits: Sequence[Deposit], settings: Settings, now: datetime, rpc_lookup: RpcLookup | None
) -> None:
    """Bring each chain's indexes over the deposits' blocks and their lookback windows (forward, then back)."""
    if rpc_lookup is None:
        return
    spans: dict[str, tuple[int, int]] = {}
    for d in deposits:
        low, high = spans.get(d.chain, (int(d.block_number), int(d.block_number)))
        spans[d.chain] = (min(low, int(d.block_number)), max(high, int(d.block_number)))
    on_new_facts = make_index_hook(settings)
    sources = {chain: source for chain in sorted(spans) if (source := rpc_lookup(chain)) is not None}
    lock_cursors(session, list(sources))
    for chain, source in sources.items():
        low, high = spans[chain]
        for kind in (IndexKind.MIXER, IndexKind.BLACKLIST):
            window = window_blocks(settings, chain, kind)
            try:
                # A savepoint: a failure half-way (facts sealed, the re-screen hook failing) leaves nothing behind.
                with session.begin_nested():
                    if coverage_gap(session, chain, kind, high) is not None:
                        catch_up(session, source, kind, settings, now, high, on_new_facts=on_new_facts)
                    if coverage_gap(session, chain, kind, low, window) is not None:
                        down_to = max(0, low - window)
                        extend_back(session, source, kind, settings, now, down_to, on_new_facts=on_new_facts)
            except ScreenerError as exc:
                # The deposits stay uncovered and are held as "unavailable"; the next scan retries.
                log.warning("%s %s index catch-up for blocks %s..%s failed: %s", chain, kind, low, high, exc)
