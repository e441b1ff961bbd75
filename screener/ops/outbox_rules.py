"""Pure alert outbox rules: what an alert is about, where its delivery stands, when to try again. No I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_BACKOFF_S = 3600.0


class AlertKind(StrEnum):
    HOLD_OPENED = "hold_opened"
    HOLD_OVERDUE = "hold_overdue"
    LIST_REFRESH_FAILED = "list_refresh_failed"
    LIST_STALE = "list_stale"
    DEEP_REORG = "deep_reorg"
    CHAIN_HALTED = "chain_halted"
    RETROACTIVE_FLAG = "retroactive_flag"
    UNASSIGNED_DEPOSIT = "unassigned_deposit"  # a transfer to our address on a chain where it is not registered
    AUDIT_CHECKPOINT = "audit_checkpoint"  # not a problem: the chain's head, kept by whoever receives the webhook


class AlertState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # max_attempts used up; shown by `screener status` and the metrics
    LOGGED = "logged"  # no webhook configured: written to the log instead


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 2, 4, 8, ... capped at an hour."""
    return float(min(MAX_BACKOFF_S, 2.0 ** max(1, attempts)))


def outbox_row(
    kind: AlertKind,
    key: str,
    text: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    ref_id: int | None = None,
) -> dict[str, Any]:
    """The ``alert_outbox`` column values of a new alert, deduplicated by ``kind:key`` (screener.ops.alerts.enqueue,
    and the pipeline, which records an unassigned deposit's alert in its own transaction)."""
    return {
        "kind": kind.value,
        "dedup_key": f"{kind.value}:{key}"[:200],
        "ref_id": ref_id,
        "text": text,
        "payload": payload or {},
        "state": AlertState.PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "delivered_to": [],
    }
