"""`screener run`, `screener status`, `screener demo`."""

from __future__ import annotations

import os
from typing import Any

import typer

from screener.cli.common import echo_json, handle_errors, quiet_broken_pipe, state

# Exit code when a stop had to abandon a running tick (its transaction is rolled back by the database).
EXIT_UNCLEAN_STOP = 3


@handle_errors
def run_cmd() -> None:
    """Run the worker: poll the configured chains, screen, credit or hold, refresh lists, alert. Stop: Ctrl-C."""
    from screener.daemon.worker import Daemon
    from screener.ops.logging_setup import configure_logging

    settings = state().settings
    configure_logging(settings.logging)
    clean = Daemon(settings).run()
    if not clean:
        os._exit(EXIT_UNCLEAN_STOP)  # a tick thread is still running; do not wait for it at interpreter exit


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _text(snap: Any, max_list_age_h: float) -> str:
    from screener.cli.render import table

    lines = [f"status at {snap.at.isoformat(timespec='seconds')}"]
    if snap.chains:
        rows = [
            [
                c.chain + ("" if c.configured else " (not configured)"),
                *(str(v) if v is not None else "-" for v in (c.head_block, c.safe_head_block, c.cursor_block)),
                "-" if c.lag_blocks is None else f"{c.lag_blocks} (~{_ago(c.lag_s)})",
                _ago((snap.at - c.last_tick_at).total_seconds()) if c.last_tick_at else "never",
                f"{c.ticks_ok}/{c.ticks_failed}",
                c.lease_holder or "-",
                c.last_error or "",
            ]
            for c in snap.chains
        ]
        headers = ["CHAIN", "HEAD", "SAFE", "CURSOR", "LAG", "LAST TICK", "OK/FAILED", "WORKER", "LAST ERROR"]
        lines += ["", table(headers, rows, max_width=60)]
    d = snap.deposits_by_status
    lines += [
        "",
        f"deposits: {snap.deposits_total} recorded, {d.get('credited', 0)} credited, {d.get('held', 0)} held, "
        f"{d.get('released', 0)} released, {d.get('rejected', 0)} rejected, "
        f"{d.get('unassigned', 0)} unassigned (wrong network)",
        f"holds: {snap.holds_open} open, {snap.holds_overdue} overdue; review flags open: {snap.flags_open}",
    ]
    if snap.list_version_id is None:
        lines.append("sanctions list: none active (deposits are held)")
    else:
        stale = f" STALE (limit {max_list_age_h:g}h)" if snap.list_stale else ""
        lines.append(f"sanctions list: version {snap.list_version_id}, verified {_ago(snap.list_age_s)} ago{stale}")
    alerts = ", ".join(f"{n} {s}" for s, n in sorted(snap.alerts_by_state.items())) or "none"
    lines.append(f"alerts: {alerts}")
    for (chain, endpoint), n in sorted(snap.rpc_errors.items()):
        lines.append(f"rpc errors: {chain} {endpoint}: {n}")
    for b in snap.rpc_budgets:
        per_day = f"{b.requests_today}/{b.requests_per_day} today ({b.used_ratio:.0%})" if b.requests_per_day else ""
        per_s = f"{b.requests_per_s:g}/s" if b.requests_per_s else ""
        lines.append(f"rpc budget: {b.chain} {b.endpoint}: " + ", ".join(x for x in (per_day, per_s) if x))
    alive = [w for w in snap.workers if w.alive]
    lines.append("workers: " + (", ".join(f"{w.worker_id} (pid {w.pid} on {w.hostname})" for w in alive) or "none"))
    return "\n".join(lines)


@handle_errors
def status_cmd(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Chains (head, safe head, cursor, lag), deposits, holds, list version and age, alerts, workers."""
    from screener.db import session_scope
    from screener.ops.status import collect
    from screener_base.clock import utc_now

    cli = state()
    with session_scope(cli.engine()) as session:
        snap = collect(session, cli.settings, utc_now())
    with quiet_broken_pipe():
        if as_json:
            echo_json(snap.to_json())
        else:
            typer.echo(_text(snap, cli.settings.lists.max_list_age_h))


@handle_errors
def demo_cmd(
    workdir: str = typer.Option("var/demo", "--workdir", help="where the demo's database, config and log go"),
    timeout_s: float = typer.Option(120.0, "--timeout-s", help="how long to wait for the deposits to be decided"),
) -> None:
    """Local devnet, four deposits (clean, OFAC-listed, mixer-funded), the real daemon, then holds and balances."""
    from pathlib import Path

    from screener.demo.run import run_demo

    report = run_demo(Path(workdir), echo=typer.echo, timeout_s=timeout_s)
    if report.credited == 0 or report.held == 0:
        typer.echo("error: the demo expected at least one credited and one held deposit", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("run")(run_cmd)
    app.command("status")(status_cmd)
    app.command("demo")(demo_cmd)
