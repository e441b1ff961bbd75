"""Build an indexes.IndexSource (what the mixer/blacklist indexes and two-hop lookups need) from a chain runtime.

Kept apart from screener.indexes so that module stays testable with plain callables; this one is the glue to
the chain area's RPC client (failover, retries and timeouts are the client's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chains.blacklists import Interface
from chains.mixers import mixer_contracts, pool_addresses
from chains.rpc_errors import RangeTooLarge, RpcError, RpcRequestError
from chains.scanning import parse_header
from screener.chain_runtime import ChainRuntime, build_chain_runtime
from screener.indexes import BlacklistToken, IndexSource
from screener.settings import Settings
from screener_base.addresses import Family
from screener_base.errors import ChainError

# Halvings of an eth_getLogs range the provider refuses as too large, before giving up on this scan.
MAX_RANGE_SHRINKS = 12


def index_source(runtime: ChainRuntime, settings: Settings) -> IndexSource:
    spec = runtime.spec
    cfg = settings.chains.get(runtime.name)
    pools: list[str] = []
    if spec.family is Family.EVM:
        pools = pool_addresses(mixer_contracts(runtime.name, cfg.mixer_pools if cfg else ()))
    blacklist = tuple(
        BlacklistToken(t.symbol, t.contract, t.hex20, Interface(t.blacklist_interface))
        for t in spec.tokens
        if t.blacklist_interface in (Interface.TETHER.value, Interface.FIATTOKEN.value)
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
    )


def _get_logs(runtime: ChainRuntime, params: dict[str, Any]) -> list[dict[str, Any]]:
    """eth_getLogs over the whole requested range, split in halves while the provider says it is too large."""
    lo, hi = int(params["fromBlock"], 16), int(params["toBlock"], 16)
    out: list[dict[str, Any]] = []
    pending = [(lo, hi)]
    shrinks = 0
    while pending:
        a, b = pending.pop(0)
        try:
            out += runtime.client.get_logs({**params, "fromBlock": hex(a), "toBlock": hex(b)})
        except RangeTooLarge:
            shrinks += 1
            if a == b or shrinks > MAX_RANGE_SHRINKS:
                raise
            mid = (a + b) // 2
            pending[:0] = [(a, mid), (mid + 1, b)]
    return out


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
    results = runtime.client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    out: dict[int, datetime] = {}
    for number, item in zip(numbers, results, strict=True):
        if isinstance(item, RpcError):
            raise item
        header = parse_header(item)
        if header is None:
            raise ChainError(f"{runtime.name}: block {number} is unknown to the node", "is the node synced?")
        out[number] = datetime.fromtimestamp(header.timestamp, UTC)
    return out


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
