"""Prometheus metrics: the text exposition format, rendered by hand, served over HTTP on loopback.

The database-wide numbers come from ``screener.ops.status.collect`` (refreshed by the daemon's metrics job, so
a scrape never waits on the database); this process's own counters (ticks, tick timings) are added at
scrape time. Rendering is pure; the server is stdlib ``http.server`` in a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from screener.ops.status import StatusSnapshot
from screener_base.errors import ConfigError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((labels, value))


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        lines.extend(f"{fam.name}{_labels(labels)} {_number(v)}" for labels, v in fam.samples)
    return "\n".join(lines) + "\n"


@dataclass
class ProcessStats:
    """This process's own counters, updated by the daemon's jobs (under ``lock``)."""

    worker_id: str = ""
    ticks: dict[tuple[str, str], int] = field(default_factory=dict)  # (chain, outcome) -> count
    last_tick_s: dict[str, float] = field(default_factory=dict)
    job_runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (job, outcome) -> count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_tick(self, chain: str, outcome: str, duration_s: float) -> None:
        with self.lock:
            self.ticks[(chain, outcome)] = self.ticks.get((chain, outcome), 0) + 1
            self.last_tick_s[chain] = duration_s

    def count_job(self, job: str, outcome: str) -> None:
        with self.lock:
            self.job_runs[(job, outcome)] = self.job_runs.get((job, outcome), 0) + 1


def _chain_families(snap: StatusSnapshot) -> list[Family]:
    fams = {
        "head": Family("screener_chain_head_block", "gauge", "Newest block number seen on the chain"),
        "safe": Family("screener_chain_safe_head_block", "gauge", "Newest block considered final (safe head)"),
        "cursor": Family("screener_chain_cursor_block", "gauge", "Last block fully processed"),
        "lag_b": Family("screener_chain_lag_blocks", "gauge", "Head minus the last scanned block, in blocks"),
        "lag_s": Family("screener_chain_lag_seconds", "gauge", "Lag in blocks times the block time (estimate)"),
        "tick": Family("screener_chain_last_tick_timestamp_seconds", "gauge", "Unix time of the last tick"),
        "fail": Family("screener_chain_ticks_failed_total", "counter", "Ticks that failed (all workers)"),
    }
    for c in snap.chains:
        fams["head"].add(c.head_block, chain=c.chain)
        fams["safe"].add(c.safe_head_block, chain=c.chain)
        fams["cursor"].add(c.cursor_block, chain=c.chain)
        fams["lag_b"].add(c.lag_blocks, chain=c.chain)
        fams["lag_s"].add(c.lag_s, chain=c.chain)
        fams["tick"].add(c.last_tick_at.timestamp() if c.last_tick_at else None, chain=c.chain)
        fams["fail"].add(c.ticks_failed, chain=c.chain)
    return list(fams.values())


def _ledger_families(snap: StatusSnapshot) -> list[Family]:
    deposits = Family("screener_deposits", "gauge", "Deposits by current status")
    for status, n in sorted(snap.deposits_by_status.items()):
        deposits.add(n, status=status)
    recorded = Family("screener_deposits_recorded_total", "counter", "Deposits recorded (all statuses)")
    recorded.add(snap.deposits_total)
    holds_open = Family("screener_holds_open", "gauge", "Holds awaiting a decision")
    holds_open.add(snap.holds_open)
    overdue = Family("screener_holds_overdue", "gauge", "Undecided holds past their review SLA")
    overdue.add(snap.holds_overdue)
    flags = Family("screener_review_flags_open", "gauge", "Open review flags on credited deposits")
    flags.add(snap.flags_open)
    return [deposits, recorded, holds_open, overdue, flags]


def _other_families(snap: StatusSnapshot) -> list[Family]:
    version = Family("screener_list_active_version", "gauge", "Id of the active sanctions list version")
    version.add(snap.list_version_id)
    age = Family("screener_list_age_seconds", "gauge", "Seconds since the active list was last verified")
    age.add(snap.list_age_s)
    stale = Family("screener_list_stale", "gauge", "1 when the active list is older than lists.max_list_age_h")
    stale.add(1 if snap.list_stale else 0)
    rpc = Family("screener_rpc_errors_total", "counter", "RPC errors by chain and (redacted) endpoint")
    for (chain, endpoint), n in sorted(snap.rpc_errors.items()):
        rpc.add(n, chain=chain, endpoint=endpoint)
    today = Family("screener_rpc_requests_today", "gauge", "Requests today (UTC) by budgeted endpoint")
    per_day = Family("screener_rpc_budget_requests_per_day", "gauge", "Configured requests_per_day by endpoint")
    per_s = Family("screener_rpc_budget_requests_per_second", "gauge", "Configured requests_per_s by endpoint")
    for b in snap.rpc_budgets:
        today.add(b.requests_today, chain=b.chain, endpoint=b.endpoint)
        per_day.add(b.requests_per_day, chain=b.chain, endpoint=b.endpoint)
        per_s.add(b.requests_per_s, chain=b.chain, endpoint=b.endpoint)
    alerts = Family("screener_alerts", "gauge", "Alerts in the outbox by delivery state")
    for state, n in sorted(snap.alerts_by_state.items()):
        alerts.add(n, state=state)
    workers = Family("screener_workers_alive", "gauge", "Workers seen within the lease ttl")
    workers.add(sum(1 for w in snap.workers if w.alive))
    return [version, age, stale, rpc, today, per_day, per_s, alerts, workers]


def _process_families(stats: ProcessStats) -> list[Family]:
    ticks = Family("screener_worker_ticks_total", "counter", "Ticks run by this worker by chain and outcome")
    last = Family("screener_worker_last_tick_duration_seconds", "gauge", "Duration of this worker's last tick")
    jobs = Family("screener_worker_job_runs_total", "counter", "Scheduled job runs by this worker")
    with stats.lock:
        for (chain, outcome), n in sorted(stats.ticks.items()):
            ticks.add(n, chain=chain, outcome=outcome)
        for chain, s in sorted(stats.last_tick_s.items()):
            last.add(s, chain=chain)
        for (job, outcome), n in sorted(stats.job_runs.items()):
            jobs.add(n, job=job, outcome=outcome)
    return [ticks, last, jobs]


def exposition(snap: StatusSnapshot | None, stats: ProcessStats) -> str:
    """The full /metrics body."""
    up = Family("screener_up", "gauge", "1 while the worker runs; info labels name it")
    up.add(1, worker=stats.worker_id)
    fams = [up]
    if snap is not None:
        scraped = Family("screener_status_timestamp_seconds", "gauge", "When the database figures were read")
        scraped.add(snap.at.timestamp())
        fams += [scraped, *_chain_families(snap), *_ledger_families(snap), *_other_families(snap)]
    return render([*fams, *_process_families(stats)])


class MetricsServer:
    """``GET /metrics`` (Prometheus text) and ``GET /healthz`` on ``host:port`` in a background thread."""

    def __init__(self, host: str, port: int, body: Callable[[], str]) -> None:
        handler = _handler(body)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                "free the port or set daemon.metrics_port (0 picks a free port)",
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread.is_alive():
            self._server.shutdown()  # only returns once serve_forever has: never call it on an unstarted server
            self._thread.join(timeout=timeout_s)
        self._server.server_close()


def _handler(body: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                self._reply(200, body().encode(), CONTENT_TYPE)
            elif self.path == "/healthz":
                self._reply(200, b"ok\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics %s", format % args)

    return Handler
