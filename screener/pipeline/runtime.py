"""From settings to what a chain's worker holds: the resolved ChainSpec, the RPC client, scan state.

``build_chain_runtime(settings, chain_name)`` is the one public constructor (the daemon and the CLI use it);
it does no network I/O. The first tick checks each endpoint's chain id and the token contracts.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from chains.budget import BudgetLimits
from chains.registry import ChainSpec, registry, resolve_chain
from chains.rpc import RetryPolicy, RpcClient
from chains.scanning import RangeSizer, TagSupport
from screener.settings import ChainSettings, Settings
from screener_base.errors import ConfigError

# ChainSettings fields that map 1:1 onto ChainSpec overrides.
_SPEC_FIELDS = (
    "chain_id",
    "family",
    "confirmations",
    "finality_tag",
    "poll_interval_s",
    "max_block_range",
    "block_time_s",
    "server_filter_max_addresses",
    "max_reorg_depth",
    "request_timeout_s",
    "tokens",
    "issuer_multisigs",
)


def known_chains(settings: Settings) -> list[str]:
    return sorted(set(registry()) | set(settings.chains))


def chain_settings(settings: Settings, chain_name: str) -> ChainSettings:
    return settings.chains.get(chain_name) or ChainSettings()


def spec_from_settings(settings: Settings, chain_name: str) -> ChainSpec:
    """The registry entry for ``chain_name`` with settings.chains[chain_name] applied."""
    cfg = settings.chains.get(chain_name)
    if cfg is None and chain_name not in registry():
        raise ConfigError(
            f"unknown chain {chain_name!r}",
            f"use one of {', '.join(known_chains(settings))} or configure [chains.{chain_name}]",
        )
    overrides: dict[str, Any] = {}
    if cfg is not None:
        data = cfg.model_dump()
        overrides = {key: data[key] for key in _SPEC_FIELDS if key in data and data[key] is not None}
    return resolve_chain(chain_name, overrides)


def check_chains(settings: Settings) -> None:
    """ConfigError for the first enabled ``[chains.<name>]`` table that does not resolve to a chain.

    A typo'd name (``[chains.etherum]``) or a new chain without ``chain_id``/``tokens`` would otherwise be
    ignored by the commands that only read settings. Two enabled tables resolving to one chain id are refused
    too. The CLI runs this when it loads settings and the daemon at start-up, so every command refuses the
    same tables. Disabled tables are not checked.
    """
    seen: dict[int, str] = {}
    for name in sorted(settings.chains):
        if not settings.chains[name].enabled:
            continue
        try:
            spec = spec_from_settings(settings, name)
        except ConfigError as exc:
            close = [] if name in registry() else difflib.get_close_matches(name, list(registry()), n=1)
            hint = f" (did you mean [chains.{close[0]}]?)" if close else ""
            raise ConfigError(f"[chains.{name}] in the configuration: {exc.cause}{hint}", exc.remedy) from exc
        # Deposits are keyed by chain name: two tables for one chain would record and credit each transfer twice.
        first = seen.setdefault(spec.chain_id, name)
        if first != name:
            raise ConfigError(
                f"[chains.{first}] and [chains.{name}] in the configuration both have chain id {spec.chain_id}, "
                "so every transfer would be recorded and credited once per table",
                f"keep one table per chain (put a mirror's URL in [chains.{first}].rpc_urls) or set enabled = false",
            )


@dataclass
class ChainRuntime:
    """Per-chain state kept between ticks by one worker (nothing here is needed for correctness)."""

    name: str
    spec: ChainSpec
    client: RpcClient
    start_block: int | None
    finality_client: RpcClient | None = None
    sizer: RangeSizer = field(init=False)
    tags: TagSupport = field(default_factory=TagSupport)
    # token hex20 -> decimals read from the chain, filled by the first tick's contract check
    verified_tokens: dict[str, int] = field(default_factory=dict)
    # (count, max id) of the deposit addresses last loaded, and the loaded map (hex20 -> (address, account))
    watch_version: tuple[int, int, int] | None = None
    watch: dict[str, tuple[str, str]] = field(default_factory=dict)
    # EVM chains: our EVM addresses registered on other chains only (hex20 -> (address, ((chain, account), ...)));
    # a transfer to one is recorded as an unassigned deposit (screener.pipeline.addresses.foreign_map)
    foreign: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    consecutive_unstable: int = 0

    def __post_init__(self) -> None:
        self.sizer = RangeSizer(max_span=self.spec.max_block_range)

    def close(self) -> None:
        self.client.close()
        if self.finality_client is not None:
            self.finality_client.close()


def build_chain_runtime(settings: Settings, chain_name: str, *, retry: RetryPolicy | None = None) -> ChainRuntime:
    """A ChainRuntime for ``chain_name`` from settings (no I/O). ConfigError if it cannot be scanned."""
    spec = spec_from_settings(settings, chain_name)
    cfg = chain_settings(settings, chain_name)
    if not cfg.rpc_urls:
        raise ConfigError(f"chain {chain_name!r} has no RPC endpoint", f"set chains.{chain_name}.rpc_urls")
    endpoints = cfg.endpoints
    client = RpcClient(
        [e.url for e in endpoints],
        chain_id=spec.chain_id,
        timeout_s=spec.request_timeout_s,
        retry=retry,
        limits=[BudgetLimits(e.requests_per_s, e.requests_per_day) for e in endpoints],
    )
    finality_client = None
    if cfg.finality_rpc_url:
        finality_client = RpcClient(
            [cfg.finality_rpc_url], chain_id=spec.chain_id, timeout_s=spec.request_timeout_s, retry=retry
        )
    return ChainRuntime(
        name=chain_name, spec=spec, client=client, start_block=cfg.start_block, finality_client=finality_client
    )
