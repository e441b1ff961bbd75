"""Index and two-hop log fetches behind a load balancer whose nodes are at different heights (fail closed).

A node that is behind answers eth_getLogs for blocks it has not reached with nothing. Unless the fetch
proves the node that answered had the range's last block, the index cursor moves past an event it never
saw, ``coverage_gap`` says the deposit is covered, and a deposit from a blacklisted or mixer-funded
address is credited. Real anvil behind tests.support.proxy.FaultProxy (``flip_lag``: every other HTTP
request is answered by a node that many blocks behind; ``lag_blocks``: always behind).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.decide.decide import decide_deposits
from screener.decide.gather import two_hop_funding
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import deploy, mixer
from screener.indexes.rules import IndexKind
from screener.indexes.sources import build_index_source
from screener.indexes.store import (
    IndexSource,
    blacklist_facts,
    coverage_gap,
    scan_blacklist_index,
    scan_mixer_index,
    withdrawals_to,
)
from screener.lists import store as lists_store
from screener.models.screening import MixerWithdrawalRow
from screener.screening.facts import DepositFacts
from screener.screening.verdicts import Decision
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.errors import ScreenerError
from tests.support.anvil import Anvil
from tests.support.proxy import FaultProxy
from tests.support.screening_env import make_deposit

FRESH_LISTS = {"max_list_age_h": 24 * 3650}  # the bundled snapshot is from 2025-05-30
LAG = 4
# Scans a test runs while waiting for the event to be indexed (each scan is itself bounded).
MAX_SCANS = 8


@dataclass
class Chain:
    node: Anvil
    tokens: deploy.StableTokens
    pool: mixer.MixerPoolHandle


@pytest.fixture
def chain(anvil_module: Anvil) -> Chain:
    node = anvil_module
    tokens = deploy.deploy_stable_tokens(node)
    pool = mixer.deploy_pool(node.rpc, node.rpc("eth_accounts")[0])
    return Chain(node, tokens, pool)


def _settings(url: str, chain: Chain, **screening: Any) -> Settings:
    return Settings.model_validate(
        {
            "lists": FRESH_LISTS,
            "screening": screening,
            "chains": {
                "polygon": {
                    "rpc_urls": [url],
                    "chain_id": chain.node.chain_id,
                    "confirmations": 0,
                    "finality_tag": "latest",
                    "start_block": 0,
                    "tokens": {"USDT": chain.tokens.usdt, "USDC": chain.tokens.usdc},
                    "mixer_pools": [chain.pool.address],
                }
            },
        }
    )


def _indexed(engine: Engine, kind: str, address: str) -> bool:
    with session_scope(engine) as s:
        if kind == IndexKind.MIXER:
            return bool(withdrawals_to(s, [address]))
        return bool(blacklist_facts(s, [address]))


def _gap(engine: Engine, kind: str, block: int) -> str | None:
    with session_scope(engine) as s:
        return coverage_gap(s, "polygon", kind, block)


def _event(chain: Chain, kind: str, address: str) -> int:
    """A mixer withdrawal to / a USDC blacklisting of ``address``, at the chain's head; its block."""
    if kind == IndexKind.MIXER:
        mixer.deposit_and_withdraw(chain.node.rpc, chain.pool, chain.node.rpc("eth_accounts")[0], address, address)
    else:
        deploy.blacklist(chain.node, chain.tokens.usdc, address)
    return chain.node.block_number()


