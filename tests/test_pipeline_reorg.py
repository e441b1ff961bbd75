"""Reorgs on real anvil (anvil_reorg replaces the last N blocks, optionally re-including transactions at
chosen offsets; verified on anvil 1.7.1: the head number stays, block = head - depth + 1 + offset).

Below the confirmation depth nothing was recorded yet, so only the new blocks count. Deeper reorgs reach
recorded blocks: the worker rewinds to the newest kept header that is still canonical and rescans; deposits
in replaced blocks are dropped if undecided, and the chain halts (DeepReorg) if any was already decided.
A node that is behind or on another fork is not mistaken for a reorg, and finalized blocks never roll back.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chains.scanning import DeepReorg, NodeBehind, NodeInconsistent
from screener.db import session_scope
from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil, run_anvil
from screener.models.chain import ScanCursor
from screener.models.deposits import Deposit
from screener.pipeline.tick import tick
from tests.support.chain_env import (
    CHAIN,
    ChainEnv,
    deposit_address,
    ground_truth,
    keys,
    make_env,
    mark_credited,
    recorded,
    register,
    runtime,
    tick_until_idle,
)
from tests.support.proxy import FaultProxy

A, B = deposit_address(1), deposit_address(2)


def raw(node: Anvil, tx_hash: str) -> str:
    return str(node.rpc("eth_getRawTransactionByHash", [tx_hash]))


def cursor(engine: Engine) -> int | None:
    with session_scope(engine) as s:
        cur = s.get(ScanCursor, CHAIN)
        return cur.next_block if cur else None


def transfer_request(sender: str, token: str, to: str, amount: int) -> dict[str, str]:
    """A tx request for anvil_reorg (explicit gas: anvil's default for these is too low and they revert)."""
    data = dv.calldata("transfer(address,uint256)", ["address", "uint256"], [to, amount])
    return {"from": sender, "to": token, "data": data, "gas": hex(200_000)}


def truth(env: ChainEnv) -> set[tuple[str, int, str, int]]:
    return ground_truth(env.node, {env.usdt, env.usdc}, {A, B})


@pytest.fixture
def env(anvil: Anvil) -> ChainEnv:
    return make_env(anvil)


def test_reorg_below_confirmations(env: ChainEnv, sqlite_engine: Engine) -> None:
    engine, node = sqlite_engine, env.node
    settings = env.settings(str(engine.url), confirmations=4)
    register(engine, settings, CHAIN, {A: "a", B: "b"})
    kept = env.pay(env.usdt, 0, A, 111)
    dropped = env.pay(env.usdc, 1, B, 222)
    rt = runtime(settings)
    tick_until_idle(engine, rt, settings)
    assert recorded(engine) == []  # both are above the safe head (head - 4)
    new_tx = transfer_request(env.senders[2], env.usdt, A, 333)
    node.rpc("anvil_reorg", [3, [[raw(node, kept.tx_hash), 2], [new_tx, 0]]])
    assert node.rpc("eth_getTransactionReceipt", [dropped.tx_hash]) is None
    node.mine(5)
    tick_until_idle(engine, rt, settings)
    got = recorded(engine)
    assert keys(got) == truth(env) and {d.amount_raw for d in got} == {111, 333}
    moved = next(d for d in got if d.tx_hash == kept.tx_hash)
    receipt = node.rpc("eth_getTransactionReceipt", [kept.tx_hash])
    assert moved.block_hash == receipt["blockHash"] and moved.block_number == int(receipt["blockNumber"], 16)


def test_deep_reorg_rewinds_undecided_deposits(env: ChainEnv, engine: Engine, db_url: str) -> None:
    """Deeper than the confirmations: recorded (undecided) deposits from replaced blocks are dropped, a
    re-included one is recorded once at its new block, and a new deposit in a replacement block far below
    the old cursor is found."""
    node = env.node
    settings = env.settings(db_url, confirmations=2)
    register(engine, settings, CHAIN, {A: "a", B: "b"})
    node.mine(2)
    first = env.pay(env.usdt, 0, A, 1)
    second = env.pay(env.usdc, 1, B, 2)
    node.mine(4)
    rt = runtime(settings)
    tick_until_idle(engine, rt, settings, decide=None)
    assert {d.amount_raw for d in recorded(engine)} == {1, 2}
    depth = node.block_number() - first.block_number + 2
    new_tx = transfer_request(env.senders[3], env.usdc, B, 3)
    node.rpc("anvil_reorg", [depth, [[new_tx, 0], [raw(node, first.tx_hash), 4]]])
    results = tick_until_idle(engine, rt, settings, decide=None)
    reorg = next(r.reorg for r in results if r.status == "reorg")
    assert reorg is not None and reorg.orphaned == 2 and reorg.min_depth_blocks > 2  # deeper than confirmations
    got = recorded(engine)
    assert keys(got) == truth(env) and {d.amount_raw for d in got} == {1, 3}
    assert node.rpc("eth_getTransactionReceipt", [second.tx_hash]) is None
    with session_scope(engine) as s:
        assert s.get(ScanCursor, CHAIN).reorgs == 1


def test_deep_reorg_of_decided_deposits_halts(env: ChainEnv, sqlite_engine: Engine) -> None:
    engine, node = sqlite_engine, env.node
    settings = env.settings(str(engine.url), confirmations=2)
    register(engine, settings, CHAIN, {A: "a"})
    paid = env.pay(env.usdt, 0, A, 5)
    node.mine(4)
    rt = runtime(settings)
    tick_until_idle(engine, rt, settings, decide=mark_credited)
    before, at = recorded(engine), cursor(engine)
    node.rpc("anvil_reorg", [node.block_number() - paid.block_number + 1, []])
    for _ in range(2):  # halted: every tick refuses until someone handles it
        with pytest.raises(DeepReorg, match="already decided"):
            tick(engine, rt, decide=mark_credited)
    assert keys(recorded(engine)) == keys(before) and cursor(engine) == at
    # an orphan handler (the review area's job) unblocks it, and sees exactly the replaced deposit
    seen: list[int] = []

    def reverse(session: Session, orphans: list[Deposit], now: datetime) -> None:
        seen.extend(d.id or 0 for d in orphans)
        for d in orphans:
            session.delete(d)

    result = tick(engine, rt, decide=mark_credited, on_orphaned=reverse)
    assert result.status == "reorg" and seen == [before[0].id]
    tick_until_idle(engine, rt, settings)
    assert recorded(engine) == [] and truth(env) == set()  # the payment itself was dropped by the reorg


def test_node_on_another_fork_is_not_a_reorg(env: ChainEnv, sqlite_engine: Engine) -> None:
    """Endpoint B forked off A: B serves other blocks at heights we read from A. Cross-checking A shows
    our block is still there, so nothing is rewound and the chain halts with NodeInconsistent."""
    engine, node = sqlite_engine, env.node
    register(engine, env.settings(str(engine.url)), CHAIN, {A: "a"})
    env.pay(env.usdt, 0, A, 7)
    with run_anvil(extra_args=["--fork-url", node.url]) as other:
        node.mine(6)
        other.mine(12)  # different blocks at the same heights, and further ahead
        settings = env.settings(str(engine.url))
        tick_until_idle(engine, runtime(settings), settings)
        before, at = keys(recorded(engine)), cursor(engine)
        both = env.settings(str(engine.url), rpc_urls=[other.url, node.url])
        rt = runtime(both)
        for _ in range(2):
            with pytest.raises(NodeInconsistent, match="still serves"):
                tick(engine, rt, decide=mark_credited)
        assert keys(recorded(engine)) == before and cursor(engine) == at


def test_lagging_node_is_not_a_reorg(env: ChainEnv, sqlite_engine: Engine) -> None:
    engine, node = sqlite_engine, env.node
    settings = env.settings(str(engine.url))
    register(engine, settings, CHAIN, {A: "a"})
    env.pay(env.usdt, 0, A, 9)
    node.mine(4)
    tick_until_idle(engine, runtime(settings), settings)
    at = cursor(engine)
    with FaultProxy(node.url, lag_blocks=20) as lagging:
        only_lagging = env.settings(str(engine.url), rpc_urls=[lagging.url])
        with pytest.raises(NodeBehind):
            tick(engine, runtime(only_lagging), decide=mark_credited)
        assert cursor(engine) == at
        env.pay(env.usdt, 1, A, 10)
        node.mine(4)
        mixed = env.settings(str(engine.url), rpc_urls=[lagging.url, node.url])
        rt = runtime(mixed)
        tick_until_idle(engine, rt, mixed)
        assert rt.client.endpoints[0].stats.failovers >= 1
    assert keys(recorded(engine)) == truth(env) and len(recorded(engine)) == 2


def test_finalized_blocks_never_roll_back(env: ChainEnv, sqlite_engine: Engine) -> None:
    """With the `finalized` tag (anvil: head - 64), a changed finalized block halts instead of rewinding."""
    engine, node = sqlite_engine, env.node
    settings = env.settings(str(engine.url), finality_tag="finalized", max_block_range=500)
    register(engine, settings, CHAIN, {A: "a"})
    paid = env.pay(env.usdt, 0, A, 11)
    node.mine(80)
    rt = runtime(settings)
    tick_until_idle(engine, rt, settings)
    assert rt.tags.served is True and len(recorded(engine)) == 1
    at = cursor(engine)
    node.rpc("anvil_reorg", [node.block_number() - paid.block_number + 1, []])
    with pytest.raises(DeepReorg, match="finalized"):
        tick(engine, rt, decide=mark_credited)
    assert cursor(engine) == at and len(recorded(engine)) == 1
