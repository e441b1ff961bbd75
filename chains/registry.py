"""Supported chains and their USDT/USDC contracts (defaults in chains/data/stablecoins.json), plus overrides.

Pure data and validation; no I/O beyond reading the bundled JSON once. The application maps its settings onto
:func:`resolve_chain`; this module knows nothing of the settings classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from screener_base.addresses import Family, canonical, tron_to_hex20
from screener_base.errors import AddressError, ConfigError

REGISTRY_PATH = Path(__file__).parent / "data" / "stablecoins.json"
FINALITY_TAGS = ("finalized", "safe", "latest")


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    contract: str  # canonical for the chain family (EVM lowercase 0x..., Tron T-form)
    # None for tokens added by configuration only: read from the contract at connect.
    decimals: int | None
    variant: str = ""
    issuer: str = ""
    # "tether" | "fiattoken" | "usdt0" (chains/blacklists.py); empty: none known. More than one where the public
    # sources disagree on a contract's events (Avalanche USDt): all are read.
    blacklist_interfaces: tuple[str, ...] = ()
    verification: str = "configured"

    @property
    def hex20(self) -> str:
        """The 20-byte address as it appears in logs and eth_getLogs filters (both families)."""
        return tron_to_hex20(self.contract) if self.contract.startswith("T") else self.contract


@dataclass(frozen=True)
class MultisigSpec:
    """The issuer's multisig that owns a token (Tether's MultiSigWallet on Ethereum): proposals warn of freezes."""

    token_symbol: str
    address: str  # canonical for the chain family
    layout: str = "gnosis_multisigwallet"

    @property
    def hex20(self) -> str:
        return tron_to_hex20(self.address) if self.address.startswith("T") else self.address


@dataclass(frozen=True)
class ChainSpec:
    name: str
    family: Family
    chain_id: int
    block_time_s: float
    confirmations: int
    # "finalized" / "safe": ask the node for that block; None or "latest": head - confirmations.
    finality_tag: str | None
    poll_interval_s: float
    max_block_range: int
    # Up to this many deposit addresses go into the eth_getLogs `to` topic; above it, filter client-side.
    server_filter_max_addresses: int
    # A confirmed reorg deeper than this halts the chain instead of rewinding.
    max_reorg_depth: int
    tokens: tuple[TokenSpec, ...] = field(default_factory=tuple)
    issuer_multisigs: tuple[MultisigSpec, ...] = field(default_factory=tuple)
    request_timeout_s: float = 10.0
    notes: str = ""

    @property
    def uses_tag(self) -> bool:
        return self.finality_tag in ("finalized", "safe")

    def token_for(self, hex20: str) -> TokenSpec | None:
        for token in self.tokens:
            if token.hex20 == hex20:
                return token
        return None


def _token_from_json(family: Family, data: Mapping[str, Any]) -> TokenSpec:
    ver = data.get("verification") or {}
    return TokenSpec(
        symbol=str(data["symbol"]),
        contract=canonical(family, str(data["contract"])),
        decimals=int(data["decimals"]),
        variant=str(data.get("variant", "")),
        issuer=str(data.get("issuer", "")),
        blacklist_interfaces=_interfaces(data.get("blacklist_interface")),
        verification=str(ver.get("status", "unverified")),
    )


def _interfaces(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _chain_from_json(name: str, data: Mapping[str, Any]) -> ChainSpec:
    family = Family(data["family"])
    return ChainSpec(
        name=name,
        family=family,
        chain_id=int(data["chain_id"]),
        block_time_s=float(data["block_time_s"]),
        confirmations=int(data["confirmations"]),
        finality_tag=data.get("finality_tag"),
        poll_interval_s=float(data["poll_interval_s"]),
        max_block_range=int(data["max_block_range"]),
        server_filter_max_addresses=int(data["server_filter_max_addresses"]),
        max_reorg_depth=int(data["max_reorg_depth"]),
        tokens=tuple(_token_from_json(family, t) for t in data["tokens"]),
        issuer_multisigs=tuple(
            MultisigSpec(str(m["token"]), canonical(family, str(m["address"])), str(m.get("layout", "")))
            for m in data.get("issuer_multisigs", [])
        ),
        notes=str(data.get("notes", "")),
    )


@cache
def registry() -> dict[str, ChainSpec]:
    """The bundled defaults, by chain name."""
    data = json.loads(REGISTRY_PATH.read_text())
    return {name: _chain_from_json(name, spec) for name, spec in data["chains"].items()}


def registry_chain_ids() -> dict[int, str]:
    return {spec.chain_id: name for name, spec in registry().items()}


# Defaults for a chain that is not in the registry (configured entirely from settings).
_NEW_CHAIN_DEFAULTS: dict[str, Any] = {
    "block_time_s": 2.0,
    "confirmations": 12,
    "finality_tag": None,
    "poll_interval_s": 5.0,
    "max_block_range": 2000,
    "server_filter_max_addresses": 200,
    "max_reorg_depth": 128,
}


def _override_tokens(base: ChainSpec, tokens: Mapping[str, str], same_chain: bool) -> tuple[TokenSpec, ...]:
    """Apply symbol -> contract overrides ('' removes a symbol).

    Registry contracts belong to the registry's chain id: on a chain configured with another id (a devnet
    named "polygon", say) only the configured symbols are watched, keeping the registry's decimals.
    """
    by_symbol = {t.symbol: t for t in base.tokens}
    result: dict[str, TokenSpec] = dict(by_symbol) if same_chain else {}
    for symbol, address in tokens.items():
        if not address:
            result.pop(symbol, None)
            continue
        try:
            contract = canonical(base.family, address)
        except AddressError as exc:
            raise ConfigError(f"chains.{base.name}.tokens.{symbol}: {exc.cause}", "give the contract address") from exc
        known = by_symbol.get(symbol)
        if known is not None:
            result[symbol] = replace(known, contract=contract, verification="configured (overrides registry)")
        else:
            result[symbol] = TokenSpec(symbol=symbol, contract=contract, decimals=None)
    return tuple(result.values())


def _override_multisigs(
    base: ChainSpec, multisigs: Mapping[str, str], same_chain: bool, symbols: set[str]
) -> tuple[MultisigSpec, ...]:
    """token symbol -> multisig address ('' removes it); the registry's belong to the registry's chain id only,
    and lapse with their token. A configured one for a symbol the chain does not watch is refused."""
    result = {m.token_symbol: m for m in base.issuer_multisigs if m.token_symbol in symbols} if same_chain else {}
    for symbol, address in multisigs.items():
        if not address:
            result.pop(symbol, None)
            continue
        if symbol not in symbols:
            raise ConfigError(
                f"chains.{base.name}.issuer_multisigs.{symbol}: the chain watches no token {symbol!r}",
                f"use one of {', '.join(sorted(symbols))} (symbols are case-sensitive)",
            )
        try:
            result[symbol] = MultisigSpec(symbol, canonical(base.family, address), "gnosis_multisigwallet")
        except AddressError as exc:
            raise ConfigError(f"chains.{base.name}.issuer_multisigs.{symbol}: {exc.cause}", "give its address") from exc
    return tuple(result.values())


def resolve_chain(name: str, overrides: Mapping[str, Any] | None = None) -> ChainSpec:
    """The registry entry for ``name`` with ``overrides`` applied (keys named as ChainSpec fields).

    ``overrides['tokens']`` maps symbol -> contract. A name not in the registry needs chain_id, family
    defaults to evm. Raises ConfigError naming the key on a bad value.
    """
    ovr = {k: v for k, v in (overrides or {}).items() if v is not None}
    base = registry().get(name)
    if base is None:
        if "chain_id" not in ovr:
            raise ConfigError(
                f"chain {name!r} is not in the registry ({', '.join(sorted(registry()))})",
                f"set chains.{name}.chain_id, rpc_urls and tokens to configure it",
            )
        base = ChainSpec(
            name=name, family=Family(ovr.get("family", "evm")), chain_id=int(ovr["chain_id"]), **_NEW_CHAIN_DEFAULTS
        )
    family = Family(ovr.get("family", base.family))
    if family not in (Family.EVM, Family.TRON):
        raise ConfigError(f"chains.{name}.family must be evm or tron, not {family}", "fix the setting")
    if family is not base.family:
        base = replace(base, family=family, tokens=())
    chain_id = int(ovr.get("chain_id", base.chain_id))
    same_chain = chain_id == base.chain_id
    tokens = _override_tokens(base, ovr.get("tokens") or {}, same_chain=same_chain)
    multisigs = _override_multisigs(base, ovr.get("issuer_multisigs") or {}, same_chain, {t.symbol for t in tokens})
    tag = ovr.get("finality_tag", base.finality_tag)
    if tag is not None and tag not in FINALITY_TAGS:
        raise ConfigError(f"chains.{name}.finality_tag must be one of {FINALITY_TAGS}", "fix the setting")
    fields = {k: ovr[k] for k in _NEW_CHAIN_DEFAULTS if k in ovr and k != "finality_tag"}
    spec = replace(base, chain_id=chain_id, tokens=tokens, issuer_multisigs=multisigs, finality_tag=tag, **fields)
    if "request_timeout_s" in ovr:
        spec = replace(spec, request_timeout_s=float(ovr["request_timeout_s"]))
    if not spec.tokens:
        raise ConfigError(f"chain {name!r} has no token contracts to watch", f"set chains.{name}.tokens")
    return spec
