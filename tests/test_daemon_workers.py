"""Real `screener run` processes against one anvil: nothing lost or doubled when a worker is SIGKILLed while
another runs (PostgreSQL leases), or when a worker is stopped with SIGTERM in the middle of a catch-up."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.devnet import deploy
from screener.demo.devnet.anvil import Anvil, free_port, run_anvil
from screener.models.chain import ScanCursor
from screener.models.daemon import Lease
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, LedgerAccount, LedgerTransfer
from screener_base.clock import utc_now
from tests.support.daemon_proc import DaemonProc, start_daemon, wait_for


@dataclass(frozen=True)
class Paid:
    tx_hash: str
    block: int
    account: str
    amount_raw: int


@pytest.fixture
def node() -> Iterator[Anvil]:
    with run_anvil() as n:
        yield n


def _pay(world: dw.DemoWorld, count: int, blocks_between: int, start: int = 0) -> list[Paid]:
    """``count`` clean deposits round-robin over the demo accounts, ``blocks_between`` empty blocks after each."""
    accounts = sorted(set(dw.DEPOSIT_ADDRESSES.values()))
    out = []
    for i in range(start, start + count):
        account = accounts[i % len(accounts)]
        amount = (i + 1) * dw.UNIT + i  # distinct, exact amounts
        tx = deploy.transfer(world.node, world.tokens.usdt, world.senders[i % 3], world.address_of(account), amount)
        out.append(Paid(tx.tx_hash, tx.block_number, account, amount))
        if blocks_between:
            world.node.mine(blocks_between)
    world.node.mine(2)  # past the confirmations
    return out


def _deposits(engine: Engine) -> list[Deposit]:
    with session_scope(engine) as s:
        return list(s.exec(select(Deposit)))


def _all_decided(engine: Engine, paid: list[Paid]) -> bool:
    got = {d.tx_hash: d.status for d in _deposits(engine)}
    return all(got.get(p.tx_hash) == "credited" for p in paid)


def _cursor(engine: Engine) -> int | None:
    with session_scope(engine) as s:
        row = s.get(ScanCursor, dw.DEMO_CHAIN)
        return row.next_block if row else None


def assert_exactly_once(engine: Engine, paid: list[Paid]) -> None:
    """Each payment is one deposit, credited once in the ledger and once in the audit trail, nothing else."""
    deposits = _deposits(engine)
    assert sorted((d.tx_hash, d.amount_raw) for d in deposits) == sorted((p.tx_hash, p.amount_raw) for p in paid)
    assert all(d.status == "credited" and d.verdict == "CREDIT" for d in deposits)
    with session_scope(engine) as s:
        credits = Counter(t.id for t in s.exec(select(LedgerTransfer).where(LedgerTransfer.step == "credit")))
        audited = Counter(e.subject for e in s.exec(select(AuditEvent).where(AuditEvent.kind == "deposit.credited")))
        accounts = {a.name: a.credits_posted for a in s.exec(select(LedgerAccount)) if a.name.startswith("customer:")}
    assert len(credits) == len(paid) and set(credits.values()) == {1}
    assert len(audited) == len(paid) and set(audited.values()) == {1}
    expected: Counter[str] = Counter()
    for p in paid:
        expected[f"customer:{p.account}"] += p.amount_raw
    assert accounts == dict(expected)


def _config(tmp_path: Path, name: str, url: str, world: dw.DemoWorld, **daemon: object) -> Path:
    return dw.write_config(
        tmp_path / f"{name}.toml",
        url,
        world,
        daemon={"metrics_port": free_port(), "jitter_s": 0.1, "metrics_interval_s": 1.0, **daemon},
        chain={"poll_interval_s": 0.3, "max_block_range": 3},
    )


@pytest.mark.postgres
def test_two_workers_one_killed_nothing_lost_or_doubled(node: Anvil, pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    world = dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    daemons: dict[str, DaemonProc] = {}
    try:
        for name in ("w1", "w2"):
            config = _config(tmp_path, name, pg_url, world, worker_id=name, lease_ttl_s=3.0)
            daemons[name] = start_daemon(config, tmp_path / f"{name}.log")
        first = _pay(world, 24, blocks_between=2)
        wait_for(lambda: sum(d.status == "credited" for d in _deposits(engine)) >= 4, "a few deposits decided")
        with session_scope(engine) as s:
            lease = s.get(Lease, f"chain:{dw.DEMO_CHAIN}")
            assert lease is not None and lease.holder in daemons
            victim, token = lease.holder, lease.token
        survivor = next(n for n in daemons if n != victim)
        daemons[victim].kill()  # SIGKILL, mid catch-up: its open transaction (if any) is rolled back

        def taken_over() -> bool:
            with session_scope(engine) as s:
                row = s.get(Lease, f"chain:{dw.DEMO_CHAIN}")
                return row is not None and row.holder == survivor and row.token > token

        wait_for(taken_over, f"{survivor} takes the chain lease", daemons=(daemons[survivor],))
        wait_for(lambda: _all_decided(engine, first), "every deposit decided", daemons=(daemons[survivor],))
        second = _pay(world, 8, blocks_between=0, start=24)
        wait_for(lambda: _all_decided(engine, second), "later deposits decided", daemons=(daemons[survivor],))
        assert daemons[survivor].stop() == 0
        assert_exactly_once(engine, first + second)
        assert "stop requested" in daemons[survivor].log_text()
    finally:
        for d in daemons.values():
            d.kill()
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigterm_during_catch_up_then_restart(node: Anvil, backend: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    world = dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    # Enough empty blocks (~170 ticks of 3) that a loaded CI machine cannot finish before the SIGTERM lands.
    paid = _pay(world, 40, blocks_between=12)
    safe_head = node.block_number() - 1
    config = _config(tmp_path, "c", url, world, max_tick_s=600.0)
    daemon = start_daemon(config, tmp_path / "one.log")
    try:
        start = min(p.block for p in paid)
        wait_for(lambda: (_cursor(engine) or 0) > start + 30, "catch-up under way", daemons=(daemon,), interval_s=0.02)
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
    stopped_at = _cursor(engine)
    assert stopped_at is not None and stopped_at <= safe_head, "catch-up finished before SIGTERM; add blocks"
    # Whatever committed is whole: every payment below the cursor is recorded and decided, none above it.
    got = {d.tx_hash: d.status for d in _deposits(engine)}
    assert got == {p.tx_hash: "credited" for p in paid if p.block < stopped_at}
    assert "stop requested" in daemon.log.read_text()

    restarted = start_daemon(config, tmp_path / "two.log")
    try:
        wait_for(lambda: _all_decided(engine, paid), "catch-up completed after restart", daemons=(restarted,))
        assert restarted.stop() == 0
    finally:
        restarted.kill()
    assert_exactly_once(engine, paid)
    with session_scope(engine) as s:
        # The restart resumed at the cursor: no range was scanned twice into the ledger, and no worker is left.
        assert s.execute(sa.text("SELECT count(*) FROM workers WHERE stopped_at IS NULL")).scalar_one() == 0
    engine.dispose()


def test_tick_under_a_lost_lease_commits_nothing(node: Anvil, sqlite_engine: Engine) -> None:
    """The fence is checked inside the pipeline's own transaction: a worker whose lease was taken over while
    it read the chain commits neither deposits nor the cursor."""
    from datetime import timedelta

    from screener.daemon.leases import LeaseLost, fenced, make_identity, try_acquire
    from screener.decide.decide import make_decider
    from screener.indexes.sources import runtime_lookup
    from screener.pipeline.runtime import build_chain_runtime
    from screener.pipeline.tick import tick
    from screener.settings import load_settings

    engine, world = sqlite_engine, dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    paid = _pay(world, 3, blocks_between=0)
    settings = load_settings(dw.write_config(node_config_path(engine), str(engine.url), world))
    runtime = build_chain_runtime(settings, dw.DEMO_CHAIN)
    decide = make_decider(settings, runtime_lookup(settings, {dw.DEMO_CHAIN: runtime}))
    old, new, now = make_identity("old"), make_identity("new"), utc_now()
    name = f"chain:{dw.DEMO_CHAIN}"
    stale = try_acquire(engine, name, old, now, 5.0)
    assert stale is not None and try_acquire(engine, name, new, now + timedelta(seconds=6), 5.0) is not None
    try:
        with pytest.raises(LeaseLost, match="taken over by new"), fenced(engine, stale, old):
            tick(engine, runtime, decide=decide)
        assert _deposits(engine) == [] and _cursor(engine) is None
        fresh = try_acquire(engine, name, new, now + timedelta(seconds=7), 5.0)
        assert fresh is not None
        with fenced(engine, fresh, new):
            for _ in range(10):  # bounded: a few ranges reach the safe head
                if tick(engine, runtime, decide=decide).status == "idle":
                    break
    finally:
        runtime.close()
    assert_exactly_once(engine, paid)


def node_config_path(engine: Engine) -> Path:
    db = engine.url.database
    assert db is not None
    return Path(db).with_suffix(".toml")
