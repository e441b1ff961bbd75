"""Leases, fencing tokens, the worker registry and the SQLite single-worker lock, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.daemon.leases import (
    LeaseLost,
    SqliteWorkerLock,
    WorkerConflict,
    WorkerIdentity,
    fenced,
    list_leases,
    make_identity,
    register_worker,
    release_all,
    renew,
    sqlite_path,
    try_acquire,
    worker_seen,
)
from screener.db import session_scope
from screener.models.daemon import ChainStatus

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TTL_S = 30.0


def test_one_holder_at_a_time_and_takeover_after_expiry(engine: Engine) -> None:
    a, b = make_identity("a"), make_identity("b")
    grant_a = try_acquire(engine, "chain:x", a, T0, TTL_S)
    assert grant_a is not None and grant_a.token == 1
    assert try_acquire(engine, "chain:x", b, T0 + timedelta(seconds=29), TTL_S) is None
    # Renewing keeps the token: nobody else worked in between.
    again = try_acquire(engine, "chain:x", a, T0 + timedelta(seconds=10), TTL_S)
    assert again is not None and again.token == 1
    grant_b = try_acquire(engine, "chain:x", b, T0 + timedelta(seconds=41), TTL_S)
    assert grant_b is not None and grant_b.token == 2
    assert renew(engine, [grant_a], a, T0 + timedelta(seconds=42), TTL_S) == set()
    assert renew(engine, [grant_b], b, T0 + timedelta(seconds=42), TTL_S) == {"chain:x"}
    (view,) = list_leases(engine)
    assert view.holder == "b" and view.token == 2 and view.expires_at == T0 + timedelta(seconds=72)


def test_same_worker_id_in_two_processes_is_two_holders(engine: Engine) -> None:
    first, second = make_identity("same"), make_identity("same")
    assert try_acquire(engine, "job:j", first, T0, TTL_S) is not None
    assert try_acquire(engine, "job:j", second, T0 + timedelta(seconds=1), TTL_S) is None


def test_release_lets_another_worker_in_at_once(engine: Engine) -> None:
    a, b = make_identity("a"), make_identity("b")
    assert try_acquire(engine, "chain:x", a, T0, TTL_S) is not None
    assert try_acquire(engine, "job:y", a, T0, TTL_S) is not None
    assert release_all(engine, a, T0 + timedelta(seconds=1)) == 2
    grant = try_acquire(engine, "chain:x", b, T0 + timedelta(seconds=2), TTL_S)
    assert grant is not None and grant.token == 2


def _write_status(engine: Engine, chain: str) -> None:
    with session_scope(engine) as s:
        s.add(ChainStatus(chain=chain, ticks_ok=1, ticks_failed=0))


def _status_rows(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return [r[0] for r in s.execute(sa.select(ChainStatus.chain).order_by(ChainStatus.chain))]  # type: ignore[arg-type]


def test_fenced_commit_is_refused_after_takeover(engine: Engine) -> None:
    a, b = make_identity("a"), make_identity("b")
    grant_a = try_acquire(engine, "chain:x", a, T0, TTL_S)
    assert grant_a is not None
    with fenced(engine, grant_a, a):
        _write_status(engine, "kept")
    assert try_acquire(engine, "chain:x", b, T0 + timedelta(seconds=31), TTL_S) is not None
    with pytest.raises(LeaseLost, match="taken over by b"), fenced(engine, grant_a, a):
        _write_status(engine, "lost")
    assert _status_rows(engine) == ["kept"]
    # Outside the fence nothing is checked (and other threads are never affected).
    _write_status(engine, "unfenced")
    assert _status_rows(engine) == ["kept", "unfenced"]


def test_fence_is_per_thread(engine: Engine) -> None:
    a, b = make_identity("a"), make_identity("b")
    grant_a = try_acquire(engine, "chain:x", a, T0, TTL_S)
    assert grant_a is not None and try_acquire(engine, "chain:x", b, T0 + timedelta(seconds=31), TTL_S)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            _write_status(engine, "other-thread")
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    with fenced(engine, grant_a, a):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join(timeout=30)
    assert not errors and _status_rows(engine) == ["other-thread"]


@pytest.mark.postgres
def test_busy_lease_row_is_skipped_not_waited_on(pg_url: str) -> None:
    from screener.db import make_engine, upgrade

    eng = make_engine(pg_url)
    upgrade(eng)
    a, b = make_identity("a"), make_identity("b")
    grant = try_acquire(eng, "chain:x", a, T0, TTL_S)
    assert grant is not None
    try:
        with eng.connect() as holder_conn, holder_conn.begin():
            holder_conn.execute(sa.text("SELECT token FROM leases WHERE name = 'chain:x' FOR UPDATE"))
            # Even expired, a locked row (a commit under the fence in progress) is not taken.
            assert try_acquire(eng, "chain:x", b, T0 + timedelta(seconds=60), TTL_S) is None
        assert try_acquire(eng, "chain:x", b, T0 + timedelta(seconds=60), TTL_S) is not None
    finally:
        eng.dispose()


def test_worker_id_in_use_is_refused(engine: Engine) -> None:
    # The first "process" is this test's own, so it is alive.
    first, second = make_identity("w1"), make_identity("w1")
    register_worker(engine, first, T0, TTL_S)
    with pytest.raises(WorkerConflict, match="worker id 'w1' is in use"):
        register_worker(engine, second, T0 + timedelta(seconds=5), TTL_S)
    # Once the first stops (or falls silent for a ttl), the id is free again.
    worker_seen(engine, first, T0 + timedelta(seconds=6), stopped=True)
    register_worker(engine, second, T0 + timedelta(seconds=7), TTL_S)


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:///rel/x.db") == Path("rel/x.db")
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None


def test_sqlite_lock_refuses_a_second_worker_until_the_first_dies(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = SqliteWorkerLock(db)
    first.acquire(make_identity("first"))
    with pytest.raises(WorkerConflict, match="already served by worker first"):
        SqliteWorkerLock(db).acquire(make_identity("second"))
    first.release()
    second = SqliteWorkerLock(db)
    second.acquire(make_identity("second"))
    second.release()


def test_sqlite_lock_is_freed_when_its_process_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code = (
        "import sys, time; from pathlib import Path;"
        "from screener.daemon.leases import SqliteWorkerLock, make_identity;"
        f"lock = SqliteWorkerLock(Path({str(db)!r})); lock.acquire(make_identity('child'));"
        "print('locked', flush=True);"
        "time.sleep(600)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(WorkerConflict, match="child"):
            SqliteWorkerLock(db).acquire(make_identity("parent"))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                parent = SqliteWorkerLock(db)
                parent.acquire(make_identity("parent"))
                parent.release()
                break
            except WorkerConflict:
                if time.monotonic() > deadline:
                    pytest.fail("the lock of a killed process was never released")
                time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()


def test_worker_id_of_a_dead_process_on_this_host_is_free(engine: Engine) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    dead = WorkerIdentity("w1", "a" * 32, make_identity().hostname, child.pid)
    register_worker(engine, dead, T0, TTL_S)
    register_worker(engine, make_identity("w1"), T0 + timedelta(seconds=1), TTL_S)


def test_daemon_tables_match_their_models(engine: Engine) -> None:
    """Migration 0006 and screener/models/daemon.py are kept in step by hand: Alembic finds no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    mine = {"leases", "workers", "alert_outbox", "chain_status", "rpc_endpoint_errors"}
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert [d for d in diffs if any(t in str(d) for t in mine)] == []
