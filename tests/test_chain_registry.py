"""The chain/token registry (chains/data/stablecoins.json) and its overrides from settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from chains.registry import REGISTRY_PATH, registry, resolve_chain
from screener.pipeline.runtime import build_chain_runtime, spec_from_settings
from screener.settings import Settings
from screener_base.addresses import Family, tron_to_hex20
from screener_base.errors import ConfigError

CHAINS = {"ethereum", "tron", "bsc", "polygon", "arbitrum", "optimism", "base", "avalanche"}


def test_every_supported_chain_has_usdt_and_usdc() -> None:
    reg = registry()
    assert set(reg) == CHAINS
    for spec in reg.values():
        symbols = {t.symbol for t in spec.tokens}
        assert {"USDT", "USDC"} <= symbols, spec.name
        assert spec.confirmations > 0 and spec.max_block_range > 0 and spec.block_time_s > 0
    ids = {name: spec.chain_id for name, spec in reg.items()}
    assert ids == {
        "ethereum": 1,
        "tron": 728126428,
        "bsc": 56,
        "polygon": 137,
        "arbitrum": 42161,
        "optimism": 10,
        "base": 8453,
        "avalanche": 43114,
    }


def test_decimals_and_well_known_contracts() -> None:
    reg = registry()
    by = {(c, t.symbol): t for c, s in reg.items() for t in s.tokens}
    assert by["bsc", "USDT"].decimals == by["bsc", "USDC"].decimals == 18
    assert all(t.decimals == 6 for (chain, _), t in by.items() if chain != "bsc")
    assert by["ethereum", "USDT"].contract == "0xdac17f958d2ee523a2206206994597c13d831ec7"
    assert by["ethereum", "USDC"].contract == "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    assert by["tron", "USDT"].contract == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert by["tron", "USDT"].hex20 == "0xa614f803b6fd780986a42c78ec9c7f77e6ded13c"
    # issuer blacklist interfaces only where the issuer's own contract is known
    assert by["ethereum", "USDT"].blacklist_interfaces == ("tether",)
    assert by["ethereum", "USDC"].blacklist_interfaces == ("fiattoken",)
    assert by["bsc", "USDT"].blacklist_interfaces == () and by["optimism", "USDT"].blacklist_interfaces == ()
    # USD₮0 (chains/data/issuers.md): upgraded in place on Arbitrum and Polygon, a new contract on Optimism
    assert by["arbitrum", "USDT"].blacklist_interfaces == by["polygon", "USDT"].blacklist_interfaces == ("usdt0",)
    assert by["optimism", "USDT0"].contract == "0x01bff41798a0bcf287b996046ca68b395dbc1071"
    assert by["avalanche", "USDT"].blacklist_interfaces == ("tether", "usdt0")  # the sources disagree: both
    (multisig,) = reg["ethereum"].issuer_multisigs
    assert (multisig.token_symbol, multisig.address) == ("USDT", "0xc6cde7c39eb2f0f0095f41570af89efc2c1ea828")
    assert all(not spec.issuer_multisigs for name, spec in reg.items() if name != "ethereum")


def test_a_multisig_for_a_token_the_chain_does_not_watch_is_refused() -> None:
    from chains.registry import resolve_chain
    from screener_base.errors import ConfigError

    with pytest.raises(ConfigError, match="watches no token 'usdt'"):
        resolve_chain("ethereum", {"issuer_multisigs": {"usdt": "0x" + "11" * 20}})
    assert not resolve_chain("ethereum", {"tokens": {"USDT": ""}}).issuer_multisigs  # lapses with its token


def test_registry_file_records_verification() -> None:
    data = json.loads(Path(REGISTRY_PATH).read_text())
    for chain in data["chains"].values():
        for token in chain["tokens"]:
            ver = token["verification"]
            assert ver["status"] and ver["sources"], token
            address = token["contract"]
            if address.startswith("0x"):
                assert ver["eip55_checksum_valid"] and to_checksum_address(address) == address
            else:
                assert ver["tron_base58check_valid"] and tron_to_hex20(address) == token["hex20"]


def test_devnet_chain_keeps_registry_decimals_but_only_configured_tokens() -> None:
    spec = resolve_chain("bsc", {"chain_id": 31337, "tokens": {"USDT": "0x" + "AB" * 20}})
    assert [(t.symbol, t.decimals, t.contract) for t in spec.tokens] == [("USDT", 18, "0x" + "ab" * 20)]
    same_chain = resolve_chain("polygon", {"tokens": {"USDC.e": ""}})  # '' removes a symbol
    assert {t.symbol for t in same_chain.tokens} == {"USDT", "USDC"}


def test_unknown_chain_needs_chain_id_and_gets_decimals_from_the_contract() -> None:
    with pytest.raises(ConfigError, match="not in the registry"):
        resolve_chain("scroll", {"tokens": {"USDT": "0x" + "11" * 20}})
    spec = resolve_chain("scroll", {"chain_id": 534352, "tokens": {"USDT": "0x" + "11" * 20}, "confirmations": 9})
    assert spec.family is Family.EVM and spec.confirmations == 9 and spec.tokens[0].decimals is None
    with pytest.raises(ConfigError, match="no token contracts"):
        resolve_chain("scroll", {"chain_id": 534352})


def test_bad_overrides_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"chains\.ethereum\.tokens\.USDT"):
        resolve_chain("ethereum", {"tokens": {"USDT": "0x1234"}})
    with pytest.raises(ConfigError, match=r"chains\.tron\.tokens\.USDT"):
        resolve_chain("tron", {"tokens": {"USDT": "0x" + "11" * 20 + "00"}})


def test_tron_family_on_a_devnet_converts_hex_contracts() -> None:
    spec = resolve_chain("tron-dev", {"chain_id": 31337, "family": "tron", "tokens": {"USDT": "0x" + "ab" * 20}})
    assert spec.family is Family.TRON and spec.tokens[0].contract.startswith("T")
    assert spec.tokens[0].hex20 == "0x" + "ab" * 20 and spec.finality_tag is None


def test_settings_map_onto_the_spec() -> None:
    settings = Settings(
        chains={
            "ethereum": {
                "rpc_urls": ["http://127.0.0.1:1"],
                "confirmations": 3,
                "finality_tag": "latest",
                "max_block_range": 10,
                "server_filter_max_addresses": 5,
                "max_reorg_depth": 7,
            },
        }
    )
    spec = spec_from_settings(settings, "ethereum")
    assert (spec.confirmations, spec.finality_tag, spec.max_block_range) == (3, "latest", 10)
    assert (spec.server_filter_max_addresses, spec.max_reorg_depth, spec.chain_id) == (5, 7, 1)
    with pytest.raises(ConfigError, match="unknown chain"):
        spec_from_settings(settings, "solana")
    with pytest.raises(ConfigError, match="no RPC endpoint"):
        build_chain_runtime(settings, "bsc")
    rt = build_chain_runtime(settings, "ethereum")
    assert rt.sizer.span == 10 and rt.client.chain_id == 1
    rt.close()


def test_every_registry_interface_is_one_the_decoder_knows() -> None:
    """The index skips an interface it does not know: a typo in stablecoins.json would read no freezes at all."""
    from chains.blacklists import Interface

    known = {i.value for i in Interface}
    for chain, spec in registry().items():
        for token in spec.tokens:
            assert set(token.blacklist_interfaces) <= known, (chain, token.symbol, token.blacklist_interfaces)
