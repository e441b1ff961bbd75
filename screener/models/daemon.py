"""Tables of the daemon area: leases, workers, the alert outbox, chain status and RPC error counters.

Kept in step by hand with screener/migrations/versions/0006_daemon.py (and 0011 for rpc_endpoint_usage).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from screener.ops.outbox_rules import AlertState


class Lease(SQLModel, table=True):
    """Who may run one chain's poll or one singleton job, until ``expires_at``.

    ``token`` grows by one every time a different worker instance takes the lease (a fencing token): work
    done under an older token is refused at commit (screener.daemon.leases).
    """

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=80)  # "chain:ethereum", "job:lists_refresh", ...
    holder: str | None = Field(default=None, max_length=128)  # worker_id, for people
    holder_instance: str | None = Field(default=None, max_length=32)  # one per process, for fencing
    token: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    acquired_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    renewed_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class Worker(SQLModel, table=True):
    """One row per `screener run` process (instance), refreshed by its heartbeat."""

    __tablename__ = "workers"

    instance: str = Field(primary_key=True, max_length=32)
    worker_id: str = Field(max_length=128, index=True)
    hostname: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    last_seen_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    stopped_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class AlertOutbox(SQLModel, table=True):
    """An alert waiting for (or done with) webhook delivery; ``dedup_key`` makes enqueueing idempotent."""

    __tablename__ = "alert_outbox"
    __table_args__ = (sa.Index("ix_alert_outbox_kind_ref", "kind", "ref_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    dedup_key: str = Field(max_length=200, unique=True)
    ref_id: int | None = Field(default=None)  # hold or flag id the alert is about, when there is one
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    state: str = Field(default=AlertState.PENDING, max_length=16, index=True)
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    next_attempt_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # Fingerprints of the webhook URLs that accepted it, so a retry never repeats a delivered copy.
    delivered_to: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class ChainStatus(SQLModel, table=True):
    """What the last ticks saw of one chain (the cursor itself is the pipeline's scan_cursors row).

    Written after every tick, idle ones included, for metrics, `screener status` and halt detection.
    """

    __tablename__ = "chain_status"

    chain: str = Field(primary_key=True, max_length=32)
    worker_id: str | None = Field(default=None, max_length=128)
    head_block: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    safe_head_block: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    last_tick_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # When the safe head last moved; a chain whose safe head stands still too long is "halted".
    last_progress_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    ticks_ok: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    ticks_failed: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    last_error_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class RpcEndpointErrors(SQLModel, table=True):
    """Cluster-wide RPC error totals per endpoint (redacted URL); workers add their deltas."""

    __tablename__ = "rpc_endpoint_errors"

    chain: str = Field(primary_key=True, max_length=32)
    endpoint: str = Field(primary_key=True, max_length=255)
    errors_total: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class RpcEndpointUsage(SQLModel, table=True):
    """Requests sent per endpoint (redacted label) and UTC day, summed over workers (migration 0011)."""

    __tablename__ = "rpc_endpoint_usage"

    chain: str = Field(primary_key=True, max_length=32)
    endpoint: str = Field(primary_key=True, max_length=255)
    day: str = Field(primary_key=True, max_length=10)  # UTC, YYYY-MM-DD
    requests: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
