"""The one fact gatherer: everything the screening policy reads about a deposit, for deciding it and for
re-screening it later (screener.decide.rescreen), so both see the same facts built the same way.

What cannot be checked becomes an ``Unavailable`` fact (the policy then holds); nothing here raises for
missing data. Reads only: the list snapshot given, the indexes, and (two-hop) the chain's RPC.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Flag, auto

from sqlmodel import Session

from chains.mixers import mixer_contracts, scan_funding
from sanctions_lists.entries import Entry
from sanctions_lists.snapshot import Snapshot
from screener.indexes.rules import IndexKind, lookback_blocks
from screener.indexes.store import IndexSource, blacklist_facts, coverage_gap, relayers_among, withdrawals_to
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.pipeline.runtime import spec_from_settings
from screener.screening.policy import (
    Check,
    DepositFacts,
    FundingFact,
    ListHit,
    MixerContractHit,
    ScreeningInput,
    Unavailable,
    WithdrawalFact,
    two_hop_applies,
)
from screener.settings import Settings
from screener_base.addresses import Family, canonical, tron_to_hex20
from screener_base.clock import ensure_utc
from screener_base.errors import ScreenerError, ScreeningUnavailable

# chain name -> what the indexes and two-hop lookups need from that chain; None: no RPC for it here.
RpcLookup = Callable[[str], IndexSource | None]
# Funding transfers examined per deposit for two-hop exposure; bounds memory and DB lookups.
MAX_FUNDING_TRANSFERS = 1000


@dataclass(frozen=True)
class ListState:
    """The sanctions list a gather matches parties against, or why there is none (``problem``)."""

    version_id: int | None
    snapshot: Snapshot | None
    problem: str | None = None

    @classmethod
    def active(cls, session: Session, settings: Settings, now: datetime) -> ListState:
        """The active version, as of the caller's transaction; stale or missing: no snapshot, a problem."""
        try:
            version_id, snapshot = lists_store.screening_snapshot(session, settings, now)
        except ScreeningUnavailable as exc:
            return cls(None, None, str(exc))
        return cls(version_id, snapshot)

    @classmethod
    def only(cls, version_id: int, entries: list[Entry]) -> ListState:
        """Only ``entries`` (e.g. those a new version added), matched as the whole list would be."""
        return cls(version_id, Snapshot(entries))

    @classmethod
    def unchanged(cls, version_id: int | None) -> ListState:
        """The deposit's list verdict stands: nothing is matched again (re-screening new index facts)."""
        return cls(version_id, Snapshot(()))


@dataclass
class _Gathered:
    hits: list[ListHit] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)


def window_blocks(settings: Settings, chain: str, kind: str) -> int:
    """The lookback window in the chain's blocks; 0 for a chain no longer configured (its index is as is)."""
    try:
        block_time_s = spec_from_settings(settings, chain).block_time_s
    except ScreenerError:
        return 0
    return lookback_blocks(settings, kind, block_time_s)


class Scope(Flag):
    """Which facts a gather reads. Deciding reads all; a re-screen reads only what changed, so that nothing
    else (a malformed mixer_pools entry, an RPC lookup) can fail the transaction that activates a list."""

    LISTS = auto()  # list hits (and why the list could not be matched)
    MIXER = auto()  # withdrawals to a party (the mixer index)
    BLACKLIST = auto()  # issuer blacklist events of a party
    COVERAGE = auto()  # whether the indexes cover the deposit's block and window
    CONTRACTS = auto()  # a party is a known mixer contract or relayer
    TWO_HOP = auto()  # the sender's own funding (RPC lookups within a budget)
    # An open hold screened again (at the moment of crediting, or when a list or index changed): everything
    # but two-hop, whose RPC budget only the first decision spends (its findings stay as recorded).
    HOLD = LISTS | MIXER | BLACKLIST | COVERAGE | CONTRACTS
    ALL = HOLD | TWO_HOP


def gather(
    session: Session,
    deposit: Deposit,
    lists: ListState,
    settings: Settings,
    rpc_lookup: RpcLookup | None,
    scope: Scope = Scope.ALL,
) -> ScreeningInput:
    """Everything the policy reads about ``deposit`` within ``scope``; what cannot be checked is Unavailable."""
    facts, mismatch = _facts(deposit, settings)
    addresses = [a for _, a in facts.parties()]
    got = _list_hits(facts, lists) if Scope.LISTS in scope else _Gathered()
    if mismatch:
        got.unavailable.append(Unavailable(Check.LISTS, mismatch))
    funding: tuple[FundingFact, ...] = ()
    if Scope.COVERAGE in scope:
        got.unavailable += _coverage_gaps(session, facts, settings)
    if Scope.TWO_HOP in scope and two_hop_applies(facts, settings.screening):
        source = rpc_lookup(facts.chain) if rpc_lookup else None
        funding, problem = two_hop_funding(session, facts, settings, source)
        if problem:
            got.unavailable.append(Unavailable(Check.TWO_HOP, problem))
    mixer_contracts = tuple(_mixer_hits(session, facts, settings)) if Scope.CONTRACTS in scope else ()
    return ScreeningInput(
        deposit=facts,
        list_version_id=lists.version_id,
        list_hits=tuple(got.hits),
        mixer_contracts=mixer_contracts,
        withdrawals=tuple(withdrawals_to(session, addresses)) if Scope.MIXER in scope else (),
        funding=funding,
        blacklist=tuple(blacklist_facts(session, addresses)) if Scope.BLACKLIST in scope else (),
        unavailable=tuple(got.unavailable),
    )


