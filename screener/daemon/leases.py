"""Leases: which worker runs each chain's poll and each singleton job, with fencing tokens.

APScheduler 3 keeps its jobs per process, so several `screener run` processes coordinate here, in the
database. A lease row names its holder and an expiry; a worker takes it when it is free, expired, or
already its own (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so a busy row is skipped, never
waited on). Each change of holder bumps ``token``. Work done under a lease runs inside ``fenced(...)``:
just before that work's transaction commits, the lease row is locked and its token compared with the
one the work started with, so a worker that lost its lease (paused, partitioned, slow) cannot commit
on top of the new holder. Wall clocks only decide *when* a lease may be taken; correctness rests on
the token check, not on synchronised clocks.

SQLite allows one worker: ``SqliteWorkerLock`` holds an OS file lock next to the database file for the
life of the process, which the kernel drops when the process dies (even on SIGKILL).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession

from screener.db import insert_ignore, is_postgres, session_scope
from screener.models.daemon import Lease, Worker
from screener_base.clock import ensure_utc
from screener_base.errors import ScreenerError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LeaseLost(ScreenerError):
    """The lease a piece of work ran under was taken over before the work could commit."""


class WorkerConflict(ScreenerError):
    """Another worker already owns what this one needs (the SQLite database, or its worker id)."""


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str  # for people: configured, else hostname:pid
    instance: str  # one per process; fencing compares this, so two processes sharing a worker_id stay apart
    hostname: str
    pid: int


def make_identity(worker_id: str | None = None) -> WorkerIdentity:
    hostname = socket.gethostname()
    pid = os.getpid()
    return WorkerIdentity(
        worker_id=worker_id or f"{hostname}:{pid}", instance=uuid.uuid4().hex, hostname=hostname, pid=pid
    )


@dataclass(frozen=True)
class LeaseView:
    """A lease row's content, detached from the session."""

    name: str
    holder: str | None
    holder_instance: str | None
    token: int
    expires_at: datetime


@dataclass(frozen=True)
class LeaseGrant:
    name: str
    token: int
    expires_at: datetime


def decide(current: LeaseView, me: WorkerIdentity, now: datetime, ttl_s: float) -> LeaseView | None:
    """Pure rule: the lease's new content if ``me`` may hold it from ``now`` on, else None."""
    mine = current.holder_instance == me.instance
    if not mine and current.holder_instance is not None and ensure_utc(current.expires_at) > now:
        return None
    return LeaseView(
        name=current.name,
        holder=me.worker_id,
        holder_instance=me.instance,
        token=current.token if mine else current.token + 1,
        expires_at=now + timedelta(seconds=ttl_s),
    )


LEASES: sa.Table = Lease.__table__  # type: ignore[attr-defined]


def _view(row: Any) -> LeaseView:
    return LeaseView(row.name, row.holder, row.holder_instance, int(row.token), ensure_utc(row.expires_at))


def try_acquire(engine: Engine, name: str, me: WorkerIdentity, now: datetime, ttl_s: float) -> LeaseGrant | None:
    """Take or renew ``name`` for ``ttl_s`` seconds; None when another live worker holds it (or is busy with it)."""
    with session_scope(engine) as session:
        insert_ignore(session, LEASES, {"name": name, "token": 0, "expires_at": EPOCH}, ["name"])
        row = session.execute(sa.select(LEASES).where(LEASES.c.name == name).with_for_update(skip_locked=True)).first()
        if row is None:  # locked by a worker committing under it, or taking it right now
            return None
        new = decide(_view(row), me, now, ttl_s)
        if new is None:
            return None
        values: dict[str, Any] = {
            "holder": new.holder,
            "holder_instance": new.holder_instance,
            "token": new.token,
            "renewed_at": now,
            "expires_at": new.expires_at,
        }
        if new.token != row.token or row.acquired_at is None:
            values["acquired_at"] = now
        session.execute(sa.update(LEASES).where(LEASES.c.name == name).values(**values))
        return LeaseGrant(name=name, token=new.token, expires_at=new.expires_at)


