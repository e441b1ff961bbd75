"""Catch-up throughput of the chain scanner on anvil, against two baselines measured in the same run.

Setup: a TetherLike token mints to N consecutive addresses (``mintSeries``: N real Transfer logs with real
balance changes), 1 in 100 recipients is a registered deposit address (so ``to`` is filtered client-side,
the catch-up case with many addresses).

Measured, each best of ``--repeats``:
- raw:  one eth_getLogs over the whole range (same address list + topic0 filter) with httpx + json.loads;
        the floor for anything that reads these logs over JSON-RPC.
- ours: screener.pipeline.tick.tick from a fresh SQLite database until idle: fetch (adaptive range), strict
        decode, recipient filter, header + initiator lookups (batched), insert the deposits, move the cursor.
- web3: web3.py's eth.get_logs with the same filter, then contract.events.Transfer().process_log per log.
Prints logs/s and the ratios ours/raw (target >= 0.7) and ours/web3 (target >= 10).

Run: .venv/bin/python bench/bench_scan.py [--logs 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chains.transfers import TRANSFER_TOPIC0
from screener.db import make_engine, session_scope, upgrade
from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil, run_anvil
from screener.models.deposits import Deposit
from screener.pipeline.addresses import add_address
from screener.pipeline.runtime import build_chain_runtime
from screener.pipeline.tick import tick
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.clock import utc_now

FIRST = 0x10000000000000000000000000000000000000
PER_TX = 20_000
EVERY = 100  # one registered deposit address per this many recipients
GAS_LIMIT = 2_000_000_000


def populate(node: Anvil, count: int) -> tuple[str, str, list[str]]:
    usdt, usdc = dv.deploy_tether_like(node), dv.deploy_fiat_token_like(node)
    for start in range(0, count, PER_TX):
        n = min(PER_TX, count - start)
        dv.mint_series(node, usdt, f"0x{FIRST + start:040x}", n, 1_000 + start, gas=GAS_LIMIT - 1)
    ours = [f"0x{FIRST + i:040x}" for i in range(0, count, EVERY)]
    node.mine(3)
    return usdt, usdc, ours


def bench_raw(url: str, flt: dict[str, Any], pause_gc: bool) -> tuple[float, int]:
    """One eth_getLogs + json.loads; ``pause_gc``: the cyclic GC off during the parse, as chains.rpc does."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [flt]})
    with httpx.Client(timeout=600, headers={"Content-Type": "application/json"}) as client:
        started = time.perf_counter()
        resp = client.post(url, content=body)
        if pause_gc:
            gc.disable()
        try:
            logs = json.loads(resp.content)["result"]
        finally:
            gc.enable()
        return time.perf_counter() - started, len(logs)


def bench_web3(url: str, flt: dict[str, Any], token: str) -> tuple[float, int]:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 600}))
    abi = dv.artifacts()["TetherLike"]["abi"]
    event = w3.eth.contract(address=Web3.to_checksum_address(token), abi=abi).events.Transfer()
    w3_filter = {**flt, "address": [Web3.to_checksum_address(a) for a in flt["address"]]}
    started = time.perf_counter()
    decoded = [event.process_log(log) for log in w3.eth.get_logs(w3_filter)]  # type: ignore[arg-type]
    return time.perf_counter() - started, len(decoded)


def bench_ours(node: Anvil, usdt: str, usdc: str, ours: list[str], workdir: Path, run: int) -> tuple[float, int, int]:
    url = f"sqlite:///{workdir / f'bench-{run}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(
        database={"url": url},
        chains={
            "polygon": {
                "rpc_urls": [node.url],
                "chain_id": node.chain_id,
                "confirmations": 2,
                "finality_tag": "latest",
                "start_block": 0,
                "request_timeout_s": 300,
                "server_filter_max_addresses": 0,  # the many-addresses case: every log comes back
                "tokens": {"USDT": usdt, "USDC": usdc},
            }
        },
    )
    with session_scope(engine) as session:
        for i, address in enumerate(ours):
            add_address(session, lambda _c: Family.EVM, "polygon", address, f"acct-{i}", utc_now())
    rt = build_chain_runtime(settings, "polygon")
    logs = 0
    started = time.perf_counter()
    for _ in range(1000):
        result = tick(engine, rt)
        logs += result.logs
        if result.status == "idle":
            break
    elapsed = time.perf_counter() - started
    with session_scope(engine) as session:
        recorded = len(session.exec(__import__("sqlmodel").select(Deposit)).all())
    rt.close()
    engine.dispose()
    return elapsed, logs, recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with run_anvil(extra_args=["--gas-limit", str(GAS_LIMIT)]) as node, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        usdt, usdc, ours = populate(node, args.logs)
        print(f"populated {args.logs} Transfer logs in {time.perf_counter() - t0:.1f}s; {len(ours)} deposit addresses")
        flt = {
            "fromBlock": "0x0",
            "toBlock": hex(node.block_number()),
            "address": sorted([usdt, usdc]),
            "topics": [TRANSFER_TOPIC0],
        }
        raw_plain = [bench_raw(node.url, flt, pause_gc=False) for _ in range(args.repeats)]
        raw_paused = [bench_raw(node.url, flt, pause_gc=True) for _ in range(args.repeats)]
        mine = [bench_ours(node, usdt, usdc, ours, Path(tmp), i) for i in range(args.repeats)]
        web3 = [bench_web3(node.url, flt, usdt) for _ in range(max(1, args.repeats - 1))]
    (plain_s, plain_n), (paused_s, paused_n) = min(raw_plain), min(raw_paused)
    ours_s, ours_n, recorded = min(mine)
    web3_s, web3_n = min(web3)
    assert plain_n == paused_n == web3_n == args.logs, (plain_n, paused_n, web3_n)
    assert ours_n >= args.logs and recorded == len(ours), (ours_n, recorded)
    rows = [
        ("raw eth_getLogs + json.loads", plain_n, plain_s),
        ("raw, GC paused during parse", paused_n, paused_s),
        ("ours (tick until idle)", ours_n, ours_s),
        ("web3 get_logs + process_log", web3_n, web3_s),
    ]
    rate = {name: n / s for name, n, s in rows}
    for name, _, s in rows:
        print(f"{name:<30}: {s:7.3f} s  {rate[name]:>10,.0f} logs/s")
    print(f"({recorded} deposits recorded by ours)")
    ours_rate = rate["ours (tick until idle)"]
    best_raw = max(rate["raw eth_getLogs + json.loads"], rate["raw, GC paused during parse"])
    print(f"ours / best raw  = {ours_rate / best_raw:.2f}  (target >= 0.7)")
    print(f"ours / plain raw = {ours_rate / rate['raw eth_getLogs + json.loads']:.2f}")
    print(f"ours / web3      = {ours_rate / rate['web3 get_logs + process_log']:.1f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
