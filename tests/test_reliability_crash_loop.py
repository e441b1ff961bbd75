"""Crash loop: a real `screener run` process is SIGKILLed at random moments (seeded) while deposits keep
arriving on anvil, and restarted, again and again.

Each cycle starts the daemon and sends a few payments (clean senders, the OFAC-listed LAZARUS GROUP address
impersonated on anvil, mixer-funded senders) while it polls every 0.2 s over small ranges. Half the kills come
at a random moment (start-up, catch-up, idle, an index scan, the SLA check, alert delivery); the other half the
moment the daemon is seen inside a database transaction (SQLite: its write lock is held; PostgreSQL: one of its
sessions has a transaction id, i.e. has written), so they land mid-tick, mid-decision, mid-audit-append. After
every kill the database must be consistent with the chain up to the worker's cursor: each canonical payment
below it recorded exactly once and decided with the right verdict, with exactly the ledger transfers its state
calls for, none above it, balances adding up, and `screener audit verify` passing (a kill never leaves half a
range, half a decision or half an audit record). At the end one more run catches up and stops on SIGTERM, and
the whole ground truth holds.

Default: 10 kills on SQLite (about a minute on a slow machine; 20 until a full CI run passed 15 minutes).
`make test-long` (SCREENER_LONG=1): SCREENER_KILLS
kills (default 60) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.devnet.anvil import Anvil, free_port, run_anvil
from screener.models.chain import ScanCursor
from screener_base.clock import utc_now
from tests.support import cli_fork
from tests.support import ground_truth as gt
from tests.support.daemon_proc import DaemonProc, start_daemon, wait_for
from tests.support.reliability import SCREENER, clean_env, record_figures

LONG = os.environ.get("SCREENER_LONG") == "1"


@pytest.fixture
def node() -> Iterator[Anvil]:
    with run_anvil() as n:
        yield n


def _cursor(engine: Engine) -> int | None:
    with session_scope(engine) as s:
        row = s.get(ScanCursor, dw.DEMO_CHAIN)
        return row.next_block if row else None


def _audit_verify(config: Path) -> str:
    res = cli_fork.run(
        [str(SCREENER), "--config", str(config), "audit", "verify"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert res.returncode == 0 and res.stdout.startswith("ok: "), res.stdout + res.stderr
    return res.stdout


class TransactionWatch:
    """Polls the database until the daemon is inside a transaction, then SIGKILLs it at once."""

    def __init__(self, url: str, daemon: DaemonProc) -> None:
        self.url, self.daemon = url, daemon
        self.stop = threading.Event()
        self.fired = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TransactionWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        engine = None if self.url.startswith("sqlite") else make_engine(self.url)
        probe = self._sqlite_probe if engine is None else self._pg_probe(engine)
        try:
            while not self.stop.is_set() and self.daemon.alive():
                # seen twice 3 ms apart: most likely one long transaction (recording and deciding deposits takes
                # 5-40 ms; the many short reads of a tick take about 1 ms), so the kill lands mid-write
                if probe() and (time.sleep(0.003) or probe()):
                    self.daemon.proc.send_signal(signal.SIGKILL)
                    self.fired = True
                    return
                time.sleep(0.001)
        finally:
            if engine is not None:  # its pooled connections, closed rather than left to the collector
                engine.dispose()

    def _sqlite_probe(self) -> bool:
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # fails at once while the daemon holds the write lock
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()

    def _pg_probe(self, engine: Engine) -> Callable[[], bool]:
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )

        def probe() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(query).scalar())

        return probe


def crash_loop(node: Anvil, url: str, tmp_path: Path, kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    engine = make_engine(url)
    world = dw.build_world(node)
    dw.prepare_database(engine, utc_now())
    payer = gt.Payer(world, random.Random(seed + 1))
    config = dw.write_config(
        tmp_path / "c.toml",
        url,
        world,
        daemon={
            "worker_id": "crashy",
            "metrics_port": free_port(),
            "jitter_s": 0.05,
            "lease_ttl_s": 2.0,
            "metrics_interval_s": 0.5,
            "index_scan_interval_s": 0.7,
            "sla_check_interval_s": 0.9,
        },
        alerts={"deliver_interval_s": 0.6},
        chain={"poll_interval_s": 0.2, "max_block_range": 2},
    )
    figures: dict[str, Any] = {
        "kills": 0,
        "kills_inside_a_transaction": 0,
        "kills_at_random_moments": 0,
        "kills_with_work_pending": 0,
        "checks_after_kill": 0,
    }
    daemon: DaemonProc | None = None
    daemon_log = tmp_path / "daemon.log"
    try:
        payer.pay(gt.CLEAN)
        payer.pay(gt.OFAC)
        for n in range(kills):
            ticks_before = daemon_log.read_text().count(" tick chain=") if daemon_log.exists() else 0
            daemon = start_daemon(config, daemon_log)
            if rng.random() < 0.5:
                # past start-up (a tick of this run is logged), then deposits arrive and the next long
                # transaction is most likely the one recording and deciding them
                wait_for(lambda t=ticks_before: daemon_log.read_text().count(" tick chain=") > t, "a first tick", 60)  # type: ignore[misc]
                for _ in range(rng.randint(1, 3)):
                    payer.pay()
                with TransactionWatch(url, daemon) as watch:
                    node.mine(rng.randint(2, 8))
                    wait_for(lambda w=watch: w.fired, "the daemon inside a transaction", 30, interval_s=0.01)  # type: ignore[misc]
                figures["kills_inside_a_transaction"] += 1
            else:
                for _ in range(rng.randint(0, 2)):
                    payer.pay()
                node.mine(rng.randint(1, 6))
                time.sleep(rng.uniform(0.0, 2.0))  # a random moment: start-up, catch-up, idle, a job
                daemon.proc.send_signal(signal.SIGKILL)
                figures["kills_at_random_moments"] += 1
            safe_head = node.block_number() - 1
            daemon.proc.wait(timeout=30)
            figures["kills"] += 1
            at = _cursor(engine)
            if at is None or at <= safe_head:
                figures["kills_with_work_pending"] += 1
            # the state the kill left: consistent with the chain up to the cursor, and the audit chain intact
            gt.check(engine, node, payer.sent, below_block=at if at is not None else 0)
            _audit_verify(config)
            figures["checks_after_kill"] += 1
            assert "Traceback" not in daemon.log_text(), daemon.log_text()[-4000:]
            daemon = None
            if n == kills // 2:
                payer.pay(gt.MIXER)
        for kind in (gt.CLEAN, gt.OFAC, gt.MIXER):
            payer.pay(kind)
        node.mine(2)
        daemon = start_daemon(config, daemon_log)

        def caught_up() -> bool:
            at = _cursor(engine)
            return at is not None and at > node.block_number() - 1

        wait_for(caught_up, "the last run catches up", 180, (daemon,))
        assert daemon.stop() == 0, daemon.log_text()[-4000:]
        daemon = None
        checked = gt.check(engine, node, payer.sent)
        assert checked.deposits == len(gt.canonical(node, payer.sent)) == len(payer.sent)
        assert checked.by_kind[gt.OFAC] >= 2 and checked.by_kind[gt.MIXER] >= 1 and checked.by_kind[gt.CLEAN] >= 2
        figures["audit"] = _audit_verify(config).strip()
        return {**figures, **checked.summary()}
    finally:
        if daemon is not None:
            daemon.kill()
        engine.dispose()


def test_crash_loop_sqlite(node: Anvil, tmp_path: Path) -> None:
    figures = crash_loop(node, f"sqlite:///{tmp_path / 's.db'}", tmp_path, kills=10, seed=20260701)
    assert figures["kills"] >= 10 and figures["kills_with_work_pending"] >= 3, figures
    record_figures("crash_loop", figures)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_crash_loop_long(node: Anvil, tmp_path: Path, backend: str, request: Any) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    kills = int(os.environ.get("SCREENER_KILLS", "60"))
    figures = crash_loop(node, url, tmp_path, kills=kills, seed=7 if backend == "sqlite" else 8)
    assert figures["kills"] >= kills
    record_figures(f"crash_loop_long_{backend}", figures)
