"""Build an indexes.IndexSource (what the mixer/blacklist indexes and two-hop lookups need) from a chain runtime.

Kept apart from screener.indexes.store so that module stays testable with plain callables; this one is the glue to
the chain area's RPC client (retries and timeouts are the client's). Log fetches are verified the way the
deposit scanner's are: logs and the range's last block in one request on one pinned endpoint, so a node
behind a load balancer that has not reached the range cannot pass off "no logs" as "no events".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chains.blacklists import Interface
from chains.mixers import mixer_contracts, pool_addresses
from chains.rpc import Endpoint
from chains.rpc_errors import RangeTooLarge, RpcRequestError, RpcUnavailable, count_unrecognized
from chains.scanning import BEHIND_ATTEMPTS, NodeBehind, get_headers, parse_header
from screener.indexes.store import BlacklistToken, IndexSource, MultisigWatch
from screener.pipeline.runtime import ChainRuntime, build_chain_runtime
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.errors import ChainError, DecodeError

# Halvings of an eth_getLogs range the provider refuses as too large, before giving up on this scan.
MAX_RANGE_SHRINKS = 12
# Endpoints tried for one range (or one set of block headers) before the scan gives up until next time.
MAX_ENDPOINTS = 3
# Wall-clock bound on one verified range fetch, over all its requests (each request also has its timeout).
FETCH_DEADLINE_S = 120.0


class IndexRangeUnverified(ChainError):
    """No endpoint served a block range (or headers) shown complete: nothing past it may count as scanned."""


def index_source(runtime: ChainRuntime, settings: Settings) -> IndexSource:
    spec = runtime.spec
    cfg = settings.chains.get(runtime.name)
    pools: list[str] = []
    if spec.family is Family.EVM:
        pools = pool_addresses(mixer_contracts(runtime.name, cfg.mixer_pools if cfg else ()))
    known = {i.value for i in Interface}
    blacklist = tuple(
        BlacklistToken(t.symbol, t.contract, t.hex20, Interface(iface))
        for t in spec.tokens
        for iface in t.blacklist_interfaces
        if iface in known
    )
    by_symbol = {t.symbol: t for t in blacklist}
    multisigs = tuple(
        MultisigWatch(m.hex20, by_symbol[m.token_symbol]) for m in spec.issuer_multisigs if m.token_symbol in by_symbol
    )
    return IndexSource(
        chain=runtime.name,
        family=spec.family,
        fetch_logs=lambda params: _get_logs(runtime, params),
        safe_head=lambda: safe_head(runtime),
        block_times=lambda numbers: block_times(runtime, numbers),
        max_block_range=spec.max_block_range,
        block_time_s=spec.block_time_s,
        start_block=runtime.start_block,
        mixer_pools=tuple(pools),
        tokens=tuple(sorted(t.hex20 for t in spec.tokens)),
        blacklist_tokens=blacklist,
        multisigs=multisigs,
        call=lambda to, data: _call_latest(runtime, to, data),
    )


def _call_latest(runtime: ChainRuntime, to: str, data: str) -> str:
    """eth_call at the latest block on the first endpoint that answers; raises (the range is retried) if none does."""
    what = f"eth_call to {to}"

    def call(ep: Endpoint) -> str:
        result = runtime.client.call("eth_call", [{"to": to, "data": data}, "latest"], endpoint=ep)
        if not isinstance(result, str):
            raise RpcRequestError(f"{what} returned {type(result).__name__}", "the node does not serve eth_call")
        return result

    result: str = _on_endpoints(runtime, what, call)
    return result


def _get_logs(runtime: ChainRuntime, params: dict[str, Any]) -> list[dict[str, Any]]:
    """eth_getLogs over the whole requested range, every block of it served by a node shown to have it.

    Behind a load balancer a node that is behind answers eth_getLogs for blocks it has not reached with
    nothing, silently. So each (sub-)range is asked together with its last block's header in ONE request
    on ONE pinned endpoint (``RpcClient.get_logs_and_block``, as the deposit scanner does): a null header
    means the node that answered had not reached the range's end, and its logs are thrown away. Raises
    (never returns a partial answer) when no endpoint serves the range verifiably: the index cursor and a
    two-hop lookup only ever see complete ranges.
    """
    lo, hi = int(params["fromBlock"], 16), int(params["toBlock"], 16)
    deadline = time.monotonic() + FETCH_DEADLINE_S
    what = f"eth_getLogs for blocks {lo}..{hi}"
    result: list[dict[str, Any]] = _on_endpoints(runtime, what, lambda ep: _logs_on(runtime, ep, params, deadline))
    return result


def _logs_on(runtime: ChainRuntime, ep: Endpoint, params: dict[str, Any], deadline: float) -> list[dict[str, Any]]:
    """The range's logs from ``ep`` alone, split in halves while the provider says it is too large."""
    lo, hi = int(params["fromBlock"], 16), int(params["toBlock"], 16)
    out: list[dict[str, Any]] = []
    pending = [(lo, hi)]
    shrinks = unrecognized = 0
    while pending:  # bounded: every pass serves a range or counts a shrink (at most 2 * MAX_RANGE_SHRINKS + 1)
        a, b = pending[0]
        try:
            out += _verified_logs(runtime, ep, {**params, "fromBlock": hex(a), "toBlock": hex(b)}, b, deadline)
        except RangeTooLarge as exc:
            shrinks += 1
            unrecognized = count_unrecognized(exc, unrecognized, ep.label)
            if a == b or shrinks > MAX_RANGE_SHRINKS:
                raise
            mid = (a + b) // 2
            pending[:1] = [(a, mid), (mid + 1, b)]
            continue
        pending.pop(0)
    return out


