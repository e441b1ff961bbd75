"""JSON-RPC over HTTP with several endpoints, failover, bounded retries, batching and a raw eth_getLogs path.

Everything goes through httpx and ``json`` directly: no web3 middleware or result formatters, so bulk logs
cost one JSON parse (web3's get_logs+process_log is an order of magnitude slower, see docs/benchmarks.md).
Every request has a timeout; retries are bounded by attempts and total time and happen on transient errors
only; each endpoint is checked to serve the expected chain id before its first use. URLs appear in logs
and errors only in redacted form (API keys are often path segments or query values).
"""

from __future__ import annotations

import json
import logging
import math
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from chains.budget import BudgetLimits, BudgetUse, RequestBudget, seconds_to_next_day
from chains.rpc_errors import (
    SHRINKABLE,
    EndpointRefused,
    ErrorKind,
    NodeBehindRpc,
    OverBudget,
    RangeTooLarge,
    RpcRequestError,
    RpcUnavailable,
    TransientRpcError,
    classify_rpc_error,
    parse_range_hint,
    parse_retry_after,
    parse_suspension_s,
    throttle_text,
)
from chains.rpc_support import BudgetSlot, Endpoint, EndpointStats, RetryPolicy, gc_paused, loads_json
from screener_base.clock import utc_now
from screener_base.errors import ConfigError, RpcError

__all__ = ["Endpoint", "EndpointStats", "RetryPolicy", "RpcClient", "gc_paused"]
from screener_base.redact import endpoint_labels, redact_text

