"""The worker's state at a glance, read from the database: shared by `screener status` and the metrics.

Everything here is read in one transaction from tables any worker writes, so every worker's metrics
endpoint and `screener status` on any machine tell the same story.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from screener.lists import store as lists_store
from screener.models.chain import ScanCursor
from screener.models.daemon import ChainStatus, Lease, RpcEndpointErrors, RpcEndpointUsage, Worker
from screener.models.deposits import Deposit
from screener.models.ledger import Hold, ReviewFlag
from screener.ops.alerts import outbox_counts
from screener.pipeline.runtime import spec_from_settings
from screener.review.rules import DepositStatus, FlagState, HoldState, is_overdue
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ScreenerError
from screener_base.redact import endpoint_labels, redact_text


@dataclass(frozen=True)
class ChainView:
    chain: str
    head_block: int | None
    safe_head_block: int | None
    cursor_block: int | None
    lag_blocks: int | None
    lag_s: float | None  # lag_blocks times the chain's nominal block time: an estimate
    last_tick_at: datetime | None
    ticks_ok: int
    ticks_failed: int
    last_error: str | None
    lease_holder: str | None  # the worker polling it now, if its lease is live
    configured: bool  # enabled in this config with rpc_urls


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    alive: bool  # seen within the lease ttl and not stopped


@dataclass(frozen=True)
class BudgetView:
    """One budgeted endpoint's requests today (all workers) against its configured budget."""

    chain: str
    endpoint: str  # redacted label
    requests_today: int
    requests_per_day: int | None
    requests_per_s: float | None

    @property
    def used_ratio(self) -> float | None:
        return None if not self.requests_per_day else self.requests_today / self.requests_per_day


