"""Issuer blacklist events: USDT's address-in-data layout vs USDC's indexed address, decoded strictly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_utils import keccak
from sqlalchemy.engine import Engine

from chains.blacklists import (
    ADDED_BLACKLIST_TOPIC0,
    BLACKLISTED_TOPIC0,
    DESTROYED_BLACK_FUNDS_TOPIC0,
    REMOVED_BLACKLIST_TOPIC0,
    UNBLACKLISTED_TOPIC0,
    Action,
    Interface,
    decode_blacklist_log,
    decode_bool,
    is_blacklisted_call,
    scan_blacklist_events,
)
from screener.db import session_scope
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import deploy
from screener.indexes.store import BlacklistToken, blacklist_facts, scan_blacklist_index
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.errors import DecodeError
from tests.support.anvil import Anvil
from tests.support.screening_env import anvil_source

USER = "0x00000000000000000000000000000000000000cc"
WORD = "0" * 24 + USER[2:]
TETHER = "0xdac17f958d2ee523a2206206994597c13d831ec7"
CIRCLE = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def _log(address: str, topics: list[str], data: str = "0x", block: int = 7, index: int = 0) -> dict[str, str]:
    return {
        "address": address,
        "topics": topics,
        "data": data,
        "blockNumber": hex(block),
        "transactionHash": "0x" + f"{block:02x}" * 32,
        "logIndex": hex(index),
        "blockHash": "0x" + "ee" * 32,
    }


def test_topics_match_the_reference_data(shared_data: Path) -> None:
    interfaces = json.loads((shared_data / "stablecoins.json").read_text())["issuer_blacklist_interfaces"]
    events = {e["signature"]: e["topic0"] for iface in interfaces.values() for e in iface.get("events", [])}
    ours = {
        "AddedBlackList(address)": ADDED_BLACKLIST_TOPIC0,
        "RemovedBlackList(address)": REMOVED_BLACKLIST_TOPIC0,
        "Blacklisted(address)": BLACKLISTED_TOPIC0,
        "UnBlacklisted(address)": UNBLACKLISTED_TOPIC0,
    }
    for signature, topic in ours.items():
        assert topic == events[signature] == "0x" + keccak(text=signature).hex()


@pytest.mark.parametrize(
    ("log", "interface", "action"),
    [
        (_log(TETHER, [ADDED_BLACKLIST_TOPIC0], "0x" + WORD), Interface.TETHER, Action.ADDED),
        (_log(TETHER, [REMOVED_BLACKLIST_TOPIC0], "0x" + WORD), Interface.TETHER, Action.REMOVED),
        (_log(CIRCLE, [BLACKLISTED_TOPIC0, "0x" + WORD]), Interface.FIATTOKEN, Action.ADDED),
        (_log(CIRCLE, [UNBLACKLISTED_TOPIC0, "0x" + WORD]), Interface.FIATTOKEN, Action.REMOVED),
    ],
)
def test_decode_both_layouts(log: dict[str, str], interface: Interface, action: Action) -> None:
    event = decode_blacklist_log(log)
    assert (event.address, event.interface, event.action, event.block_number) == (USER, interface, action, 7)


@pytest.mark.parametrize(
    "log",
    [
        # indexed (Tron's layout) AND a data word: neither layout
        _log(TETHER, [ADDED_BLACKLIST_TOPIC0, "0x" + WORD], "0x" + WORD),
        _log(CIRCLE, [BLACKLISTED_TOPIC0], "0x" + WORD),  # Circle's is
        _log(TETHER, [ADDED_BLACKLIST_TOPIC0], "0x" + "ff" * 32),  # not an address word
        _log(TETHER, ["0x" + "00" * 32], "0x" + WORD),
    ],
)
def test_wrong_layouts_are_refused(log: dict[str, str]) -> None:
    with pytest.raises(DecodeError):
        decode_blacklist_log(log)


def test_tron_addresses_come_back_in_t_form() -> None:
    event = decode_blacklist_log(
        _log("0xa614f803b6fd780986a42c78ec9c7f77e6ded13c", [ADDED_BLACKLIST_TOPIC0], "0x" + WORD), Family.TRON
    )
    assert event.address.startswith("T") and event.token_contract == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def test_scan_asks_once_and_keeps_each_tokens_own_events() -> None:
    seen: list[dict[str, object]] = []
    logs = [
        _log(TETHER, [ADDED_BLACKLIST_TOPIC0], "0x" + WORD, block=9),
        _log(CIRCLE, [BLACKLISTED_TOPIC0, "0x" + WORD], block=8),
        # a Tether-layout event from the USDC contract is not a Circle blacklisting: dropped
        _log(CIRCLE, [ADDED_BLACKLIST_TOPIC0], "0x" + WORD, block=10),
    ]

    def fetch(params: dict[str, object]) -> list[dict[str, str]]:
        seen.append(params)
        return logs

    events = scan_blacklist_events(fetch, [(TETHER, Interface.TETHER), (CIRCLE, Interface.FIATTOKEN)], 5, 20)
    assert [(e.token_contract, e.block_number) for e in events] == [(CIRCLE, 8), (TETHER, 9)]
    (params,) = seen
    assert params["fromBlock"] == "0x5" and params["toBlock"] == "0x14"
    assert sorted(params["topics"][0]) == sorted(  # type: ignore[index]
        [
            ADDED_BLACKLIST_TOPIC0,
            REMOVED_BLACKLIST_TOPIC0,
            DESTROYED_BLACK_FUNDS_TOPIC0,
            BLACKLISTED_TOPIC0,
            UNBLACKLISTED_TOPIC0,
        ]
    )


def test_point_read_encoding() -> None:
    assert is_blacklisted_call(Interface.TETHER, USER) == "0xe47d6060" + WORD
    assert is_blacklisted_call(Interface.FIATTOKEN, USER) == "0xfe575a87" + WORD
    assert decode_bool("0x" + "0" * 63 + "1") is True
    assert decode_bool("0x" + "0" * 64) is False
    with pytest.raises(DecodeError):
        decode_bool("0x" + "0" * 63 + "2")


def test_blacklist_index_on_anvil_both_issuers(engine: Engine, anvil_module: Anvil) -> None:
    """TetherLike (address in data) and FiatTokenLike (address indexed) as deployed contracts emit them."""
    node = anvil_module
    tokens = deploy.deploy_stable_tokens(node)
    added = deploy.add_black_list(node, tokens.usdt, USER)
    deploy.send(
        node, deploy.accounts(node)[0], tokens.usdt, deploy.calldata("removeBlackList(address)", ["address"], [USER])
    )
    deploy.blacklist(node, tokens.usdc, USER)
    source = anvil_source(
        node,
        "devnet",
        blacklist_tokens=[
            BlacklistToken("USDT", tokens.usdt, tokens.usdt, Interface.TETHER),
            BlacklistToken("USDC", tokens.usdc, tokens.usdc, Interface.FIATTOKEN),
        ],
    )
    hook = make_index_hook(Settings())
    assert scan_blacklist_index(engine, source, Settings(), datetime.now(UTC), on_new_facts=hook) == 3
    with session_scope(engine) as s:
        facts = blacklist_facts(s, [USER])
    assert [(f.token_symbol, f.action) for f in facts] == [("USDT", "added"), ("USDT", "removed"), ("USDC", "added")]
    assert facts[0].tx_hash == added.tx_hash and facts[0].token_contract == tokens.usdt
