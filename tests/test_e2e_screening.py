"""End to end on anvil: real OFAC addresses send USDT/USDC (impersonated), the real pipeline records the
deposits, the real decider screens them, and the real CLI shows the evidence.

Two nodes: one configured as chain "polygon" (anvil's chain id, EVM), one as chain "tron" (family tron: the
node speaks 0x addresses, the screener stores and matches T-form). A mixer pool with Tornado's Withdrawal
layout, USDT-/USDC-like tokens with issuer blacklists and a Forwarder are deployed on the polygon node.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import session_scope
from screener.decide.decide import make_decider
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import deploy, mixer
from screener.indexes.sources import index_source, runtime_lookup
from screener.indexes.store import scan_blacklist_index
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.ledger import Hold, ReviewFlag
from screener.pipeline.addresses import add_address
from screener.pipeline.runtime import ChainRuntime, build_chain_runtime, spec_from_settings
from screener.pipeline.tick import tick
from screener.settings import Settings, load_settings
from screener_base.addresses import hex_to_tron, tron_to_hex20
from tests.support import cli_fork
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.anvil import Anvil, run_anvil

LAZARUS = "0x08723392Ed15743cc38513C4925f5e6be5c17243"  # ETH tag only, published checksummed; LAZARUS GROUP
ETH_LOWER = "0x1967d8af5bd86a497fb3dd7899a020e47560daaf"  # ETH tag only, published lowercase
ETH_SIGNER = "0x08b2eFdcdB8822EfE5ad0Eae55517cf5DC544251"  # ETH tag only: signs the Forwarder call
TRON_LISTED = "TC4VsFHJdZ66BdwobZxkudVZBVmQZgCP65"  # USDT tag, Tron
TORNADO_ROUTER = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"  # on the 2025-03-05 list, not on 2025-05-30
TORNADO_PROXY = "0x722122df12d4e14e13ac3b6895a86e84145b6967"
DEPOSIT_POLYGON = "0x" + "d0" * 20
DEPOSIT_TRON = hex_to_tron("0x" + "d7" * 20)
TRON_CHAIN_ID = 31338
UNIT = 10**6
SCREENER = str(Path(sys.executable).with_name("screener"))


@dataclass
class World:
    engine: Engine
    poly: Anvil
    tron: Anvil
    config: Path
    settings: Settings
    tokens: deploy.StableTokens
    tron_usdt: str
    pool: mixer.MixerPoolHandle
    runtimes: dict[str, ChainRuntime] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return deploy.accounts(self.poly)[0]

    @staticmethod
    def impersonate(node: Anvil, who: str) -> None:
        node.rpc("anvil_impersonateAccount", [who])
        node.rpc("anvil_setBalance", [who, hex(10**18)])

    def fund(self, node: Anvil, token: str, who: str, amount: int) -> None:
        self.impersonate(node, who)
        deploy.mint(node, token, who, amount)

    def send(self, node: Anvil, token: str, sender: str, to: str, amount: int) -> str:
        """``sender`` (any address, impersonated) sends tokens it is minted first; returns the tx hash."""
        self.fund(node, token, sender, amount)
        return deploy.transfer(node, token, sender, to, amount).tx_hash

    def run_ticks(self) -> None:
        decide = make_decider(self.settings, runtime_lookup(self.settings, self.runtimes))
        for rt in self.runtimes.values():
            for _ in range(20):  # bounded: each tick reads one range up to the safe head
                if tick(self.engine, rt, decide=decide).status == "idle":
                    break

    def deposit(self, tx_hash: str) -> Deposit:
        with session_scope(self.engine) as s:
            row = s.exec(select(Deposit).where(Deposit.tx_hash == tx_hash)).one()
            return row

    def hold_of(self, tx_hash: str) -> int:
        with session_scope(self.engine) as s:
            dep = s.exec(select(Deposit).where(Deposit.tx_hash == tx_hash)).one()
            hold = s.exec(select(Hold).where(Hold.deposit_id == dep.id)).one()
            assert hold.id is not None
            return hold.id

    def cli(self, *args: str) -> str:
        proc = cli_fork.run(
            [SCREENER, "--config", str(self.config), "--operator", "e2e", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def show(self, tx_hash: str) -> dict[str, Any]:
        return dict(json.loads(self.cli("holds", "show", f"H-{self.hold_of(tx_hash)}", "--json")))


def _config(
    path: Path, url: str, poly: Anvil, tron: Anvil, tokens: deploy.StableTokens, tron_usdt: str, pool: str
) -> Path:
    path.write_text(
        f"""