@dataclass
class StatusSnapshot:
    at: datetime
    chains: list[ChainView] = field(default_factory=list)
    deposits_by_status: dict[str, int] = field(default_factory=dict)
    holds_open: int = 0
    holds_overdue: int = 0
    flags_open: int = 0
    list_version_id: int | None = None
    list_age_s: float | None = None
    list_stale: bool = True
    alerts_by_state: dict[str, int] = field(default_factory=dict)
    rpc_errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (chain, endpoint) -> total
    rpc_budgets: list[BudgetView] = field(default_factory=list)
    workers: list[WorkerView] = field(default_factory=list)
    leases: dict[str, str] = field(default_factory=dict)  # live lease name -> holder

    @property
    def deposits_total(self) -> int:
        return sum(self.deposits_by_status.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["deposits_total"] = self.deposits_total
        data["rpc_errors"] = [
            {"chain": c, "endpoint": e, "errors_total": n} for (c, e), n in sorted(self.rpc_errors.items())
        ]
        return data


def configured_chains(settings: Settings) -> list[str]:
    """Chains the daemon polls: enabled and given at least one RPC URL."""
    return sorted(name for name, cfg in settings.chains.items() if cfg.enabled and cfg.rpc_urls)


def _live_leases(session: Session, now: datetime) -> dict[str, str]:
    rows = session.exec(select(Lease).where(col(Lease.holder_instance).is_not(None)))
    return {r.name: r.holder or "?" for r in rows if ensure_utc(r.expires_at) > now}


def _block_time_s(settings: Settings, chain: str) -> float | None:
    try:
        return spec_from_settings(settings, chain).block_time_s
    except ScreenerError:
        return None  # a chain only known from old rows: no lag estimate in seconds


def _chain_view(
    name: str,
    status: ChainStatus | None,
    cursor: ScanCursor | None,
    settings: Settings,
    configured: bool,
    holder: str | None,
) -> ChainView:
    head = status.head_block if status and status.head_block is not None else (cursor.head_block if cursor else None)
    safe = status.safe_head_block if status and status.safe_head_block is not None else None
    if safe is None and cursor is not None:
        safe = cursor.safe_block
    last = cursor.next_block - 1 if cursor is not None else None
    lag = max(0, head - last) if head is not None and last is not None else None
    block_time_s = _block_time_s(settings, name)
    return ChainView(
        chain=name,
        head_block=head,
        safe_head_block=safe,
        cursor_block=last,
        lag_blocks=lag,
        lag_s=lag * block_time_s if lag is not None and block_time_s is not None else None,
        last_tick_at=ensure_utc(status.last_tick_at) if status and status.last_tick_at else None,
        ticks_ok=status.ticks_ok if status else 0,
        ticks_failed=status.ticks_failed if status else 0,
        last_error=redact_text(status.last_error) if status and status.last_error else None,
        lease_holder=holder,
        configured=configured,
    )


def _chains(session: Session, settings: Settings, leases: dict[str, str]) -> list[ChainView]:
    configured = set(configured_chains(settings))
    statuses = {r.chain: r for r in session.exec(select(ChainStatus))}
    cursors = {r.chain: r for r in session.exec(select(ScanCursor))}
    names = sorted(configured | set(statuses) | set(cursors))
    return [
        _chain_view(n, statuses.get(n), cursors.get(n), settings, n in configured, leases.get(f"chain:{n}"))
        for n in names
    ]


def _holds(session: Session, now: datetime) -> tuple[int, int]:
    rows = session.exec(select(Hold.state, Hold.due_at).where(col(Hold.state).in_(HoldState.UNRESOLVED))).all()
    return len(rows), sum(1 for state, due in rows if is_overdue(state, due, now))


def _list(session: Session, settings: Settings, now: datetime, snap: StatusSnapshot) -> None:
    version = lists_store.active_version(session)
    if version is None:
        return
    snap.list_version_id = version.id
    snap.list_age_s = lists_store.list_age(version, now).total_seconds()
    snap.list_stale = lists_store.is_stale(version, settings, now)


def _workers(session: Session, settings: Settings, now: datetime) -> list[WorkerView]:
    recent = now - timedelta(days=1)
    rows = session.exec(select(Worker).where(col(Worker.last_seen_at) > recent).order_by(col(Worker.started_at))).all()
    live_after = now - timedelta(seconds=settings.daemon.lease_ttl_s)
    return [
        WorkerView(
            worker_id=w.worker_id,
            hostname=w.hostname,
            pid=w.pid,
            started_at=ensure_utc(w.started_at),
            last_seen_at=ensure_utc(w.last_seen_at),
            alive=w.stopped_at is None and ensure_utc(w.last_seen_at) > live_after,
        )
        for w in rows
    ]


def _rpc_errors(session: Session) -> dict[tuple[str, str], int]:
    """Totals per (chain, endpoint label); labels are redacted again in case an older worker stored a URL."""
    totals: dict[tuple[str, str], int] = {}
    for row in session.exec(select(RpcEndpointErrors)):
        key = (row.chain, redact_text(row.endpoint))
        totals[key] = totals.get(key, 0) + row.errors_total
    return totals


def _rpc_budgets(session: Session, settings: Settings, now: datetime) -> list[BudgetView]:
    """Configured budgets with today's (UTC) cluster-wide request counts."""
    used = {
        (row.chain, row.endpoint): row.requests
        for row in session.exec(select(RpcEndpointUsage).where(RpcEndpointUsage.day == now.date().isoformat()))
    }
    views = []
    for chain in configured_chains(settings):
        endpoints = settings.chains[chain].endpoints
        for ep, label in zip(endpoints, endpoint_labels([e.url for e in endpoints]), strict=True):
            if ep.requests_per_s is None and ep.requests_per_day is None:
                continue
            today = int(used.get((chain, label[:255]), 0))
            views.append(BudgetView(chain, label, today, ep.requests_per_day, ep.requests_per_s))
    return views


def collect(session: Session, settings: Settings, now: datetime) -> StatusSnapshot:
    """Read everything `screener status` and the metrics report."""
    snap = StatusSnapshot(at=now)
    snap.leases = _live_leases(session, now)
    snap.chains = _chains(session, settings, snap.leases)
    by_status = session.exec(select(Deposit.status, sa.func.count()).group_by(Deposit.status)).all()
    snap.deposits_by_status = {
        s: 0 for s in (DepositStatus.RECORDED, DepositStatus.CREDITED, DepositStatus.HELD, DepositStatus.UNASSIGNED)
    }
    snap.deposits_by_status.update({str(s): int(n) for s, n in by_status})
    snap.holds_open, snap.holds_overdue = _holds(session, now)
    snap.flags_open = int(
        session.exec(select(sa.func.count()).select_from(ReviewFlag).where(ReviewFlag.state == FlagState.OPEN)).one()
    )
    _list(session, settings, now, snap)
    snap.alerts_by_state = outbox_counts(session)
    snap.rpc_errors = _rpc_errors(session)
    snap.rpc_budgets = _rpc_budgets(session, settings, now)
    snap.workers = _workers(session, settings, now)
    return snap