def _verified_logs(
    runtime: ChainRuntime, ep: Endpoint, log_filter: dict[str, Any], end: int, deadline: float
) -> list[dict[str, Any]]:
    """Logs of ``log_filter`` (ending at ``end``) from a node that had block ``end`` when it answered.

    Asked again (BEHIND_ATTEMPTS requests) while the header comes back null or not for ``end``: behind one
    URL the next request may reach another node. Then NodeBehind: the caller fails over.
    """
    for _ in range(BEHIND_ATTEMPTS):
        if time.monotonic() > deadline:  # not NodeBehind: the next endpoint would have no time left either
            raise IndexRangeUnverified(
                f"{runtime.name}: no verified eth_getLogs answer up to block {end} within {FETCH_DEADLINE_S:.0f}s",
                "the index does not move past unverified blocks; the next scan retries",
            )
        logs, raw_header = runtime.client.get_logs_and_block(log_filter, end, endpoint=ep)
        try:
            header = parse_header(raw_header)
        except DecodeError:
            header = None  # a malformed header proves nothing about the node's height
        if header is not None and header.number == end:
            return logs
    raise NodeBehind(
        f"{ep.label} answered eth_getLogs up to block {end} without having that block ({BEHIND_ATTEMPTS} requests)",
        "failing over; the index does not move past blocks no node was shown to have",
    )


# An index range costs its eth_getLogs and the header reads that verify it.
REQUESTS_PER_RANGE = 4


def _on_endpoints(runtime: ChainRuntime, what: str, action: Callable[[Endpoint], Any]) -> Any:
    """``action`` on one endpoint at a time (at most MAX_ENDPOINTS); one that is behind or failing is passed
    over. Raises IndexRangeUnverified when none succeeded."""
    client = runtime.client
    last: ChainError | None = None
    for ep in client.candidates()[:MAX_ENDPOINTS]:
        try:
            client.reserve(ep, REQUESTS_PER_RANGE)
            return action(ep)
        except (RpcUnavailable, NodeBehind, RpcRequestError, RangeTooLarge) as exc:
            # A refusal for good on one endpoint (a permanent error, a range it cannot serve) may not be another's.
            client.demote(ep, str(exc))
            last = exc
    cause = last.cause if last is not None else "no usable RPC endpoint"
    raise IndexRangeUnverified(
        f"{runtime.name}: {what} not served verifiably by any endpoint ({cause})",
        f"nothing was indexed past what was verified; the next scan retries; check chains.{runtime.name}.rpc_urls "
        "and the nodes' sync",
    )


def safe_head(runtime: ChainRuntime) -> int:
    """The highest block the indexes may read: the same finality rule the deposit scan uses."""
    spec = runtime.spec
    if runtime.finality_client is not None:
        return int(runtime.finality_client.call("eth_blockNumber", []), 16)
    if spec.uses_tag and runtime.tags.served is not False:
        try:
            header = parse_header(runtime.client.call("eth_getBlockByNumber", [spec.finality_tag, False]))
        except RpcRequestError:
            header = None  # this provider does not serve the tag: fall back to confirmations
        if header is not None:
            return header.number
    return int(runtime.client.call("eth_blockNumber", []), 16) - spec.confirmations


def block_times(runtime: ChainRuntime, numbers: Sequence[int]) -> Mapping[int, datetime]:
    """Timestamps of ``numbers`` from one endpoint (a null header is asked again, then the next endpoint)."""
    if not numbers:
        return {}

    def on(ep: Endpoint) -> dict[int, datetime]:
        headers = get_headers(runtime.client, ep, list(numbers))
        missing = [n for n, h in zip(numbers, headers, strict=True) if h is None]
        if missing:
            raise NodeBehind(f"{ep.label} does not serve block {missing[0]}", "failing over; is the node synced?")
        return {n: datetime.fromtimestamp(h.timestamp, UTC) for n, h in zip(numbers, headers, strict=True) if h}

    result: dict[int, datetime] = _on_endpoints(runtime, f"headers of blocks {list(numbers)[:5]}", on)
    return result


def runtime_lookup(settings: Settings, runtimes: Mapping[str, ChainRuntime]) -> Callable[[str], IndexSource | None]:
    """The decider's ``rpc_lookup`` over the worker's chain runtimes (chains it does not poll: None)."""
    cache: dict[str, IndexSource] = {}

    def lookup(chain: str) -> IndexSource | None:
        runtime = runtimes.get(chain)
        if runtime is None:
            return None
        if chain not in cache:
            cache[chain] = index_source(runtime, settings)
        return cache[chain]

    return lookup


def build_index_source(settings: Settings, chain: str) -> IndexSource:
    """For one-off jobs (CLI, tests): a fresh runtime's source. The runtime's HTTP client lives as long as it."""
    return index_source(build_chain_runtime(settings, chain), settings)