log = logging.getLogger(__name__)
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class RpcClient:
    """One chain's endpoints. Methods without ``endpoint=`` fail over; with it they stay on that endpoint."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        chain_id: int | None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        batch_size: int = 50,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limits: Sequence[BudgetLimits] | None = None,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        if not urls:
            raise ConfigError("no RPC endpoint configured", "set chains.<name>.rpc_urls")
        if limits is not None and len(limits) != len(urls):
            raise ConfigError(f"{len(limits)} request budgets for {len(urls)} endpoints", "give one per endpoint")
        self.endpoints = [Endpoint(url=u, label=label) for u, label in zip(urls, endpoint_labels(urls), strict=True)]
        for ep, budget_limits in zip(self.endpoints, limits or [], strict=False):
            if not budget_limits.unlimited:
                ep.budget = BudgetSlot(RequestBudget(budget_limits, now_s=clock()))
        self.chain_id = chain_id
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.batch_size = max(1, batch_size)
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._ids = 0
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=_HEADERS)
        # A client dropped without close() (a one-off CLI runtime, a test) still releases its sockets
        # when collected, instead of leaving them to the interpreter's ResourceWarning.
        self._release = weakref.finalize(self, self._http.close)

    def close(self) -> None:
        self._release()

    def stats(self) -> dict[str, EndpointStats]:
        return {ep.label: ep.stats for ep in self.endpoints}

    def budget_use(self) -> dict[str, BudgetUse]:
        """Each budgeted endpoint's use of its budget today (unbudgeted endpoints are absent)."""
        uses = {}
        for ep in self.endpoints:
            if ep.budget is not None:
                with ep.budget.lock:
                    uses[ep.label] = ep.budget.budget.use()
        return uses

    def seed_budget(self, label: str, day: date, requests: int) -> None:
        """Count ``requests`` already made today through ``label`` (by other workers, or before a restart)."""
        for ep in self.endpoints:
            if ep.label == label and ep.budget is not None:
                with ep.budget.lock:
                    ep.budget.budget.seed(day, requests)

    def use_clock(
        self, clock: Callable[[], float], sleep: Callable[[float], None], wall: Callable[[], datetime]
    ) -> None:
        """Run on another clock (a simulation, a test of a day's budget): budgets restart from it, unspent."""
        self._clock, self._sleep, self._wall = clock, sleep, wall
        for ep in self.endpoints:
            if ep.budget is not None:
                ep.budget = BudgetSlot(RequestBudget(ep.budget.budget.limits, now_s=clock()))

    def share_budgets(self, other: RpcClient) -> None:
        """Spend ``other``'s budgets, and keep its suspensions, for the same endpoints: two clients of one
        process, one provider key."""
        theirs = {ep.url: ep for ep in other.endpoints}
        for ep in self.endpoints:
            if ep.url in theirs:
                ep.budget, ep.suspension = theirs[ep.url].budget, theirs[ep.url].suspension

    # --- endpoint selection -------------------------------------------------------------------------
    def candidates(self) -> list[Endpoint]:
        """Usable endpoints, healthy ones first in configured order, then cooling-down ones soonest first."""
        now = self._clock()
        usable = [ep for ep in self.endpoints if ep.refused_reason is None]
        healthy = [ep for ep in usable if ep.cooldown_until <= now]
        cooling = sorted((ep for ep in usable if ep.cooldown_until > now), key=lambda ep: ep.cooldown_until)
        return healthy + cooling

    def demote(self, ep: Endpoint, reason: str) -> None:
        now = self._clock()
        ep.cooldown_until = max(ep.cooldown_until, now + self.retry.cooldown_s)
        ep.stats.failovers += 1
        ep.stats.last_error = self._redact(reason)
        wait_s = ep.cooldown_until - now
        log.warning("rpc endpoint %s passed over for %.0fs: %s", ep.label, wait_s, ep.stats.last_error)

    def _failover(self, action: Callable[[Endpoint], Any]) -> Any:
        last: RpcError | None = None
        for ep in self.candidates():
            try:
                return action(ep)
            except RpcUnavailable as exc:
                self.demote(ep, str(exc))
                last = exc
        if last is None:
            raise RpcUnavailable(
                "no usable RPC endpoint (all refused: wrong chain id or credentials)",
                "check chains.<name>.rpc_urls and chain_id",
            )
        raise last

    def ensure_chain_id(self, ep: Endpoint) -> None:
        """Refuse (for good) an endpoint that serves another chain than expected."""
        if ep.refused_reason is not None:
            raise EndpointRefused(f"{ep.label} refused earlier: {ep.refused_reason}", "fix chains.<name>.rpc_urls")
        if ep.chain_id_checked or self.chain_id is None:
            return
        got = self._single(ep, "eth_chainId", [])
        try:
            served = int(got, 16)
        except (TypeError, ValueError):
            raise TransientRpcError(f"{ep.label}: eth_chainId returned {got!r}") from None
        if served != self.chain_id:
            ep.refused_reason = f"serves chain id {served}, expected {self.chain_id}"
            ep.stats.refused += 1
            log.error("rpc endpoint %s refused: %s", ep.label, ep.refused_reason)
            raise EndpointRefused(
                f"{ep.label} {ep.refused_reason}", "point chains.<name>.rpc_urls at the right network"
            )
        ep.chain_id_checked = True

    def probe_head(self, ep: Endpoint) -> int | None:
        """``ep``'s eth_blockNumber in one attempt (no retries, no failover); None if it does not answer."""
        if ep.refused_reason is not None:
            return None
        try:
            data = self._post(ep, {"jsonrpc": "2.0", "id": self._next_id(), "method": "eth_blockNumber", "params": []})
            return int(data["result"], 16)
        except (RpcError, KeyError, TypeError, ValueError):
            return None

    # --- public calls -------------------------------------------------------------------------------
    def call(self, method: str, params: list[Any], *, endpoint: Endpoint | None = None) -> Any:
        def run(ep: Endpoint) -> Any:
            self.ensure_chain_id(ep)
            return self._single(ep, method, params)

        return run(endpoint) if endpoint is not None else self._failover(run)

    def get_logs(self, log_filter: dict[str, Any], *, endpoint: Endpoint | None = None) -> list[dict[str, Any]]:
        """Raw eth_getLogs: the parsed JSON list, hex strings untouched (decoding is the caller's)."""

        def run(ep: Endpoint) -> list[dict[str, Any]]:
            self.ensure_chain_id(ep)
            result = self._single(ep, "eth_getLogs", [log_filter])
            if not isinstance(result, list):
                raise TransientRpcError(f"{ep.label}: eth_getLogs returned {type(result).__name__}, not a list")
            return result

        return run(endpoint) if endpoint is not None else self._failover(run)

    def get_logs_and_block(
        self, log_filter: dict[str, Any], block: int, *, endpoint: Endpoint | None = None
    ) -> tuple[list[dict[str, Any]], Any]:
        """eth_getLogs and eth_getBlockByNumber(``block``) in ONE HTTP request.

        Behind a load balancer each HTTP request may reach another node; asking in one request lets the
        caller check that the node which answered the logs also had ``block`` (a node that is behind clamps
        eth_getLogs silently on some clients). Range errors raise RangeTooLarge as in get_logs.
        """

        calls = [("eth_getLogs", [log_filter]), ("eth_getBlockByNumber", [hex(block), False])]

        def once(ep: Endpoint) -> tuple[list[dict[str, Any]], Any]:
            ids = [self._next_id() for _ in calls]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls, strict=True)
            ]
            ep.stats.batches += 1
            data = self._post(ep, payload)
            by_id = {x.get("id"): x for x in data if isinstance(x, dict)} if isinstance(data, list) else {}
            logs, header = (
                self._batch_item(ep, m, data, by_id.get(i), i) for i, (m, _) in zip(ids, calls, strict=True)
            )
            for item in (logs, header):
                if isinstance(item, RpcError):
                    raise item  # transient ones are retried as a pair, on the same endpoint
            if not isinstance(logs, list):
                raise self._transient(ep, f"eth_getLogs returned {type(logs).__name__}, not a list")
            return logs, header

        def run(ep: Endpoint) -> tuple[list[dict[str, Any]], Any]:
            self.ensure_chain_id(ep)
            result: tuple[list[dict[str, Any]], Any] = self._retrying(ep, "eth_getLogs", lambda: once(ep))
            return result

        return run(endpoint) if endpoint is not None else self._failover(run)

    def batch(
        self, calls: Sequence[tuple[str, list[Any]]], *, endpoint: Endpoint | None = None
    ) -> list[Any | RpcError]:
        """Several calls in JSON-RPC batches; per item the result or the RpcError it ended with."""

        def run(ep: Endpoint) -> list[Any | RpcError]:
            self.ensure_chain_id(ep)
            results: list[Any | RpcError] = []
            for start in range(0, len(calls), self.batch_size):
                results.extend(self._batch_chunk(ep, calls[start : start + self.batch_size]))
            return results

        if not calls:
            return []
        return run(endpoint) if endpoint is not None else self._failover(run)

    # --- transport ----------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact_text(text, [ep.url for ep in self.endpoints])

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _wait_s(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientRpcError) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.retry.retry_after_cap_s)
        backoff = self.retry.backoff_initial_s * (2 ** (state.attempt_number - 1))
        return float(min(backoff, self.retry.backoff_max_s))

    def _retrying(self, ep: Endpoint, what: str, action: Callable[[], Any]) -> Any:
        def before_sleep(state: RetryCallState) -> None:
            ep.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info("rpc %s on %s: retry %d after %s", what, ep.label, state.attempt_number, exc)

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts) | stop_after_delay(self.retry.max_total_s),
            wait=self._wait_s,
            retry=retry_if_exception_type(TransientRpcError),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(action)
        except TransientRpcError as exc:
            raise RpcUnavailable(
                f"{what} failed on {ep.label} after {self.retry.max_attempts} attempts: {exc.cause}",
                "the next endpoint is tried; check the provider's status and limits",
            ) from None

    def reserve(self, ep: Endpoint, requests: int) -> None:
        """Before work that needs about ``requests`` requests on ``ep``: wait (bounded) until its budget can
        carry them all, or OverBudget now, sending nothing. Nothing is spent here; each request spends."""
        slot = ep.budget
        if slot is None:
            return
        with slot.lock:
            wall = self._wall()
            wait = slot.budget.admit_s(requests, self._clock(), wall.date())
            self._refuse_beyond_cap(ep, slot.budget, wait, wall)
        self._wait_for_budget(ep, wait)

    def _acquire(self, ep: Endpoint) -> None:
        """Wait (bounded) for ``ep``'s budget and count the request; OverBudget, sending nothing, if it may not go."""
        now = self._clock()
        if ep.suspension.until_s > now:
            ep.stats.over_budget += 1
            raise OverBudget(
                f"{ep.label} suspended us for another {ep.suspension.until_s - now:.0f}s", "another endpoint is tried"
            )
        slot = ep.budget
        if slot is None:
            return
        with slot.lock:  # held while waiting: the threads sharing a budget queue for it
            wall = self._wall()
            wait = slot.budget.wait_s(now, wall.date())
            self._refuse_beyond_cap(ep, slot.budget, wait, wall)
            self._wait_for_budget(ep, wait)
            slot.budget.spend(self._clock(), wall.date())

    def _refuse_beyond_cap(self, ep: Endpoint, budget: RequestBudget, wait_s: float, wall: datetime) -> None:
        if wait_s > self.retry.budget_wait_cap_s:
            ep.stats.over_budget += 1
            raise self._over_budget(ep, budget, wait_s, wall)

    def _wait_for_budget(self, ep: Endpoint, wait_s: float) -> None:
        if wait_s > 0:
            ep.stats.budget_waits += 1
            ep.stats.budget_wait_s_total += wait_s
            self._sleep(wait_s)

    def _over_budget(self, ep: Endpoint, budget: RequestBudget, wait_s: float, wall: datetime) -> OverBudget:
        if math.isinf(wait_s):
            midnight_s = seconds_to_next_day(wall.hour * 3600 + wall.minute * 60 + wall.second)
            ep.cooldown_until = max(ep.cooldown_until, self._clock() + midnight_s)
            return OverBudget(
                f"{ep.label} has made its {budget.limits.requests_per_day} requests_per_day for {wall.date()}",
                "it is passed over until 00:00 UTC; raise requests_per_day or add an endpoint",
            )
        ep.cooldown_until = max(ep.cooldown_until, self._clock() + wait_s)
        return OverBudget(
            f"{ep.label} would wait {wait_s:.1f}s for its request budget (paced requests_per_day or requests_per_s)",
            "it is passed over until then; nothing is lost, the chain only slows down",
        )

    def _throttled(self, ep: Endpoint, what: str, wait_s: float | None) -> TransientRpcError | OverBudget:
        """The provider said slow down: pace the endpoint's budget. A wait longer than a retry may take is
        honoured by not asking the endpoint until then (OverBudget: another endpoint is tried meanwhile)."""
        ep.stats.rate_limited += 1
        now = self._clock()
        if ep.budget is not None:
            with ep.budget.lock:
                ep.budget.budget.slow_down(now)
        if wait_s is None or wait_s <= self.retry.retry_after_cap_s:
            return self._transient(ep, what, wait_s)
        wait_s = min(wait_s, self.retry.max_suspension_s)
        ep.suspension.until_s = max(ep.suspension.until_s, now + wait_s)
        ep.cooldown_until = max(ep.cooldown_until, now + wait_s)
        ep.stats.errors += 1
        ep.stats.last_error = what
        return OverBudget(f"{ep.label}: {what}; not asked again for {wait_s:.0f}s", "another endpoint is tried")

    def _post(self, ep: Endpoint, payload: Any) -> Any:
        """One HTTP round trip; raises TransientRpcError for anything worth retrying."""
        self._acquire(ep)
        ep.stats.requests += 1
        started = time.perf_counter()
        try:
            resp = self._http.post(ep.url, content=json.dumps(payload, separators=(",", ":")))
        except httpx.TimeoutException:
            ep.stats.timeouts += 1
            raise self._transient(ep, f"no answer within {self.timeout_s}s") from None
        except httpx.HTTPError as exc:
            raise self._transient(ep, f"network error ({type(exc).__name__}: {self._redact(str(exc))})") from None
        finally:
            ep.stats.seconds_total += time.perf_counter() - started
        return self._parse_http(ep, resp)

    def _transient(
        self,
        ep: Endpoint,
        cause: str,
        retry_after_s: float | None = None,
        kind: type[TransientRpcError] = TransientRpcError,
    ) -> TransientRpcError:
        ep.stats.errors += 1
        ep.stats.transient_errors += 1
        ep.stats.last_error = cause
        return kind(f"{ep.label}: {cause}", retry_after_s=retry_after_s)

    def _parse_http(self, ep: Endpoint, resp: httpx.Response) -> Any:
        status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status in (429, 503):  # 503: TronGrid above the key's qps; others when overloaded
            raise self._throttled(ep, f"HTTP {status} rate limited", retry_after)
        if status >= 500 or status in (408, 425):
            raise self._transient(ep, f"HTTP {status}", retry_after)
        try:
            data = loads_json(resp.content)
        except ValueError:
            if status >= 400:
                ep.stats.errors += 1
                raise EndpointRefused(f"{ep.label}: HTTP {status}", "check the URL and API key") from None
            raise self._transient(ep, f"truncated or non-JSON response ({len(resp.content)} bytes)") from None
        throttled = throttle_text(data) if status == 403 else None
        if throttled is not None:  # TronGrid: a key over its frequency limit is suspended, not refused
            raise self._throttled(ep, f"HTTP 403 {throttled}", retry_after or parse_suspension_s(throttled))
        if status >= 400 and not (isinstance(data, dict) and "error" in data):
            ep.stats.errors += 1
            raise EndpointRefused(f"{ep.label}: HTTP {status}", "check the URL and API key")
        return data

    def _error_from(self, ep: Endpoint, method: str, error: Any) -> RpcError:
        """The exception for a JSON-RPC error object (returned, not raised: batches collect them)."""
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        data = error.get("data") if isinstance(error, dict) else None
        if data:  # Tenderly, thirdweb, Blast: "invalid params", the limit itself in data
            message += " " + (data if isinstance(data, str) else json.dumps(data, default=str))
        message = self._redact(message)[:500]
        kind = classify_rpc_error(code if isinstance(code, int) else None, message)
        # On eth_getLogs a wording nobody classified is most often a size limit: shrink, a bounded number of times.
        if kind in SHRINKABLE or (kind is ErrorKind.UNKNOWN and method == "eth_getLogs"):
            ep.stats.range_limited += 1
            span, hint_range = parse_range_hint(message, kind)
            return RangeTooLarge(
                f"{method} on {ep.label}: {message}",
                hint_span=span,
                hint_range=hint_range,
                kind=kind.value,
                recognized=kind is not ErrorKind.UNKNOWN,
            )
        if kind is ErrorKind.TRANSIENT:
            return self._transient(ep, f"{method}: error {code}: {message}")
        if kind is ErrorKind.NODE_BEHIND:
            return self._transient(ep, f"{method}: node behind: error {code}: {message}", kind=NodeBehindRpc)
        ep.stats.errors += 1
        return RpcRequestError(f"{method} on {ep.label}: error {code}: {message}", "check the call", code=code)

    def _single(self, ep: Endpoint, method: str, params: list[Any]) -> Any:
        def once() -> Any:
            request_id = self._next_id()
            data = self._post(ep, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            if not isinstance(data, dict) or data.get("id") != request_id:
                raise self._transient(ep, f"{method}: malformed reply (not the answer to request {request_id})")
            if "error" in data:
                raise self._error_from(ep, method, data["error"])
            if "result" not in data:
                raise self._transient(ep, f"{method}: reply has neither result nor error")
            return data["result"]

        return self._retrying(ep, method, once)

    def _batch_chunk(self, ep: Endpoint, calls: Sequence[tuple[str, list[Any]]]) -> list[Any | RpcError]:
        """One chunk; items that fail transiently are re-sent (bounded), others keep their error."""
        results: list[Any | RpcError] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(self.retry.max_attempts):
            ids = {self._next_id(): i for i in pending}
            payload = [
                {"jsonrpc": "2.0", "id": rid, "method": calls[i][0], "params": calls[i][1]} for rid, i in ids.items()
            ]
            ep.stats.batches += 1
            try:
                data = self._post(ep, payload)
            except TransientRpcError as exc:
                data = exc
            by_id = {item.get("id"): item for item in data if isinstance(item, dict)} if isinstance(data, list) else {}
            still: list[int] = []
            for rid, i in ids.items():
                outcome = self._batch_item(ep, calls[i][0], data, by_id.get(rid), rid)
                results[i] = outcome
                if isinstance(outcome, TransientRpcError):
                    still.append(i)
            pending = still
            if not pending:
                break
            if attempt + 1 < self.retry.max_attempts:
                ep.stats.retries += 1
                self._sleep(min(self.retry.backoff_initial_s * 2**attempt, self.retry.backoff_max_s))
        for i in pending:  # still transient after every attempt: the endpoint is unavailable for these
            results[i] = RpcUnavailable(
                f"{calls[i][0]} failed on {ep.label} after {self.retry.max_attempts} attempts: {results[i]}",
                "the next endpoint is tried; check the provider's status and limits",
            )
        return results

    def _batch_item(self, ep: Endpoint, method: str, data: Any, item: Any, rid: int) -> Any:
        if isinstance(data, TransientRpcError):
            return data
        if isinstance(data, dict):  # the whole batch was answered with one error (e.g. batches disabled)
            return self._error_from(ep, method, data.get("error", data))
        if not isinstance(data, list):
            return self._transient(ep, f"{method}: batch reply is {type(data).__name__}, not a list")
        if item is None:
            return self._transient(ep, f"{method}: batch reply lacks an answer for request {rid}")
        if "error" in item:
            return self._error_from(ep, method, item["error"])
        if "result" in item:
            return item["result"]
        return self._transient(ep, f"{method}: batch answer {rid} has neither result nor error")
