"""Pure alert outbox rules: what an alert is about, where its delivery stands, when to try again. No I/O."""

from __future__ import annotations

from enum import StrEnum

MAX_BACKOFF_S = 3600.0


class AlertKind(StrEnum):
    HOLD_OPENED = "hold_opened"
    HOLD_OVERDUE = "hold_overdue"
    LIST_REFRESH_FAILED = "list_refresh_failed"
    LIST_STALE = "list_stale"
    DEEP_REORG = "deep_reorg"
    CHAIN_HALTED = "chain_halted"
    RETROACTIVE_FLAG = "retroactive_flag"
    AUDIT_CHECKPOINT = "audit_checkpoint"  # not a problem: the chain's head, kept by whoever receives the webhook


class AlertState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # max_attempts used up; shown by `screener status` and the metrics
    LOGGED = "logged"  # no webhook configured: written to the log instead


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 2, 4, 8, ... capped at an hour."""
    return float(min(MAX_BACKOFF_S, 2.0 ** max(1, attempts)))
