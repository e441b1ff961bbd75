"""The Tron path of the pipeline.

No real Tron node (java-tron) can run here, so this drives the Tron code path on anvil: a chain configured
with ``family = "tron"`` pointing at anvil. Everything Tron-specific on our side is exercised: deposit
addresses and token contracts are given in T-form, converted to the 20-byte hex that java-tron's JSON-RPC
uses in eth_getLogs filters and logs, and every recorded address (to, from, initiator, token) comes back in
T-form; no finality tag is used (head - confirmations), or the head of a solidity-node endpoint when one is
configured. What this cannot show is java-tron's own behaviour (its limits are modelled by the proxy's
``tron`` range-limit style in test_scanning.py).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from screener.demo.devnet.anvil import Anvil
from screener_base.addresses import hex_to_tron, tron_to_hex20
from tests.support.chain_env import (
    deposit_address,
    ground_truth,
    make_env,
    recorded,
    register,
    runtime,
    tick_until_idle,
)
from tests.support.proxy import FaultProxy

CHAIN = "tron-dev"


def test_tron_codec_end_to_end(anvil: Anvil, engine: Engine) -> None:
    env = make_env(anvil)
    tokens = {"USDT": hex_to_tron(env.usdt), "USDC": hex_to_tron(env.usdc)}
    settings = env.settings(
        str(engine.url), chain=CHAIN, family="tron", tokens=tokens, finality_tag=None, confirmations=3
    )
    ours = {hex_to_tron(deposit_address(i)): f"acct-{i}" for i in range(3)}
    register(engine, settings, CHAIN, ours)
    env.pay(env.usdt, 0, deposit_address(0), 10**6)
    env.pay_via_forwarder(env.usdc, 2, deposit_address(1), 5)
    env.pay(env.usdt, 1, deposit_address(7), 1)  # not ours
    anvil.mine(4)
    rt = runtime(settings, CHAIN)
    results = tick_until_idle(engine, rt, settings)
    assert all(r.safe_block is None or r.safe_block == r.head_block - 3 for r in results)
    got = recorded(engine, CHAIN)
    truth = ground_truth(anvil, {env.usdt, env.usdc}, {tron_to_hex20(a) for a in ours})
    assert {(d.tx_hash, d.log_index, tron_to_hex20(d.to_address), d.amount_raw) for d in got} == truth
    by_amount = {d.amount_raw: d for d in got}
    direct, forwarded = by_amount[10**6], by_amount[5]
    assert direct.to_address == hex_to_tron(deposit_address(0)) and direct.account == "acct-0"
    assert direct.from_address == direct.initiator == hex_to_tron(env.senders[0])
    assert direct.token_contract == tokens["USDT"] and forwarded.token_contract == tokens["USDC"]
    assert forwarded.from_address == hex_to_tron(env.forwarder) and forwarded.initiator == hex_to_tron(env.senders[2])
    assert all(d.to_address.startswith("T") for d in got)


def test_solidified_head_endpoint_bounds_the_scan(anvil: Anvil, sqlite_engine: Engine) -> None:
    """With a solidity-node endpoint (here: a proxy 6 blocks behind), its head is the safe head."""
    env = make_env(anvil)
    tokens = {"USDT": hex_to_tron(env.usdt), "USDC": hex_to_tron(env.usdc)}
    with FaultProxy(anvil.url, lag_blocks=6) as solidity:
        settings = env.settings(
            str(sqlite_engine.url),
            chain=CHAIN,
            family="tron",
            tokens=tokens,
            confirmations=0,
            finality_rpc_url=solidity.url,
        )
        register(sqlite_engine, settings, CHAIN, {hex_to_tron(deposit_address(0)): "a"})
        early = env.pay(env.usdt, 0, deposit_address(0), 1)
        anvil.mine(6)
        late = env.pay(env.usdt, 0, deposit_address(0), 2)
        rt = runtime(settings, CHAIN)
        last = tick_until_idle(sqlite_engine, rt, settings)[-1]
        assert last.safe_block == anvil.block_number() - 6
        assert [d.tx_hash for d in recorded(sqlite_engine, CHAIN)] == [early.tx_hash]
        anvil.mine(6)
        tick_until_idle(sqlite_engine, rt, settings)
    assert [d.tx_hash for d in recorded(sqlite_engine, CHAIN)] == [early.tx_hash, late.tx_hash]
