"""The pipeline against real anvil with deployed ERC-20s emitting real Transfer events, on SQLite and
PostgreSQL: deposits recorded exactly once (across restarts), nothing else recorded, exact amounts,
initiators, and the cursor moving only with its range's deposits."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from screener.db import make_engine, session_scope
from screener.demo.devnet.anvil import Anvil
from screener.models.chain import ScanCursor
from screener.models.deposits import Deposit
from screener.pipeline.tick import tick
from screener.review.rules import DepositStatus
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

A, B, C = deposit_address(1), deposit_address(2), deposit_address(3)


@pytest.fixture
def env(anvil: Anvil) -> ChainEnv:
    return make_env(anvil)


def _cursor(engine: Engine) -> int | None:
    with session_scope(engine) as s:
        cur = s.get(ScanCursor, CHAIN)
        return cur.next_block if cur else None


def test_deposits_recorded_once_across_restarts(env: ChainEnv, engine: Engine, db_url: str) -> None:
    settings = env.settings(db_url)
    register(engine, settings, CHAIN, {A: "acct-a", B: "acct-b"})
    env.pay(env.usdt, 0, A, 1_000_000)
    env.pay(env.usdc, 1, B, 2_500_000)
    env.pay(env.usdt, 2, C, 7)  # not ours
    env.pay(env.other_token, 0, A, 99)  # same event, unwatched contract
    env.node.mine(3)
    rt = runtime(settings)
    tick_until_idle(engine, rt, settings)
    first = recorded(engine)
    assert keys(first) == ground_truth(env.node, {env.usdt, env.usdc}, {A, B})
    assert {(d.account, d.token_symbol, d.amount_raw) for d in first} == {
        ("acct-a", "USDT", 1_000_000),
        ("acct-b", "USDC", 2_500_000),
    }
    # more deposits, then a "restart": new engine and runtime on the same database
    env.pay(env.usdc, 3, A, 5)
    env.node.mine(3)
    rt.close()
    engine2 = make_engine(db_url)
    rt2 = runtime(settings)
    tick_until_idle(engine2, rt2, settings)
    # and a worker that starts over from block 0 (cursor lost) records nothing twice
    with session_scope(engine2) as s:
        s.delete(s.get(ScanCursor, CHAIN))
    tick_until_idle(engine2, runtime(settings), settings)
    after = recorded(engine2)
    assert keys(after) == ground_truth(env.node, {env.usdt, env.usdc}, {A, B})
    assert len(after) == 3
    engine2.dispose()


def test_fields_of_a_recorded_deposit(env: ChainEnv, engine: Engine, db_url: str) -> None:
    settings = env.settings(db_url)
    register(engine, settings, CHAIN, {A: "acct-a"})
    direct = env.pay(env.usdt, 0, A, 42)
    via = env.pay_via_forwarder(env.usdc, 4, A, 43)
    env.node.mine(3)
    tick_until_idle(engine, runtime(settings), settings)
    by_tx = {d.tx_hash: d for d in recorded(engine)}
    d1, d2 = by_tx[direct.tx_hash], by_tx[via.tx_hash]
    assert (d1.from_address, d1.initiator) == (env.senders[0], env.senders[0])
    assert d1.block_number == direct.block_number and d1.block_hash == direct.block_hash
    assert d1.token_contract == env.usdt and d1.decimals == 6 and d1.to_address == A
    assert d1.block_time is not None and d1.status == DepositStatus.CREDITED
    # through the forwarder: the token's `from` is the contract, the initiator the EOA that called it
    assert (d2.from_address, d2.initiator) == (env.forwarder, env.senders[4])


@pytest.mark.parametrize("threshold", [0, 1000], ids=["client-side-filter", "server-side-filter"])
def test_filter_modes_agree(env: ChainEnv, sqlite_engine: Engine, threshold: int) -> None:
    engine = sqlite_engine
    settings = env.settings(str(engine.url), server_filter_max_addresses=threshold)
    register(engine, settings, CHAIN, {deposit_address(i): f"acct-{i}" for i in range(20)})
    for i in range(0, 30, 3):
        env.pay(env.usdt if i % 2 else env.usdc, i % 5, deposit_address(i), 10 + i)
    env.node.mine(3)
    results = tick_until_idle(engine, runtime(settings), settings)
    recipients = {deposit_address(i) for i in range(20)}
    assert keys(recorded(engine)) == ground_truth(env.node, {env.usdt, env.usdc}, recipients)
    assert len(recorded(engine)) == 7
    if threshold == 0:  # all recipients came back and were filtered locally
        # 3 payments to unregistered addresses + the setup mints of the two watched tokens to 6 holders
        assert sum(r.other_recipients for r in results) == 3 + 2 * 6


def test_decide_failure_records_nothing_and_keeps_the_cursor(env: ChainEnv, engine: Engine, db_url: str) -> None:
    settings = env.settings(db_url)
    register(engine, settings, CHAIN, {A: "acct-a"})
    env.pay(env.usdt, 0, A, 1)
    env.node.mine(3)
    rt = runtime(settings)

    def broken(session: Session, deposits: list[Deposit], now: datetime) -> None:
        raise RuntimeError("screening crashed")

    before = None
    for _ in range(20):
        try:
            tick(engine, rt, decide=broken)
        except RuntimeError:
            break
        before = _cursor(engine)
    else:
        pytest.fail("the deposit's range was never reached")
    assert _cursor(engine) == before and recorded(engine) == []
    tick_until_idle(engine, rt, settings, decide=mark_credited)
    assert len(recorded(engine)) == 1


@pytest.mark.parametrize("amount", [1, 2**63 + 12345, 10**30 + 1, 2**256 - 1])
def test_18_decimal_amounts_exact(anvil: Anvil, engine: Engine, db_url: str, amount: int) -> None:
    """BSC's Binance-Peg tokens have 18 decimals: amounts beyond 2**63 must survive both stores exactly."""
    from screener.demo.devnet import deploy as dv

    usdt, usdc = dv.deploy_tether_like(anvil, "USDT", 18), dv.deploy_fiat_token_like(anvil, "USDC", 18)
    sender = dv.accounts(anvil)[1]
    dv.mint(anvil, usdc, sender, amount)  # the whole supply, so even 2**256 - 1 can be sent
    env = ChainEnv(anvil, usdt, usdc, forwarder="", other_token="", owner="", senders=[sender])
    settings = env.settings(db_url, chain="bsc")
    register(engine, settings, "bsc", {A: "acct-a"})
    env.pay(usdc, 0, A, amount)
    anvil.mine(3)
    tick_until_idle(engine, runtime(settings, "bsc"), settings)
    (deposit,) = recorded(engine, "bsc")
    assert deposit.amount_raw == amount and type(deposit.amount_raw) is int
    assert deposit.decimals == 18 and deposit.token_symbol == "USDC"


