"""TronGrid's request limiter as a gate for FaultProxy (a fake: no TronGrid runs here, and tests reach only loopback).

What it imitates is documented (../shared/data/peers/tron_jsonrpc/trongrid_limits.json): with a key, HTTP 503 above
its qps; a key that keeps going over is suspended and answered HTTP 403 with the recorded body ("The key exceeds
the frequency limit(15), and the query server is suspended for 30s"); over the key's daily total the qps drops
(~5/s, 503 beyond). The clock is injectable so that a test can run a whole day of budget in a second.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

STRIKES_BEFORE_SUSPENSION = 3


class TronGridGate:
    def __init__(
        self,
        *,
        qps: float,
        suspend_s: int = 30,
        per_day: int | None = None,
        over_day_qps: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.qps, self.suspend_s, self.per_day, self.over_day_qps = qps, suspend_s, per_day, over_day_qps
        self._clock, self._wall = clock, wall
        self._recent: deque[float] = deque()
        self._strikes: deque[float] = deque()
        self._suspended_until = 0.0
        self._lock = threading.Lock()
        self.served_per_day: Counter[date] = Counter()
        self.answered: Counter[int] = Counter()  # refusals by HTTP status

    def body_403(self) -> bytes:
        text = f"The key exceeds the frequency limit({self.qps:g}), and the query server is suspended for "
        return json.dumps({"success": False, "error": f"{text}{self.suspend_s}s", "statusCode": 403}).encode()

    def __call__(self) -> tuple[int, bytes] | None:
        with self._lock:
            now, day = self._clock(), self._wall().date()
            if now < self._suspended_until:
                return self._refuse(403, self.body_403())
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            over_day = self.per_day is not None and self.served_per_day[day] >= self.per_day
            if len(self._recent) >= (self.over_day_qps if over_day else self.qps):
                return self._strike(now)
            self._recent.append(now)
            self.served_per_day[day] += 1
            return None

    def _strike(self, now: float) -> tuple[int, bytes]:
        self._strikes.append(now)
        while self._strikes and self._strikes[0] <= now - 1.0:
            self._strikes.popleft()
        if len(self._strikes) >= STRIKES_BEFORE_SUSPENSION:
            self._suspended_until = now + self.suspend_s
            self._strikes.clear()
            return self._refuse(403, self.body_403())
        return self._refuse(503, b'{"Error": "service unavailable"}')

    def _refuse(self, status: int, body: bytes) -> tuple[int, bytes]:
        self.answered[status] += 1
        return status, body


class FakeClock:
    """Monotonic seconds, UTC wall time and sleep on one simulated timeline (sleep advances it)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.t = start, 0.0
        self._lock = threading.Lock()

    def mono(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.t += max(0.0, seconds)
