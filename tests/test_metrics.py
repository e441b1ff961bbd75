"""Metrics: database figures rendered in the Prometheus text format and scraped over loopback HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.models.chain import ScanCursor
from screener.models.daemon import ChainStatus, RpcEndpointErrors
from screener.ops.metrics import Family, MetricsServer, ProcessStats, exposition, render
from screener.ops.status import collect
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.errors import ConfigError
from tests.support.daemon_proc import parse_metrics as parse
from tests.support.ledger_model import NOW, make_deposit

OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20, 7, "Garantex", ("CYBER2",))
SETTINGS = Settings(
    review={"sla_h": 1}, chains={"ethereum": {"rpc_urls": ["http://127.0.0.1:1"]}, "bsc": {"rpc_urls": []}}
)


def _fill(engine: Engine) -> None:
    with session_scope(engine) as s:
        review.apply_verdict(s, make_deposit(1), Verdict(Decision.BLOCK, (OFAC,), 7), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(2), Verdict(Decision.CREDIT, (), 7), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(3), Verdict(Decision.CREDIT, (), 7), SETTINGS, NOW)
        s.add(
            ChainStatus(
                chain="ethereum", head_block=120, safe_head_block=100, last_tick_at=NOW, ticks_ok=5, ticks_failed=1
            )
        )
        s.add(ScanCursor(chain="ethereum", next_block=91, head_block=110, safe_block=90, updated_at=NOW))
        s.add(RpcEndpointErrors(chain="ethereum", endpoint="https://rpc.example/***", errors_total=3, updated_at=NOW))


def test_status_figures_are_rendered(engine: Engine) -> None:
    _fill(engine)
    with session_scope(engine) as s:
        snap = collect(s, SETTINGS, NOW + timedelta(hours=2))
    stats = ProcessStats(worker_id="w-1")
    stats.count_tick("ethereum", "ok", 0.25)
    got = parse(exposition(snap, stats))
    assert got['screener_up{worker="w-1"}'] == 1
    assert got['screener_chain_head_block{chain="ethereum"}'] == 120
    assert got['screener_chain_safe_head_block{chain="ethereum"}'] == 100
    assert got['screener_chain_cursor_block{chain="ethereum"}'] == 90
    assert got['screener_chain_lag_blocks{chain="ethereum"}'] == 30
    # Estimated from ethereum's nominal 12 s block time.
    assert got['screener_chain_lag_seconds{chain="ethereum"}'] == 360.0
    assert got['screener_deposits{status="credited"}'] == 2
    assert got['screener_deposits{status="held"}'] == 1
    assert got["screener_deposits_recorded_total"] == 3
    assert got["screener_holds_open"] == 1 and got["screener_holds_overdue"] == 1
    assert got['screener_rpc_errors_total{chain="ethereum",endpoint="https://rpc.example/***"}'] == 3
    assert got['screener_worker_ticks_total{chain="ethereum",outcome="ok"}'] == 1
    # A chain without rpc_urls is not polled, so it has no figures.
    assert not any('chain="bsc"' in k for k in got)


def test_label_values_are_escaped() -> None:
    fam = Family("x_total", "counter", "help")
    fam.add(1, endpoint='a"b\\c\nd')
    text = render([fam])
    assert 'x_total{endpoint="a\\"b\\\\c\\nd"} 1' in text
    parse(text)


def test_served_over_http(engine: Engine) -> None:
    _fill(engine)
    stats = ProcessStats(worker_id="w-2")

    def body() -> str:
        with session_scope(engine) as s:
            return exposition(collect(s, SETTINGS, NOW), stats)

    server = MetricsServer("127.0.0.1", 0, body)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        resp = httpx.get(f"{base}/metrics", timeout=10)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert parse(resp.text)["screener_holds_open"] == 1
        assert httpx.get(f"{base}/healthz", timeout=10).text == "ok\n"
        assert httpx.get(f"{base}/nope", timeout=10).status_code == 404
        # The port is taken: a second server says so clearly.
        with pytest.raises(ConfigError, match=r"daemon\.metrics_port"):
            MetricsServer("127.0.0.1", server.port, body)
    finally:
        server.stop()


def test_rpc_errors_are_totalled_per_redacted_endpoint(engine: Engine) -> None:
    from screener.daemon.state import flush_rpc_errors
    from screener.demo.devnet.anvil import free_port
    from screener.pipeline.runtime import build_chain_runtime
    from screener_base.errors import ChainError
    from tests.support.chain_env import FAST_RETRY

    url = f"http://127.0.0.1:{free_port()}/v3/abcdefghijklmnop1234"  # nobody listens; the key must not show
    chain = {"rpc_urls": [url], "chain_id": 31337, "tokens": {"USDT": "0x" + "11" * 20}}
    settings = Settings(chains={"polygon": chain})
    runtime = build_chain_runtime(settings, "polygon", retry=FAST_RETRY)
    flushed: dict[str, int] = {}
    try:
        for _ in range(2):
            with pytest.raises(ChainError):
                runtime.client.call("eth_blockNumber", [])
            flush_rpc_errors(engine, runtime, flushed, NOW)
        flush_rpc_errors(engine, runtime, flushed, NOW)  # nothing new: nothing added
        ((label, stats),) = runtime.client.stats().items()
    finally:
        runtime.close()
    with session_scope(engine) as s:
        snap = collect(s, settings, NOW)
    assert stats.errors >= 2 and snap.rpc_errors == {("polygon", label): stats.errors}
    assert "abcdefghijklmnop1234" not in label
    text = exposition(snap, ProcessStats())
    assert f'screener_rpc_errors_total{{chain="polygon",endpoint="{label}"}} {stats.errors}' in text