def renew(engine: Engine, grants: list[LeaseGrant], me: WorkerIdentity, now: datetime, ttl_s: float) -> set[str]:
    """Extend the leases still held under the same token; returns the names kept."""
    kept: set[str] = set()
    if not grants:
        return kept
    with session_scope(engine) as session:
        for grant in grants:
            result = session.execute(
                sa.update(LEASES)
                .where(
                    LEASES.c.name == grant.name,
                    LEASES.c.holder_instance == me.instance,
                    LEASES.c.token == grant.token,
                )
                .values(renewed_at=now, expires_at=now + timedelta(seconds=ttl_s))
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                kept.add(grant.name)
    return kept


def release_all(engine: Engine, me: WorkerIdentity, now: datetime) -> int:
    """Expire every lease this instance holds so another worker can take it at once (clean stop)."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(LEASES).where(LEASES.c.holder_instance == me.instance).values(expires_at=now, renewed_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def release_one(engine: Engine, me: WorkerIdentity, name: str, now: datetime) -> None:
    """Expire lease ``name`` if this instance holds it (one acquired just as the worker was stopping)."""
    with session_scope(engine) as session:
        session.execute(
            sa.update(LEASES)
            .where(LEASES.c.name == name, LEASES.c.holder_instance == me.instance)
            .values(expires_at=now, renewed_at=now)
        )


def list_leases(engine: Engine) -> list[LeaseView]:
    with session_scope(engine) as session:
        return [_view(r) for r in session.execute(sa.select(LEASES).order_by(LEASES.c.name))]


def check_fence(session: OrmSession, grant: LeaseGrant, me: WorkerIdentity) -> None:
    """Raise LeaseLost unless ``grant`` is still this instance's, locking the row until the commit."""
    row = session.execute(
        sa.select(LEASES.c.holder_instance, LEASES.c.token, LEASES.c.holder)
        .where(LEASES.c.name == grant.name)
        .with_for_update()
    ).first()
    if row is None or row.holder_instance != me.instance or int(row.token) != grant.token:
        holder = row.holder if row is not None else "nobody"
        raise LeaseLost(
            f"lease {grant.name} (token {grant.token}) was taken over by {holder} before this work committed",
            "nothing was written; the new holder carries on from the database cursor",
        )


# --- the worker registry -------------------------------------------------------------------------------

WORKERS: sa.Table = Worker.__table__  # type: ignore[attr-defined]


def register_worker(engine: Engine, me: WorkerIdentity, now: datetime, ttl_s: float) -> None:
    """Record this process; refuse when a live process (seen within ``ttl_s``) already uses its worker id."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(WORKERS.c.hostname, WORKERS.c.pid).where(
                WORKERS.c.worker_id == me.worker_id,
                WORKERS.c.instance != me.instance,
                WORKERS.c.stopped_at.is_(None),
                WORKERS.c.last_seen_at > now - timedelta(seconds=ttl_s),
            )
        ).all()
        # On this host a dead pid is proof enough (a restart right after a crash need not wait for the ttl).
        live = next((r for r in rows if r.hostname != me.hostname or _pid_alive(r.pid)), None)
        if live is not None:
            raise WorkerConflict(
                f"worker id {me.worker_id!r} is in use by pid {live.pid} on {live.hostname}",
                "give each worker its own daemon.worker_id (or leave it unset for hostname:pid)",
            )
        session.execute(
            sa.insert(WORKERS).values(
                instance=me.instance,
                worker_id=me.worker_id,
                hostname=me.hostname,
                pid=me.pid,
                started_at=now,
                last_seen_at=now,
            )
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def worker_seen(engine: Engine, me: WorkerIdentity, now: datetime, *, stopped: bool = False) -> None:
    values: dict[str, Any] = {"last_seen_at": now}
    if stopped:
        values["stopped_at"] = now
    with session_scope(engine) as session:
        session.execute(sa.update(WORKERS).where(WORKERS.c.instance == me.instance).values(**values))


# --- fencing of work whose transaction is opened by someone else (the pipeline's tick) ---------------

_fence = threading.local()
_installed = False
_install_lock = threading.Lock()


def _before_commit(session: OrmSession) -> None:
    active: tuple[Engine, LeaseGrant, WorkerIdentity] | None = getattr(_fence, "active", None)
    if active is None:
        return
    engine, grant, me = active
    bind = session.get_bind()
    if getattr(bind, "engine", bind) is not engine:
        return
    check_fence(session, grant, me)


def install_fencing() -> None:
    """Register the commit-time lease check on every ORM session (idempotent; called by the daemon)."""
    global _installed
    with _install_lock:
        if not _installed:
            event.listen(OrmSession, "before_commit", _before_commit)
            _installed = True


@contextmanager
def fenced(engine: Engine, grant: LeaseGrant, me: WorkerIdentity) -> Iterator[None]:
    """Every ORM transaction on ``engine`` committed by this thread inside the block checks ``grant`` first."""
    install_fencing()
    previous = getattr(_fence, "active", None)
    _fence.active = (engine, grant, me)
    try:
        yield
    finally:
        _fence.active = previous


# --- SQLite: one worker per database file -------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL; None for in-memory databases."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


class SqliteWorkerLock:
    """An exclusive, non-blocking flock on ``<db>.worker.lock`` held while the worker lives."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".worker.lock")
        self._fh: IO[str] | None = None

    def acquire(self, me: WorkerIdentity) -> None:
        import fcntl

        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            other = fh.read().strip() or "another process"
            fh.close()
            raise WorkerConflict(
                f"the SQLite database {self.path.with_suffix('')} is already served by {other}; "
                "SQLite supports a single worker",
                "stop the other `screener run`, or use PostgreSQL (database.url) to run several workers",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"worker {me.worker_id} (pid {me.pid} on {me.hostname})\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None


def single_worker_guard(engine: Engine, url: str) -> SqliteWorkerLock | None:
    """The lock a SQLite worker must hold; None on PostgreSQL (leases coordinate several workers there)."""
    if is_postgres(engine):
        return None
    path = sqlite_path(url)
    return SqliteWorkerLock(path) if path is not None else None
