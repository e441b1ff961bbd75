"""The devnet contracts: committed artifacts match the sources, and on anvil the look-alikes emit the real
USDT/USDC event layouts (topics from ../shared/data/stablecoins.json), with a Forwarder separating the
token's `from` from the transaction's initiator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil

CONTRACTS = Path(dv.__file__).parent / "contracts"
USER = "0x" + "5e" * 20


def test_artifacts_are_built_from_the_committed_sources() -> None:
    art = json.loads((CONTRACTS / "TestTokens.artifacts.json").read_text())
    source = (CONTRACTS / art["source"]).read_text()
    assert art["source_sha256"] == hashlib.sha256(source.encode()).hexdigest(), (
        "run scripts/compile_contracts.py after editing the Solidity sources"
    )
    assert {"TetherLike", "FiatTokenLike", "Forwarder"} <= set(art["contracts"])


def test_event_layouts_match_the_real_tokens(anvil_module: Anvil, shared_data: Path) -> None:
    ref = json.loads((shared_data / "stablecoins.json").read_text())["issuer_blacklist_interfaces"]
    tether = {
        e["signature"]: e["topic0"] for e in next(v for k, v in ref.items() if k.startswith("TetherToken"))["events"]
    }
    fiat = {e["signature"]: e["topic0"] for e in next(v for k, v in ref.items() if k.startswith("FiatToken"))["events"]}
    node = anvil_module
    tokens = dv.deploy_stable_tokens(node, decimals=6)
    added = dv.add_black_list(node, tokens.usdt, USER).logs[0]
    assert added["topics"] == [tether["AddedBlackList(address)"]]  # address not indexed...
    assert added["data"] == "0x" + "00" * 12 + USER[2:]  # ...but in the data word
    listed = dv.blacklist(node, tokens.usdc, USER).logs[0]
    assert listed["topics"] == [fiat["Blacklisted(address)"], "0x" + "00" * 12 + USER[2:]] and listed["data"] == "0x"
    assert dv.balance_of(node, tokens.usdt, USER) == 0


def test_forwarder_makes_initiator_differ_from_from(anvil_module: Anvil) -> None:
    node = anvil_module
    tokens = dv.deploy_stable_tokens(node, decimals=18)
    caller = dv.accounts(node)[7]
    dv.mint(node, tokens.usdc, tokens.forwarder, 10**30)
    result = dv.forward(node, tokens.forwarder, caller, tokens.usdc, USER, 10**25)
    (log,) = result.logs
    assert log["topics"][1] == "0x" + "00" * 12 + tokens.forwarder[2:]
    assert node.rpc("eth_getTransactionByHash", [result.tx_hash])["from"] == caller
    assert dv.balance_of(node, tokens.usdc, USER) == 10**25
