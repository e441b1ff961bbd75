"""Per-endpoint request budgets: a token bucket for ``requests_per_s``, a paced UTC-day total for ``requests_per_day``.

Pure: the caller passes the monotonic time and the UTC day, and the budget says how long the next request must
wait (``math.inf`` once the day's total is spent). Providers count by the UTC day (TronGrid: 100,000 requests a day
on a free key), so a day's budget is paced over the day rather than spent in a morning's catch-up: its bucket
refills at ``requests_per_day / 86400`` per second and holds at most an hour's share. A chain that catches up
therefore slows down to what the day allows instead of failing at noon. A throttling answer (HTTP 429, 503, TronGrid's
403) halves the per-second rate for a minute at a time; it recovers by a quarter per quiet minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

DAY_S = 86_400.0
PACE_BURST_S = 3_600.0  # the day's bucket holds this many seconds' worth of its share
# ... and never less than this many requests: a tick must fit in the bucket (see RequestBudget.admit_s).
MIN_PACE_BURST = 32
RECOVER_AFTER_S = 60.0
MIN_RATE_FACTOR = 1 / 16


@dataclass(frozen=True)
class BudgetLimits:
    requests_per_s: float | None = None
    requests_per_day: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_s is None and self.requests_per_day is None


@dataclass
class _Bucket:
    rate_per_s: float
    capacity: float
    tokens: float
    at_s: float

    def refill(self, now_s: float, rate_per_s: float) -> None:
        if now_s > self.at_s:
            self.tokens = min(self.capacity, self.tokens + (now_s - self.at_s) * rate_per_s)
            self.at_s = now_s

    def wait_s(self, rate_per_s: float) -> float:
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / rate_per_s


@dataclass
class BudgetUse:
    """What status and metrics show of one endpoint's budget."""

    day: date | None
    requests_today: int
    limits: BudgetLimits
    rate_factor: float
    throttled: int


@dataclass
class RequestBudget:
    limits: BudgetLimits
    now_s: float
    day: date | None = None
    used_today: int = 0
    rate_factor: float = 1.0
    throttled: int = 0
    _second: _Bucket | None = field(init=False, default=None)
    _paced: _Bucket | None = field(init=False, default=None)
    _recover_at_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        rps, per_day = self.limits.requests_per_s, self.limits.requests_per_day
        if rps is not None:
            burst = max(1.0, rps)
            self._second = _Bucket(rps, burst, burst, self.now_s)
        if per_day is not None:
            share = per_day / DAY_S
            burst = min(float(per_day), max(float(MIN_PACE_BURST), share * PACE_BURST_S))
            self._paced = _Bucket(share, burst, burst, self.now_s)

    def seed(self, day: date, requests: int) -> None:
        """Start from what the cluster already used today (other workers, earlier runs). The pace bucket is not
        emptied: it holds at most an hour's share, which a restart may spend early."""
        self._roll(day)
        self.used_today = max(self.used_today, requests)

    def wait_s(self, now_s: float, day: date) -> float:
        """Seconds until the next request may go; ``math.inf`` while the day's total is spent."""
        self._roll(day)
        per_day = self.limits.requests_per_day
        if per_day is not None and self.used_today >= per_day:
            return math.inf
        self._recover(now_s)
        wait = 0.0
        if self._second is not None:
            rate = self._second.rate_per_s * self.rate_factor
            self._second.refill(now_s, rate)
            wait = self._second.wait_s(rate)
        if self._paced is not None:
            self._paced.refill(now_s, self._paced.rate_per_s)
            wait = max(wait, self._paced.wait_s(self._paced.rate_per_s))
        return wait

    def admit_s(self, requests: int, now_s: float, day: date) -> float:
        """Seconds until ``requests`` requests in a row fit the day's pace (``math.inf`` if not today).

        Asked before a unit of work (a tick, a range) that needs several requests: starting one that the day's
        pace cannot finish would spend requests on work that is then thrown away, again and again.
        """
        self._roll(day)
        per_day = self.limits.requests_per_day
        if per_day is not None and self.used_today + requests > per_day:
            return math.inf
        if self._paced is None:
            return 0.0
        self._paced.refill(now_s, self._paced.rate_per_s)
        if requests > self._paced.capacity:
            return math.inf
        missing = requests - self._paced.tokens
        return 0.0 if missing <= 0 else missing / self._paced.rate_per_s

    def spend(self, now_s: float, day: date) -> None:
        """Count one request sent at ``now_s`` (after waiting what wait_s said)."""
        self._roll(day)
        self.used_today += 1
        for bucket in (self._second, self._paced):
            if bucket is not None:
                bucket.tokens -= 1.0

    def slow_down(self, now_s: float) -> None:
        """The provider throttled us: halve the per-second rate (down to 1/16) for at least a minute."""
        self.throttled += 1
        self.rate_factor = max(MIN_RATE_FACTOR, self.rate_factor / 2)
        self._recover_at_s = now_s + RECOVER_AFTER_S

    def use(self) -> BudgetUse:
        return BudgetUse(self.day, self.used_today, self.limits, self.rate_factor, self.throttled)

    def _recover(self, now_s: float) -> None:
        if self.rate_factor < 1.0 and now_s >= self._recover_at_s:
            self.rate_factor = min(1.0, self.rate_factor * 1.25)
            self._recover_at_s = now_s + RECOVER_AFTER_S

    def _roll(self, day: date) -> None:
        if self.day != day:
            if self.day is not None and day < self.day:
                return  # a clock stepped back does not reopen a spent day
            self.day = day
            self.used_today = 0


def seconds_to_next_day(seconds_of_day: float) -> float:
    """Seconds from a moment of the UTC day (seconds since midnight) to the next UTC midnight."""
    return max(1.0, DAY_S - seconds_of_day)