@pytest.mark.parametrize("shift", [0, 1], ids=["even", "odd"])
@pytest.mark.parametrize("kind", [IndexKind.MIXER, IndexKind.BLACKLIST])
def test_scan_behind_flipping_balancer_never_skips_the_event(
    sqlite_engine: Engine, chain: Chain, kind: str, shift: int
) -> None:
    """The scheduled scan: safe head and logs may come from different nodes; the event is found eventually,
    and until it is, the index does not claim the event's block (the deposit would be held)."""
    address = "0x" + ("a1" if kind == IndexKind.MIXER else "b1") * 19 + f"{shift:02x}"
    chain.node.mine(LAG + 1)
    block = _event(chain, kind, address)
    scan = scan_mixer_index if kind == IndexKind.MIXER else scan_blacklist_index
    with FaultProxy(chain.node.url, flip_lag=LAG) as proxy:
        for _ in range(shift):  # which node answers which request: both orders are tried
            httpx.post(proxy.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        settings = _settings(proxy.url, chain)
        source = build_index_source(settings, "polygon")
        hook = make_index_hook(settings)
        for _ in range(MAX_SCANS):
            try:
                scan(sqlite_engine, source, settings, datetime.now(UTC), on_new_facts=hook)
            except ScreenerError:
                pass  # no endpoint served the range verifiably: the next scan retries
            found = _indexed(sqlite_engine, kind, address)
            assert found or _gap(sqlite_engine, kind, block) is not None, "index claims a block it never saw"
            if found:
                break
        assert proxy.injected["flip"] > 0
    assert found and _gap(sqlite_engine, kind, block) is None


def test_decider_catch_up_on_a_node_behind_holds_then_finds(sqlite_engine: Engine, chain: Chain) -> None:
    """The deposit scanner saw block N (on the node ahead); the decider's catch-up to N reaches a node that
    is behind: both indexes stay short of N and the deposit is held. Once the node has N, both events count."""
    node = chain.node
    sender = "0x" + "c7" * 20
    _event(chain, IndexKind.MIXER, sender)
    block = _event(chain, IndexKind.BLACKLIST, sender)
    with session_scope(sqlite_engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
    with FaultProxy(node.url, lag_blocks=LAG) as proxy:
        settings = _settings(proxy.url, chain)
        source = build_index_source(settings, "polygon")
        held = make_deposit("polygon", sender, block=block)
        with session_scope(sqlite_engine) as s:
            s.add(held)
            s.flush()
            (verdict,) = decide_deposits(s, [held], settings, datetime.now(UTC), lambda _: source)
        assert verdict.decision is Decision.HOLD
        assert sorted(f.detail.split(":")[0] for f in verdict.findings) == ["blacklist_index", "mixer_index"]
        assert not _indexed(sqlite_engine, IndexKind.MIXER, sender)
        assert not _indexed(sqlite_engine, IndexKind.BLACKLIST, sender)
        assert proxy.requests["eth_getLogs"] > 0  # the node behind was asked (and its answer refused)

        proxy.lag_blocks = 0  # the node caught up
        later = make_deposit("polygon", sender, block=block, log_index=1)
        with session_scope(sqlite_engine) as s:
            s.add(later)
            s.flush()
            (verdict,) = decide_deposits(s, [later], settings, datetime.now(UTC), lambda _: source)
    assert verdict.decision is Decision.HOLD
    assert sorted(f.rule_id for f in verdict.findings) == ["issuer.blacklist", "mixer.withdrawal_recipient"]


def test_two_hop_funding_on_a_node_behind_is_a_failed_lookup(sqlite_engine: Engine, chain: Chain) -> None:
    """The sender's funding from a mixer withdrawal recipient sits in blocks a node behind has not reached:
    the lookup must fail (deposit held), not report "no funding"."""
    node = chain.node
    funder, sender = deploy.accounts(node)[5], "0x" + "d8" * 20
    deploy.mint(node, chain.tokens.usdt, funder, 10**9)
    deploy.transfer(node, chain.tokens.usdt, funder, sender, 10**9)
    block = node.block_number()
    _insert_withdrawal(sqlite_engine, funder)
    settings_kw = {"two_hop_enabled": True, "two_hop_min_units": 0}
    facts = DepositFacts.of(make_deposit("polygon", sender, block=block), Family.EVM)
    with FaultProxy(node.url, lag_blocks=LAG) as proxy:
        settings = _settings(proxy.url, chain, **settings_kw)
        source: IndexSource = build_index_source(settings, "polygon")
        with session_scope(sqlite_engine) as s:
            funding, problem = two_hop_funding(s, facts, settings, source)
        assert funding == () and problem is not None and "funding lookup failed" in problem
        proxy.lag_blocks = 0
        with session_scope(sqlite_engine) as s:
            funding, problem = two_hop_funding(s, facts, settings, source)
    assert problem is None and [f.funder for f in funding] == [funder]


def _insert_withdrawal(engine: Engine, recipient: str) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        s.add(
            MixerWithdrawalRow(
                chain="polygon",
                pool="0x" + "70" * 20,
                recipient=recipient,
                relayer=None,
                fee=0,
                nullifier_hash="0x" + "11" * 32,
                tx_hash="0x" + "22" * 32,
                log_index=0,
                block_number=1,
                block_hash="0x" + "33" * 32,
                block_time=now,
                indexed_at=now,
            )
        )
