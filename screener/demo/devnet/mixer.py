"""Deploy and drive the devnet mixer pool (contracts/mixer/MixerPool.sol) on anvil.

The pool emits Tornado Cash's real ``Withdrawal(address to, bytes32 nullifierHash, address indexed relayer,
uint256 fee)`` and pays the recipient, so the mixer index, the screening policy and ``screener demo`` see
what they would see on mainnet. Transactions are sent from anvil's unlocked (or impersonated) accounts.

Rebuild the artifact after editing the source: ``python -m screener.demo.devnet.mixer`` (needs npm's solcjs).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from screener.demo.devnet.anvil import REPO
from screener_base.errors import ChainError

CONTRACT_DIR = Path(__file__).parent / "contracts" / "mixer"
SOURCE_PATH = CONTRACT_DIR / "MixerPool.sol"
ARTIFACT_PATH = CONTRACT_DIR / "MixerPool.json"
EVM_VERSION = "cancun"
DEFAULT_DENOMINATION_WEI = 10**17  # 0.1 ETH, Tornado's smallest ETH pool

# JSON-RPC call: (method, params) -> result. screener.demo.devnet.anvil.Anvil.rpc has this shape.
Rpc = Callable[[str, list[Any]], Any]


@dataclass(frozen=True)
class MixerPoolHandle:
    address: str  # lowercase
    denomination_wei: int
    deploy_tx: str


def solcjs_binary() -> Path:
    path = REPO / "node_modules" / ".bin" / "solcjs"
    if not path.exists():
        raise ChainError(f"solcjs not found at {path}", "run `make setup` (npm ci installs solc)")
    return path


def compile_artifact(timeout_s: float = 120.0) -> dict[str, Any]:
    """Compile MixerPool.sol with solcjs (standard JSON) into the artifact this module deploys."""
    source = SOURCE_PATH.read_text(encoding="utf-8")
    request = {
        "language": "Solidity",
        "sources": {"MixerPool.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    proc = subprocess.run(
        [str(solcjs_binary()), "--standard-json"],
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    # solcjs may print a notice line (about SMT solvers) before the JSON document.
    text = proc.stdout.decode(errors="replace")
    out = json.loads(text[text.find("{") :] if "{" in text else "{}")
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if proc.returncode != 0 or errors or "contracts" not in out:
        raise ChainError(f"solcjs failed: {errors or proc.stderr.decode()[:500]}", "fix MixerPool.sol")
    contract = out["contracts"]["MixerPool.sol"]["MixerPool"]
    version = (
        subprocess.run([str(solcjs_binary()), "--version"], capture_output=True, timeout=timeout_s, check=False)
        .stdout.decode()
        .strip()
    )
    return {
        "contractName": "MixerPool",
        "compiler": f"solc-js {version}",
        "evmVersion": EVM_VERSION,
        "sourceSha256": hashlib.sha256(source.encode()).hexdigest(),
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
    }


def load_artifact() -> dict[str, Any]:
    with ARTIFACT_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def send_tx(
    rpc: Rpc, sender: str, to: str | None, data: str, value_wei: int = 0, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Send from an unlocked/impersonated account and return the mined receipt; a revert is an error."""
    tx: dict[str, Any] = {"from": sender, "data": data, "value": hex(value_wei)}
    if to is not None:
        tx["to"] = to
    tx_hash = rpc("eth_sendTransaction", [tx])
    deadline = time.monotonic() + timeout_s
    while True:
        receipt = rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            break
        if time.monotonic() > deadline:
            raise ChainError(f"transaction {tx_hash} not mined within {timeout_s}s", "is anvil automining?")
        time.sleep(0.05)
    if int(receipt["status"], 16) != 1:
        raise ChainError(f"transaction {tx_hash} reverted", "check the call's arguments")
    return dict(receipt)


def deploy_pool(rpc: Rpc, deployer: str, denomination_wei: int = DEFAULT_DENOMINATION_WEI) -> MixerPoolHandle:
    artifact = load_artifact()
    data = artifact["bytecode"] + encode(["uint256"], [denomination_wei]).hex()
    receipt = send_tx(rpc, deployer, None, data)
    return MixerPoolHandle(str(receipt["contractAddress"]).lower(), denomination_wei, str(receipt["transactionHash"]))


def deposit(rpc: Rpc, pool: MixerPoolHandle, sender: str, commitment: bytes) -> str:
    data = _selector("deposit(bytes32)") + encode(["bytes32"], [commitment]).hex()
    return str(send_tx(rpc, sender, pool.address, data, value_wei=pool.denomination_wei)["transactionHash"])


def withdraw(
    rpc: Rpc,
    pool: MixerPoolHandle,
    caller: str,
    recipient: str,
    nullifier_hash: bytes,
    relayer: str = "0x" + "0" * 40,
    fee_wei: int = 0,
) -> str:
    """Pay ``recipient`` one denomination (less the relayer fee) and emit Withdrawal; returns the tx hash."""
    data = (
        _selector("withdraw(address,bytes32,address,uint256)")
        + encode(["address", "bytes32", "address", "uint256"], [recipient, nullifier_hash, relayer, fee_wei]).hex()
    )
    return str(send_tx(rpc, caller, pool.address, data)["transactionHash"])


def deposit_and_withdraw(rpc: Rpc, pool: MixerPoolHandle, depositor: str, recipient: str, seed: str) -> str:
    """One round trip through the pool, so ``recipient`` is a mixer withdrawal recipient; returns the withdrawal tx."""
    deposit(rpc, pool, depositor, keccak(text=f"commitment:{seed}"))
    return withdraw(rpc, pool, depositor, recipient, keccak(text=f"nullifier:{seed}"))


def main() -> None:
    artifact = compile_artifact()
    ARTIFACT_PATH.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ARTIFACT_PATH}")


if __name__ == "__main__":
    main()
