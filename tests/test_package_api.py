"""Each package's ``__all__`` is pinned: what a folder offers changes only on purpose, in review.

A package's ``__all__`` lists its public modules (the CLI package: its Typer app and entry point), so
``__all__`` and this table both change when a module is added, moved or removed; docs/architecture.md
describes the same tree.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PINNED: dict[str, list[str]] = {
    "screener": [
        "amounts", "cli", "daemon", "db", "decide", "demo", "indexes", "ledger", "lists", "models", "ops",
        "pipeline", "review", "screening", "settings",
    ],
    "screener.cli": ["app", "main"],
    "screener.daemon": ["checkpoint", "jobs", "leases", "state", "usage", "worker"],
    "screener.decide": ["credit", "decide", "gather", "holds", "rescreen"],
    "screener.demo": ["devnet", "run", "world"],
    "screener.demo.devnet": ["anvil", "deploy", "mixer"],
    "screener.indexes": ["recheck", "rules", "sources", "store"],
    "screener.ledger": [
        "audit", "checkpoint_rules", "checkpoints", "rules", "seals", "store", "stored", "verify", "verify_rows",
    ],
    "screener.lists": ["refresh", "rules", "store"],
    "screener.models": ["chain", "daemon", "deposits", "ledger", "lists", "screening"],
    "screener.ops": ["alert_rules", "alerts", "logging_setup", "metrics", "outbox_rules", "status"],
    "screener.pipeline": ["addresses", "backfill", "read", "runtime", "store", "tick"],
    "screener.review": [
        "evidence", "flags", "identity", "queries", "roles", "rules", "service", "signed_audit", "signing", "ssh",
        "statements",
    ],
    "screener.screening": ["facts", "policy", "verdicts"],
    "chains": [
        "blacklists", "budget", "codec", "mixers", "multisig", "registry", "rpc", "rpc_errors", "rpc_support",
        "scanning", "transfers",
    ],
    "sanctions_lists": [
        "build_bundle", "bundle", "candidate", "entries", "fetch", "formats", "guards", "ofac", "sdn_csv", "snapshot",
    ],
    "screener_base": ["addresses", "clock", "errors", "identity", "redact", "text"],
}  # fmt: skip


def _packages() -> list[str]:
    found = []
    for top in ("screener", "chains", "sanctions_lists", "screener_base"):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            found.append(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_is_pinned() -> None:
    assert sorted(_packages()) == sorted(PINNED), "add the new package to PINNED (and give it an __all__)"


@pytest.mark.parametrize("package", sorted(PINNED))
def test_all_is_pinned_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert list(getattr(module, "__all__", [])) == PINNED[package]
    for name in PINNED[package]:
        if not hasattr(module, name):
            importlib.import_module(f"{package}.{name}")  # a submodule listed for `import *`


@pytest.mark.parametrize("package", sorted(p for p in PINNED if p != "screener.cli"))
def test_all_lists_every_public_module_of_the_folder(package: str) -> None:
    folder = ROOT.joinpath(*package.split("."))
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    assert set(PINNED[package]) == modules
