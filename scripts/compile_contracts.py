"""Compile the devnet test contracts with solc-js and write the committed artifacts (abi + bytecode).

Run after editing screener/demo/devnet/contracts/*.sol:  .venv/bin/python scripts/compile_contracts.py
The artifacts are committed so tests and `screener demo` need no compiler; a test checks they are current.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "screener" / "demo" / "devnet" / "contracts"
SOURCE = CONTRACTS / "TestTokens.sol"
ARTIFACTS = CONTRACTS / "TestTokens.artifacts.json"
SOLCJS = REPO / "node_modules" / ".bin" / "solcjs"
EVM_VERSION = "cancun"
WANTED = ("TetherLike", "FiatTokenLike", "Usdt0Like", "MultiSigLike", "Forwarder")


def source_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compile_source(text: str) -> dict[str, dict[str, object]]:
    request = {
        "language": "Solidity",
        "sources": {SOURCE.name: {"content": text}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    proc = subprocess.run(
        [str(SOLCJS), "--standard-json"], input=json.dumps(request), capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise SystemExit(f"solcjs failed: {proc.stderr.strip()}")
    # solcjs may print warnings before the JSON document.
    output = json.loads(proc.stdout[proc.stdout.index("{") :])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit("compile errors:\n" + "\n".join(e["formattedMessage"] for e in errors))
    compiled = output["contracts"][SOURCE.name]
    return {
        name: {"abi": compiled[name]["abi"], "bytecode": "0x" + compiled[name]["evm"]["bytecode"]["object"]}
        for name in WANTED
    }


def solc_version() -> str:
    proc = subprocess.run([str(SOLCJS), "--version"], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


def main() -> int:
    text = SOURCE.read_text()
    artifacts = {
        "compiler": f"solc-js {solc_version()}",
        "evm_version": EVM_VERSION,
        "source": SOURCE.name,
        "source_sha256": source_digest(text),
        "contracts": compile_source(text),
    }
    ARTIFACTS.write_text(json.dumps(artifacts, indent=1, sort_keys=True) + "\n")
    print(f"wrote {ARTIFACTS.relative_to(REPO)}: {', '.join(WANTED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
