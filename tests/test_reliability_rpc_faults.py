"""RPC faults and reorgs: the full pipeline (scan, the real decider, review, ledger, audit) behind fault-injecting
proxies in front of anvil, while deposits arrive and the chain reorganises at random depths.

Endpoints (the order shuffled by the seed):
- a faulty node: connection resets, dropped connections, timeouts, 429 with Retry-After, 5xx, truncated JSON,
  JSON-RPC errors, "range too large" and "too many results" limits, all at random (seeded);
- a load balancer whose answers flip between two nodes 12 blocks apart (every other request), with the
  same faults a little less often;
- a node stuck behind (its head froze when the test started);
- a node on the wrong chain id.
Reorgs: shallow ones (1..confirmations blocks) that drop some payments and move others into other blocks, and
deep ones (beyond the confirmations) over blocks the worker already scanned, with a new payment placed far
below the worker's cursor.

Whatever happens, only the project's own errors come out of a tick, and at the end the database equals the
chain (tests/support/ground_truth.py): every canonical payment exactly once at its current block (no credit
from a replaced block, none from a dropped payment), OFAC-listed senders blocked, mixer-funded ones held, clean
ones credited or held as "unavailable" (fail closed), transfers and balances per state, `audit verify` ok.
The long variant (SCREENER_LONG=1, `make test-long`) runs more steps, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from chains.scanning import DeepReorg
from screener.db import make_engine
from screener.decide.decide import make_decider
from screener.demo import world as dw
from screener.demo.devnet import deploy
from screener.demo.devnet.anvil import Anvil
from screener.indexes.sources import runtime_lookup
from screener.pipeline.runtime import build_chain_runtime
from screener.pipeline.tick import tick
from screener.settings import load_settings
from screener_base.clock import utc_now
from screener_base.errors import ScreenerError
from tests.support import cli_fork
from tests.support import ground_truth as gt
from tests.support.chain_env import FAST_RETRY
from tests.support.proxy import Fault, FaultProxy
from tests.support.reliability import SCREENER, clean_env, record_figures

LONG = os.environ.get("SCREENER_LONG") == "1"
CONFIRMATIONS = 3
FLIP_LAG = 12
LOGS = frozenset({"eth_getLogs"})


def random_faults(p: float) -> list[Fault]:
    """Every kind of transient fault, each striking a request with probability ``p`` (seeded proxy RNG)."""
    return [
        Fault("reset", probability=p),
        Fault("drop", probability=p),
        Fault("timeout", probability=p / 3, delay_s=0.5),
        Fault("http429", probability=p, retry_after_s=0.05),
        Fault("http500", probability=p),
        Fault("truncate", probability=p),
        Fault("rpc_error", probability=p, code=-32603, message="internal error"),
        Fault("range_limit", probability=0.5, max_span=4, style="alchemy"),
        Fault("result_limit", probability=0.5, max_results=2, methods=LOGS),
    ]


class Run:
    """One seeded run: the world, the proxies, a worker's runtime, and what happened."""

    def __init__(self, node: Anvil, url: str, tmp_path: Path, seed: int) -> None:
        self.node, self.rng = node, random.Random(seed)
        self.world = dw.build_world(node)
        self.engine: Engine = make_engine(url)
        dw.prepare_database(self.engine, utc_now())
        self.payer = gt.Payer(self.world, random.Random(seed + 1))
        self.payer.prepare()  # mixer-funded senders exist before any reorg can remove their withdrawals
        node.mine(CONFIRMATIONS + 2)
        self.proxies = [
            FaultProxy(node.url, random_faults(0.08), seed=seed),
            FaultProxy(node.url, random_faults(0.05), flip_lag=FLIP_LAG, seed=seed + 2),
            FaultProxy(node.url, stuck_at=node.block_number() - 1),
            FaultProxy(node.url, [Fault("wrong_chain", chain_id=1)]),
        ]
        urls = [p.url for p in self.proxies]
        self.rng.shuffle(urls)
        self.config = dw.write_config(
            tmp_path / "c.toml",
            url,
            self.world,
            chain={
                "rpc_urls": urls,
                "confirmations": CONFIRMATIONS,
                "request_timeout_s": 0.3,
                "max_block_range": 10,
            },
        )
        self.settings = load_settings(self.config)
        self.rt = build_chain_runtime(self.settings, dw.DEMO_CHAIN, retry=FAST_RETRY)
        self.decide = make_decider(self.settings, runtime_lookup(self.settings, {dw.DEMO_CHAIN: self.rt}))
        self.ticks: Counter[str] = Counter()
        self.reorgs: list[int] = []
        self.dropped = 0
        self.halted = 0

    def __enter__(self) -> Run:
        for p in self.proxies:
            p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rt.close()
        for p in self.proxies:
            p.stop()
        self.engine.dispose()

    # --- the worker --------------------------------------------------------------------------------------
    def tick(self) -> str:
        try:
            status = tick(self.engine, self.rt, decide=self.decide).status
            self.halted = 0
        except DeepReorg as exc:  # a person must act: with reorgs kept above decided blocks, a failure here
            self.halted += 1
            assert self.halted < 5, f"the chain halted: {exc}"
            status = type(exc).__name__
        except ScreenerError as exc:  # the project's own errors only: anything else fails the test
            status = type(exc).__name__
        self.ticks[status] += 1
        return status

    def settle(self, max_ticks: int) -> None:
        """Tick until caught up with every payment decided (faults stay on)."""
        for _ in range(max_ticks):
            if self.tick() == "idle" and self._all_decided():
                return
        raise AssertionError(f"not settled after {max_ticks} ticks: {dict(self.ticks)}")

    def _all_decided(self) -> bool:
        from sqlmodel import select

        from screener.db import session_scope
        from screener.models.deposits import Deposit

        want = set(gt.canonical(self.node, self.payer.sent))
        with session_scope(self.engine) as s:
            got = {(d.tx_hash, d.log_index) for d in s.exec(select(Deposit).where(Deposit.status != "recorded"))}
        return want <= got

    # --- the chain ---------------------------------------------------------------------------------------
    def shallow_reorg(self) -> None:
        """Replace the newest 1..CONFIRMATIONS blocks: clean payments in them move (new offsets), others vanish."""
        node, depth = self.node, self.rng.randint(1, CONFIRMATIONS)
        first = node.block_number() - depth + 1
        moved = []
        for p in self.payer.sent:
            receipt = node.rpc("eth_getTransactionReceipt", [p.tx_hash])
            if receipt and int(receipt["blockNumber"], 16) >= first:
                if p.kind == gt.CLEAN and self.rng.random() < 0.7:
                    moved.append((int(receipt["blockNumber"], 16), int(receipt["transactionIndex"], 16), p))
                else:
                    self.dropped += 1
        offsets = sorted(self.rng.randrange(depth) for _ in moved)  # keeps each sender's nonce order
        include = [
            [node.rpc("eth_getRawTransactionByHash", [p.tx_hash]), off]
            for (_, _, p), off in zip(sorted(moved, key=lambda m: m[:2]), offsets, strict=True)
        ]
        node.rpc("anvil_reorg", [depth, include])
        self.reorgs.append(depth)

    def deep_reorg(self) -> None:
        """Beyond the confirmations, over empty blocks the worker has scanned; a new payment lands in them."""
        node, depth = self.node, self.rng.randint(CONFIRMATIONS + 1, CONFIRMATIONS + 6)
        node.mine(depth + CONFIRMATIONS)
        self.settle(400)  # the empty blocks are scanned: the reorg reaches below the cursor
        sender = self.rng.choice(self.world.senders)
        account = self.rng.choice(sorted(set(dw.DEPOSIT_ADDRESSES.values())))
        symbol, token = self.rng.choice([("USDT", self.world.tokens.usdt), ("USDC", self.world.tokens.usdc)])
        amount = self.rng.randrange(1, 1000) * dw.UNIT + 7
        data = deploy.calldata(
            "transfer(address,uint256)", ["address", "uint256"], [self.world.address_of(account), amount]
        )
        request = {"from": sender, "to": token, "data": data, "gas": hex(200_000)}
        head = node.block_number()
        node.rpc("anvil_reorg", [depth, [[request, self.rng.randrange(depth)]]])
        tx_hash = _find_tx(node, head - depth + 1, head, sender, data)
        self.payer.sent.append(
            gt.Payment(tx_hash, gt.CLEAN, sender, self.world.address_of(account), account, token, symbol, amount)
        )
        self.reorgs.append(depth)
        node.mine(CONFIRMATIONS)

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.35:
            self.payer.pay()
        elif r < 0.45:
            self.node.mine(self.rng.randint(1, 4))
        elif r < 0.55:
            self.shallow_reorg()
        elif r < 0.58:
            self.deep_reorg()
        else:
            for _ in range(self.rng.randint(1, 3)):
                self.tick()

    def figures(self, checked: gt.Checked) -> dict[str, Any]:
        injected: Counter[str] = Counter()
        for p in self.proxies:
            injected.update(p.injected)
        requests = sum(sum(p.requests.values()) for p in self.proxies)
        return {
            "faults_injected": sum(injected.values()),
            "faults_by_kind": dict(sorted(injected.items())),
            "rpc_requests": requests,
            "reorgs": len(self.reorgs),
            "reorg_depths": dict(sorted(Counter(self.reorgs).items())),
            "payments_sent": len(self.payer.sent),
            "payments_dropped_by_reorgs": self.dropped,
            "ticks": dict(sorted(self.ticks.items())),
            **checked.summary(),
        }


