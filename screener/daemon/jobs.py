"""The daemon's scheduled jobs. Each runs under a DB lease (so one worker at a time does it) and never raises.

Chain polls run ``pipeline.tick`` inside ``leases.fenced``: the tick's one transaction re-checks the chain
lease's fencing token just before it commits, so a worker that lost the lease cannot commit a range on top
of the new holder (the pipeline's compare-and-set cursor and unique deposit keys are a second guard).
A poll keeps ticking while the chain is behind, within ``daemon.max_tick_s``, and stops between ticks when
the daemon is stopping, so a stop never cuts a tick (each tick is a single transaction anyway).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chains.scanning import ChainHalted, DeepReorg
from screener.daemon.checkpoint import write_checkpoint
from screener.daemon.leases import (
    LeaseGrant,
    LeaseLost,
    WorkerIdentity,
    fenced,
    release_one,
    renew,
    try_acquire,
    worker_seen,
)
from screener.daemon.state import flush_rpc_errors, record_tick_failure, record_tick_success
from screener.daemon.usage import Flushed, flush_usage
from screener.db import session_scope
from screener.decide.holds import rescreen_open_holds
from screener.decide.rescreen import make_index_hook, make_list_hook
from screener.indexes.store import scan_blacklist_index, scan_mixer_index
from screener.lists import refresh as lists_refresh
from screener.models.deposits import Deposit
from screener.ops import alert_rules
from screener.ops.alerts import deliver_due
from screener.ops.metrics import ProcessStats
from screener.ops.status import StatusSnapshot, collect
from screener.pipeline.runtime import ChainRuntime
from screener.pipeline.store import Decide
from screener.pipeline.tick import TickResult, tick
from screener.review.rules import DepositStatus
from screener.settings import Settings
from screener_base.errors import ScreenerError
from screener_base.redact import redact_text

log = logging.getLogger("screener.daemon")
tick_log = logging.getLogger("screener.tick")

# Ticks one poll may run back to back while catching up (each is bounded by the chain's max_block_range).
MAX_TICKS_PER_POLL = 1000


@dataclass
class _InFlight:
    grant: LeaseGrant
    started: float  # time.monotonic()


@dataclass
class JobContext:
    engine: Engine
    settings: Settings
    me: WorkerIdentity
    now_fn: Callable[[], datetime]
    stats: ProcessStats
    stopping: threading.Event
    runtimes: dict[str, ChainRuntime] = field(default_factory=dict)
    decide: Decide | None = None
    index_runtimes: dict[str, ChainRuntime] = field(default_factory=dict)
    index_lookup: Callable[[str], Any] | None = None
    snapshot: StatusSnapshot | None = None
    held: dict[str, LeaseGrant] = field(default_factory=dict)  # leases this worker holds (sticky chain leases)
    inflight: dict[str, _InFlight] = field(default_factory=dict)
    rpc_flushed: dict[str, dict[str, int]] = field(default_factory=dict)  # chain -> endpoint -> errors stored
    rpc_usage_flushed: dict[str, Flushed] = field(default_factory=dict)  # chain -> endpoint -> (day, requests)
    last_failure: dict[str, str] = field(default_factory=dict)  # chain -> message of its failing ticks
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.idle = threading.Condition(self.lock)


class Jobs:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self._checkpointed_seq: int | None = None  # this worker's last checkpoint: an idle chain adds none

    # --- lease plumbing ---------------------------------------------------------------------------------

    def _acquire(self, name: str) -> LeaseGrant | None:
        ctx = self.ctx
        grant = try_acquire(ctx.engine, name, ctx.me, ctx.now_fn(), ctx.settings.daemon.lease_ttl_s)
        with ctx.lock:
            if grant is None:
                ctx.held.pop(name, None)
            else:
                ctx.held[name] = grant
        return grant

    @contextmanager
    def _leased(self, name: str) -> Iterator[LeaseGrant | None]:
        """Hold ``name`` for the block (None: another worker has it) and count the block as in flight."""
        grant = None if self.ctx.stopping.is_set() else self._acquire(name)
        late = False
        with self.ctx.lock:
            # Checked under the lock that wait_idle uses: once a stop has waited, nothing new starts.
            if grant is not None and not self.ctx.stopping.is_set():
                self.ctx.inflight[name] = _InFlight(grant, time.monotonic())
            else:
                late, grant = grant is not None, None
        if late:  # acquired while the stop was releasing this worker's leases: give it back too
            release_one(self.ctx.engine, self.ctx.me, name, self.ctx.now_fn())
        if grant is None:
            yield None
            return
        try:
            with fenced(self.ctx.engine, grant, self.ctx.me):
                yield grant
        finally:
            with self.ctx.lock:
                self.ctx.inflight.pop(name, None)
                if not name.startswith("chain:"):
                    self.ctx.held.pop(name, None)  # singleton jobs do not keep their lease between runs
                self.ctx.idle.notify_all()

    def run_job(self, job: str, fn: Callable[[], None]) -> None:
        """Run one job body; log and count any failure instead of letting it reach the scheduler."""
        if self.ctx.stopping.is_set():
            return
        try:
            fn()
            self.ctx.stats.count_job(job, "ok")
        except LeaseLost as exc:
            self.ctx.stats.count_job(job, "lease_lost")
            log.warning("%s: %s", job, exc)
        except Exception as exc:  # a job must never take the scheduler down; the next run retries
            self.ctx.stats.count_job(job, "error")
            log.error("%s failed: %s", job, redact_text(f"{type(exc).__name__}: {exc}"), exc_info=True)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no job body runs; False when some still run at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self.ctx.idle:
            while self.ctx.inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.ctx.idle.wait(timeout=min(left, 0.5))
        return True

    # --- chain polls ------------------------------------------------------------------------------------

    def poll_chain(self, chain: str) -> None:
        self.run_job(f"poll:{chain}", lambda: self._poll(chain))

    def _poll(self, chain: str) -> None:
        ctx = self.ctx
        deadline = time.monotonic() + ctx.settings.daemon.max_tick_s
        for _ in range(MAX_TICKS_PER_POLL):
            if ctx.stopping.is_set() or time.monotonic() > deadline:
                return
            with self._leased(f"chain:{chain}") as grant:
                if grant is None:
                    return
                more = self._tick_once(chain)
            if not more:
                return

    def _tick_once(self, chain: str) -> bool:
        """One tick; True when the chain is still behind its safe head and another tick should follow."""
        ctx, runtime = self.ctx, self.ctx.runtimes[chain]
        decided: Counter[str] = Counter()

        def decide(session: Session, deposits: list[Deposit], now: datetime) -> None:
            if ctx.decide is not None:
                ctx.decide(session, deposits, now)
            decided.update(d.status for d in deposits)

        started = time.perf_counter()
        try:
            result = tick(ctx.engine, runtime, ctx.now_fn, decide)
        except LeaseLost:
            ctx.stats.count_tick(chain, "lease_lost", time.perf_counter() - started)
            raise
        except Exception as exc:
            self._tick_failed(chain, exc, time.perf_counter() - started)
            return False
        finally:
            flush_rpc_errors(ctx.engine, runtime, ctx.rpc_flushed.setdefault(chain, {}), ctx.now_fn())
            flush_usage(ctx.engine, chain, runtime.client, ctx.rpc_usage_flushed.setdefault(chain, {}), ctx.now_fn())
        duration_s = time.perf_counter() - started
        with ctx.lock:
            recovered = ctx.last_failure.pop(chain, None) is not None
        if recovered:
            log.info("%s ticks succeed again", chain)
        ctx.stats.count_tick(chain, result.status, duration_s)
        record_tick_success(ctx.engine, result, ctx.me.worker_id, ctx.now_fn())
        if result.reorg is not None:
            self._reorged(result)
        self._log_tick(result, decided, duration_s)
        behind = result.to_block is not None and result.safe_block is not None and result.to_block < result.safe_block
        return result.status == "reorg" or (result.status == "scanned" and behind)

    def _tick_failed(self, chain: str, exc: Exception, duration_s: float) -> None:
        ctx = self.ctx
        ctx.stats.count_tick(chain, "error", duration_s)
        message = redact_text(f"{type(exc).__name__}: {exc}")
        now = ctx.now_fn()
        cursor = record_tick_failure(ctx.engine, chain, message, ctx.me.worker_id, now)
        # The same failure repeats on every poll until it clears: say it loudly once, then quietly.
        with ctx.lock:
            repeated = ctx.last_failure.get(chain) == message
            ctx.last_failure[chain] = message
        if isinstance(exc, ChainHalted):
            log.log(logging.DEBUG if repeated else logging.ERROR, "%s halted: %s", chain, message)
            with session_scope(ctx.engine) as session:
                if isinstance(exc, DeepReorg):
                    alert_rules.deep_reorg(session, chain, None, cursor, message, now)
                else:
                    alert_rules.chain_halted(session, chain, cursor, message, now)
        else:
            log.log(logging.DEBUG if repeated else logging.WARNING, "%s tick failed: %s", chain, message)

    def _reorged(self, result: TickResult) -> None:
        # The pipeline reads only up to the safe head, so any reorg it sees went deeper than that: alert.
        reorg = result.reorg
        assert reorg is not None
        detail = f"{reorg.orphaned} deposit(s) orphaned; rescanning from block {reorg.fork_block + 1}"
        with session_scope(self.ctx.engine) as session:
            alert_rules.deep_reorg(
                session, result.chain, reorg.depth_blocks, reorg.fork_block, detail, self.ctx.now_fn()
            )

    def _log_tick(self, result: TickResult, decided: Counter[str], duration_s: float) -> None:
        if result.status != "scanned":
            decided = Counter()  # the decisions of a discarded range (e.g. a cursor conflict) were rolled back
        fields: dict[str, Any] = {
            "chain": result.chain,
            "status": result.status,
            "from_block": result.from_block,
            "to_block": result.to_block,
            "head": result.head_block,
            "safe": result.safe_block,
            "lag_blocks": result.lag_blocks,
            "logs": result.logs,
            "transfers": result.transfers,
            "recorded": result.recorded,
            "unassigned": result.unassigned,
            "duplicates": result.duplicates,
            "credited": decided.get(DepositStatus.CREDITED, 0),
            "held": decided.get(DepositStatus.HELD, 0),
            "endpoint": result.endpoint,
            "duration_ms": round(duration_s * 1000, 1),
            **{f"{k}_ms": round(v * 1000, 1) for k, v in result.timings_s.items() if k != "total"},
        }
        if result.reorg is not None:
            fields.update(reorg_depth=result.reorg.depth_blocks, orphaned=result.reorg.orphaned)
        tick_log.info("tick", extra={"fields": fields})

    # --- singleton jobs ---------------------------------------------------------------------------------

    def refresh_lists(self) -> None:
        self.run_job("lists_refresh", self._refresh_lists)

    def _refresh_lists(self) -> None:
        # A rejected refresh is recorded by lists.refresh and alerted by the alerts job (as one run by the CLI
        # would be); only a refresh that raises before recording anything is alerted here.
        ctx = self.ctx
        with self._leased("job:lists_refresh") as grant:
            if grant is None:
                return
            now = ctx.now_fn()
            hook = make_list_hook(ctx.settings, ctx.now_fn)
            try:
                result = lists_refresh.refresh(ctx.engine, ctx.settings, None, now, on_activated=hook)
            except LeaseLost:
                raise
            except Exception as exc:
                reason = redact_text(f"{type(exc).__name__}: {exc}")
                log.error("list refresh failed: %s", reason)
                with session_scope(ctx.engine) as session:
                    alert_rules.list_refresh_failed(session, reason, now.isoformat(timespec="minutes"), now)
                return
            level = logging.INFO if result.ok else logging.ERROR
            log.log(level, "list refresh: %s", result.summary_line())
            if result.ok:  # a new version, or the active one verified (fresh again): open holds may change
                self._rescreen_holds("list refresh", only_unavailable=False)

    def scan_index(self, kind: str) -> None:
        self.run_job(f"{kind}_index", lambda: self._scan_index(kind))

    def _scan_index(self, kind: str) -> None:
        ctx = self.ctx
        scan = scan_mixer_index if kind == "mixer" else scan_blacklist_index
        on_new_facts = make_index_hook(ctx.settings)
        for chain in sorted(ctx.index_runtimes):
            if ctx.stopping.is_set() or ctx.index_lookup is None:
                return
            source = ctx.index_lookup(chain)
            if source is None:
                continue
            with self._leased(f"index:{kind}:{chain}") as grant:
                if grant is None:
                    continue
                try:
                    added = scan(ctx.engine, source, ctx.settings, ctx.now_fn(), on_new_facts=on_new_facts)
                except LeaseLost:
                    raise
                except ScreenerError as exc:  # one chain's provider or data must not stop the other chains' scans
                    log.warning("%s %s index scan failed (the next run retries): %s", chain, kind, exc)
                    continue
                log.debug("%s %s index: %d new row(s)", chain, kind, added)
        # An index that caught up past a held deposit's block may settle its "unavailable" finding. One worker at
        # a time: every worker scans, and the same holds need screening only once.
        with self._leased("job:holds_rescreen") as grant:
            if grant is not None:
                self._rescreen_holds(f"{kind} index scan", only_unavailable=True)

    def _rescreen_holds(self, after: str, *, only_unavailable: bool) -> None:
        ctx = self.ctx
        counts = rescreen_open_holds(ctx.engine, ctx.settings, ctx.now_fn(), only_unavailable=only_unavailable)
        if counts.screened:
            log.info("after the %s: %s", after, counts.summary())

    def check_sla(self) -> None:
        self.run_job("sla_check", self._check_sla)

    def _check_sla(self) -> None:
        ctx = self.ctx
        with self._leased("job:sla_check") as grant:
            if grant is None:
                return
            now = ctx.now_fn()
            with session_scope(ctx.engine) as session:
                overdue = alert_rules.escalate_overdue_holds(session, now)
                alert_rules.check_list_freshness(session, ctx.settings, now)
                alert_rules.detect_halted_chains(session, ctx.settings.alerts.chain_halt_after_s, now)
            if overdue:
                log.warning("%d hold(s) past their review SLA", overdue)

    def checkpoint_audit(self, *, final: bool = False) -> None:
        """``final``: the last one, taken by a stopping worker after its other jobs finished."""
        if final:  # no lease: the worker is stopping (so _leased gives none); a second copy of a head is harmless
            try:
                self._take_checkpoint()
            except Exception as exc:  # a stop must still finish
                log.warning("final audit checkpoint not taken: %s", redact_text(f"{type(exc).__name__}: {exc}"))
            return
        self.run_job("audit_checkpoint", self._checkpoint_audit)

    def _checkpoint_audit(self) -> None:
        with self._leased("job:audit_checkpoint") as grant:
            if grant is not None:
                self._take_checkpoint()

    def _take_checkpoint(self) -> None:
        ctx = self.ctx
        cp = write_checkpoint(ctx.engine, ctx.settings, ctx.now_fn(), self._checkpointed_seq)
        if cp is not None:
            self._checkpointed_seq = cp.seq
            log.info("audit checkpoint: seq %d head %s", cp.seq, cp.head_hash)

    def deliver_alerts(self) -> None:
        self.run_job("alerts", self._deliver_alerts)

    def _deliver_alerts(self) -> None:
        ctx = self.ctx
        with self._leased("job:alerts") as grant:
            if grant is None:
                return
            now = ctx.now_fn()
            with session_scope(ctx.engine) as session:
                alert_rules.detect_opened_holds(session, now)
                alert_rules.detect_review_flags(session, now)
                alert_rules.detect_failed_refreshes(session, now)
            deliver_due(ctx.engine, ctx.settings.alerts, ctx.now_fn)

    # --- per-worker jobs --------------------------------------------------------------------------------

    def refresh_metrics(self) -> None:
        def body() -> None:
            with session_scope(self.ctx.engine) as session:
                self.ctx.snapshot = collect(session, self.ctx.settings, self.ctx.now_fn())

        self.run_job("metrics", body)

    def heartbeat(self) -> None:
        self.run_job("heartbeat", self._heartbeat)

    def _heartbeat(self) -> None:
        """Renew chain leases and the leases of jobs in flight, unless a job overran ``max_tick_s``.

        A chain whose ticks fail here is not renewed: its lease lapses, so a worker that can reach the chain
        may take it over (this one competes for it again at its next poll).
        """
        ctx = self.ctx
        limit_s = ctx.settings.daemon.max_tick_s
        with ctx.lock:
            stuck = {n for n, f in ctx.inflight.items() if time.monotonic() - f.started > limit_s}
            failing = {f"chain:{c}" for c in ctx.last_failure}
            grants = [g for n, g in ctx.held.items() if n not in stuck and (n in ctx.inflight or n not in failing)]
        for name in sorted(stuck):
            log.error("%s has run longer than daemon.max_tick_s (%gs); letting its lease lapse", name, limit_s)
        now = ctx.now_fn()
        kept = renew(ctx.engine, grants, ctx.me, now, ctx.settings.daemon.lease_ttl_s)
        with ctx.lock:
            for g in grants:
                if g.name not in kept:
                    ctx.held.pop(g.name, None)
        worker_seen(ctx.engine, ctx.me, now)
