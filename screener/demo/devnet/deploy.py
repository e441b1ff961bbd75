"""Deploy and drive the devnet test contracts (TetherLike, FiatTokenLike, Forwarder) on a local node.

Used by the tests and by `screener demo`. Talks plain JSON-RPC to a node with unlocked accounts (anvil);
the compiled artifacts are committed (screener/demo/devnet/contracts/TestTokens.artifacts.json, rebuilt by
scripts/compile_contracts.py), so no compiler is needed at run time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from screener_base.errors import ChainError

ARTIFACTS = Path(__file__).parent / "contracts" / "TestTokens.artifacts.json"
RECEIPT_TIMEOUT_S = 30.0
# Enough for any call below except mintSeries, which passes its own.
DEFAULT_GAS = 3_000_000


class RpcNode(Protocol):
    def rpc(self, method: str, params: list[Any] | None = None, timeout_s: float = 30.0) -> Any: ...


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    block_hash: str
    logs: list[dict[str, Any]]


@cache
def artifacts() -> dict[str, Any]:
    return dict(json.loads(ARTIFACTS.read_text())["contracts"])


def selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def calldata(signature: str, types: list[str], args: list[Any]) -> str:
    return selector(signature) + encode(types, args).hex()


def accounts(node: RpcNode) -> list[str]:
    return [str(a).lower() for a in node.rpc("eth_accounts")]


def wait_receipt(node: RpcNode, tx_hash: str, timeout_s: float = RECEIPT_TIMEOUT_S) -> dict[str, Any]:
    """The receipt once mined (anvil's automine answers eth_sendTransaction slightly before the receipt)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        receipt = node.rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise ChainError(f"transaction {tx_hash} not mined within {timeout_s}s", "is the node mining?")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def send(node: RpcNode, sender: str, to: str | None, data: str, gas: int = DEFAULT_GAS) -> TxResult:
    """Send from an unlocked account and wait; ChainError if it reverted."""
    tx: dict[str, Any] = {"from": sender, "data": data, "gas": hex(gas)}
    if to is not None:
        tx["to"] = to
    tx_hash = node.rpc("eth_sendTransaction", [tx])
    receipt = wait_receipt(node, tx_hash)
    if int(receipt["status"], 16) != 1:
        raise ChainError(f"transaction {tx_hash} reverted", "check the call's arguments and the sender")
    return TxResult(
        tx_hash=str(tx_hash).lower(),
        block_number=int(receipt["blockNumber"], 16),
        block_hash=str(receipt["blockHash"]).lower(),
        logs=list(receipt["logs"]),
    )


def deploy(node: RpcNode, contract: str, types: list[str], args: list[Any], sender: str | None = None) -> str:
    """Deploy ``contract`` from the artifacts; returns its address (0x + 40 lowercase hex)."""
    art = artifacts()[contract]
    data = art["bytecode"] + encode(types, args).hex()
    sender = sender or accounts(node)[0]
    receipt = wait_receipt(node, send(node, sender, None, data, gas=5_000_000).tx_hash)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError(f"deploying {contract} gave no contract address", "check the node")
    return str(address).lower()


def deploy_tether_like(node: RpcNode, symbol: str = "USDT", decimals: int = 6, sender: str | None = None) -> str:
    """A USDT-like token: ERC-20 + TetherToken's addBlackList/AddedBlackList(address _user)."""
    return deploy(
        node, "TetherLike", ["string", "string", "uint8"], [f"Tether-like {symbol}", symbol, decimals], sender
    )


def deploy_fiat_token_like(node: RpcNode, symbol: str = "USDC", decimals: int = 6, sender: str | None = None) -> str:
    """A USDC-like token: ERC-20 + FiatToken's blacklist/Blacklisted(address indexed _account)."""
    args = [f"FiatToken-like {symbol}", symbol, decimals]
    return deploy(node, "FiatTokenLike", ["string", "string", "uint8"], args, sender)


def deploy_usdt0_like(node: RpcNode, symbol: str = "USDT0", decimals: int = 6, sender: str | None = None) -> str:
    """A USD₮0-like token: ERC-20 + WithBlockedList's addToBlockedList/BlockPlaced(address indexed _user)."""
    args = [f"USDT0-like {symbol}", symbol, decimals]
    return deploy(node, "Usdt0Like", ["string", "string", "uint8"], args, sender)


def deploy_multisig(node: RpcNode, owners: list[str], required: int, sender: str | None = None) -> str:
    """A MultiSigWallet-like owner contract: submitTransaction stores and logs Submission(id)."""
    return deploy(node, "MultiSigLike", ["address[]", "uint256"], [owners, required], sender)


def deploy_forwarder(node: RpcNode, sender: str | None = None) -> str:
    """A contract that holds tokens and sends them when any EOA calls forward(token, to, value)."""
    return deploy(node, "Forwarder", [], [], sender)


def mint(node: RpcNode, token: str, to: str, amount: int, owner: str | None = None) -> TxResult:
    data = calldata("mint(address,uint256)", ["address", "uint256"], [to, amount])
    return send(node, owner or accounts(node)[0], token, data)


def mint_series(
    node: RpcNode, token: str, first: str, count: int, amount_each: int, owner: str | None = None, gas: int = 0
) -> TxResult:
    """Mint to ``count`` consecutive addresses from ``first``: ``count`` real Transfer logs in one tx."""
    data = calldata(
        "mintSeries(address,uint256,uint256)", ["address", "uint256", "uint256"], [first, count, amount_each]
    )
    return send(node, owner or accounts(node)[0], token, data, gas=gas or 60_000 + 30_000 * count)


def transfer(node: RpcNode, token: str, sender: str, to: str, amount: int) -> TxResult:
    return send(node, sender, token, calldata("transfer(address,uint256)", ["address", "uint256"], [to, amount]))


def forward(node: RpcNode, forwarder: str, sender: str, token: str, to: str, amount: int) -> TxResult:
    """``sender`` (an EOA) makes ``forwarder`` transfer its tokens: log `from` = forwarder, initiator = sender."""
    data = calldata("forward(address,address,uint256)", ["address", "address", "uint256"], [token, to, amount])
    return send(node, sender, forwarder, data)


def add_black_list(node: RpcNode, token: str, user: str, owner: str | None = None) -> TxResult:
    """TetherLike: emits AddedBlackList(address _user) (address in data)."""
    return send(node, owner or accounts(node)[0], token, calldata("addBlackList(address)", ["address"], [user]))


def blacklist(node: RpcNode, token: str, user: str, blacklister: str | None = None) -> TxResult:
    """FiatTokenLike: emits Blacklisted(address indexed _account)."""
    return send(node, blacklister or accounts(node)[0], token, calldata("blacklist(address)", ["address"], [user]))


def balance_of(node: RpcNode, token: str, holder: str) -> int:
    word = node.rpc(
        "eth_call", [{"to": token, "data": calldata("balanceOf(address)", ["address"], [holder])}, "latest"]
    )
    return int(word, 16)


@dataclass(frozen=True)
class StableTokens:
    usdt: str
    usdc: str
    forwarder: str


def deploy_stable_tokens(node: RpcNode, decimals: int = 6) -> StableTokens:
    """USDT-like, USDC-like (both ``decimals``) and a Forwarder, deployed from the node's first account."""
    return StableTokens(
        usdt=deploy_tether_like(node, "USDT", decimals),
        usdc=deploy_fiat_token_like(node, "USDC", decimals),
        forwarder=deploy_forwarder(node),
    )
