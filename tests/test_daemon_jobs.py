"""The daemon's job plumbing without a chain: lease renewal rules, failure containment, bounded waits, and the
re-screen of open holds after the index and refresh jobs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.daemon.jobs import JobContext, Jobs, _InFlight
from screener.daemon.leases import list_leases, make_identity, try_acquire
from screener.db import session_scope
from screener.decide.decide import decide_deposits
from screener.lists import store as lists_store
from screener.models.ledger import AuditEvent, Hold
from screener.models.screening import IndexCursor
from screener.ops.metrics import ProcessStats
from screener.settings import Settings
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.screening_env import make_deposit

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


def test_index_and_refresh_jobs_screen_open_holds_again(engine: Engine, tmp_path: Path, shared_data: Path) -> None:
    """The daemon's side of "re-screen on every change of what screening knows": an index scan job settles a
    hold that waited for the index (a clean sender: credited, audited as hold.cleared); a refresh job that
    verifies a list screens every open hold again (the listed sender's becomes BLOCK)."""
    now = datetime.now(UTC)
    listing = tmp_path / "list.xml"
    listing.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / "2025-05-30"), published=date(2025, 6, 1)))
    settings = Settings(lists={"max_list_age_h": 24 * 3650, "source_url": str(listing)})
    with session_scope(engine) as s:
        lists_store.ensure_active(s, now)
        for kind in ("mixer", "blacklist"):  # behind the deposits' block 5
            s.add(IndexCursor(chain="ethereum", kind=kind, next_block=3, first_block=0, sources="-", updated_at=now))
        clean = make_deposit("ethereum", "0x" + "5a" * 20, block=5)
        listed = make_deposit(
            "ethereum", "0x08723392ed15743cc38513c4925f5e6be5c17243", initiator=None, block=5, log_index=1
        )
        s.add_all([clean, listed])
        s.flush()
        decide_deposits(s, [clean, listed], settings, now)
    ctx = JobContext(engine, settings, make_identity("w"), lambda: now, ProcessStats("w"), threading.Event())
    jobs = Jobs(ctx)
    with session_scope(engine) as s:
        for cursor in s.exec(select(IndexCursor)):
            cursor.next_block = 10**6  # as if the scan had just caught up
            s.add(cursor)
    jobs.scan_index("mixer")
    jobs.refresh_lists()
    with session_scope(engine) as s:
        states = {h.deposit_id: (h.state, h.verdict) for h in s.exec(select(Hold))}
        assert states[clean.id] == ("released", "HOLD")
        assert states[listed.id] == ("open", "BLOCK")
        assert len(s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.cleared")).all()) == 1
