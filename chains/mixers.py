"""Mixer registry (Tornado Cash pools, proxies, relayer registry, other privacy protocols) and log decoding.

The registry is chains/data/mixers.json, a copy of the shared reference data: addresses as published by the
projects, with the dates each was on the SDN list. Whether a contract is still sanctioned does not matter
here: the mixer heuristics apply to Tornado Cash after its March 2025 delisting too.

Tornado's ``Withdrawal(address to, bytes32 nullifierHash, address indexed relayer, uint256 fee)`` keeps the
recipient in the data (word 0), not in a topic, so recipients cannot be filtered server-side: a scan fetches
every Withdrawal of the chain's pools and the index is searched locally.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from screener_base.addresses import Family, canonical
from screener_base.errors import DecodeError

REGISTRY_PATH = Path(__file__).parent / "data" / "mixers.json"
WITHDRAWAL_TOPIC0 = "0xe9e508bad6d4c3227e881ca19068f099da81b5164dd6d62b2eaf1e8bc6c34931"
TRANSFER_TOPIC0 = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ZERO_ADDRESS = "0x" + "0" * 40

# eth_getLogs with one filter object; returns raw logs (hex strings, as the node sent them).
LogFetcher = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class MixerContract:
    chain: str
    address: str  # canonical
    kind: str  # pool | proxy | relayer_registry | privacy_protocol
    label: str


@dataclass(frozen=True)
class MixerWithdrawal:
    pool: str
    recipient: str
    relayer: str | None  # None when the user withdrew without a relayer (zero address)
    fee: int
    nullifier_hash: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


@dataclass(frozen=True)
class FundingTransfer:
    token: str
    sender: str
    recipient: str
    amount: int
    tx_hash: str
    log_index: int
    block_number: int


@dataclass(frozen=True)
class FundingScan:
    transfers: tuple[FundingTransfer, ...]
    complete: bool  # False: the call budget ran out before the whole window was covered
    calls_used: int


@cache
def _registry() -> dict[str, Any]:
    with REGISTRY_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _entries(chain: str) -> Iterable[MixerContract]:
    tornado = _registry()["tornado_cash"]
    for pool in tornado["pools"]:
        if pool["chain"] == chain:
            label = f"Tornado Cash {pool['denomination']} {pool['asset']} pool"
            yield MixerContract(chain, pool["address"].lower(), "pool", label)
    for proxy in tornado["proxies"]:
        if proxy["chain"] == chain:
            yield MixerContract(chain, proxy["address"].lower(), "proxy", f"Tornado Cash {proxy['role']}")
    registry = tornado["relayer_registry"]
    if registry["chain"] == chain:
        yield MixerContract(chain, registry["address"].lower(), "relayer_registry", "Tornado Cash relayer registry")
    for other in _registry()["other_mixers"]:
        for contract in other.get("contracts", ()):
            if contract["chain"] == chain:
                yield MixerContract(chain, contract["address"].lower(), "privacy_protocol", other["name"])


def mixer_contracts(chain: str, extra_pools: Sequence[str] = ()) -> list[MixerContract]:
    """Known mixer contracts on ``chain`` (registry name) plus configured extra pools (e.g. on a devnet).

    Only EVM chains have any; Tornado Cash never had a Tron deployment.
    """
    out: dict[str, MixerContract] = {}
    for c in _entries(chain):
        out.setdefault(c.address, c)
    for address in extra_pools:
        addr = canonical(Family.EVM, address)
        out.setdefault(addr, MixerContract(chain, addr, "pool", f"configured mixer pool on {chain}"))
    return list(out.values())


def pool_addresses(contracts: Iterable[MixerContract]) -> list[str]:
    return sorted({c.address for c in contracts if c.kind == "pool"})


def _int(value: Any, what: str) -> int:
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"log field {what}={value!r} is not a number", "check the node's eth_getLogs output") from exc


def word_address(word: str, family: Family = Family.EVM) -> str:
    """A 32-byte ABI word holding an address -> the family's canonical form; dirty high bytes are refused."""
    text = word[2:] if word.startswith("0x") else word
    if len(text) != 64 or text[:24].strip("0") != "":
        raise DecodeError(f"word {word!r} is not an ABI-encoded address", "the log does not have the expected layout")
    return canonical(family, "0x" + text[24:].lower())


def _data_words(data: str, count: int, what: str) -> list[str]:
    text = data[2:] if data.startswith("0x") else data
    if len(text) != 64 * count:
        raise DecodeError(f"{what} log data has {len(text) // 2} bytes, expected {32 * count}", "wrong event layout")
    return [text[i * 64 : (i + 1) * 64] for i in range(count)]