[database]
url = "{url}"
[review]
identity = "declared"
[lists]
max_list_age_h = 87600.0
# the real Tornado Cash delisting below removes 90 of 157 EVM addresses: over the per-family default of 20 %
max_drop_fraction = 0.6
[screening]
two_hop_enabled = true
two_hop_min_units = 5000
[chains.polygon]
rpc_urls = ["{poly.url}"]
chain_id = {poly.chain_id}
confirmations = 0
finality_tag = "latest"
start_block = 0
mixer_pools = ["{pool}"]
tokens = {{ USDT = "{tokens.usdt}", USDC = "{tokens.usdc}" }}
[chains.tron]
family = "tron"
rpc_urls = ["{tron.url}"]
chain_id = {tron.chain_id}
confirmations = 0
finality_tag = "latest"
start_block = 0
tokens = {{ USDT = "{hex_to_tron(tron_usdt)}" }}
"""
    )
    return path


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    with run_anvil() as poly, run_anvil(chain_id=TRON_CHAIN_ID) as tron:
        tokens = deploy.deploy_stable_tokens(poly)
        tron_usdt = deploy.deploy_tether_like(tron, "USDT", 6)
        pool = mixer.deploy_pool(poly.rpc, deploy.accounts(poly)[0])
        url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
        config = _config(tmp_path / "screener.toml", url, poly, tron, tokens, tron_usdt, pool.address)
        settings = load_settings(config)
        now = datetime.now(UTC)
        with session_scope(engine) as s:
            family_of = lambda chain: spec_from_settings(settings, chain).family  # noqa: E731 (a one-line callback)
            add_address(s, family_of, "polygon", DEPOSIT_POLYGON, "acct-poly", now)
            add_address(s, family_of, "tron", DEPOSIT_TRON, "acct-tron", now)
            lists_store.ensure_active(s, now)
        w = World(engine, poly, tron, config, settings, tokens, tron_usdt, pool)
        w.runtimes = {name: build_chain_runtime(settings, name) for name in ("polygon", "tron")}
        try:
            yield w
        finally:
            for rt in w.runtimes.values():
                rt.close()


def _rules(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["rule_id"], f["party"]) for f in record["findings"]]


def test_deposits_get_verdicts_and_evidence(world: World) -> None:
    w, poly = world, world.poly
    usdt, usdc = w.tokens.usdt, w.tokens.usdc
    eoa = deploy.accounts(poly)
    tx: dict[str, str] = {}
    tx["lazarus"] = w.send(poly, usdt, LAZARUS, DEPOSIT_POLYGON, 100 * UNIT)
    tx["lower"] = w.send(poly, usdc, ETH_LOWER, DEPOSIT_POLYGON, 100 * UNIT)
    tx["clean"] = w.send(poly, usdt, eoa[3], DEPOSIT_POLYGON, 100 * UNIT)
    withdrawal = mixer.deposit_and_withdraw(poly.rpc, w.pool, w.owner, eoa[4], "e2e-direct")
    tx["mixed"] = w.send(poly, usdt, eoa[4], DEPOSIT_POLYGON, 100 * UNIT)
    # A contract moves the tokens; the listed EOA only signs: `from` is clean, the initiator is not.
    w.fund(poly, usdt, w.tokens.forwarder, 100 * UNIT)
    w.impersonate(poly, ETH_SIGNER)
    tx["forwarded"] = deploy.forward(poly, w.tokens.forwarder, ETH_SIGNER, usdt, DEPOSIT_POLYGON, 100 * UNIT).tx_hash
    deploy.blacklist(poly, usdc, eoa[5])  # the USDC issuer blacklists eoa[5]; it then sends USDT
    tx["blacklisted"] = w.send(poly, usdt, eoa[5], DEPOSIT_POLYGON, 100 * UNIT)
    # Two hops: eoa[6] got a mixer withdrawal, then funded eoa[7], which deposits a large amount.
    funding_withdrawal = mixer.deposit_and_withdraw(poly.rpc, w.pool, w.owner, eoa[6], "e2e-two-hop")
    w.send(poly, usdt, eoa[6], eoa[7], 6000 * UNIT)
    tx["two_hop"] = deploy.transfer(poly, usdt, eoa[7], DEPOSIT_POLYGON, 6000 * UNIT).tx_hash
    tx["later_blacklisted"] = w.send(poly, usdc, eoa[8], DEPOSIT_POLYGON, 100 * UNIT)
    tron_sender = tron_to_hex20(TRON_LISTED)
    tx["tron"] = w.send(w.tron, w.tron_usdt, tron_sender, tron_to_hex20(DEPOSIT_TRON), 100 * UNIT)
    tron_clean = deploy.accounts(w.tron)[2]
    tx["tron_clean"] = w.send(w.tron, w.tron_usdt, tron_clean, tron_to_hex20(DEPOSIT_TRON), 100 * UNIT)
    w.run_ticks()

    got = {name: (w.deposit(h).verdict, w.deposit(h).status) for name, h in tx.items()}
    assert got == {
        "lazarus": ("BLOCK", "held"),
        "lower": ("BLOCK", "held"),
        "clean": ("CREDIT", "credited"),
        "mixed": ("HOLD", "held"),
        "forwarded": ("BLOCK", "held"),
        "blacklisted": ("HOLD", "held"),
        "two_hop": ("HOLD", "held"),
        "later_blacklisted": ("CREDIT", "credited"),
        "tron": ("BLOCK", "held"),
        "tron_clean": ("CREDIT", "credited"),
    }
    version = w.deposit(tx["clean"]).list_version_id

    lazarus = w.show(tx["lazarus"])
    assert _rules(lazarus) == [("ofac.sdn", "from")]
    (f,) = lazarus["findings"]
    assert (f["matched_address"], f["entity"], f["programs"]) == (LAZARUS.lower(), "LAZARUS GROUP", ["DPRK3"])
    assert f["list_version_id"] == version and LAZARUS in f["detail"] and "ETH" in f["detail"]
    assert _rules(w.show(tx["lower"])) == [("ofac.sdn", "from")]

    mixed = w.show(tx["mixed"])
    assert _rules(mixed) == [("mixer.withdrawal_recipient", "from")]
    assert mixed["findings"][0]["evidence_tx"] == withdrawal
    assert mixed["findings"][0]["hop_path"][0] == f"polygon:{w.pool.address}"

    forwarded = w.show(tx["forwarded"])
    assert forwarded["from_address"] == w.tokens.forwarder and forwarded["initiator"] == ETH_SIGNER.lower()
    assert _rules(forwarded) == [("ofac.sdn", "initiator")]

    blacklisted = w.show(tx["blacklisted"])
    assert _rules(blacklisted) == [("issuer.blacklist", "from")] and "before" in blacklisted["findings"][0]["detail"]

    two_hop = w.show(tx["two_hop"])
    assert _rules(two_hop) == [("mixer.two_hop", "from")]
    assert two_hop["findings"][0]["evidence_tx"] == funding_withdrawal
    assert two_hop["findings"][0]["hop_path"][1:3] == [eoa[6], eoa[7]]

    tron = w.show(tx["tron"])
    assert tron["from_address"] == TRON_LISTED and _rules(tron) == [("ofac.sdn", "from")]
    assert "USDT" in tron["findings"][0]["detail"]

    text = w.cli("holds", "show", f"H-{w.hold_of(tx['lazarus'])}")
    assert "ofac.sdn [blocking] party=from" in text and "LAZARUS GROUP" in text and f"list version {version}" in text

    # The issuer blacklists a sender after its deposit was credited: the index scan raises a review flag.
    deploy.blacklist(poly, usdc, eoa[8])
    source = index_source(w.runtimes["polygon"], w.settings)
    hook = make_index_hook(w.settings)
    assert scan_blacklist_index(w.engine, source, w.settings, datetime.now(UTC), on_new_facts=hook) == 1
    with session_scope(w.engine) as s:
        flags = s.exec(select(ReviewFlag)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("issuer.blacklist", eoa[8])]
    assert "issuer.blacklist" in w.cli("flags", "list")


def test_list_refresh_flags_past_depositor_and_annotates_removed_match(world: World, shared_data: Path) -> None:
    w, poly = world, world.poly
    files = {}
    # Each published after the bundle (2025-05-30): a refresh refuses a list published before the active one.
    for n, day in enumerate(("2025-03-05", "2025-05-30"), start=1):
        path = w.config.parent / f"sdn_{day}.xml"
        path.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / day), published=date(2025, 6, n)))
        files[day] = str(path)
    credited = w.send(poly, w.tokens.usdt, TORNADO_ROUTER, DEPOSIT_POLYGON, 100 * UNIT)
    w.run_ticks()
    assert w.deposit(credited).verdict == "CREDIT"  # the bundled 2025-05-30 list no longer names Tornado Cash

    assert w.cli("lists", "refresh", "--source", files["2025-03-05"]).startswith("updated")
    with session_scope(w.engine) as s:
        flags = s.exec(select(ReviewFlag)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("ofac.sdn", TORNADO_ROUTER)]

    held = w.send(poly, w.tokens.usdt, TORNADO_PROXY, DEPOSIT_POLYGON, 100 * UNIT)
    w.run_ticks()
    assert (w.deposit(held).verdict, w.deposit(held).status) == ("BLOCK", "held")

    assert w.cli("lists", "refresh", "--source", files["2025-05-30"]).startswith("updated")
    record = w.show(held)
    assert (record["state"], record["verdict"]) == ("open", "BLOCK")  # never released by a list change
    notes = [e["payload"]["text"] for e in record["history"] if e["kind"] == "hold.annotation"]
    assert len(notes) == 1 and TORNADO_PROXY in notes[0] and "no OFAC match remains" in notes[0]
    assert "hold.annotation" in w.cli("holds", "show", f"H-{w.hold_of(held)}")
