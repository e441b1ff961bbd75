"""One sanctioned digital-currency address as OFAC publishes it, plus what every parser returns.

OFAC files addresses by asset tag without naming a chain (USDT holds EVM, Tron and Omni addresses alike),
so the family is inferred from the address format and the tag is kept only as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from screener_base.addresses import Family, canonical, infer_family
from screener_base.errors import AddressError

FEATURE_PREFIX = "Digital Currency Address - "
# Far above the ~1,000 addresses OFAC lists today; a file beyond it is treated as hostile, not parsed.
MAX_ENTRIES = 1_000_000
MAX_ADDRESS_CHARS = 256


@dataclass(frozen=True)
class Entry:
    address: str  # as published
    tag: str  # asset tag of the feature type, e.g. "ETH", "USDT", "XBT"
    family: str  # screener_base.addresses.Family value
    canonical: str  # comparison form within the family
    entity: str | None = None  # primary name of the sanctioned party
    programs: tuple[str, ...] = ()  # e.g. ("CYBER2", "DPRK3")
    profile_id: str | None = None  # OFAC profile id (= sdn.csv ent_num)
    note: str | None = None  # caveats the evidence must carry (e.g. sdn.csv truncation)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity for diffs: one address under one tag."""
        return (self.family, self.canonical, self.tag)

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "tag": self.tag,
            "family": self.family,
            "canonical": self.canonical,
            "entity": self.entity,
            "programs": list(self.programs),
            "profile_id": self.profile_id,
            "note": self.note,
        }


def make_entry(
    address: str,
    tag: str,
    *,
    entity: str | None = None,
    programs: tuple[str, ...] | list[str] = (),
    profile_id: str | None = None,
    note: str | None = None,
) -> Entry:
    """Build an entry, inferring the family and canonical form from the address alone."""
    text = address.strip()
    family = infer_family(text)
    try:
        canon = canonical(family, text)
    except AddressError:
        # infer_family only returns EVM/Tron for well-formed input, so this is the "other" empty case.
        family, canon = Family.OTHER, text
    return Entry(
        address=text,
        tag=tag.strip(),
        family=family.value,
        canonical=canon,
        entity=entity or None,
        programs=tuple(dict.fromkeys(p for p in programs if p)),
        profile_id=profile_id or None,
        note=note or None,
    )


@dataclass(frozen=True)
class ParsedList:
    """What a parser read from one document."""

    entries: tuple[Entry, ...]
    source_format: str  # "advanced_xml" | "sdn_csv" | "bundle"
    published_at: datetime | None = None
    meta: dict[str, object] = field(default_factory=dict)
