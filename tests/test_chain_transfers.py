"""Strict Transfer decoding: real logs from anvil decode; every malformed or look-alike variant is skipped
with its reason counted; amounts are exact for any uint256."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chains.transfers import TRANSFER_TOPIC0, Reject, Transfer, decode_transfer, decode_transfers
from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil

TO = "0x" + "77" * 20


@pytest.fixture(scope="module")
def real_log(anvil_module: Anvil) -> tuple[dict[str, Any], str]:
    node = anvil_module
    token = dv.deploy_tether_like(node, "USDT", 18)
    sender = dv.accounts(node)[1]
    dv.mint(node, token, sender, 2**255)
    result = dv.transfer(node, token, sender, TO, 2**64 + 3)
    return result.logs[0], token


def test_real_transfer_decodes(real_log: tuple[dict[str, Any], str]) -> None:
    log, token = real_log
    got = decode_transfer(log, {token})
    assert isinstance(got, Transfer)
    assert (got.token, got.to_hex, got.amount) == (token, TO, 2**64 + 3)
    assert got.tx_hash == log["transactionHash"] and got.block_number == int(log["blockNumber"], 16)


def _variant(log: dict[str, Any], change: str) -> dict[str, Any]:
    bad = copy.deepcopy(log)
    if change == "topic0":
        bad["topics"][0] = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"  # Approval
    elif change == "erc721":
        bad["topics"].append("0x" + "00" * 31 + "05")  # tokenId indexed: four topics
    elif change == "two_topics":
        bad["topics"] = bad["topics"][:2]
    elif change == "data_two_words":
        bad["data"] = bad["data"] + "00" * 32
    elif change == "data_empty":
        bad["data"] = "0x"
    elif change == "foreign":
        bad["address"] = "0x" + "99" * 20
    elif change == "dirty_address_word":
        bad["topics"][2] = "0x" + "ff" * 12 + TO[2:]
    elif change == "removed":
        bad["removed"] = True
    elif change == "pending":
        bad["blockNumber"] = None
    elif change == "bad_hex":
        bad["data"] = "0x" + "zz" * 32
    return bad


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("topic0", Reject.NOT_TRANSFER),
        ("erc721", Reject.TOPIC_COUNT),
        ("two_topics", Reject.TOPIC_COUNT),
        ("data_two_words", Reject.DATA_LENGTH),
        ("data_empty", Reject.DATA_LENGTH),
        ("foreign", Reject.FOREIGN_CONTRACT),
        ("dirty_address_word", Reject.BAD_ADDRESS_WORD),
        ("removed", Reject.REMOVED),
        ("pending", Reject.MALFORMED),
        ("bad_hex", Reject.MALFORMED),
    ],
)
def test_malformed_variants_are_rejected_with_a_reason(
    real_log: tuple[dict[str, Any], str], change: str, reason: Reject
) -> None:
    log, token = real_log
    bad = _variant(log, change)
    assert decode_transfer(bad, {token}) == reason
    outcome = decode_transfers([log, bad], {token}, {TO})
    assert len(outcome.transfers) == 1 and outcome.rejected == {reason: 1}


def test_recipient_filter_counts_the_others(real_log: tuple[dict[str, Any], str]) -> None:
    log, token = real_log
    outcome = decode_transfers([log], {token}, {"0x" + "55" * 20})
    assert outcome.transfers == [] and outcome.other_recipients == 1 and outcome.rejected_total == 0


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_any_uint256_amount_is_exact(amount: int) -> None:
    log = {
        "address": "0x" + "aa" * 20,
        "topics": [TRANSFER_TOPIC0, "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + TO[2:]],
        "data": "0x" + f"{amount:064x}",
        "blockNumber": "0x10",
        "blockHash": "0x" + "bb" * 32,
        "transactionHash": "0x" + "cc" * 32,
        "logIndex": "0x0",
    }
    got = decode_transfer(log, {"0x" + "aa" * 20})
    assert isinstance(got, Transfer) and got.amount == amount
