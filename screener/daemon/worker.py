"""`screener run`: the long-running worker. APScheduler 3 runs the jobs; the database coordinates workers.

Start-up refuses (ScreenerError, non-zero exit) when the config is unusable, the schema is not at head, no
chain has RPC endpoints, the metrics port is taken, or, on SQLite, another worker already serves the file.
Jobs (screener.daemon.jobs): a poll per configured chain every ``poll_interval_s``, the list refresh on
``lists.refresh_cron`` (UTC), mixer and blacklist index scans, the hold SLA check, alert detection and
delivery, the metrics snapshot, and a heartbeat renewing this worker's leases. All have ``max_instances=1``,
``coalesce=True`` and jitter. A stop (SIGTERM/SIGINT) stops scheduling, lets running jobs finish their
current tick (each is one transaction) within ``daemon.max_tick_s``, then releases the leases so another
worker takes over at once; a second signal, or a tick that overruns, ends the process without waiting,
which the database turns into a rollback of the unfinished transaction.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from screener.daemon.jobs import JobContext, Jobs
from screener.daemon.leases import (
    SqliteWorkerLock,
    WorkerIdentity,
    install_fencing,
    make_identity,
    register_worker,
    release_all,
    single_worker_guard,
    worker_seen,
)
from screener.daemon.usage import seed_budgets
from screener.db import check_schema, make_engine, session_scope
from screener.decide.decide import make_decider
from screener.indexes.sources import runtime_lookup
from screener.ledger.audit import record_seal_baseline
from screener.lists import store as lists_store
from screener.ops.metrics import MetricsServer, ProcessStats, exposition
from screener.ops.status import configured_chains
from screener.pipeline.runtime import build_chain_runtime, check_chains
from screener.settings import Settings
from screener_base.clock import utc_now
from screener_base.errors import ConfigError

log = logging.getLogger("screener.daemon")
EXECUTOR_THREADS = 8


def _cron(expr: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expr, timezone=UTC)
    except ValueError as exc:
        raise ConfigError(
            f"lists.refresh_cron {expr!r} is not a crontab expression: {exc}", "use five fields, e.g. '17 */6 * * *'"
        ) from exc


def check_config(settings: Settings) -> list[str]:
    """The chains to poll; ConfigError when there is nothing to do, a chain table is unusable or a schedule is."""
    check_chains(settings)
    chains = configured_chains(settings)
    if not chains:
        raise ConfigError(
            "no chain is configured with rpc_urls, so there is nothing to poll",
            "set [chains.<name>] rpc_urls = [...] in the config (see config.example.toml), or try `screener demo`",
        )
    _cron(settings.lists.refresh_cron)
    if settings.daemon.lease_ttl_s <= settings.daemon.jitter_s:
        raise ConfigError("daemon.lease_ttl_s must be longer than daemon.jitter_s", "raise lease_ttl_s")
    return chains


class Daemon:
    """One worker process. ``start()`` then ``stop()``; ``run()`` does both around signals."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None, now_fn: Callable[[], datetime] = utc_now):
        self.settings = settings
        self.chains = check_config(settings)
        db = settings.database
        self.engine = engine or make_engine(
            db.url, pool_timeout_s=db.pool_timeout_s, statement_timeout_s=db.statement_timeout_s
        )
        self.me: WorkerIdentity = make_identity(settings.daemon.worker_id)
        self.stopping = threading.Event()
        self.ctx = JobContext(self.engine, settings, self.me, now_fn, ProcessStats(self.me.worker_id), self.stopping)
        self.jobs = Jobs(self.ctx)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": {"type": "threadpool", "max_workers": EXECUTOR_THREADS}},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self.metrics: MetricsServer | None = None
        self._sqlite_lock: SqliteWorkerLock | None = None

    # --- start ------------------------------------------------------------------------------------------

    def start(self) -> None:
        check_schema(self.engine)
        with session_scope(self.engine) as session:  # a database made without `db upgrade` gets it here
            record_seal_baseline(session, self.ctx.now_fn())
        self._sqlite_lock = single_worker_guard(self.engine, self.settings.database.url)
        if self._sqlite_lock is not None:
            self._sqlite_lock.acquire(self.me)
        try:
            register_worker(self.engine, self.me, self.ctx.now_fn(), self.settings.daemon.lease_ttl_s)
            self._build_runtimes()
            d = self.settings.daemon
            self.metrics = MetricsServer(d.metrics_host, d.metrics_port, self._metrics_body)
            install_fencing()
            self._schedule()
        except BaseException:
            self._abort_start()
            raise
        self.jobs.refresh_metrics()
        self.metrics.start()
        log.info(
            "worker %s starting: chains %s; metrics on %s port %d (/metrics)",
            self.me.worker_id,
            ", ".join(self.chains),
            self.settings.daemon.metrics_host,
            self.metrics.port,
        )
        self.scheduler.start()

    def _abort_start(self) -> None:
        """Undo a start that failed half way, so a retry (or another worker) is not blocked by it."""
        self._close_runtimes()
        if self.metrics is not None:
            self.metrics.stop()
        try:
            worker_seen(self.engine, self.me, self.ctx.now_fn(), stopped=True)
        except Exception as exc:  # the original error matters more; the row ages out after lease_ttl_s
            log.debug("could not mark the worker stopped: %s", exc)
        if self._sqlite_lock is not None:
            self._sqlite_lock.release()

    def _build_runtimes(self) -> None:
        for chain in self.chains:
            runtime = self.ctx.runtimes[chain] = build_chain_runtime(self.settings, chain)
            # Index scans run in their own threads: they get their own runtimes (RPC clients, range state),
            # spending the same request budgets (one provider key).
            index_runtime = self.ctx.index_runtimes[chain] = build_chain_runtime(self.settings, chain)
            index_runtime.client.share_budgets(runtime.client)
            flushed = self.ctx.rpc_usage_flushed.setdefault(chain, {})
            seed_budgets(self.engine, chain, runtime.client, self.ctx.now_fn().date(), flushed)
        self.ctx.decide = make_decider(self.settings, runtime_lookup(self.settings, self.ctx.runtimes))
        self.ctx.index_lookup = runtime_lookup(self.settings, self.ctx.index_runtimes)

    def _close_runtimes(self) -> None:
        for runtime in [*self.ctx.runtimes.values(), *self.ctx.index_runtimes.values()]:
            runtime.close()

    def _list_needs_refresh(self) -> bool:
        """Import the bundled list when the database has none; True when the active list is stale."""
        now = self.ctx.now_fn()
        with session_scope(self.engine) as session:
            version = lists_store.ensure_active(session, now)
            return lists_store.is_stale(version, self.settings, now)

    def _interval(self, seconds: float) -> IntervalTrigger:
        # Jitter spreads several workers' polls; never more than a fifth of the interval.
        return IntervalTrigger(seconds=seconds, jitter=min(self.settings.daemon.jitter_s, seconds / 5), timezone=UTC)

    def _schedule(self) -> None:
        d, jobs, add = self.settings.daemon, self.jobs, self.scheduler.add_job
        first = datetime.now(UTC)
        for chain, runtime in self.ctx.runtimes.items():
            add(
                jobs.poll_chain,
                self._interval(runtime.spec.poll_interval_s),
                args=[chain],
                id=f"poll:{chain}",
                next_run_time=first,
            )
        # A stale list holds every deposit: refresh now rather than at the next cron time.
        refresh_now = {"next_run_time": first} if self._list_needs_refresh() else {}
        add(jobs.refresh_lists, _cron(self.settings.lists.refresh_cron), id="lists_refresh", **refresh_now)
        for kind in ("mixer", "blacklist"):
            add(jobs.scan_index, self._interval(d.index_scan_interval_s), args=[kind], id=f"{kind}_index")
        add(jobs.check_sla, self._interval(d.sla_check_interval_s), id="sla_check", next_run_time=first)
        add(
            jobs.deliver_alerts,
            self._interval(self.settings.alerts.deliver_interval_s),
            id="alerts",
            next_run_time=first,
        )
        add(
            jobs.checkpoint_audit,
            self._interval(self.settings.audit.checkpoint_interval_s),
            id="audit_checkpoint",
            next_run_time=first,
        )
        add(jobs.refresh_metrics, self._interval(d.metrics_interval_s), id="metrics")
        add(jobs.heartbeat, IntervalTrigger(seconds=max(0.2, d.lease_ttl_s / 3), timezone=UTC), id="heartbeat")

    def _metrics_body(self) -> str:
        return exposition(self.ctx.snapshot, self.ctx.stats)

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port if self.metrics else None

    # --- stop -------------------------------------------------------------------------------------------

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop scheduling, wait (bounded) for running jobs, release leases. False if a job still ran."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        clean = self.jobs.wait_idle(self.settings.daemon.max_tick_s if timeout_s is None else timeout_s)
        if not clean:
            log.error("a job is still running after the stop timeout; exiting without waiting for it")
        else:
            self.jobs.checkpoint_audit(final=True)  # the head as this worker leaves it (skipped if unchanged)
        now = self.ctx.now_fn()
        try:
            released = release_all(self.engine, self.me, now)
            worker_seen(self.engine, self.me, now, stopped=True)
            log.info("worker %s stopped; released %d lease(s)", self.me.worker_id, released)
        except Exception as exc:  # the leases expire on their own; a stop must still finish
            log.warning("could not release leases on stop (they expire by themselves): %s", exc)
        if self.metrics is not None:
            self.metrics.stop()
        if clean:
            self._close_runtimes()
        if self._sqlite_lock is not None:
            self._sqlite_lock.release()
        return clean

    def run(self) -> bool:
        """Start, block until SIGTERM/SIGINT, stop. Returns whether the stop was clean."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        signals_seen: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            signals_seen.append(signum)
            if len(signals_seen) > 1:
                # A second signal: do not wait for the running tick; its transaction is rolled back.
                os._exit(128 + signum)
            self.stopping.set()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self.start()
            while not self.stopping.wait(timeout=1.0):
                pass
            log.info("stop requested: finishing the current tick, then stopping")
            return self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
