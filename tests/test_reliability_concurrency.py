"""Concurrency on PostgreSQL: workers and reviewers at the same time, on the same rows.

1. Two real `screener run` processes share two chains (two chain names on one anvil, so both workers write to
   the ledger at once) while deposits keep arriving, and reviewers release, approve and reject holds as they
   appear: three reviewer threads (each its own engine and sessions) plus `screener holds ...` subprocesses,
   often aiming at the same hold at the same moment.
2. Two pipeline workers tick the SAME chain at once with no lease (what a lease expiring mid-tick looks like)
   while reviewers act: the cursor's compare-and-set and the unique deposit key make the overlap harmless.

Afterwards: every canonical payment is exactly one deposit with the right verdict (tests/support/ground_truth),
no hold was resolved twice (by the reviewers' own successes and by the audit trail), BLOCK releases had two
operators, no balance is negative, and `screener audit verify` passes.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from screener.db import make_engine, session_scope
from screener.decide import credit
from screener.decide.decide import make_decider
from screener.demo import world as dw
from screener.demo.devnet.anvil import Anvil, free_port, run_anvil
from screener.indexes.sources import runtime_lookup
from screener.models.daemon import Lease
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold
from screener.pipeline.addresses import add_address
from screener.pipeline.runtime import build_chain_runtime
from screener.pipeline.tick import tick
from screener.settings import Settings, load_settings
from screener_base.addresses import Family
from screener_base.clock import utc_now
from screener_base.errors import ReviewError, ScreenerError
from tests.support import cli_fork
from tests.support import ground_truth as gt
from tests.support.daemon_proc import DaemonProc, start_daemon, wait_for
from tests.support.proxy import Fault, FaultProxy
from tests.support.reliability import SCREENER, clean_env, record_figures

pytestmark = pytest.mark.postgres

LONG = os.environ.get("SCREENER_LONG") == "1"
SECOND_CHAIN = "ethereum"  # a registry name whose USDT/USDC also have 6 decimals, pointed at the same anvil
SECOND_ID = 31338  # what the proxy in front of that anvil answers to eth_chainId
UNRESOLVED = ("open", "awaiting_approval")


@pytest.fixture
def node() -> Iterator[Anvil]:
    with run_anvil() as n:
        yield n


@dataclass
class Outcomes:
    """What reviewers saw: each success that resolved a hold, and each refusal (a lost race)."""

    resolved: list[tuple[int, str, str]] = field(default_factory=list)  # (hold id, action, operator)
    requested: list[tuple[int, str]] = field(default_factory=list)  # four-eyes release requests
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hold_id: int, action: str, operator: str, state: str) -> None:
        with self.lock:
            if state in ("released", "rejected"):
                self.resolved.append((hold_id, action, operator))
            else:
                self.requested.append((hold_id, operator))

    def refuse(self, why: str) -> None:
        with self.lock:
            self.refused[why] += 1


def _unresolved(engine: Engine) -> list[Hold]:
    with session_scope(engine) as s:
        return list(s.exec(select(Hold).where(col(Hold.state).in_(UNRESOLVED)).order_by(col(Hold.id))))


def _choose(rng: random.Random, holds: list[Hold]) -> Hold:
    # half the time everyone goes for the oldest hold: reviewers collide on purpose
    return holds[0] if rng.random() < 0.5 else rng.choice(holds)


def _act(engine: Engine, hold: Hold, operator: str, rng: random.Random, settings: Settings, out: Outcomes) -> None:
    """Every third hold is rejected, the others released (and approved when four-eyes applies); sometimes a
    reviewer does the other thing, so releases and rejections also race each other."""
    now = utc_now()
    reject = (hold.id or 0) % 3 == 0 if rng.random() < 0.8 else rng.random() < 0.5
    try:
        # Releases and approvals go through the real credit gate (a listed sender is refused, then rejected).
        if hold.state == "awaiting_approval" and not reject:
            result, action = credit.approve(engine, hold.id or 0, operator, now, settings, None), "approve"
        elif reject:
            target = "blocked" if hold.verdict == "BLOCK" else rng.choice(["blocked", "return"])
            result = credit.reject(engine, hold.id or 0, "test", target, operator, settings, now)
            action = "reject"
        else:
            result, action = credit.release(engine, hold.id or 0, "test", operator, settings, now), "release"
        out.add(hold.id or 0, action, operator, result.state)
    except ReviewError as exc:
        out.refuse(str(exc).split(";")[0].split(" ", 2)[-1][:40])


def reviewer(
    name: str, url: str, settings: Settings, seed: int, done: Callable[[], bool], out: Outcomes, deadline: float
) -> None:
    """Act on unresolved holds until ``done()`` and none is left; each action in its own transaction."""
    engine = make_engine(url)
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline:
            # done() before the read: a hold committed between an empty read and done() would be left behind.
            finished = done()
            holds = _unresolved(engine)
            if not holds:
                if finished:
                    return
                time.sleep(0.05)
                continue
            _act(engine, _choose(rng, holds), name, rng, settings, out)
    finally:
        engine.dispose()


def cli_reviewer(config: Path, url: str, seed: int, done: Callable[[], bool], out: Outcomes, deadline: float) -> None:
    """The same through `screener holds ...` processes (slower: a few rounds, racing the threads)."""
    engine = make_engine(url)
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline and not done():
            holds = _unresolved(engine)
            if not holds:
                time.sleep(0.1)
                continue
            hold, operator = _choose(rng, holds), rng.choice(["cli-erin", "cli-frank"])
            label = f"H-{hold.id}"
            if hold.state == "awaiting_approval":
                args, action = ["holds", "approve", label], "approve"
            elif hold.verdict == "BLOCK" or rng.random() < 0.5:
                args, action = ["holds", "reject", label, "--reason", "cli", "--to", "blocked"], "reject"
            else:
                args, action = ["holds", "release", label, "--reason", "cli"], "release"
            res = cli_fork.run(
                [str(SCREENER), "--config", str(config), "--operator", operator, *args],
                capture_output=True,
                text=True,
                env=clean_env(),
                timeout=120,
            )
            if res.returncode == 0:
                state = "released" if "credited" in res.stdout else "rejected" if "rejected" in res.stdout else "asked"
                out.add(hold.id or 0, action, operator, state)
            else:
                assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
                out.refuse("cli: " + res.stderr.split(":", 2)[1][:40])
    finally:
        engine.dispose()


def check_resolutions(engine: Engine, out: Outcomes) -> dict[str, int]:
    """No hold resolved twice (reviewers' successes and audit events agree), four-eyes held."""
    with session_scope(engine) as s:
        holds = {h.id: h for h in s.exec(select(Hold))}
        kinds = ["hold.released", "hold.rejected", "hold.cleared"]
        events = list(s.exec(select(AuditEvent).where(col(AuditEvent.kind).in_(kinds))))
    # A hold the system cleared (it was only "unavailable" and then screened clean) has no reviewer success.
    cleared = {int(e.subject.split(":")[1]) for e in events if e.kind == "hold.cleared"}
    successes = Counter(hold_id for hold_id, _, _ in out.resolved)
    successes.update(cleared)
    audited = Counter(int(e.subject.split(":")[1]) for e in events)
    assert [h for h, n in successes.items() if n > 1] == [], f"resolved twice: {out.resolved}"
    assert [h for h, n in audited.items() if n > 1] == [], "a hold has two resolution events"
    for hold_id, hold in holds.items():
        resolved = hold.state in ("released", "rejected")
        assert successes[hold_id] == audited[hold_id] == int(resolved), (hold_id, hold.state, successes, audited)
        if hold.state == "released" and hold.verdict == "BLOCK":
            assert hold.release_requested_by and hold.resolved_by
            assert hold.release_requested_by.strip().casefold() != hold.resolved_by.strip().casefold()
    return {
        "holds": len(holds),
        "released": sum(h.state == "released" for h in holds.values()),
        "rejected": sum(h.state == "rejected" for h in holds.values()),
        "four_eyes_requests": len(out.requested),
        "cleared_by_rescreen": len(cleared),
        "refused_races": sum(out.refused.values()),
    }


def _all_decided(engine: Engine, node: Anvil, payments: list[gt.Payment], chains: tuple[str, ...]) -> bool:
    want = set(gt.canonical(node, payments))
    with session_scope(engine) as s:
        for chain in chains:
            rows = s.exec(select(Deposit).where(Deposit.chain == chain, Deposit.status != "recorded"))
            if {(d.tx_hash, d.log_index) for d in rows} != want:
                return False
    return True


def _audit_verify(config: Path) -> None:
    res = cli_fork.run(
        [str(SCREENER), "--config", str(config), "audit", "verify"], capture_output=True, text=True, env=clean_env()
    )
    assert res.returncode == 0 and res.stdout.startswith("ok: "), res.stdout + res.stderr


def _register(engine: Engine, chain: str) -> None:
    with session_scope(engine) as s:
        for address, account in dw.DEPOSIT_ADDRESSES.items():
            add_address(s, lambda _c: Family.EVM, chain, address, account, utc_now())


def test_two_daemons_and_reviewers(node: Anvil, pg_url: str, tmp_path: Path) -> None:
    deposits = 40 if LONG else 16
    engine = make_engine(pg_url)
    world = dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    _register(engine, SECOND_CHAIN)
    fast = {"poll_interval_s": 0.3, "max_block_range": 8}
    # The second chain is the same node behind a proxy that reports another chain id: two enabled tables may
    # not share a chain id (a config error), and the test wants every transfer seen by two chains.
    second_rpc = FaultProxy(node.url, [Fault("wrong_chain", methods=frozenset({"eth_chainId"}), chain_id=SECOND_ID)])
    second_rpc.__enter__()
    second = {**fast, "rpc_urls": [second_rpc.url], "chain_id": SECOND_ID}
    # w1 polls only the first chain, w2 both: so two workers surely write at once, and contend for one lease
    configs = [
        dw.write_config(
            tmp_path / f"{name}.toml",
            pg_url,
            world,
            daemon={"worker_id": name, "metrics_port": free_port(), "jitter_s": 0.05, "lease_ttl_s": 5.0},
            chain=fast,
            **{f"chains.{SECOND_CHAIN}": dw.chain_config(world, enabled=name == "w2", **second)},
        )
        for name in ("w1", "w2")
    ]
    settings = load_settings(configs[0])
    payer = gt.Payer(world, random.Random(20260701))
    sending = threading.Event()
    out = Outcomes()
    deadline = time.monotonic() + (900 if LONG else 240)
    chains = (dw.DEMO_CHAIN, SECOND_CHAIN)

    def done() -> bool:
        return not sending.is_set() and _all_decided(engine, node, payer.sent, chains)

    daemons: list[DaemonProc] = []
    threads = [
        threading.Thread(target=reviewer, args=(n, pg_url, settings, i, done, out, deadline), name=n)
        for i, n in enumerate(["ana", "ben", "cho"])
    ] + [threading.Thread(target=cli_reviewer, args=(configs[0], pg_url, 99, done, out, deadline), name="cli")]
    try:
        daemons = [start_daemon(c, tmp_path / f"{c.stem}.log") for c in configs]
        sending.set()
        for t in threads:
            t.start()
        for i in range(deposits):
            payer.pay(gt.OFAC if i == 1 else gt.CLEAN if i == 0 else None)
            node.mine(1)
        node.mine(2)
        sending.clear()
        wait_for(lambda: done() and not _unresolved(engine), "all decided and reviewed", 300, tuple(daemons))
        with session_scope(engine) as s:
            holders = {row.name: row.holder for row in s.exec(select(Lease)) if row.name.startswith("chain:")}
        assert holders[f"chain:{SECOND_CHAIN}"] == "w2", holders
        for t in threads:
            t.join(timeout=120)
            assert not t.is_alive(), f"reviewer {t.name} did not finish"
        for d in daemons:
            assert d.stop() == 0, d.log_text()[-3000:]
        for chain in chains:
            checked = gt.check(engine, node, payer.sent, chain)
            assert checked.deposits == len(gt.canonical(node, payer.sent))
        figures = check_resolutions(engine, out)
        _audit_verify(configs[1])
        assert figures["released"] > 0 and figures["rejected"] > 0 and figures["refused_races"] > 0, figures
        record_figures(
            "concurrency_daemons",
            {**figures, "deposits_per_chain": checked.deposits, "workers": 2, "chain_leases": holders},
        )
    finally:
        sending.clear()
        for d in daemons:
            d.kill()
        second_rpc.stop()
        engine.dispose()


def test_two_tickers_on_one_chain_without_a_lease(node: Anvil, pg_url: str, tmp_path: Path) -> None:
    deposits = 40 if LONG else 20
    engine = make_engine(pg_url)
    world = dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    config = dw.write_config(tmp_path / "c.toml", pg_url, world, chain={"max_block_range": 3})
    settings = load_settings(config)
    payer = gt.Payer(world, random.Random(7))
    sending = threading.Event()
    sending.set()
    out = Outcomes()
    statuses: Counter[str] = Counter()
    errors: list[BaseException] = []
    deadline = time.monotonic() + (600 if LONG else 180)

    def done() -> bool:
        return not sending.is_set() and _all_decided(engine, node, payer.sent, (dw.DEMO_CHAIN,))

    def ticker(seed: int) -> None:
        own = make_engine(pg_url)
        rt = build_chain_runtime(settings, dw.DEMO_CHAIN)
        decide = make_decider(settings, runtime_lookup(settings, {dw.DEMO_CHAIN: rt}))
        try:
            while time.monotonic() < deadline and not done():
                try:
                    statuses[tick(own, rt, decide=decide).status] += 1
                except ScreenerError as exc:  # a flaky read is retried; anything else is a failure
                    statuses[type(exc).__name__] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            rt.close()
            own.dispose()

    threads = [threading.Thread(target=ticker, args=(i,)) for i in range(2)] + [
        threading.Thread(target=reviewer, args=(n, pg_url, settings, 10 + i, done, out, deadline))
        for i, n in enumerate(["ana", "ben"])
    ]
    for t in threads:
        t.start()
    try:
        for i in range(deposits):
            payer.pay(gt.OFAC if i == 0 else None)
            node.mine(1)
        node.mine(2)
    finally:
        sending.clear()
        for t in threads:
            t.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    wait_for(lambda: not _unresolved(engine), "reviewers finished", 60)
    checked = gt.check(engine, node, payer.sent)
    figures = check_resolutions(engine, out)
    _audit_verify(config)
    assert statuses["conflict"] > 0 or statuses["scanned"] > 0, statuses
    record_figures(
        "concurrency_tickers",
        {**figures, "deposits": checked.deposits, "tick_statuses": dict(statuses), "workers": 2},
    )
    engine.dispose()
