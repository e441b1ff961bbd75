"""`screener demo`: the whole product on a laptop, with nothing configured and nothing downloaded.

A local anvil devnet gets USDT-/USDC-like tokens and a mixer pool; four deposits arrive from clean,
OFAC-listed (a real address from the bundled snapshot, impersonated) and mixer-funded senders; a real
`screener run` process on a fresh SQLite file records and screens them; then the holds and balances are
printed with the real CLI. The bundled snapshot is from 2025, so the demo raises lists.max_list_age_h
and says so: in production a list that old makes screening unavailable and every deposit is held.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from screener.amounts import format_units
from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.devnet.anvil import free_port, run_anvil
from screener.models.deposits import Deposit
from screener.review.rules import DepositStatus
from screener_base.clock import utc_now
from screener_base.errors import ScreenerError

DEFAULT_WORKDIR = Path("var/demo")
STOP_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
DB_FILES = ("demo.db", "demo.db-wal", "demo.db-shm", "demo.db.worker.lock", "checkpoints.jsonl")
METRICS_SHOWN = ("screener_chain_", "screener_deposits{", "screener_holds_", "screener_list_")


class DemoError(ScreenerError):
    """The demo could not finish."""


@dataclass
class DemoReport:
    decided: dict[str, tuple[str, str | None]]  # tx hash -> (deposit status, verdict)
    credited: int
    held: int
    workdir: Path


def _cli(config: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "screener", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise DemoError(f"`screener {' '.join(args)}` failed: {proc.stderr.strip()}", "see the message above")
    return proc.stdout.rstrip()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_decided(
    engine: Engine, sent: list[dw.Sent], daemon: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> dict[str, tuple[str, str | None]]:
    """tx hash -> (status, verdict) once every sent deposit is decided; DemoError on the deadline."""
    hashes = [s.tx_hash for s in sent]
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(engine) as session:
            rows = session.exec(select(Deposit).where(col(Deposit.tx_hash).in_(hashes))).all()
            status = {r.tx_hash: (r.status, r.verdict) for r in rows}
        if len(status) == len(hashes) and all(st != DepositStatus.RECORDED for st, _ in status.values()):
            return status
        if daemon.poll() is not None:
            raise DemoError(f"the daemon exited with code {daemon.returncode}:\n{_tail(log)}", f"see {log}")
        if time.monotonic() > deadline:
            raise DemoError(
                f"only {len(status)} of {len(hashes)} deposits decided after {timeout_s:.0f}s:\n{_tail(log)}",
                f"see {log}",
            )
        time.sleep(0.25)


def _show_metrics(port: int, recorded: int, echo: Callable[[str], None], timeout_s: float = 30.0) -> None:
    """Print the main figures once the metrics snapshot has caught up with the ``recorded`` deposits."""
    deadline = time.monotonic() + timeout_s
    want = f"screener_deposits_recorded_total {recorded}"
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError as exc:
            text = f"(metrics not reachable: {exc})"
        if want in text.splitlines():
            break
        time.sleep(0.25)
    for line in text.splitlines():
        if line.startswith(METRICS_SHOWN) or line.startswith("(metrics"):
            echo(f"  {line}")


def _stop(daemon: subprocess.Popen[bytes]) -> int:
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        daemon.kill()
        return daemon.wait(timeout=STOP_TIMEOUT_S)


def _fresh_database(workdir: Path, echo: Callable[[str], None]) -> str:
    """Delete the previous demo's database files, say so, and return the new database's URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "demo.db"
    replaced = db.exists()
    for name in DB_FILES:
        (workdir / name).unlink(missing_ok=True)
    note = " (the previous demo's data there is replaced)" if replaced else ""
    echo(f"Creating a fresh demo database at {db}{note}.")
    return f"sqlite:///{db.resolve()}"


def _shown(path: Path) -> Path:
    cwd = Path.cwd()
    return path.relative_to(cwd) if path.is_relative_to(cwd) else path


