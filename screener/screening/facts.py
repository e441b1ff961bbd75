"""Facts the screening policy reads: pure data, built by screener.decide.gather.

Addresses are canonical for the chain family (EVM lowercase 0x, Tron T-form); times are UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from screener_base.addresses import Family, infer_family
from screener_base.clock import ensure_utc


class Party(StrEnum):
    FROM = "from"  # the token transfer's sender
    INITIATOR = "initiator"  # the transaction's signer (differs when a contract moved the tokens)
    NONE = "-"  # not about one party (list stale, index behind)


class Check(StrEnum):
    """What could not be checked, for ``unavailable`` findings."""

    LISTS = "lists"
    INITIATOR = "initiator"
    MIXER_INDEX = "mixer_index"
    BLACKLIST_INDEX = "blacklist_index"
    TWO_HOP = "two_hop"


@dataclass(frozen=True)
class DepositFacts:
    chain: str
    family: Family
    tx_hash: str
    block_number: int
    block_time: datetime
    from_address: str
    initiator: str | None  # None: the transaction lookup failed
    amount_raw: int
    decimals: int

    @classmethod
    def of(cls, deposit: Any, family: Family | None = None) -> DepositFacts:
        """Facts of a ``screener.models.deposits.Deposit`` row (duck-typed: this module imports no models).

        ``family`` is the chain's; without it, it is inferred from the stored canonical sender (EVM ``0x...``,
        Tron ``T...``). The block time falls back to when the deposit was observed.
        """
        sender = str(deposit.from_address)
        when = deposit.block_time or deposit.observed_at
        return cls(
            chain=str(deposit.chain),
            family=family or infer_family(sender),
            tx_hash=str(deposit.tx_hash),
            block_number=int(deposit.block_number),
            block_time=ensure_utc(when),
            from_address=sender,
            initiator=deposit.initiator,
            amount_raw=int(deposit.amount_raw),
            decimals=int(deposit.decimals),
        )

    def parties(self) -> list[tuple[Party, str]]:
        out = [(Party.FROM, self.from_address)]
        if self.initiator is not None and self.initiator != self.from_address:
            out.append((Party.INITIATOR, self.initiator))
        return out


@dataclass(frozen=True)
class ListHit:
    """One list entry matching one party."""

    party: Party
    address: str  # the party's canonical address
    listed_as: str  # as OFAC published it (case, asset tag)
    asset: str
    entity: str | None  # None when the list version does not name the party
    programs: tuple[str, ...] = ()
    profile_id: str | None = None


@dataclass(frozen=True)
class MixerContractHit:
    """A party that is itself a mixer contract or relayer."""

    party: Party
    address: str
    kind: str  # pool | proxy | relayer_registry | relayer | privacy_protocol
    label: str


@dataclass(frozen=True)
class WithdrawalFact:
    """A mixer Withdrawal whose recipient is ``address`` (a party, or a funder for two-hop)."""

    address: str
    chain: str
    pool: str
    relayer: str | None
    tx_hash: str
    block_number: int
    block_time: datetime


@dataclass(frozen=True)
class FundingFact:
    """The sender was funded (USDT/USDC) by ``funder``, which received ``withdrawal``."""

    funder: str
    funding_tx: str
    funding_block: int
    funding_time: datetime
    withdrawal: WithdrawalFact


@dataclass(frozen=True)
class BlacklistFact:
    address: str
    chain: str
    token_symbol: str
    token_contract: str
    action: str  # added | removed | destroyed (frozen balance burned) | proposed (multisig asked to freeze)
    tx_hash: str
    block_number: int
    block_time: datetime


@dataclass(frozen=True)
class Unavailable:
    check: Check
    detail: str


@dataclass(frozen=True)
class ScreeningInput:
    deposit: DepositFacts
    list_version_id: int | None
    list_hits: tuple[ListHit, ...] = ()
    mixer_contracts: tuple[MixerContractHit, ...] = ()
    withdrawals: tuple[WithdrawalFact, ...] = ()
    funding: tuple[FundingFact, ...] = ()
    blacklist: tuple[BlacklistFact, ...] = ()
    unavailable: tuple[Unavailable, ...] = ()