def test_decimals_mismatch_refuses_the_chain(anvil: Anvil, sqlite_engine: Engine) -> None:
    from chains.scanning import ChainHalted

    engine = sqlite_engine
    env = make_env(anvil, decimals=6)
    settings = env.settings(str(engine.url), chain="bsc")  # the registry says 18 for BSC's USDT/USDC
    register(engine, settings, "bsc", {A: "acct-a"})
    with pytest.raises(ChainHalted, match="decimals"):
        tick(engine, runtime(settings, "bsc"), decide=mark_credited)


def test_without_start_block_scanning_begins_at_the_first_tick(env: ChainEnv, sqlite_engine: Engine) -> None:
    """No start_block: history is left to `screener backfill`; everything after the first tick is scanned."""
    engine = sqlite_engine
    settings = env.settings(str(engine.url), start_block=None)
    register(engine, settings, CHAIN, {A: "acct-a"})
    env.pay(env.usdt, 0, A, 1)  # before the worker ever ran
    env.node.mine(3)
    rt = runtime(settings)
    first = tick(engine, rt, decide=mark_credited)
    assert first.status == "idle" and _cursor(engine) == first.safe_block + 1
    env.pay(env.usdt, 0, A, 2)
    env.node.mine(3)
    tick_until_idle(engine, rt, settings)
    assert [d.amount_raw for d in recorded(engine)] == [2]