def _find_tx(node: Anvil, low: int, high: int, sender: str, data: str) -> str:
    for n in range(low, high + 1):
        for tx in node.rpc("eth_getBlockByNumber", [hex(n), True])["transactions"]:
            if tx["from"].lower() == sender.lower() and tx["input"] == data:
                return str(tx["hash"]).lower()
    raise AssertionError("the transaction placed by anvil_reorg is not in the new blocks")


def _run(node: Anvil, url: str, tmp_path: Path, seed: int, steps: int) -> dict[str, Any]:
    with Run(node, url, tmp_path, seed) as run:
        run.payer.pay(gt.CLEAN)
        run.payer.pay(gt.OFAC)
        for _ in range(steps):
            run.step()
        for kind in (gt.CLEAN, gt.OFAC, gt.MIXER):  # after the last reorg: each kind surely on the chain
            run.payer.pay(kind)
        run.node.mine(CONFIRMATIONS + 1)
        run.settle(2000)
        checked = gt.check(run.engine, run.node, run.payer.sent)
        res = cli_fork.run(
            [str(SCREENER), "--config", str(run.config), "audit", "verify"],
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        assert res.returncode == 0, res.stderr
        figures = run.figures(checked)
    kinds = figures["faults_by_kind"]
    for kind in ("reset", "drop", "timeout", "http429", "http500", "truncate", "rpc_error", "flip"):
        assert kinds.get(kind, 0) > 0, f"no {kind} fault was injected: {kinds}"
    assert checked.by_kind[gt.OFAC] >= 1 and checked.by_kind[gt.CLEAN] >= 1 and figures["reorgs"] >= 3, figures
    return figures


def test_faults_and_reorgs_keep_the_ground_truth(anvil: Anvil, tmp_path: Path) -> None:
    figures = _run(anvil, f"sqlite:///{tmp_path / 's.db'}", tmp_path, seed=4242, steps=70)
    record_figures("rpc_faults", figures)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faults_and_reorgs_long(anvil: Anvil, tmp_path: Path, backend: str, seed: int, request: Any) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    steps = int(os.environ.get("SCREENER_FAULT_STEPS", "300"))
    record_figures(f"rpc_faults_long_{backend}_{seed}", _run(anvil, url, tmp_path, seed=seed, steps=steps))


def test_index_logs_from_a_lagging_replica_never_credit_a_mixer_recipient(anvil: Anvil, tmp_path: Path) -> None:
    """A balancer that answers eth_getLogs from a replica far behind (silently: no logs for blocks it has not
    reached) must not let the mixer index skip a withdrawal: the deposits of withdrawal recipients are held
    (the index read is verified, or the deposit is held as "unavailable"), never credited.

    Regression: the index used to take such an answer as "no withdrawals" and mark the blocks scanned; the
    long RPC-fault run (seed 2) credited a mixer-funded deposit that way behind the flipping balancer.
    """
    world = dw.build_world(anvil)
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    dw.prepare_database(engine, utc_now())
    payer = gt.Payer(world, random.Random(5))
    payer.prepare()
    anvil.mine(5)
    for kind in (gt.MIXER, gt.MIXER, gt.OFAC, gt.CLEAN):
        payer.pay(kind)
    anvil.mine(CONFIRMATIONS + 1)
    with FaultProxy(anvil.url, lag_blocks=10_000, lag_methods=frozenset({"eth_getLogs"})) as replica:
        config = dw.write_config(tmp_path / "c.toml", url, world, chain={"confirmations": CONFIRMATIONS})
        settings = load_settings(config)
        behind = load_settings(dw.write_config(tmp_path / "b.toml", url, world, chain={"rpc_urls": [replica.url]}))
        scan_rt = build_chain_runtime(settings, dw.DEMO_CHAIN, retry=FAST_RETRY)
        index_rt = build_chain_runtime(behind, dw.DEMO_CHAIN, retry=FAST_RETRY)
        decide = make_decider(settings, runtime_lookup(behind, {dw.DEMO_CHAIN: index_rt}))
        try:
            for _ in range(200):
                if tick(engine, scan_rt, decide=decide).status == "idle":
                    break
        finally:
            scan_rt.close()
            index_rt.close()
        assert replica.requests["eth_getLogs"] > 0  # the index really asked the replica
    checked = gt.check(engine, anvil, payer.sent)
    assert checked.by_kind[gt.MIXER] == 2, checked.summary()  # held; the clean one may be held as unavailable
    engine.dispose()
