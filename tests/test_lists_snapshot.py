"""Snapshot matching and diff semantics (pure)."""

from __future__ import annotations

import pytest

from sanctions_lists.entries import make_entry
from sanctions_lists.snapshot import Snapshot, diff
from screener_base.addresses import tron_to_hex20
from screener_base.errors import AddressError

EVM = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"  # Tornado Cash, as published (mixed case)
TRON = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
BTC = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"


def _snapshot() -> Snapshot:
    return Snapshot(
        [
            make_entry(EVM, "ETH", entity="TORNADO CASH", programs=["CYBER2"], profile_id="38499"),
            make_entry(EVM.lower(), "USDC", entity="TORNADO CASH", programs=["CYBER2"], profile_id="38499"),
            make_entry(TRON, "USDT", entity="SOME OTC", programs=["RUSSIA-EO14024"]),
            make_entry(BTC, "XBT", entity="YAN, Xiaobing", programs=["SDNTK"]),
        ]
    )


@pytest.mark.parametrize("variant", [EVM, EVM.lower(), EVM.upper().replace("0X", "0x"), f"  {EVM}  "])
def test_evm_match_ignores_case_and_returns_every_tag(variant: str) -> None:
    matches = _snapshot().match("evm", variant)
    assert sorted(m.tag for m in matches) == ["ETH", "USDC"]
    assert all(m.entity == "TORNADO CASH" and m.programs == ("CYBER2",) for m in matches)


def test_tron_match_by_t_form_and_hex_and_not_on_evm() -> None:
    snap = _snapshot()
    assert [m.tag for m in snap.match("tron", TRON)] == ["USDT"]
    assert [m.tag for m in snap.match("tron", tron_to_hex20(TRON))] == ["USDT"]
    # The Tron body as an EVM address is a different account on EVM chains.
    assert snap.match("evm", tron_to_hex20(TRON)) == []
    assert snap.match("tron", "TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxMW") == []


def test_family_mismatch_and_garbage() -> None:
    snap = _snapshot()
    assert snap.match("evm", "0x" + "00" * 20) == []
    with pytest.raises(AddressError):
        snap.match("evm", TRON)
    with pytest.raises(AddressError):
        snap.match("tron", "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBX")  # bad checksum
    assert [m.entity for m in snap.match("bitcoin-like", BTC)] == ["YAN, Xiaobing"]
    assert snap.match("bitcoin-like", BTC.lower()) == []  # base58 is case-sensitive


def test_counts_and_immutability() -> None:
    snap = _snapshot()
    assert snap.counts() == {
        "tag": {"ETH": 1, "USDC": 1, "USDT": 1, "XBT": 1},
        "family": {"bitcoin-like": 1, "evm": 2, "tron": 1},
    }
    with pytest.raises(AttributeError):
        snap._entries = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap._index[("evm", "x")] = ()  # type: ignore[index]


def test_diff_by_address_and_tag_not_by_name() -> None:
    old = _snapshot()
    renamed = Snapshot([make_entry(e.address, e.tag, entity=(e.entity or "") + " (renamed)") for e in old.entries])
    assert diff(old, renamed).is_empty
    new = Snapshot([*old.entries[1:], make_entry(EVM, "ARB"), make_entry("0x" + "ab" * 20, "ETH")])
    change = diff(old, new)
    removed = {(e.family, e.tag) for e in change.removed}
    added = {(e.canonical, e.tag) for e in change.added}
    assert added == {(EVM.lower(), "ARB"), ("0x" + "ab" * 20, "ETH")}
    assert removed == {(old.entries[0].family, old.entries[0].tag)}
    assert change.added_addresses == {("evm", "0x" + "ab" * 20)}  # EVM was listed before, under ETH/USDC
    assert diff(None, old).added_addresses == old.addresses()
