"""The pipeline behind a fault-injecting proxy in front of real anvil: HTTP 500s, 429s with Retry-After,
timeouts, dropped connections, truncated JSON, transient and permanent JSON-RPC errors, "range too large"
and "more than N results" limits, and a lagging endpoint. Whatever happens, the deposits recorded in the end
equal the ground truth read from the node's receipts, and no initiator is ever wrong (only missing)."""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy.engine import Engine

from chains.rpc_errors import RpcUnavailable
from chains.scanning import NodeBehind
from screener.demo.devnet.anvil import Anvil
from tests.support.chain_env import (
    CHAIN,
    ChainEnv,
    deposit_address,
    ground_truth,
    keys,
    make_env,
    recorded,
    register,
    runtime,
    tick_until_idle,
)
from tests.support.proxy import Fault, FaultProxy

TX_LOOKUP = frozenset({"eth_getTransactionByHash"})
LOGS = frozenset({"eth_getLogs"})


def faults(scale: int) -> list[Fault]:
    """Deterministic fault schedule; ``scale`` > 1 makes them rarer (more requests between faults)."""
    return [
        Fault("range_limit", max_span=8, style="infura"),
        Fault("result_limit", max_results=3, methods=LOGS, every=2),
        Fault("http500", every=7 * scale),
        Fault("http429", every=11 * scale, retry_after_s=0.01),
        Fault("timeout", every=23 * scale, delay_s=0.6),
        Fault("drop", every=13 * scale),
        Fault("truncate", every=17 * scale),
        Fault("rpc_error", every=19 * scale, code=-32603, message="internal error"),
        # a permanent per-item error on initiator lookups: the deposit must be kept with initiator None
        Fault("rpc_error", methods=TX_LOOKUP, every=5, code=-32000, message="transaction indexing is in progress"),
    ]


def _send_deposits(env: ChainEnv, count: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    ours = {deposit_address(i): f"acct-{i}" for i in range(8)}
    for n in range(count):
        token = env.usdt if rng.random() < 0.5 else env.usdc
        sender = rng.randrange(len(env.senders))
        to = deposit_address(rng.randrange(12))  # a third go to addresses that are not ours
        if rng.random() < 0.25:
            env.pay_via_forwarder(token, sender, to, rng.randrange(1, 10**12))
        else:
            env.pay(token, sender, to, rng.randrange(1, 10**12))
        if n % 3 == 0:
            env.node.mine(rng.randrange(1, 4))
    env.node.mine(3)
    return ours


def _run(env: ChainEnv, engine: Engine, deposits: int, scale: int, seed: int) -> None:
    ours = _send_deposits(env, deposits, seed)
    with (
        FaultProxy(env.node.url, lag_blocks=12) as lagging,
        FaultProxy(env.node.url, faults(scale), seed=seed) as faulty,
    ):
        settings = env.settings(
            str(engine.url), rpc_urls=[faulty.url, lagging.url], request_timeout_s=0.3, max_block_range=40
        )
        register(engine, settings, CHAIN, ours)
        rt = runtime(settings)
        tick_until_idle(engine, rt, settings, max_ticks=2000, tolerate=(RpcUnavailable, NodeBehind))
        # every kind of fault really happened
        assert set(faulty.injected) == {f.kind for f in faults(scale)}, faulty.injected
        assert rt.client.endpoints[1].stats.requests > 0  # the lagging endpoint served too
    got = recorded(engine)
    truth = ground_truth(env.node, {env.usdt, env.usdc}, set(ours))
    assert keys(got) == truth and len(got) == len(truth) > deposits // 3
    senders = {tx["hash"]: tx["from"] for tx in _txs(env.node, {d.tx_hash for d in got})}
    assert all(d.initiator in (None, senders[d.tx_hash]) for d in got)
    assert any(d.initiator is None for d in got) and any(d.initiator is not None for d in got)


def _txs(node: Anvil, hashes: set[str]) -> list[dict[str, str]]:
    return [node.rpc("eth_getTransactionByHash", [h]) for h in sorted(hashes)]


def test_faults_do_not_change_the_recorded_set(anvil: Anvil, engine: Engine) -> None:
    _run(make_env(anvil), engine, deposits=30, scale=1, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(int(os.environ.get("SCREENER_FAULT_SEEDS", "5"))))
def test_faults_long(anvil: Anvil, sqlite_engine: Engine, seed: int) -> None:
    _run(make_env(anvil), sqlite_engine, deposits=150, scale=1 + seed % 3, seed=100 + seed)


class AlternatingBalancer:
    """One URL in front of two nodes, each HTTP request to the next one: like a provider's load balancer
    over nodes at different heights."""

    def __init__(self, upstreams: list[str]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.sent = [0] * len(upstreams)
        http = httpx.Client(timeout=30)
        lock = threading.Lock()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    target = sum(balancer.sent) % len(upstreams)
                    balancer.sent[target] += 1
                reply = http.post(upstreams[target], content=body, headers={"Content-Type": "application/json"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._http = http

    def __enter__(self) -> AlternatingBalancer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


def test_load_balanced_endpoint_with_a_lagging_node(anvil: Anvil, sqlite_engine: Engine) -> None:
    """eth_getLogs answered by the node that is behind is clamped silently; because logs and the range's last
    header come from one HTTP request, such an answer is noticed and the range is read again."""
    env = make_env(anvil)
    ours = {deposit_address(i): f"acct-{i}" for i in range(4)}
    with FaultProxy(anvil.url, lag_blocks=8) as behind, AlternatingBalancer([anvil.url, behind.url]) as lb:
        settings = env.settings(str(sqlite_engine.url), rpc_urls=[lb.url], max_block_range=6)
        register(sqlite_engine, settings, CHAIN, ours)
        rt = runtime(settings)
        for round_ in range(6):
            for i in range(4):
                env.pay(env.usdt, i, deposit_address(i), 1000 * round_ + i + 1)
            anvil.mine(1)
            tick_until_idle(sqlite_engine, rt, settings, tolerate=(RpcUnavailable, NodeBehind))
        anvil.mine(3)
        tick_until_idle(sqlite_engine, rt, settings, tolerate=(RpcUnavailable, NodeBehind))
        assert lb.sent[1] > 0 and behind.requests["eth_getLogs"] > 0
    assert keys(recorded(sqlite_engine)) == ground_truth(anvil, {env.usdt, env.usdc}, set(ours))
    assert len(recorded(sqlite_engine)) == 24
