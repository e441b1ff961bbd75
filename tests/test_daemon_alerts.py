"""Every alert kind reaches a real webhook receiver on loopback from real `screener run` processes, each alert
exactly once (across a restart too): hold opened, hold overdue, retroactive flag, list refresh failed, deep reorg,
chain halted, list stale, unassigned deposit (wrong network)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.devnet.anvil import Anvil, free_port, run_anvil
from screener.ops.outbox_rules import AlertKind
from screener.pipeline.addresses import add_address
from screener_base.addresses import Family
from screener_base.clock import utc_now
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.daemon_proc import cli, start_daemon, wait_for
from tests.support.webhook_receiver import WebhookReceiver, run_webhook_receiver

# On the 2025-03-05 list, delisted by 2025-05-30 (the bundled snapshot): credited now, flagged after a refresh.
TORNADO_ROUTER = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"
# Registered on ethereum only (not configured here): a transfer to it on polygon is an unassigned deposit.
WRONG_NETWORK = "0x" + "e7" * 20


@pytest.fixture
def node() -> Iterator[Anvil]:
    with run_anvil() as n:
        yield n


def _kinds(bodies: list[dict[str, Any]]) -> Counter[str]:
    return Counter(b["kind"] for b in bodies)


def _has(kind: AlertKind, n: int = 1) -> Any:
    return lambda bodies: _kinds(bodies)[kind.value] >= n


def _outbox_settled(config: Path) -> bool:
    states = json.loads(cli(config, "status", "--json").stdout)["alerts_by_state"]
    return set(states) == {"delivered"}


def _config(tmp_path: Path, url: str, world: dw.DemoWorld, hook: WebhookReceiver, **lists: Any) -> Path:
    return dw.write_config(
        tmp_path / "c.toml",
        url,
        world,
        review={"sla_h": 0.0005},  # 1.8 s: every hold becomes overdue during the test
        daemon={"metrics_port": free_port(), "sla_check_interval_s": 0.5, "index_scan_interval_s": 1.0},
        alerts={"webhook_urls": [hook.url], "deliver_interval_s": 0.5, "chain_halt_after_s": 3.0},
        lists={"max_drop_fraction": 0.3, **lists},
    )


def _phase_one(tmp_path: Path, engine: Engine, world: dw.DemoWorld, hook: WebhookReceiver, old_list: Path) -> None:
    node, t = world.node, world.tokens
    credited = dw.send_from_listed(world, t.usdt, TORNADO_ROUTER, world.address_of("alice"), 100 * dw.UNIT)
    held = dw.send_from_listed(world, t.usdt, dw.OFAC_SENDER, world.address_of("carol"), 200 * dw.UNIT)
    dw.send_from_listed(world, t.usdc, "0x" + "5e" * 20, WRONG_NETWORK, 5 * dw.UNIT)
    node.mine(2)
    hook.wait_for(_has(AlertKind.UNASSIGNED_DEPOSIT), what="unassigned deposit")
    hook.wait_for(_has(AlertKind.HOLD_OPENED), what="hold opened")
    hook.wait_for(_has(AlertKind.HOLD_OVERDUE), what="hold overdue")
    hook.wait_for(_has(AlertKind.CHAIN_HALTED), what="chain halted (safe head still for 3 s)")
    config = tmp_path / "c.toml"
    # A list naming the already-credited sender: the re-screen raises a review flag on that deposit.
    assert cli(config, "lists", "refresh", "--source", str(old_list)).stdout.startswith("updated")
    hook.wait_for(_has(AlertKind.RETROACTIVE_FLAG), what="retroactive flag")
    failed = cli(config, "lists", "refresh", "--source", str(tmp_path / "missing.xml"), check=False)
    assert failed.returncode == 1
    hook.wait_for(_has(AlertKind.LIST_REFRESH_FAILED), what="list refresh failed")
    # Replace the blocks of both (decided) deposits: the pipeline halts the chain instead of rewinding.
    receipt = node.rpc("eth_getTransactionReceipt", [credited])
    node.rpc("anvil_reorg", [node.block_number() - int(receipt["blockNumber"], 16) + 1, []])
    hook.wait_for(_has(AlertKind.DEEP_REORG), what="deep reorg")
    assert held


def test_each_alert_kind_delivered_once(node: Anvil, tmp_path: Path, shared_data: Path) -> None:
    world = dw.build_world(node)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    dw.prepare_database(engine, utc_now())
    with session_scope(engine) as s:
        add_address(s, lambda _chain: Family.EVM, "ethereum", WRONG_NETWORK, "dave", utc_now())
    old_list = tmp_path / "sdn_2025-03-05.xml"
    # Published after the bundle: a refresh refuses a list published before the active one.
    old_list.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / "2025-03-05"), published=date(2025, 6, 1)))
    with run_webhook_receiver() as hook:
        config = _config(tmp_path, url, world, hook)
        daemon = start_daemon(config, tmp_path / "one.log")
        try:
            _phase_one(tmp_path, engine, world, hook, old_list)
        finally:
            assert daemon.stop() == 0
        # Restart with a list age limit the active version exceeds: the list is stale, so the worker tries a
        # refresh at once (from a file that is not there: a second failed refresh) and alerts.
        _config(tmp_path, url, world, hook, max_list_age_h=0.0001, source_url=str(tmp_path / "gone.xml"))
        daemon = start_daemon(config, tmp_path / "two.log")
        try:
            hook.wait_for(_has(AlertKind.LIST_STALE), what="list stale")
            hook.wait_for(_has(AlertKind.LIST_REFRESH_FAILED, 2), what="refresh at start-up failed")
            # Nothing left to deliver: whatever was going to be sent (twice or not) has been sent.
            wait_for(lambda: _outbox_settled(config), "every alert delivered", daemons=(daemon,))
        finally:
            assert daemon.stop() == 0
        received = hook.received
    keys = [r.body["key"] for r in received]
    assert len(keys) == len(set(keys)), f"an alert was delivered twice: {keys}"
    assert all(r.headers["Idempotency-Key"] == r.body["key"] for r in received)
    kinds = _kinds([r.body for r in received])
    assert set(kinds) == {k.value for k in AlertKind}
    # One hold, one flag, one reorg, one stale version, two failed refreshes: one alert each.
    for kind in ("hold_opened", "hold_overdue", "retroactive_flag", "deep_reorg", "list_stale", "unassigned_deposit"):
        assert kinds[kind] == 1, (kind, keys)
    assert kinds["list_refresh_failed"] == 2, keys
    flag = next(r.body for r in received if r.body["kind"] == "retroactive_flag")
    assert flag["details"]["from_address"] == TORNADO_ROUTER and flag["details"]["rule_id"] == "ofac.sdn"
    unassigned = next(r.body for r in received if r.body["kind"] == "unassigned_deposit")
    assert unassigned["details"]["registered_on"] == ["ethereum"] and unassigned["details"]["accounts"] == ["dave"]
