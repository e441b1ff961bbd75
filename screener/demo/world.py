"""The demo's devnet world: tokens, a mixer pool, deposit addresses, a config file, and the deposits sent.

Used by `screener demo` and by the daemon's tests, which drive the same world through real `screener run`
processes. The chain is configured as "polygon" (a registry name) on anvil's chain id, as the demo does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy.engine import Engine

from screener.db import session_scope, upgrade
from screener.demo.devnet import deploy, mixer
from screener.demo.devnet.anvil import Anvil
from screener.lists import store as lists_store
from screener.pipeline.addresses import add_address
from screener_base.addresses import Family, evm_display

DEMO_CHAIN = "polygon"
DECIMALS = 6  # both demo tokens have 6 decimals, like USDT and USDC
UNIT = 10**DECIMALS
# On the bundled OFAC snapshot (2025-05-30) under the ETH tag: LAZARUS GROUP, program DPRK3.
OFAC_SENDER = "0x08723392Ed15743cc38513C4925f5e6be5c17243"
# Customer deposit addresses (ours) and the accounts that own them.
DEPOSIT_ADDRESSES = {
    "0x" + "d1" * 20: "alice",
    "0x" + "d2" * 20: "bob",
    "0x" + "d3" * 20: "carol",
    "0x" + "d4" * 20: "dave",
}
# Bundled snapshot age is counted from its 2025 publication date: ten years keeps it usable offline.
RELAXED_MAX_LIST_AGE_H = 87600.0


@dataclass
class DemoWorld:
    node: Anvil
    tokens: deploy.StableTokens
    pool: mixer.MixerPoolHandle
    funder: str  # anvil's first account: deploys, mints, funds the mixer
    senders: list[str]  # clean anvil accounts

    def address_of(self, account: str) -> str:
        return next(a for a, owner in DEPOSIT_ADDRESSES.items() if owner == account)


@dataclass(frozen=True)
class Sent:
    label: str  # who sent it, for people: "a clean sender"
    account: str
    symbol: str  # USDT | USDC
    amount_raw: int
    tx_hash: str
    expect: str  # CREDIT | HOLD | BLOCK
    sender: str = ""  # the token transfer's `from` address (EIP-55), once sent


def build_world(node: Anvil) -> DemoWorld:
    """Deploy USDT-/USDC-like tokens and a mixer pool; mint tokens to a few clean senders."""
    tokens = deploy.deploy_stable_tokens(node, decimals=DECIMALS)
    accounts = deploy.accounts(node)
    pool = mixer.deploy_pool(node.rpc, accounts[0])
    world = DemoWorld(node, tokens, pool, accounts[0], accounts[1:4])
    for sender in world.senders:
        for token in (tokens.usdt, tokens.usdc):
            deploy.mint(node, token, sender, 10**9 * UNIT)
    return world


def chain_config(world: DemoWorld, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "rpc_urls": [world.node.url],
        "chain_id": world.node.chain_id,
        "confirmations": 1,
        "finality_tag": "latest",
        "start_block": 0,
        "poll_interval_s": 0.5,
        "request_timeout_s": 5.0,
        "max_block_range": 100,
        "mixer_pools": [world.pool.address],
        "tokens": {"USDT": world.tokens.usdt, "USDC": world.tokens.usdc},
    }
    cfg.update(overrides)
    return cfg


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """``{"database": {...}, "chains.polygon": {...}}`` as TOML tables."""
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(v)}" for key, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(path: Path, db_url: str, world: DemoWorld, **sections: Mapping[str, Any]) -> Path:
    """A config for ``world``: its chain, the relaxed list age, plus any sections given (merged over)."""
    base: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        # The bundled snapshot never downloads anything: no cron refresh during a demo or a test.
        "lists": {"max_list_age_h": RELAXED_MAX_LIST_AGE_H, "refresh_cron": "0 0 1 1 *"},
        # One OS account plays every reviewer in the demo (and in the tests built on it): names are declared,
        # and every decision is marked so. A real deployment leaves this unset (database login or OS account).
        "review": {"identity": "declared"},
        # The daemon keeps the audit chain's head beside the database: `audit verify --checkpoints` reads it.
        "audit": {"checkpoint_path": str(path.parent / "checkpoints.jsonl")},
        f"chains.{DEMO_CHAIN}": chain_config(world),
    }
    for name, values in sections.items():
        key = f"chains.{DEMO_CHAIN}" if name == "chain" else name
        base[key] = {**base.get(key, {}), **values}
    path.write_text(to_toml(base), encoding="utf-8")
    return path


def prepare_database(engine: Engine, now: datetime) -> None:
    """Schema at head, the bundled list version active, the demo's deposit addresses registered."""
    upgrade(engine)
    with session_scope(engine) as session:
        lists_store.ensure_active(session, now)
        for address, account in DEPOSIT_ADDRESSES.items():
            add_address(session, lambda _chain: Family.EVM, DEMO_CHAIN, address, account, now)


def _impersonate(node: Anvil, who: str) -> None:
    node.rpc("anvil_impersonateAccount", [who])
    node.rpc("anvil_setBalance", [who, hex(10**18)])


def send_from_listed(world: DemoWorld, token: str, who: str, to: str, amount_raw: int) -> str:
    """``who`` (any address, impersonated on anvil) is minted ``amount_raw`` and sends it to ``to``."""
    _impersonate(world.node, who)
    deploy.mint(world.node, token, who, amount_raw)
    return deploy.transfer(world.node, token, who, to, amount_raw).tx_hash


def mixer_funded_sender(world: DemoWorld, seed: str) -> str:
    """A fresh address that received a withdrawal from the mixer pool (and so has mixer exposure)."""
    recipient = "0x" + keccak(text=f"demo-mixer-recipient:{seed}")[-20:].hex()
    mixer.deposit_and_withdraw(world.node.rpc, world.pool, world.funder, recipient, seed)
    return recipient


def send_scenario(world: DemoWorld) -> list[Sent]:
    """Deposits from clean, OFAC-listed and mixer-funded senders; the last block is mined past confirmations."""
    t = world.tokens
    sent = [
        Sent("a clean sender", "alice", "USDT", 1_000 * UNIT, "", "CREDIT"),
        Sent("a clean sender", "bob", "USDC", 250 * UNIT, "", "CREDIT"),
        Sent("an OFAC-listed sender: LAZARUS GROUP", "carol", "USDT", 5_000 * UNIT, "", "BLOCK"),
        Sent("a mixer-funded sender", "dave", "USDC", 750 * UNIT, "", "HOLD"),
    ]
    out = []
    mixed = mixer_funded_sender(world, "demo")
    for i, s in enumerate(sent):
        contract = t.usdt if s.symbol == "USDT" else t.usdc
        to = world.address_of(s.account)
        if s.expect == "BLOCK":
            sender, tx = OFAC_SENDER, send_from_listed(world, contract, OFAC_SENDER, to, s.amount_raw)
        elif s.expect == "HOLD":
            sender, tx = mixed, send_from_listed(world, contract, mixed, to, s.amount_raw)
        else:
            sender = world.senders[i % len(world.senders)]
            tx = deploy.transfer(world.node, contract, sender, to, s.amount_raw).tx_hash
        out.append(Sent(s.label, s.account, s.symbol, s.amount_raw, tx, s.expect, evm_display(sender)))
    world.node.mine(2)
    return out
