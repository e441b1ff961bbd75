"""Strict decoding of ERC-20/TRC-20 Transfer logs from raw eth_getLogs JSON.

A log counts only if it is exactly ``Transfer(address indexed, address indexed, uint256)``: topic0 matches,
exactly three topics, the address words have zero upper bytes, exactly one 32-byte data word, and it was
emitted by one of the watched token contracts. Everything else is skipped with a counted reason: a node that
returns foreign logs, or a token that emits look-alike events (ERC-721 uses the same topic0 with four
topics), must never turn into a credited deposit. Pure; addresses stay as 20-byte hex (``0x`` + 40
lowercase), the chain family's display form is applied by the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TRANSFER_TOPIC0 = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_ZERO_PAD = "0x" + "0" * 24
_HEX = frozenset("0123456789abcdef")


class Reject(StrEnum):
    NOT_TRANSFER = "not_transfer"  # another event (topic0)
    TOPIC_COUNT = "topic_count"  # e.g. ERC-721 Transfer (tokenId indexed) or anonymous look-alikes
    DATA_LENGTH = "data_length"
    FOREIGN_CONTRACT = "foreign_contract"  # not emitted by a watched token contract
    BAD_ADDRESS_WORD = "bad_address_word"  # upper 12 bytes of an address topic not zero
    REMOVED = "removed"  # the node flags the log as removed by a reorg
    MALFORMED = "malformed"  # missing fields, bad hex, pending log without block


@dataclass(frozen=True, slots=True)
class Transfer:
    token: str  # 0x + 40 lowercase hex: the emitting contract
    from_hex: str
    to_hex: str
    amount: int  # raw base units, exact
    tx_hash: str  # 0x + 64 lowercase hex
    log_index: int
    block_number: int
    block_hash: str


@dataclass
class DecodeOutcome:
    transfers: list[Transfer] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    other_recipients: int = 0  # well-formed transfers to addresses we do not watch

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and text[:2] == "0x" and _HEX.issuperset(text[2:])


def _address_word(topic: Any) -> str | None:
    if not isinstance(topic, str):
        return None
    word = topic.lower()
    if not _is_hex(word, 66) or not word.startswith(_ZERO_PAD):
        return None
    return "0x" + word[26:]


def _shape_reject(log: Mapping[str, Any], tokens: Collection[str]) -> Reject | None:
    """The reason a log is not a well-formed Transfer of a watched token, or None."""
    if not isinstance(log, Mapping):
        return Reject.MALFORMED
    topics = log.get("topics")
    if not isinstance(topics, list) or not topics:
        return Reject.MALFORMED
    if not isinstance(topics[0], str) or topics[0].lower() != TRANSFER_TOPIC0:
        return Reject.NOT_TRANSFER
    if len(topics) != 3:
        return Reject.TOPIC_COUNT
    data = log.get("data")
    if not isinstance(data, str) or len(data) != 66:
        return Reject.DATA_LENGTH
    address = log.get("address")
    if not isinstance(address, str) or address.lower() not in tokens:
        return Reject.FOREIGN_CONTRACT
    if log.get("removed") is True:
        return Reject.REMOVED
    return None


def _quantity(value: Any) -> int | None:
    """A JSON-RPC quantity (``0x`` + hex digits) as an int; None for anything else (signs, spaces, ``_``)."""
    if not isinstance(value, str) or len(value) < 3 or value[:2] != "0x" or not _HEX.issuperset(value[2:].lower()):
        return None
    return int(value, 16)


def _position(log: Mapping[str, Any]) -> tuple[str, int, int, str] | None:
    tx_hash, block_hash = log.get("transactionHash"), log.get("blockHash")
    log_index, block_number = _quantity(log.get("logIndex")), _quantity(log.get("blockNumber"))
    if log_index is None or block_number is None:
        return None
    if not isinstance(tx_hash, str) or not isinstance(block_hash, str):
        return None
    tx_hash, block_hash = tx_hash.lower(), block_hash.lower()
    if not _is_hex(tx_hash, 66) or not _is_hex(block_hash, 66):
        return None
    return tx_hash, log_index, block_number, block_hash


def decode_transfer(log: Mapping[str, Any], tokens: Collection[str]) -> Transfer | Reject:
    """One log -> Transfer, or the reason it is not one. ``tokens``: watched contracts, 0x + 40 lowercase."""
    reason = _shape_reject(log, tokens)
    if reason is not None:
        return reason
    topics = log["topics"]
    from_hex, to_hex = _address_word(topics[1]), _address_word(topics[2])
    if from_hex is None or to_hex is None:
        return Reject.BAD_ADDRESS_WORD
    data = log["data"].lower()
    position = _position(log)
    if position is None or not _is_hex(data, 66):
        return Reject.MALFORMED
    tx_hash, log_index, block_number, block_hash = position
    return Transfer(
        token=log["address"].lower(),
        from_hex=from_hex,
        to_hex=to_hex,
        amount=int(data, 16),
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash,
    )


def _slow(log: Any, tokens: Collection[str], recipients: Collection[str] | None, out: DecodeOutcome) -> None:
    """The fully checked path for one log (any case, any irregularity)."""
    reason = _shape_reject(log, tokens)
    if reason is not None:
        out.rejected[reason] += 1
        return
    to_topic = log["topics"][2]
    if recipients is not None and (not isinstance(to_topic, str) or "0x" + to_topic[26:].lower() not in recipients):
        if _address_word(to_topic) is None:
            out.rejected[Reject.BAD_ADDRESS_WORD] += 1
        else:
            out.other_recipients += 1
        return
    decoded = decode_transfer(log, tokens)
    if isinstance(decoded, Transfer):
        out.transfers.append(decoded)
    else:
        out.rejected[decoded] += 1


def decode_transfers(logs: Iterable[Any], tokens: Collection[str], recipients: Collection[str] | None) -> DecodeOutcome:
    """Decode ``logs`` keeping transfers whose ``to`` is in ``recipients`` (None keeps all).

    In catch-up almost every log goes to someone else, so the common case is tested first without a function
    call or a new string: a well-formed lowercase log whose `to` word is not one of ours is counted and
    skipped. Anything else (ours, other case, other shape) takes the fully checked path.
    """
    out = DecodeOutcome()
    tokens = {t.lower() for t in tokens}
    wanted = None if recipients is None else {_ZERO_PAD + r[2:].lower() for r in recipients}
    others = 0
    for log in logs:
        if wanted is not None:
            try:
                topics = log["topics"]
                to_topic = topics[2]
                if (
                    to_topic not in wanted
                    and topics[0] == TRANSFER_TOPIC0
                    and len(topics) == 3
                    and log["address"] in tokens
                    and len(log["data"]) == 66
                    and log.get("removed") is not True
                    and to_topic.islower()
                    and len(to_topic) == 66
                    and to_topic.startswith(_ZERO_PAD)
                ):
                    others += 1
                    continue
            except (KeyError, IndexError, TypeError, AttributeError):
                pass  # not even the right shape: the checked path says why
        _slow(log, tokens, recipients, out)
    out.other_recipients += others
    return out