def log_position(log: dict[str, Any]) -> tuple[str, int, int, str]:
    """(tx hash, log index, block number, block hash) of a raw log; pending logs are refused."""
    if log.get("blockNumber") is None or log.get("transactionHash") is None:
        raise DecodeError("log has no block number or transaction hash (pending?)", "scan confirmed blocks only")
    return (
        str(log["transactionHash"]).lower(),
        _int(log["logIndex"], "logIndex"),
        _int(log["blockNumber"], "blockNumber"),
        str(log.get("blockHash") or "").lower(),
    )


def decode_withdrawal(log: dict[str, Any], family: Family = Family.EVM) -> MixerWithdrawal:
    """Strict decode: topic0 Withdrawal, exactly [topic0, relayer] topics, three data words."""
    topics = [str(t).lower() for t in log.get("topics") or []]
    if len(topics) != 2 or topics[0] != WITHDRAWAL_TOPIC0:
        raise DecodeError(f"not a Tornado Withdrawal log: topics {topics}", "only Withdrawal logs are decoded here")
    to_word, nullifier, fee = _data_words(str(log.get("data") or ""), 3, "Withdrawal")
    relayer = word_address(topics[1], family)
    tx_hash, log_index, block_number, block_hash = log_position(log)
    return MixerWithdrawal(
        pool=canonical(family, str(log["address"])),
        recipient=word_address(to_word, family),
        relayer=None if relayer == canonical(family, ZERO_ADDRESS) else relayer,
        fee=int(fee, 16),
        nullifier_hash="0x" + nullifier,
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash,
    )


def withdrawal_filter(pools: Sequence[str], from_block: int, to_block: int) -> dict[str, Any]:
    return {
        "fromBlock": hex(from_block),
        "toBlock": hex(to_block),
        "address": list(pools),
        "topics": [WITHDRAWAL_TOPIC0],
    }


def scan_withdrawals(
    fetch_logs: LogFetcher, pools: Sequence[str], from_block: int, to_block: int, family: Family = Family.EVM
) -> list[MixerWithdrawal]:
    """Withdrawals of ``pools`` in [from_block, to_block] (one eth_getLogs call; the caller sizes the range)."""
    if not pools or to_block < from_block:
        return []
    logs = fetch_logs(withdrawal_filter(pools, from_block, to_block))
    return sorted((decode_withdrawal(log, family) for log in logs), key=lambda w: (w.block_number, w.log_index))


def _decode_transfer(log: dict[str, Any], family: Family) -> FundingTransfer:
    topics = [str(t).lower() for t in log.get("topics") or []]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC0:
        raise DecodeError(f"not an ERC-20 Transfer log: topics {topics}", "only Transfer logs are decoded here")
    (amount,) = _data_words(str(log.get("data") or ""), 1, "Transfer")
    tx_hash, log_index, block_number, _ = log_position(log)
    return FundingTransfer(
        token=canonical(family, str(log["address"])),
        sender=word_address(topics[1], family),
        recipient=word_address(topics[2], family),
        amount=int(amount, 16),
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
    )


def address_topic(address_hex20: str) -> str:
    """A 20-byte hex address (0x + 40 hex) as an indexed-topic word."""
    return "0x" + "0" * 24 + address_hex20.lower()[2:]


def scan_funding(
    fetch_logs: LogFetcher,
    tokens: Sequence[str],
    recipient_hex20: str,
    from_block: int,
    to_block: int,
    *,
    max_range_blocks: int,
    budget_calls: int,
    family: Family = Family.EVM,
) -> FundingScan:
    """Token transfers into ``recipient`` over [from_block, to_block], newest range first.

    At most ``budget_calls`` eth_getLogs calls; when they run out before ``from_block`` is reached the scan
    is incomplete and the caller must treat the two-hop check as not done (fail closed). Mints (from the
    zero address) are not funding by a wallet and are left out.
    """
    if not tokens:
        return FundingScan((), complete=True, calls_used=0)  # an empty address filter would match every contract
    found: list[FundingTransfer] = []
    calls = 0
    hi = to_block
    zero = canonical(family, ZERO_ADDRESS)
    while hi >= from_block:
        if calls >= budget_calls:
            return FundingScan(tuple(found), complete=False, calls_used=calls)
        lo = max(from_block, hi - max_range_blocks + 1)
        params = {
            "fromBlock": hex(lo),
            "toBlock": hex(hi),
            "address": list(tokens),
            "topics": [TRANSFER_TOPIC0, None, address_topic(recipient_hex20)],
        }
        calls += 1
        found += [t for t in (_decode_transfer(log, family) for log in fetch_logs(params)) if t.sender != zero]
        hi = lo - 1
    return FundingScan(tuple(found), complete=True, calls_used=calls)
