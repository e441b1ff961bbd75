"""Issuer blacklists of USDT (TetherToken) and USDC (Circle FiatToken): event decoding and point reads.

The two issuers log differently, and a wrong guess silently finds nothing:
- TetherToken (Ethereum, Tron): ``AddedBlackList(address _user)`` / ``RemovedBlackList(address _user)``,
  the address NOT indexed: it is the single data word.
- FiatToken: ``Blacklisted(address indexed _account)`` / ``UnBlacklisted(address indexed _account)``,
  the address in topics[1] and no data.
Bridged and pegged tokens (BSC's Binance-Peg tokens, for example) have neither and are not scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chains.mixers import LogFetcher, log_position, word_address
from screener_base.addresses import Family, canonical
from screener_base.errors import DecodeError

ADDED_BLACKLIST_TOPIC0 = "0x42e160154868087d6bfdc0ca23d96a1c1cfa32f1b72ba9ba27b69b98a0d819dc"
REMOVED_BLACKLIST_TOPIC0 = "0xd7e9ec6e6ecd65492dce6bf513cd6867560d49544421d0783ddf06e76c24470c"
BLACKLISTED_TOPIC0 = "0xffa4e6181777692565cf28528fc88fd1516ea86b56da075235fa575af6a4b855"
UNBLACKLISTED_TOPIC0 = "0x117e3210bb9aa7d9baff172026820255c6f6c30ba8999d1c2fd88e2848137c4e"

# selector of the view that says whether an address is blacklisted now
TETHER_IS_BLACKLISTED = "0xe47d6060"  # isBlackListed(address)
FIATTOKEN_IS_BLACKLISTED = "0xfe575a87"  # isBlacklisted(address)


class Interface(StrEnum):
    TETHER = "tether"
    FIATTOKEN = "fiattoken"


class Action(StrEnum):
    ADDED = "added"
    REMOVED = "removed"


# topic0 -> (interface, action, address in topics[1] (True) or in the data word (False))
_EVENTS: dict[str, tuple[Interface, Action, bool]] = {
    ADDED_BLACKLIST_TOPIC0: (Interface.TETHER, Action.ADDED, False),
    REMOVED_BLACKLIST_TOPIC0: (Interface.TETHER, Action.REMOVED, False),
    BLACKLISTED_TOPIC0: (Interface.FIATTOKEN, Action.ADDED, True),
    UNBLACKLISTED_TOPIC0: (Interface.FIATTOKEN, Action.REMOVED, True),
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


def topics_for(interface: Interface) -> list[str]:
    return [t for t, (iface, _, _) in _EVENTS.items() if iface is interface]


def decode_blacklist_log(log: dict[str, Any], family: Family = Family.EVM) -> BlacklistEvent:
    topics = [str(t).lower() for t in log.get("topics") or []]
    if not topics or topics[0] not in _EVENTS:
        raise DecodeError(f"not an issuer blacklist log: topics {topics}", "only (Un)Blacklist events are decoded")
    interface, action, indexed = _EVENTS[topics[0]]
    data = str(log.get("data") or "0x")
    data = data[2:] if data.startswith("0x") else data
    if indexed:
        if len(topics) != 2 or data:
            raise DecodeError(
                f"FiatToken blacklist log has {len(topics)} topics, {len(data) // 2} data bytes", "expected 2 and 0"
            )
        word = topics[1]
    else:
        if len(topics) != 1 or len(data) != 64:
            raise DecodeError(
                f"Tether blacklist log has {len(topics)} topics, {len(data) // 2} data bytes", "expected 1 and 32"
            )
        word = data
    tx_hash, log_index, block_number, block_hash = log_position(log)
    return BlacklistEvent(
        token_contract=canonical(family, str(log["address"])),
        interface=interface,
        action=action,
        address=word_address(word, family),
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash,
    )


def blacklist_filter(
    contracts_hex20: Sequence[str], interfaces: set[Interface], from_block: int, to_block: int
) -> dict[str, Any]:
    topic0s = [t for iface in sorted(interfaces) for t in topics_for(iface)]
    return {
        "fromBlock": hex(from_block),
        "toBlock": hex(to_block),
        "address": list(contracts_hex20),
        "topics": [topic0s],
    }


def scan_blacklist_events(
    fetch_logs: LogFetcher,
    contracts: dict[str, Interface],
    from_block: int,
    to_block: int,
    family: Family = Family.EVM,
) -> list[BlacklistEvent]:
    """Blacklist events of ``contracts`` (0x hex20 address -> interface) in one eth_getLogs call.

    A log whose topic belongs to the other issuer's interface is dropped: a token only speaks its own.
    """
    if not contracts or to_block < from_block:
        return []
    logs = fetch_logs(blacklist_filter(sorted(contracts), set(contracts.values()), from_block, to_block))
    by_contract = {addr.lower(): iface for addr, iface in contracts.items()}
    out = []
    for log in logs:
        event = decode_blacklist_log(log, family)
        if by_contract.get(str(log["address"]).lower()) is event.interface:
            out.append(event)
    return sorted(out, key=lambda e: (e.block_number, e.log_index))


def is_blacklisted_call(interface: Interface, address_hex20: str) -> str:
    """eth_call data asking the token whether ``address`` is blacklisted now."""
    selector = TETHER_IS_BLACKLISTED if interface is Interface.TETHER else FIATTOKEN_IS_BLACKLISTED
    return selector + "0" * 24 + address_hex20.lower()[2:]


def decode_bool(result: str) -> bool:
    text = result[2:] if result.startswith("0x") else result
    if len(text) != 64 or text[:63].strip("0") or text[63] not in "01":
        raise DecodeError(f"{result!r} is not an ABI bool", "the contract does not have this interface")
    return text[63] == "1"
