"""Address codecs shared by chains/ and sanctions_lists/ (pure, no I/O).

Canonical forms: EVM = ``0x`` + 40 lowercase hex. Tron = base58check ``T...`` (version byte 0x41);
its EVM-style 20-byte body is what Tron's JSON-RPC shows in logs. Mixed case never causes a miss
because every comparison goes through :func:`canonical`.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

import base58
from eth_utils.address import to_checksum_address

from screener_base.errors import AddressError

_EVM_RE = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
_TRON_RE = re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}\Z")
_BTC_LIKE_RE = re.compile(
    r"^([13][1-9A-HJ-NP-Za-km-z]{25,34}|(bc1|ltc1|tb1)[0-9a-z]{8,87}|[LMX][1-9A-HJ-NP-Za-km-z]{25,34})\Z"
)
TRON_VERSION_BYTE = 0x41


class Family(StrEnum):
    EVM = "evm"
    TRON = "tron"
    BITCOIN_LIKE = "bitcoin-like"
    OTHER = "other"


# The families the worker screens deposits in (EVM chains, Tron); OFAC's other addresses are kept as evidence
# only. The list guards (sanctions_lists.guards) and the re-screen after an activation count these.
SCREENED_FAMILIES: tuple[str, ...] = (Family.EVM.value, Family.TRON.value)


def is_evm(address: str) -> bool:
    return bool(_EVM_RE.match(address))


def evm_canonical(address: str) -> str:
    if not _EVM_RE.match(address):
        raise AddressError(f"{address!r} is not an EVM address", "expected 0x followed by 40 hex digits")
    return address.lower()


def evm_display(address: str) -> str:
    """EIP-55 checksummed form for people."""
    return str(to_checksum_address(evm_canonical(address)))


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def tron_to_hex20(address: str) -> str:
    """``T...`` -> ``0x`` + 40 hex (the 20-byte body, as Tron's JSON-RPC shows it)."""
    if not _TRON_RE.match(address):
        raise AddressError(f"{address!r} is not a Tron address", "expected T followed by 33 base58 characters")
    raw = base58.b58decode(address)
    if len(raw) != 25 or raw[0] != TRON_VERSION_BYTE:
        raise AddressError(f"{address!r} does not decode to a 0x41-prefixed 21-byte Tron address", "check it")
    body, checksum = raw[:21], raw[21:]
    if _sha256d(body)[:4] != checksum:
        raise AddressError(f"{address!r} has a bad base58check checksum", "check it for a typo")
    return "0x" + body[1:].hex()


def hex_to_tron(address: str) -> str:
    """``0x``+40 hex or ``41``+40 hex -> ``T...``."""
    text = address.lower()
    if re.fullmatch(r"41[0-9a-f]{40}", text) or re.fullmatch(r"0x41[0-9a-f]{40}", text):
        body = bytes.fromhex(text[-42:])
    elif _EVM_RE.match(address):
        body = bytes([TRON_VERSION_BYTE]) + bytes.fromhex(text[2:])
    else:
        raise AddressError(f"{address!r} is not a hex Tron address", "expected 0x+40 hex or 41+40 hex")
    return base58.b58encode(body + _sha256d(body)[:4]).decode()


def tron_canonical(address: str) -> str:
    """Accept T-form or hex forms; return the validated T-form."""
    if address.startswith("T"):
        tron_to_hex20(address)  # validates
        return address
    return hex_to_tron(address)


def infer_family(address: str) -> Family:
    """Family from the address format alone (as published by OFAC: no chain is given)."""
    text = address.strip()
    if _EVM_RE.match(text):
        return Family.EVM
    if _TRON_RE.match(text):
        try:
            tron_to_hex20(text)
            return Family.TRON
        except AddressError:
            return Family.OTHER
    if _BTC_LIKE_RE.match(text):
        return Family.BITCOIN_LIKE
    return Family.OTHER


def canonical(family: Family | str, address: str) -> str:
    """The one form used for storage and comparison within a family."""
    fam = Family(family)
    text = address.strip()
    if fam is Family.EVM:
        return evm_canonical(text)
    if fam is Family.TRON:
        return tron_canonical(text)
    if not text:
        raise AddressError("empty address", "give a non-empty address")
    return text  # bitcoin-like and others are case-sensitive (base58) or already lowercase (bech32)


def display(family: Family | str, address: str) -> str:
    fam = Family(family)
    if fam is Family.EVM:
        return evm_display(canonical(fam, address))  # surrounding whitespace: accepted as by canonical()
    return canonical(fam, address)
