"""Request budgets (issue 14): per-endpoint requests_per_s and requests_per_day, TronGrid's throttling answers.

The budget rules are pure (chains/budget.py) and tested on their own; then a real anvil behind FaultProxy with a
TronGrid-like limiter in front (tests/support/trongrid.py: a fake, as no TronGrid runs here; its answers are the
documented ones and the recorded 403 body): the chain slows down instead of failing, and nothing is lost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chains.budget import DAY_S, BudgetLimits, RequestBudget
from chains.rpc import RpcClient
from chains.rpc_errors import OverBudget, RpcUnavailable
from chains.scanning import ChainHalted
from screener.cli.runtime import _text as status_text
from screener.daemon.usage import flush_usage, seed_budgets
from screener.db import make_engine, session_scope, upgrade
from screener.ops.metrics import ProcessStats, exposition
from screener.ops.status import StatusSnapshot, collect
from screener.pipeline.tick import tick
from tests.support.anvil import run_anvil
from tests.support.chain_env import (
    CHAIN,
    FAST_RETRY,
    ChainEnv,
    deposit_address,
    ground_truth,
    keys,
    make_env,
    mark_credited,
    recorded,
    register,
    runtime,
)
from tests.support.proxy import Fault, FaultProxy
from tests.support.trongrid import FakeClock, TronGridGate

TO = deposit_address(2)
DAY = date(2026, 12, 1)
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def exposition_has(snap: StatusSnapshot, line: str) -> bool:
    return line in exposition(snap, ProcessStats()).splitlines()


# --- the rules --------------------------------------------------------------------------------------------
def test_the_per_second_bucket_paces_and_bursts() -> None:
    budget = RequestBudget(BudgetLimits(requests_per_s=4), now_s=0.0)
    for _ in range(4):  # a full bucket: a burst of one second's worth goes at once
        assert budget.wait_s(0.0, DAY) == 0.0
        budget.spend(0.0, DAY)
    assert budget.wait_s(0.0, DAY) == pytest.approx(0.25)
    assert budget.wait_s(0.25, DAY) == 0.0


def test_a_days_budget_is_paced_over_the_day_then_spent_until_midnight() -> None:
    per_day = 2400  # 100 an hour: the bucket holds an hour's share
    budget = RequestBudget(BudgetLimits(requests_per_day=per_day), now_s=0.0)
    sent = 0
    while budget.wait_s(0.0, DAY) == 0.0 and sent < per_day:
        budget.spend(0.0, DAY)
        sent += 1
    assert sent == 100
    assert budget.wait_s(0.0, DAY) == pytest.approx(DAY_S / per_day)
    now = 0.0
    while sent < per_day:  # the rest of the day, one request per share
        now += budget.wait_s(now, DAY)
        budget.spend(now, DAY)
        sent += 1
    assert math.isinf(budget.wait_s(now + 10_000, DAY)), "spent: no request until the next UTC day"
    assert budget.wait_s(now + 10_000, date(2026, 12, 2)) == 0.0
    assert budget.use().requests_today == 0


def test_throttling_halves_the_rate_and_it_recovers() -> None:
    budget = RequestBudget(BudgetLimits(requests_per_s=8), now_s=0.0)
    budget.slow_down(0.0)
    budget.slow_down(0.0)
    assert budget.rate_factor == 0.25
    for _ in range(8):
        budget.spend(0.0, DAY)
    assert budget.wait_s(0.0, DAY) == pytest.approx(0.5)  # 1 token at 2/s
    assert budget.wait_s(61.0, DAY) == 0.0 and budget.rate_factor == pytest.approx(0.3125)


def test_seeding_and_a_clock_stepped_back() -> None:
    budget = RequestBudget(BudgetLimits(requests_per_day=10), now_s=0.0)
    budget.seed(DAY, 10)
    assert math.isinf(budget.wait_s(0.0, DAY))
    assert math.isinf(budget.wait_s(0.0, date(2026, 11, 30))), "yesterday's clock does not reopen today"


# --- the client ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> Iterator[ChainEnv]:
    with run_anvil() as node:
        chain_env = make_env(node)
        for i in range(8):
            chain_env.pay(chain_env.usdt if i % 2 else chain_env.usdc, i % 5, TO, 10**20 + i)  # above 2^63
            node.mine(12)
        yield chain_env


def test_trongrids_403_is_honoured_by_not_asking(env: ChainEnv, shared_data: Path) -> None:
    """The recorded 403 body says "suspended for 30s": the key is not asked again for 30 s (asking would only
    prolong it), another endpoint serves meanwhile, and the suspended one serves again afterwards."""
    limits = json.loads((shared_data / "peers" / "tron_jsonrpc" / "trongrid_limits.json").read_text())
    body = json.dumps(limits["trongrid_rate_limit_bodies"][0]["body"])
    clock = FakeClock(START)
    with FaultProxy(env.node.url, [Fault("http_body", code=403, message=body, times=1)]) as grid:
        client = RpcClient([grid.url], chain_id=env.node.chain_id, retry=FAST_RETRY)
        client.use_clock(clock.mono, clock.sleep, clock.wall)
        try:
            with pytest.raises(OverBudget, match="not asked again for 30s"):
                client.call("eth_blockNumber", [])
            clock.sleep(29)
            with pytest.raises(OverBudget, match="suspended us"):
                client.call("eth_blockNumber", [])
            assert grid.injected["http_body"] == 1 and not grid.requests, "nothing was sent during the suspension"
            clock.sleep(1)
            assert int(client.call("eth_blockNumber", []), 16) == env.node.block_number()
            (stats,) = client.stats().values()
            assert stats.rate_limited == 1 and stats.refused == 0 and stats.over_budget == 1
        finally:
            client.close()


def _tick_through(engine: Engine, env: ChainEnv, rt_settings: object, clock: FakeClock | None, max_ticks: int) -> int:
    """Tick until idle; an endpoint out of budget or throttled fails a tick, never halts it. Returns failed ticks."""
    rt = runtime(rt_settings, CHAIN)  # type: ignore[arg-type]
    if clock is not None:
        rt.client.use_clock(clock.mono, clock.sleep, clock.wall)
    failed = 0
    now_fn = clock.wall if clock is not None else (lambda: datetime.now(UTC))
    try:
        for _ in range(max_ticks):
            try:
                result = tick(engine, rt, now_fn, mark_credited)
            except ChainHalted:
                raise
            except RpcUnavailable:
                failed += 1  # the daemon would wait a poll interval: so does this loop
                clock.sleep(600) if clock is not None else time.sleep(0.25)
                continue
            if result.status == "idle":
                return failed
        raise AssertionError(f"not caught up after {max_ticks} ticks ({failed} failed)")
    finally:
        rt.close()


def test_a_trongrid_like_limiter_slows_the_chain_down_and_nothing_is_lost(env: ChainEnv, tmp_path: Path) -> None:
    """A key shared with someone else: our budget allows more than the provider does. Its 503s and its 403
    suspension slow the chain down (the budget's rate halves); every tick that fails is retried, none halts."""
    # Real time (a second of the provider's window is a second here), so the chain is read in a few ranges.
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    gate = TronGridGate(qps=8, suspend_s=1)
    with FaultProxy(env.node.url, gate=gate) as grid:
        url = {"url": grid.url, "requests_per_s": 20}
        settings = env.settings(str(engine.url), rpc_urls=[url], max_block_range=40, confirmations=0)
        register(engine, settings, CHAIN, {TO: "acct"})
        _tick_through(engine, env, settings, None, max_ticks=400)
    assert gate.answered[503] + gate.answered[403] >= 1, "the limiter never refused: the test proves nothing"
    truth = ground_truth(env.node, {env.usdt.lower(), env.usdc.lower()}, {TO})
    assert keys(recorded(engine, CHAIN)) == truth and len(truth) == 8
    assert {d.amount_raw for d in recorded(engine, CHAIN)} == {10**20 + i for i in range(8)}


def test_a_daily_budget_stretches_the_catch_up_over_days_and_status_shows_it(env: ChainEnv, tmp_path: Path) -> None:
    """requests_per_day = 100 (the least allowed) on a simulated clock: after a burst of 32 requests the catch-up is
    paced to the day's share (about 4 an hour) and runs into the next UTC day; the provider never sees more than 100
    requests in a day, so it never refuses; every deposit is recorded; status, metrics and the usage table count
    the day's requests."""
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    clock = FakeClock(START)
    gate = TronGridGate(qps=20, per_day=100, over_day_qps=0, clock=clock.mono, wall=clock.wall)
    with FaultProxy(env.node.url, gate=gate) as grid:
        url = {"url": grid.url, "requests_per_s": 10, "requests_per_day": 100}
        settings = env.settings(str(engine.url), rpc_urls=[url], max_block_range=3, confirmations=0)
        register(engine, settings, CHAIN, {TO: "acct"})
        failed = _tick_through(engine, env, settings, clock, max_ticks=2000)
        rt = runtime(settings, CHAIN)
        flushed: dict[str, tuple[date, int]] = {}
        rt.client.use_clock(clock.mono, clock.sleep, clock.wall)
        seed_budgets(engine, CHAIN, rt.client, clock.wall().date(), flushed)
        rt.client.call("eth_blockNumber", [])
        flush_usage(engine, CHAIN, rt.client, flushed, clock.wall())
        rt.close()
    assert failed > 0, "the budget never made a tick wait: the test proves nothing"
    assert not gate.answered, f"the provider refused {dict(gate.answered)}: the budget let too much through"
    assert max(gate.served_per_day.values()) <= 100 and len(gate.served_per_day) >= 2, dict(gate.served_per_day)
    truth = ground_truth(env.node, {env.usdt.lower(), env.usdc.lower()}, {TO})
    assert keys(recorded(engine, CHAIN)) == truth and len(truth) == 8
    with session_scope(engine) as session:
        snap = collect(session, settings, clock.wall())
    (view,) = snap.rpc_budgets
    assert view.requests_per_day == 100 and view.requests_today == 2  # its eth_chainId check and the call
    assert f"rpc budget: {CHAIN} {view.endpoint}: 2/100 today (2%), 10/s" in status_text(snap, 24.0)
    assert exposition_has(snap, f'screener_rpc_requests_today{{chain="{CHAIN}",endpoint="{view.endpoint}"}} 2')


def test_requests_per_poll_are_as_documented(env: ChainEnv, tmp_path: Path) -> None:
    """The README's "Requests per poll": HTTP requests (as the budget counts them) of a steady-state tick and of an
    index scan run. Counts, not timings: a change that adds a request per poll fails here and in the budget."""
    from screener.decide.rescreen import make_index_hook
    from screener.indexes.sources import index_source
    from screener.indexes.store import scan_blacklist_index, scan_mixer_index

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    url = {"url": env.node.url, "requests_per_day": 10**9}
    settings = env.settings(str(engine.url), rpc_urls=[url], confirmations=0, max_block_range=100_000)
    register(engine, settings, CHAIN, {TO: "acct"})
    rt = runtime(settings, CHAIN)

    def spent(action: object) -> int:
        (before,) = rt.client.budget_use().values()
        n = before.requests_today
        action()  # type: ignore[operator]
        (after,) = rt.client.budget_use().values()
        return after.requests_today - n

    def one_tick() -> None:
        tick(engine, rt, lambda: datetime.now(UTC), mark_credited)

    try:
        for _ in range(3):
            one_tick()  # caught up; the once-per-runtime checks (chain id, token code and decimals) are done
        assert spent(one_tick) == 2, "an idle tick: the heads"
        env.node.mine(1)
        assert spent(one_tick) == 4, "a new range: heads, logs with the range's last block, anchor and headers"
        env.pay(env.usdt, 0, TO, 5)
        assert spent(one_tick) == 4, "its deposits' transactions ride in the headers' batch"
        source = index_source(rt, settings)
        hook = make_index_hook(settings)
        scan = lambda: scan_blacklist_index(engine, source, settings, datetime.now(UTC), on_new_facts=hook)  # noqa: E731
        spent(scan)
        env.node.mine(5)
        assert spent(scan) == 2, "an index scan run: its head and one range's logs with the range's last block"
        mixer = lambda: scan_mixer_index(engine, source, settings, datetime.now(UTC), on_new_facts=hook)  # noqa: E731
        spent(mixer)
        env.node.mine(5)
        assert spent(mixer) == 2
    finally:
        rt.close()


def test_a_suspension_is_capped_and_shared_by_the_poll_and_index_clients(env: ChainEnv) -> None:
    """A Retry-After of a billion seconds passes the endpoint over for max_suspension_s, not for good; the index
    runtime's client (share_budgets) does not ask the suspended key meanwhile either."""
    clock = FakeClock(START)
    with FaultProxy(env.node.url, [Fault("http429", times=1, retry_after_s=10**9)]) as grid:
        poll = RpcClient([grid.url], chain_id=env.node.chain_id, retry=FAST_RETRY, limits=[BudgetLimits(5, None)])
        index = RpcClient([grid.url], chain_id=env.node.chain_id, retry=FAST_RETRY, limits=[BudgetLimits(5, None)])
        for client in (poll, index):
            client.use_clock(clock.mono, clock.sleep, clock.wall)
        index.share_budgets(poll)
        try:
            with pytest.raises(OverBudget, match="not asked again for 900s"):
                poll.call("eth_blockNumber", [])
            with pytest.raises(OverBudget, match="suspended us"):
                index.call("eth_blockNumber", [])
            assert grid.injected["http429"] == 1 and not grid.requests
            clock.sleep(FAST_RETRY.max_suspension_s)
            assert int(index.call("eth_blockNumber", []), 16) == env.node.block_number()
        finally:
            poll.close()
            index.close()
