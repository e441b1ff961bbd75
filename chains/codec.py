"""Between the 20-byte hex that logs and filters carry and each family's stored (canonical) address form.

EVM: both are ``0x`` + 40 lowercase hex. Tron: java-tron's JSON-RPC shows addresses as the 20-byte body in
hex (the 0x41 version byte dropped) while people, OFAC and our database use base58check ``T...``; so Tron
deposit addresses are converted to hex for eth_getLogs and log addresses back to T-form before storage.
"""

from __future__ import annotations

from screener_base.addresses import Family, canonical, hex_to_tron, tron_to_hex20
from screener_base.errors import AddressError


def to_hex20(family: Family, address: str) -> str:
    """Stored/canonical (or any accepted input) form -> ``0x`` + 40 lowercase hex."""
    if family is Family.TRON:
        return tron_to_hex20(canonical(Family.TRON, address))
    if family is Family.EVM:
        return canonical(Family.EVM, address)
    raise AddressError(f"no log address form for family {family}", "only evm and tron chains are scanned")


def from_hex20(family: Family, hex20: str) -> str:
    """``0x`` + 40 hex from a log or transaction -> the family's canonical form."""
    if family is Family.TRON:
        return hex_to_tron(hex20)
    if family is Family.EVM:
        return canonical(Family.EVM, hex20)
    raise AddressError(f"no log address form for family {family}", "only evm and tron chains are scanned")


def topic_for(hex20: str) -> str:
    """A 32-byte topic word holding an address (for the server-side `to` filter)."""
    return "0x" + "0" * 24 + hex20[2:].lower()
