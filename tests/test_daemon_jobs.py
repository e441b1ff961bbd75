"""The daemon's job plumbing without a chain: lease renewal rules, failure containment, bounded waits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from screener.daemon.jobs import JobContext, Jobs, _InFlight
from screener.daemon.leases import list_leases, make_identity, try_acquire
from screener.ops.metrics import ProcessStats
from screener.settings import Settings

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _jobs(engine: Engine, now: datetime, max_tick_s: float = 60.0) -> Jobs:
    settings = Settings(daemon={"lease_ttl_s": 30.0, "max_tick_s": max_tick_s})
    me = make_identity("w")
    ctx = JobContext(engine, settings, me, lambda: now, ProcessStats("w"), threading.Event())
    return Jobs(ctx)


def _expiry(engine: Engine) -> dict[str, datetime]:
    return {v.name: v.expires_at for v in list_leases(engine)}


def test_heartbeat_renews_healthy_chains_only(engine: Engine) -> None:
    jobs = _jobs(engine, T0 + timedelta(seconds=10))
    ctx = jobs.ctx
    for name in ("chain:ok", "chain:failing", "job:stuck"):
        grant = try_acquire(engine, name, ctx.me, T0, 30.0)
        assert grant is not None
        ctx.held[name] = grant
    ctx.last_failure["failing"] = "RpcUnavailable: no usable RPC endpoint"
    ctx.inflight["job:stuck"] = _InFlight(ctx.held["job:stuck"], time.monotonic() - 61.0)
    jobs.heartbeat()
    after = _expiry(engine)
    assert after["chain:ok"] == T0 + timedelta(seconds=40)
    # Left to lapse: a chain that fails here (another worker may reach it) and a job past max_tick_s.
    assert after["chain:failing"] == T0 + timedelta(seconds=30)
    assert after["job:stuck"] == T0 + timedelta(seconds=30)
    assert ctx.stats.job_runs == {("heartbeat", "ok"): 1}


def test_a_failing_job_is_counted_not_raised(engine: Engine) -> None:
    jobs = _jobs(engine, T0)

    def broken() -> None:
        raise RuntimeError("boom at https://rpc.example/v3/secret")

    jobs.run_job("x", broken)
    jobs.ctx.stopping.set()
    jobs.run_job("x", broken)  # stopping: not run at all
    assert jobs.ctx.stats.job_runs == {("x", "error"): 1}


def test_wait_idle_is_bounded(engine: Engine) -> None:
    jobs = _jobs(engine, T0)
    grant = try_acquire(engine, "job:slow", jobs.ctx.me, T0, 30.0)
    assert grant is not None
    jobs.ctx.inflight["job:slow"] = _InFlight(grant, time.monotonic())
    assert jobs.wait_idle(0.2) is False

    def finish() -> None:
        with jobs.ctx.lock:
            jobs.ctx.inflight.clear()
            jobs.ctx.idle.notify_all()

    threading.Timer(0.1, finish).start()
    assert jobs.wait_idle(30.0) is True