def _coverage_gaps(session: Session, facts: DepositFacts, settings: Settings) -> list[Unavailable]:
    """An index that does not cover the deposit's block and lookback window cannot clear it."""
    gaps = []
    for kind, check in ((IndexKind.MIXER, Check.MIXER_INDEX), (IndexKind.BLACKLIST, Check.BLACKLIST_INDEX)):
        gap = coverage_gap(session, facts.chain, kind, facts.block_number, window_blocks(settings, facts.chain, kind))
        if gap is not None:
            gaps.append(Unavailable(check, gap))
    return gaps


def _facts(deposit: Deposit, settings: Settings) -> tuple[DepositFacts, str | None]:
    """Facts in the chain's family; a stored address not canonical for it cannot be matched reliably."""
    try:
        family = spec_from_settings(settings, deposit.chain).family
    except ScreenerError:
        # A chain no longer configured: its stored form is still matched (a listing must still flag or block
        # it), but its family, lookback window and canonical form are unknown, so nothing may clear it.
        problem = f"chain {deposit.chain!r} is not configured, so its deposits cannot be fully screened"
        return DepositFacts.of(deposit), problem
    facts = DepositFacts.of(deposit, family)
    for party, address in facts.parties():
        try:
            ok = canonical(family, address) == address
        except ScreenerError:
            ok = False
        if not ok:
            return facts, f"{party} {address!r} is not a canonical {family} address for chain {deposit.chain}"
    return facts, None


def _list_hits(facts: DepositFacts, lists: ListState) -> _Gathered:
    got = _Gathered()
    if lists.snapshot is None:
        got.unavailable.append(Unavailable(Check.LISTS, lists.problem or "no active list version"))
        return got
    for party, address in facts.parties():
        try:
            entries = lists.snapshot.match(facts.family.value, address)
        except ScreenerError as exc:
            got.unavailable.append(Unavailable(Check.LISTS, f"{party} {address!r} could not be matched: {exc}"))
            continue
        got.hits += [ListHit(party, address, e.address, e.tag, e.entity, e.programs, e.profile_id) for e in entries]
    return got


def _mixer_hits(session: Session, facts: DepositFacts, settings: Settings) -> list[MixerContractHit]:
    if facts.family is not Family.EVM:
        return []  # no mixer registry outside EVM chains (Tornado Cash never ran on Tron)
    chain_cfg = settings.chains.get(facts.chain)
    known = {c.address: c for c in mixer_contracts(facts.chain, chain_cfg.mixer_pools if chain_cfg else ())}
    parties = facts.parties()
    relayers = relayers_among(session, [a for _, a in parties])
    hits = []
    for party, address in parties:
        if address in known:
            hits.append(MixerContractHit(party, address, known[address].kind, known[address].label))
        elif address in relayers:
            hits.append(MixerContractHit(party, address, "relayer", f"mixer relayer (seen in {relayers[address]})"))
    return hits


def two_hop_funding(
    session: Session, facts: DepositFacts, settings: Settings, source: IndexSource | None
) -> tuple[tuple[FundingFact, ...], str | None]:
    """Funding of the sender by mixer withdrawal recipients, within the RPC budget; (facts, problem)."""
    if source is None:
        return (), "no RPC access to look up the sender's funding"
    cfg = settings.screening
    window = math.ceil(cfg.two_hop_lookback_days * 86_400 / source.block_time_s)
    try:
        sender = tron_to_hex20(facts.from_address) if facts.family is Family.TRON else facts.from_address
        scan = scan_funding(
            source.fetch_logs,
            source.tokens,
            sender,
            max(0, facts.block_number - window),
            facts.block_number,
            max_range_blocks=source.max_block_range,
            budget_calls=max(1, cfg.two_hop_rpc_budget - 1),  # one call is kept for block timestamps
            family=facts.family,
        )
        if not scan.complete:
            return (), f"RPC budget of {cfg.two_hop_rpc_budget} calls ran out before {window} blocks were read"
        transfers = scan.transfers[:MAX_FUNDING_TRANSFERS]
        by_funder: dict[str, list[WithdrawalFact]] = {}
        for w in withdrawals_to(session, sorted({t.sender for t in transfers})):
            by_funder.setdefault(w.address, []).append(w)
        tainted = [t for t in transfers if t.sender in by_funder]
        times = source.block_times(sorted({t.block_number for t in tainted})) if tainted else {}
    except ScreenerError as exc:
        return (), f"funding lookup failed: {exc}"
    if any(t.block_number not in times for t in tainted):
        return (), "the node did not return the funding blocks' timestamps"
    return tuple(
        FundingFact(t.sender, t.tx_hash, t.block_number, ensure_utc(times[t.block_number]), w)
        for t in tainted
        for w in by_funder[t.sender]
    ), None
