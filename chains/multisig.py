"""Tether's multisig (Gnosis MultiSigWallet) proposals to blacklist an address: an advance warning of a freeze.

Tether freezes USDT on Ethereum through the token's owner, a MultiSigWallet (0xC6CDE7C3..., sources in
chains/data/issuers.md). A signer first calls ``submitTransaction(destination, value, data)``, which stores the
call and logs ``Submission(uint256 indexed transactionId)``; the others confirm, and the freeze lands when the last
confirmation executes it, hours later. The Submission log does not carry the call: it is read back with
``transactions(transactionId)`` at the log's block (as public watchers do), and only a call to the USDT contract
itself whose selector is ``addBlackList(address)`` counts. Pure: the caller does the eth_call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chains.mixers import log_position
from screener_base.errors import DecodeError

SUBMISSION_TOPIC0 = "0xc0ba8fe4b176c1714197d43b9cc6bcf797a4a7461c5fe8d0ef6e184ae7601e51"
TRANSACTIONS_SELECTOR = "0x9ace38c2"  # transactions(uint256) -> (address, uint256, bytes, bool)
ADD_BLACKLIST_SELECTOR = "0x0ecb93c0"  # addBlackList(address)
MAX_CALLDATA_BYTES = 4096


@dataclass(frozen=True)
class Submission:
    multisig: str  # 0x hex20, lowercase
    transaction_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


@dataclass(frozen=True)
class ProposedCall:
    destination: str  # 0x hex20, lowercase
    value: int
    data: str  # 0x hex
    executed: bool


def decode_submission(log: dict[str, Any]) -> Submission:
    topics = [str(t).lower() for t in log.get("topics") or []]
    data = str(log.get("data") or "0x")
    if len(topics) != 2 or topics[0] != SUBMISSION_TOPIC0 or data not in ("0x", ""):
        raise DecodeError(f"not a MultiSigWallet Submission log: topics {topics}", "expected 2 topics and no data")
    tx_hash, log_index, block_number, block_hash = log_position(log)
    return Submission(str(log["address"]).lower(), int(topics[1], 16), tx_hash, log_index, block_number, block_hash)


def transactions_call(transaction_id: int) -> str:
    """eth_call data reading a stored proposal back."""
    return TRANSACTIONS_SELECTOR + f"{transaction_id:064x}"


def _word(body: str, index: int) -> str:
    word = body[64 * index : 64 * (index + 1)]
    if len(word) != 64:
        raise DecodeError("transactions() result is cut short", "the contract is not a MultiSigWallet")
    return word


def decode_transactions_result(result: str) -> ProposedCall:
    """The ABI tuple (address destination, uint value, bytes data, bool executed).

    DecodeError when the answer is not that tuple at all (the address is not a MultiSigWallet: the index stops
    and says so). A call too long to be ``addBlackList`` (36 bytes) is returned without its data: it is some
    other proposal, and must not stop the index.
    """
    body = (result[2:] if result.startswith("0x") else result).lower()
    try:
        destination, value = _word(body, 0), int(_word(body, 1), 16)
        offset, executed = int(_word(body, 2), 16), int(_word(body, 3), 16)
        if offset % 32 or executed not in (0, 1) or destination[:24].strip("0"):
            raise DecodeError("transactions() result is not the MultiSigWallet tuple", "check the multisig address")
        length = int(_word(body, offset // 32), 16)
    except ValueError as exc:
        raise DecodeError(f"transactions() result is not hex: {exc}", "check the multisig address") from None
    start = 2 * offset + 64
    data = body[start : start + 2 * length] if length <= MAX_CALLDATA_BYTES else ""
    if length <= MAX_CALLDATA_BYTES and len(data) != 2 * length:
        raise DecodeError("proposed calldata is cut short", "the contract is not a MultiSigWallet")
    return ProposedCall("0x" + destination[24:], value, "0x" + data, executed == 1)


def proposed_blacklisting(call: ProposedCall, token_hex20: str) -> str | None:
    """The 0x hex20 address an ``addBlackList`` call to ``token_hex20`` would freeze; None for any other call."""
    data = call.data.lower()
    if call.destination.lower() != token_hex20.lower() or not data.startswith(ADD_BLACKLIST_SELECTOR):
        return None
    word = data[len(ADD_BLACKLIST_SELECTOR) :]
    if len(word) != 64 or word[:24].strip("0"):
        return None
    return "0x" + word[24:]
