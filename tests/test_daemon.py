"""`screener run` as a real process on SQLite against a real anvil: start-up refusals, the demo scenario
screened end to end, metrics scraped, a webhook receiver on loopback, `screener status`, a clean SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.devnet.anvil import Anvil, free_port, run_anvil
from screener.models.daemon import Lease
from screener.models.deposits import Deposit
from screener_base.clock import ensure_utc, utc_now
from tests.support.daemon_proc import cli, metric, scrape, start_daemon, wait_for
from tests.support.webhook_receiver import run_webhook_receiver


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with run_anvil() as n:
        yield n


@pytest.fixture(scope="module")
def world(node: Anvil) -> dw.DemoWorld:
    return dw.build_world(node)


def _engine(tmp_path: Path, world: dw.DemoWorld) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    dw.prepare_database(engine, utc_now())
    return url, engine


def _run(*args: str, config: Path) -> tuple[int, str]:
    proc = cli(config, *args, check=False)
    return proc.returncode, proc.stderr


def test_refuses_without_chains_schema_or_valid_cron(tmp_path: Path, world: dw.DemoWorld) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n')
    code, err = _run("run", config=bare)
    assert code == 2 and "no chain is configured with rpc_urls" in err

    unmigrated = dw.write_config(tmp_path / "u.toml", f"sqlite:///{tmp_path / 'empty.db'}", world)
    code, err = _run("run", config=unmigrated)
    assert code == 2 and "screener db upgrade" in err

    url, _ = _engine(tmp_path, world)
    bad_cron = dw.write_config(tmp_path / "c.toml", url, world, lists={"refresh_cron": "every day"})
    code, err = _run("run", config=bad_cron)
    assert code == 2 and "lists.refresh_cron 'every day' is not a crontab expression" in err

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = dw.write_config(tmp_path / "p.toml", url, world, daemon={"metrics_port": taken.getsockname()[1]})
        code, err = _run("run", config=busy)
    assert code == 2 and "cannot serve metrics" in err and "daemon.metrics_port" in err


def test_second_worker_on_sqlite_is_refused(tmp_path: Path, world: dw.DemoWorld) -> None:
    url, _ = _engine(tmp_path, world)
    port = free_port()
    config = dw.write_config(tmp_path / "c.toml", url, world, daemon={"metrics_port": port})
    first = start_daemon(config, tmp_path / "first.log")
    try:
        wait_for(lambda: metric(port, "screener_holds_open") is not None, "first worker up", daemons=(first,))
        second_config = dw.write_config(tmp_path / "c2.toml", url, world, daemon={"metrics_port": free_port()})
        code, err = _run("run", config=second_config)
        assert code == 2 and "already served by worker" in err and "SQLite supports a single worker" in err
    finally:
        assert first.stop() == 0


def _deposits(engine: Engine) -> dict[str, Deposit]:
    with session_scope(engine) as s:
        return {d.tx_hash: d for d in s.exec(select(Deposit))}


def test_screens_deposits_end_to_end_and_stops_cleanly(tmp_path: Path, world: dw.DemoWorld) -> None:
    url, engine = _engine(tmp_path, world)
    port = free_port()
    with run_webhook_receiver() as hook:
        config = dw.write_config(
            tmp_path / "c.toml",
            url,
            world,
            daemon={"metrics_port": port, "metrics_interval_s": 0.5, "worker_id": "solo"},
            alerts={"webhook_urls": [hook.url], "deliver_interval_s": 0.5},
            logging={"json_format": True},
        )
        daemon = start_daemon(config, tmp_path / "daemon.log")
        try:
            sent = dw.send_scenario(world)
            hashes = {s.tx_hash for s in sent}

            def decided() -> dict[str, Deposit] | None:
                got = {h: d for h, d in _deposits(engine).items() if h in hashes}
                return got if len(got) == len(sent) and all(d.status != "recorded" for d in got.values()) else None

            deposits = wait_for(decided, "all demo deposits decided", daemons=(daemon,))
            assert {s.tx_hash: s.expect for s in sent} == {h: d.verdict for h, d in deposits.items()}
            # Metrics catch up with the database within a few refreshes.
            wait_for(lambda: metric(port, "screener_holds_open") == 2, "metrics show the holds", daemons=(daemon,))
            got = scrape(port)
            assert got['screener_deposits{status="credited"}'] == 2 and got['screener_deposits{status="held"}'] == 2
            assert got['screener_chain_cursor_block{chain="polygon"}'] >= max(d.block_number for d in deposits.values())
            assert got["screener_list_active_version"] == 1 and got["screener_list_stale"] == 0
            assert got['screener_up{worker="solo"}'] == 1
            held = lambda b: [x for x in b if not x["key"].startswith("audit_checkpoint:")]  # noqa: E731
            bodies = hook.wait_for(lambda b: len(held(b)) >= 2, what="two hold_opened alerts")
            assert sorted(b["key"] for b in held(bodies)) == ["hold_opened:H-1", "hold_opened:H-2"]
            assert any(b["key"].startswith("audit_checkpoint:") for b in bodies)  # the head, sent with the alerts
            status = json.loads(cli(config, "status", "--json").stdout)
            assert status["holds_open"] == 2 and status["leases"]["chain:polygon"] == "solo"
            assert [c["chain"] for c in status["chains"]] == ["polygon"]
            text = cli(config, "status").stdout
            assert "holds: 2 open, 0 overdue" in text and "deposits: 4 recorded, 2 credited, 2 held" in text
            assert "workers: solo (pid" in text
        finally:
            code = daemon.stop(signal.SIGTERM)
    assert code == 0
    log = daemon.log_text()
    ticks = [json.loads(line) for line in log.splitlines() if '"msg": "tick"' in line]
    assert sum(t["recorded"] for t in ticks) == 4 and {"credited", "held", "duration_ms"} <= set(ticks[0])
    assert hook.url.split("/", 3)[3] not in log  # the webhook's token never reaches the log
    with session_scope(engine) as s:
        # A clean stop hands every lease back at once.
        assert all(ensure_utc(lease.expires_at) <= utc_now() for lease in s.exec(select(Lease)))