def cli_hints(config: Path, *commands: str) -> list[str]:
    """How a person runs ``commands`` with ``config``: the venv's `screener` by path, or `screener` once activated."""
    exe = Path(sys.executable).with_name("screener")
    prefix = str(_shown(exe)) if exe.exists() else f"{sys.executable} -m screener"
    lines = [f"{prefix} --config {config} {command}" for command in commands]
    activate = exe.with_name("activate")
    if exe.exists() and activate.exists():
        lines.append(f"(or run `source {_shown(activate)}` once, then `screener --config {config} {commands[0]}`)")
    return lines


def run_demo(
    workdir: Path = DEFAULT_WORKDIR, echo: Callable[[str], None] = print, timeout_s: float = 120.0
) -> DemoReport:
    db_url = _fresh_database(workdir, echo)
    echo("Starting a local anvil devnet ...")
    with run_anvil() as node:
        world = dw.build_world(node)
        echo(f"  chain '{dw.DEMO_CHAIN}' (devnet, chain id {node.chain_id}) at {node.url}")
        echo(f"  USDT-like {world.tokens.usdt}, USDC-like {world.tokens.usdc}, mixer pool {world.pool.address}")
        port = free_port()
        config = dw.write_config(
            workdir / "demo.toml",
            db_url,
            world,
            daemon={"metrics_port": port, "metrics_interval_s": 1.0, "lease_ttl_s": 10.0},
            alerts={"deliver_interval_s": 1.0},
        )
        echo(
            f"NOTE: the bundled OFAC snapshot is from 2025; this demo sets lists.max_list_age_h = "
            f"{dw.RELAXED_MAX_LIST_AGE_H:g} so it counts as fresh. In production a stale list holds every deposit."
        )
        engine = make_engine(db_url)
        try:
            dw.prepare_database(engine, utc_now())
            return _run_daemon(workdir, config, engine, world, port, echo, timeout_s)
        finally:
            engine.dispose()


def _run_daemon(
    workdir: Path,
    config: Path,
    engine: Engine,
    world: dw.DemoWorld,
    port: int,
    echo: Callable[[str], None],
    timeout_s: float,
) -> DemoReport:
    log = workdir / "daemon.log"
    echo(f"Starting `screener run` (SQLite {workdir / 'demo.db'}, log {log}) ...")
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "screener", "--config", str(config), "run"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        echo("Sending deposits ...")
        sent = dw.send_scenario(world)
        for s in sent:
            amount = format_units(s.amount_raw, dw.DECIMALS)
            echo(f"  {amount:>12} {s.symbol} to {s.account:<6} from {s.sender} ({s.label}), tx {s.tx_hash[:12]}…")
        status = _wait_decided(engine, sent, daemon, log, timeout_s)
        echo(f"All deposits decided. Metrics (http://127.0.0.1:{port}/metrics):")
        _show_metrics(port, len(sent), echo)
    finally:
        code = _stop(daemon)
    echo(f"Daemon stopped (exit code {code}).")
    echo("\n$ screener holds list\n" + _cli(config, "holds", "list"))
    echo("\n$ screener balances\n" + _cli(config, "balances"))
    for s in sent:
        verdict = status[s.tx_hash][1]
        if verdict != s.expect:
            echo(f"warning: the deposit from {s.label} got {verdict}, the demo expected {s.expect}")
    credited = sum(1 for st, _ in status.values() if st == DepositStatus.CREDITED)
    held = sum(1 for st, _ in status.values() if st == DepositStatus.HELD)
    echo(f"\n{credited} deposit(s) credited, {held} held for review. Look at them with the CLI and the demo's config:")
    for line in cli_hints(config, "holds list", "holds show H-1", "balances"):
        echo(f"  {line}")
    return DemoReport(decided=status, credited=credited, held=held, workdir=workdir)
