"""Mixer registry, Tornado Withdrawal decoding, the devnet pool contract and the mixer index on anvil."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_utils import keccak
from sqlalchemy.engine import Engine
from sqlmodel import select

from chains.mixers import (
    WITHDRAWAL_TOPIC0,
    decode_withdrawal,
    mixer_contracts,
    pool_addresses,
    scan_funding,
    scan_withdrawals,
)
from screener.db import session_scope
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import mixer
from screener.indexes.rules import IndexKind
from screener.indexes.store import coverage_gap, scan_mixer_index, withdrawals_to
from screener.models.screening import IndexCursor, MixerWithdrawalRow
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.errors import DecodeError
from tests.support.anvil import Anvil
from tests.support.screening_env import CountingFetcher, anvil_source

RECIPIENT = "0x00000000000000000000000000000000000000aa"
RELAYER = "0x00000000000000000000000000000000000000bb"


def test_withdrawal_topic_is_tornados(shared_data: Path) -> None:
    abi = json.loads((shared_data / "mixers.json").read_text())["tornado_cash"]["abi"]["events"]
    (withdrawal,) = [e for e in abi if e["name"] == "Withdrawal"]
    assert WITHDRAWAL_TOPIC0 == withdrawal["topic0"] == "0x" + keccak(text=withdrawal["signature"]).hex()


def test_registry_covers_delisted_tornado_pools(shared_data: Path) -> None:
    """The March 2025 delisting removed Tornado from the SDN list, not from the mixer heuristics."""
    data = json.loads((shared_data / "mixers.json").read_text())["tornado_cash"]
    removed = set(data["ofac_history"]["removed_eth_addresses_2025_03"])
    eth_pools = set(pool_addresses(mixer_contracts("ethereum")))
    delisted_pools = {p["address"].lower() for p in data["pools"] if p["chain"] == "ethereum"} & removed
    assert delisted_pools and delisted_pools <= eth_pools
    kinds = {c.kind for c in mixer_contracts("ethereum")}
    assert {"pool", "proxy", "relayer_registry", "privacy_protocol"} <= kinds


@pytest.mark.parametrize(("chain", "pools"), [("polygon", 4), ("bsc", 4), ("avalanche", 3), ("tron", 0), ("base", 0)])
def test_registry_per_chain(chain: str, pools: int) -> None:
    assert len(pool_addresses(mixer_contracts(chain))) == pools


def test_configured_pool_is_added_canonically() -> None:
    extra = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    contracts = mixer_contracts("devnet", [extra])
    assert [(c.address, c.kind) for c in contracts] == [(extra.lower(), "pool")]


def _log(topics: list[str], data: str) -> dict[str, str]:
    return {
        "address": "0x12D66f87A04A9E220743712cE6d9bB1B5616B8Fc",
        "topics": topics,
        "data": data,
        "blockNumber": "0x10",
        "transactionHash": "0x" + "ab" * 32,
        "logIndex": "0x2",
        "blockHash": "0x" + "cd" * 32,
    }


def _word(address: str) -> str:
    return "0" * 24 + address[2:]


def test_decode_withdrawal_reads_recipient_from_data() -> None:
    data = "0x" + _word(RECIPIENT) + "11" * 32 + f"{5:064x}"
    w = decode_withdrawal(_log([WITHDRAWAL_TOPIC0, "0x" + _word(RELAYER)], data))
    assert (w.recipient, w.relayer, w.fee, w.block_number, w.log_index) == (RECIPIENT, RELAYER, 5, 16, 2)
    assert w.pool == "0x12d66f87a04a9e220743712ce6d9bb1b5616b8fc"


@pytest.mark.parametrize(
    ("topics", "data"),
    [
        # recipient indexed (a wrong guess at the layout) -> three topics: refused
        ([WITHDRAWAL_TOPIC0, "0x" + _word(RECIPIENT), "0x" + _word(RELAYER)], "0x" + "11" * 32 + f"{5:064x}"),
        ([WITHDRAWAL_TOPIC0, "0x" + _word(RELAYER)], "0x" + _word(RECIPIENT) + "11" * 32),  # two words
        ([WITHDRAWAL_TOPIC0, "0x" + _word(RELAYER)], "0x" + "ff" * 32 + "11" * 32 + "00" * 32),  # dirty address
        (["0x" + "00" * 32, "0x" + _word(RELAYER)], "0x" + _word(RECIPIENT) + "11" * 32 + "00" * 32),
    ],
)
def test_decode_withdrawal_is_strict(topics: list[str], data: str) -> None:
    with pytest.raises(DecodeError):
        decode_withdrawal(_log(topics, data))


def test_tron_withdrawal_addresses_are_t_form() -> None:
    data = "0x" + _word(RECIPIENT) + "11" * 32 + "00" * 32
    w = decode_withdrawal(_log([WITHDRAWAL_TOPIC0, "0x" + "00" * 32], data), Family.TRON)
    assert w.recipient.startswith("T") and w.relayer is None


def test_artifact_matches_source() -> None:
    import hashlib

    artifact = mixer.load_artifact()
    assert artifact["sourceSha256"] == hashlib.sha256(mixer.SOURCE_PATH.read_bytes()).hexdigest()
    events = {e["name"]: e for e in artifact["abi"] if e["type"] == "event"}
    inputs = [(i["name"], i["type"], i["indexed"]) for i in events["Withdrawal"]["inputs"]]
    assert inputs == [
        ("to", "address", False),
        ("nullifierHash", "bytes32", False),
        ("relayer", "address", True),
        ("fee", "uint256", False),
    ]


def test_artifact_recompiles_identically() -> None:
    assert mixer.compile_artifact()["bytecode"] == mixer.load_artifact()["bytecode"]


def test_pool_pays_recipient_and_emits_tornado_withdrawal(anvil: Anvil) -> None:
    owner = anvil.rpc("eth_accounts")[0]
    pool = mixer.deploy_pool(anvil.rpc, owner)
    fee = 10**16
    mixer.deposit(anvil.rpc, pool, owner, keccak(text="c1"))
    tx = mixer.withdraw(anvil.rpc, pool, owner, RECIPIENT, keccak(text="n1"), RELAYER, fee)
    (w,) = scan_withdrawals(CountingFetcher(anvil), [pool.address], 0, anvil.block_number())
    assert (w.recipient, w.relayer, w.fee, w.tx_hash, w.pool) == (RECIPIENT, RELAYER, fee, tx, pool.address)
    assert int(anvil.rpc("eth_getBalance", [RECIPIENT, "latest"]), 16) == pool.denomination_wei - fee
    assert int(anvil.rpc("eth_getBalance", [RELAYER, "latest"]), 16) == fee
    with pytest.raises(Exception, match="reverted"):  # a spent nullifier cannot be withdrawn twice
        mixer.withdraw(anvil.rpc, pool, owner, RECIPIENT, keccak(text="n1"))


def test_mixer_index_on_anvil(engine: Engine, anvil_module: Anvil) -> None:
    node = anvil_module
    owner = node.rpc("eth_accounts")[0]
    pool = mixer.deploy_pool(node.rpc, owner)
    first = mixer.deposit_and_withdraw(node.rpc, pool, owner, RECIPIENT, "a")
    node.mine(3)
    settings = Settings()
    source = anvil_source(node, "devnet", pools=[pool.address], max_block_range=2)
    now = datetime.now(UTC)
    assert scan_mixer_index(engine, source, settings, now, on_new_facts=make_index_hook(settings)) == 1
    head = node.block_number()
    with session_scope(engine) as s:
        (row,) = s.exec(select(MixerWithdrawalRow)).all()
        assert (row.recipient, row.tx_hash, row.pool, row.fee) == (RECIPIENT, first, pool.address, 0)
        assert coverage_gap(s, "devnet", IndexKind.MIXER, head) is None
        assert "scanned to block" in (coverage_gap(s, "devnet", IndexKind.MIXER, head + 1) or "")
        assert [w.tx_hash for w in withdrawals_to(s, [RECIPIENT])] == [first]
    # A second scan finds only the new withdrawal; rescans never duplicate.
    mixer.deposit_and_withdraw(node.rpc, pool, owner, RECIPIENT, "b")
    assert scan_mixer_index(engine, source, settings, now, on_new_facts=make_index_hook(settings)) == 1
    assert scan_mixer_index(engine, source, settings, now, on_new_facts=make_index_hook(settings)) == 0
    with session_scope(engine) as s:
        assert len(s.exec(select(MixerWithdrawalRow)).all()) == 2
        cursor = s.get(IndexCursor, ("devnet", IndexKind.MIXER))
        assert cursor is not None and cursor.next_block == node.block_number() + 1


def test_mixer_index_scan_is_bounded_and_restarts_on_new_pools(engine: Engine, anvil_module: Anvil) -> None:
    node = anvil_module
    node.mine(20)
    settings = Settings(screening={"index_max_ranges_per_scan": 2})
    source = anvil_source(node, "bounded", pools=["0x" + "01" * 20], max_block_range=3)
    now = datetime.now(UTC)
    scan_mixer_index(engine, source, settings, now, on_new_facts=make_index_hook(settings))
    with session_scope(engine) as s:
        cursor = s.get(IndexCursor, ("bounded", IndexKind.MIXER))
        assert cursor is not None and cursor.next_block == 6  # two ranges of three blocks from 0
    assert source.fetch_logs.calls == 2  # type: ignore[attr-defined]
    other = anvil_source(node, "bounded", pools=["0x" + "02" * 20], max_block_range=1000)
    scan_mixer_index(engine, other, settings, now, on_new_facts=make_index_hook(settings))
    with session_scope(engine) as s:
        cursor = s.get(IndexCursor, ("bounded", IndexKind.MIXER))
        assert cursor is not None and cursor.first_block == 0 and cursor.next_block == node.block_number() + 1


def test_chain_without_pools_is_covered_without_rpc(engine: Engine, anvil_module: Anvil) -> None:
    fetcher = CountingFetcher(anvil_module, fail=True)
    source = anvil_source(anvil_module, "tronish", fetcher=fetcher)
    scan_mixer_index(engine, source, Settings(), datetime.now(UTC), on_new_facts=make_index_hook(Settings()))
    with session_scope(engine) as s:
        assert coverage_gap(s, "tronish", IndexKind.MIXER, anvil_module.block_number()) is None
    assert fetcher.calls == 0


def test_funding_scan_budget(anvil_module: Anvil) -> None:
    node = anvil_module
    node.mine(30)
    fetcher = CountingFetcher(node)
    head = node.block_number()
    scan = scan_funding(fetcher, ["0x" + "03" * 20], RECIPIENT, 0, head, max_range_blocks=5, budget_calls=2)
    assert not scan.complete and scan.calls_used == 2 == fetcher.calls
    full = scan_funding(fetcher, ["0x" + "03" * 20], RECIPIENT, head - 9, head, max_range_blocks=5, budget_calls=2)
    assert full.complete and full.transfers == ()
