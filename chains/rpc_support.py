"""Data types and helpers of chains/rpc.py: retry policy, per-endpoint state and counters, bulk JSON parsing."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chains.budget import RequestBudget

# Above this size a reply is parsed with the cyclic GC paused: JSON yields no reference cycles, and the
# collections that hundreds of thousands of new dicts would trigger double the parse time of bulk logs.
GC_PAUSE_MIN_BYTES = 1 << 20


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC (process-wide) for a bulk section that creates no cycles; nests safely.

    Reference counting still frees everything; only the generational passes over the many new objects are
    skipped. Callers keep these sections short (one eth_getLogs reply and its decoding).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def loads_json(body: bytes) -> Any:
    if len(body) < GC_PAUSE_MIN_BYTES:
        return json.loads(body)
    with gc_paused():
        return json.loads(body)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    max_total_s: float = 30.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 4.0
    retry_after_cap_s: float = 10.0
    # How long a failed endpoint is passed over before it is tried again.
    cooldown_s: float = 30.0
    # A request waits for its endpoint's budget at most this long; beyond it the endpoint is passed over.
    budget_wait_cap_s: float = 5.0
    # A provider's stated wait (Retry-After, "suspended for 30s") is honoured up to this; a longer one is cut here.
    max_suspension_s: float = 900.0


@dataclass
class EndpointStats:
    """Counters the metrics exporter reads (see RpcClient.stats)."""

    requests: int = 0
    batches: int = 0
    errors: int = 0
    transient_errors: int = 0
    retries: int = 0
    timeouts: int = 0
    rate_limited: int = 0
    range_limited: int = 0
    failovers: int = 0
    refused: int = 0
    budget_waits: int = 0  # requests that waited for the endpoint's budget
    budget_wait_s_total: float = 0.0
    over_budget: int = 0  # times the endpoint was passed over: budget spent, or the provider suspended us
    seconds_total: float = 0.0
    last_error: str = ""


@dataclass
class Suspension:
    """Until when (monotonic s) the provider said not to ask: shared by the clients of one process, one key."""

    until_s: float = 0.0


@dataclass
class BudgetSlot:
    """An endpoint's request budget and the lock of the threads (and clients) that share it."""

    budget: RequestBudget
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Endpoint:
    url: str
    label: str
    stats: EndpointStats = field(default_factory=EndpointStats)
    chain_id_checked: bool = False
    refused_reason: str | None = None
    cooldown_until: float = 0.0
    budget: BudgetSlot | None = None
    # The provider said not to ask before this: TronGrid's suspension, a long Retry-After.
    suspension: Suspension = field(default_factory=Suspension)
