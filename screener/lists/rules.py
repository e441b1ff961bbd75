"""Pure list rules: refresh outcomes and freshness. Data and ``now`` in, data out; no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from screener_base.clock import ensure_utc


class RefreshStatus(StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


def list_age(last_verified_at: datetime, now: datetime) -> timedelta:
    """Freshness is time since the list was last verified (fetched, or re-fetched with the same sha256)."""
    return ensure_utc(now) - ensure_utc(last_verified_at)


def is_stale(last_verified_at: datetime, max_list_age_h: float, now: datetime) -> bool:
    return list_age(last_verified_at, now) > timedelta(hours=max_list_age_h)
