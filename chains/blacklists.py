"""Issuer blacklists of USDT (TetherToken, USD₮0) and USDC (Circle FiatToken): event decoding and point reads.

The issuers log differently, and a wrong guess silently finds nothing (sources: chains/data/issuers.md):
- TetherToken (Ethereum, Tron): ``AddedBlackList(address _user)`` / ``RemovedBlackList(address _user)`` and
  ``DestroyedBlackFunds(address _blackListedUser, uint _balance)``. On Ethereum nothing is indexed (the address is a
  data word); published ABIs of Tron's TRC-20 USDT index the address. Both layouts are read, by topic count.
- USD₮0 (WithBlockedList: Arbitrum, Polygon, Optimism's USDT0, ...) and Avalanche USDt: ``BlockPlaced(address
  indexed _user)`` / ``BlockReleased(address indexed _user)`` and ``DestroyedBlockedFunds(address indexed
  _blockedUser, uint256 _balance)``.
- FiatToken: ``Blacklisted(address indexed _account)`` / ``UnBlacklisted(address indexed _account)``.
A "destroyed" event (the issuer burned a frozen balance) is evidence that the address was frozen. Bridged and
pegged tokens (BSC's Binance-Peg tokens, the legacy bridged USDT on Optimism) have none and are not scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chains.mixers import LogFetcher, log_position, word_address
from chains.multisig import SUBMISSION_TOPIC0, Submission, decode_submission
from screener_base.addresses import Family, canonical
from screener_base.errors import DecodeError

ADDED_BLACKLIST_TOPIC0 = "0x42e160154868087d6bfdc0ca23d96a1c1cfa32f1b72ba9ba27b69b98a0d819dc"
REMOVED_BLACKLIST_TOPIC0 = "0xd7e9ec6e6ecd65492dce6bf513cd6867560d49544421d0783ddf06e76c24470c"
DESTROYED_BLACK_FUNDS_TOPIC0 = "0x61e6e66b0d6339b2980aecc6ccc0039736791f0ccde9ed512e789a7fbdd698c6"
BLACKLISTED_TOPIC0 = "0xffa4e6181777692565cf28528fc88fd1516ea86b56da075235fa575af6a4b855"
UNBLACKLISTED_TOPIC0 = "0x117e3210bb9aa7d9baff172026820255c6f6c30ba8999d1c2fd88e2848137c4e"
BLOCK_PLACED_TOPIC0 = "0x406bbf2d8d145125adf1198d2cf8a67c66cc4bb0ab01c37dccd4f7c0aae1e7c7"
BLOCK_RELEASED_TOPIC0 = "0x665918c9e02eb2fd85acca3969cb054fc84c138e60ec4af22ab6ef2fd4c93c27"
DESTROYED_BLOCKED_FUNDS_TOPIC0 = "0x6a2859ae7902313752498feb80a014e6e7275fe964c79aa965db815db1c7f1e9"

# selector of the view that says whether an address is blacklisted now
TETHER_IS_BLACKLISTED = "0xe47d6060"  # isBlackListed(address)
FIATTOKEN_IS_BLACKLISTED = "0xfe575a87"  # isBlacklisted(address)
USDT0_IS_BLOCKED = "0xfbac3951"  # isBlocked(address)


class Interface(StrEnum):
    TETHER = "tether"
    FIATTOKEN = "fiattoken"
    USDT0 = "usdt0"


class Action(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    DESTROYED = "destroyed"  # the issuer burned the frozen balance
    PROPOSED = "proposed"  # the issuer's multisig was asked to blacklist (chains/multisig.py); not yet in force


@dataclass(frozen=True)
class _Layout:
    interface: Interface
    action: Action
    indexed: bool | None  # the address in topics[1] (True), in the first data word (False), either (None)
    amount: bool  # a balance word follows


_EVENTS: dict[str, _Layout] = {
    ADDED_BLACKLIST_TOPIC0: _Layout(Interface.TETHER, Action.ADDED, None, False),
    REMOVED_BLACKLIST_TOPIC0: _Layout(Interface.TETHER, Action.REMOVED, None, False),
    DESTROYED_BLACK_FUNDS_TOPIC0: _Layout(Interface.TETHER, Action.DESTROYED, None, True),
    BLACKLISTED_TOPIC0: _Layout(Interface.FIATTOKEN, Action.ADDED, True, False),
    UNBLACKLISTED_TOPIC0: _Layout(Interface.FIATTOKEN, Action.REMOVED, True, False),
    BLOCK_PLACED_TOPIC0: _Layout(Interface.USDT0, Action.ADDED, True, False),
    BLOCK_RELEASED_TOPIC0: _Layout(Interface.USDT0, Action.REMOVED, True, False),
    DESTROYED_BLOCKED_FUNDS_TOPIC0: _Layout(Interface.USDT0, Action.DESTROYED, True, True),
}


@dataclass(frozen=True)
class BlacklistEvent:
    token_contract: str
    interface: Interface
    action: Action
    address: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    amount: int | None = None  # the balance a "destroyed" event burned


def topics_for(interface: Interface) -> list[str]:
    return [t for t, layout in _EVENTS.items() if layout.interface is interface]


def _address_and_amount(layout: _Layout, topics: list[str], data: str) -> tuple[str, int | None]:
    """The address word and the balance (if the event has one), by the layout the topic count says."""
    words = 1 if layout.amount else 0
    if len(topics) == 2 and layout.indexed is not False and len(data) == 64 * words:
        return topics[1], int(data, 16) if words else None
    if len(topics) == 1 and layout.indexed is not True and len(data) == 64 * (words + 1):
        return data[:64], int(data[64:], 16) if words else None
    raise DecodeError(
        f"{layout.interface} {layout.action} log has {len(topics)} topics and {len(data) // 2} data bytes",
        "not this issuer's event layout (chains/blacklists.py lists the known ones)",
    )


def decode_blacklist_log(log: dict[str, Any], family: Family = Family.EVM) -> BlacklistEvent:
    topics = [str(t).lower() for t in log.get("topics") or []]
    if not topics or topics[0] not in _EVENTS:
        raise DecodeError(f"not an issuer blacklist log: topics {topics}", "only issuer freeze events are decoded")
    layout = _EVENTS[topics[0]]
    data = str(log.get("data") or "0x")
    data = data[2:] if data.startswith("0x") else data
    word, amount = _address_and_amount(layout, topics, data)
    tx_hash, log_index, block_number, block_hash = log_position(log)
    return BlacklistEvent(
        token_contract=canonical(family, str(log["address"])),
        interface=layout.interface,
        action=layout.action,
        address=word_address(word, family),
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash,
        amount=amount,
    )


def blacklist_filter(
    contracts_hex20: Sequence[str], interfaces: set[Interface], from_block: int, to_block: int
) -> dict[str, Any]:
    topic0s = [t for iface in sorted(interfaces) for t in topics_for(iface)]
    return {
        "fromBlock": hex(from_block),
        "toBlock": hex(to_block),
        "address": sorted(set(contracts_hex20)),
        "topics": [topic0s],
    }


def scan_blacklist_events(
    fetch_logs: LogFetcher,
    contracts: Sequence[tuple[str, Interface]],
    from_block: int,
    to_block: int,
    family: Family = Family.EVM,
) -> list[BlacklistEvent]:
    """Blacklist events of ``contracts`` ((0x hex20 address, interface) pairs) in one eth_getLogs call."""
    return scan_issuer_logs(fetch_logs, contracts, (), from_block, to_block, family)[0]


def scan_issuer_logs(
    fetch_logs: LogFetcher,
    contracts: Sequence[tuple[str, Interface]],
    multisigs: Sequence[str],
    from_block: int,
    to_block: int,
    family: Family = Family.EVM,
) -> tuple[list[BlacklistEvent], list[Submission]]:
    """The tokens' freeze events and the issuer multisigs' Submission logs (0x hex20 addresses), in one call.

    A contract may speak more than one interface (Avalanche USDt: the public sources disagree, so both are read);
    a log whose topic belongs to an interface the contract is not listed with is dropped.
    """
    if (not contracts and not multisigs) or to_block < from_block:
        return [], []
    spoken = {(addr.lower(), iface) for addr, iface in contracts}
    owners = {m.lower() for m in multisigs}
    flt = blacklist_filter([a for a, _ in spoken] + sorted(owners), {i for _, i in spoken}, from_block, to_block)
    if owners:
        flt["topics"][0].append(SUBMISSION_TOPIC0)
    events, submissions = [], []
    for log in fetch_logs(flt):
        topics = [str(t).lower() for t in log.get("topics") or []]
        address = str(log.get("address", "")).lower()
        if topics and topics[0] == SUBMISSION_TOPIC0 and address in owners:
            submissions.append(decode_submission(log))
            continue
        layout = _EVENTS.get(topics[0]) if topics else None
        if layout is not None and (address, layout.interface) in spoken:
            events.append(decode_blacklist_log(log, family))
    events.sort(key=lambda e: (e.block_number, e.log_index))
    submissions.sort(key=lambda e: (e.block_number, e.log_index))
    return events, submissions


def is_blacklisted_call(interface: Interface, address_hex20: str) -> str:
    """eth_call data asking the token whether ``address`` is blacklisted now."""
    selector = {
        Interface.TETHER: TETHER_IS_BLACKLISTED,
        Interface.FIATTOKEN: FIATTOKEN_IS_BLACKLISTED,
        Interface.USDT0: USDT0_IS_BLOCKED,
    }[interface]
    return selector + "0" * 24 + address_hex20.lower()[2:]


def decode_bool(result: str) -> bool:
    text = result[2:] if result.startswith("0x") else result
    if len(text) != 64 or text[:63].strip("0") or text[63] not in "01":
        raise DecodeError(f"{result!r} is not an ABI bool", "the contract does not have this interface")
    return text[63] == "1"
