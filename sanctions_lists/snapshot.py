"""An immutable list version: entries, provenance, lookup by canonical address, and diffs between versions.

Matching is by address family, not by asset tag: an EVM address listed under any tag (ETH, USDT, ARB, ...)
is sanctioned on every EVM chain, a Tron address under any tag on Tron. Input is canonicalised first, so
case never causes a miss.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sanctions_lists.entries import Entry
from screener_base.addresses import Family, canonical

AddressKey = tuple[str, str]  # (family, canonical)


@dataclass(frozen=True)
class Provenance:
    source: str  # URL, file path, or "bundled:<file>"
    source_format: str  # advanced_xml | sdn_csv | bundle
    sha256: str
    size_bytes: int
    fetched_at: datetime
    published_at: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def _sort_key(entry: Entry) -> tuple[str, str, str, str]:
    return (entry.family, entry.canonical, entry.tag, entry.profile_id or "")


class Snapshot:
    """Entries of one list version; never changes after construction."""

    __slots__ = ("_entries", "_index", "_provenance")
    _entries: tuple[Entry, ...]
    _index: Mapping[AddressKey, tuple[Entry, ...]]
    _provenance: Provenance | None

    def __init__(self, entries: Iterable[Entry], provenance: Provenance | None = None) -> None:
        ordered = tuple(sorted(entries, key=_sort_key))
        index: dict[AddressKey, list[Entry]] = {}
        for entry in ordered:
            index.setdefault((entry.family, entry.canonical), []).append(entry)
        frozen: Mapping[AddressKey, tuple[Entry, ...]] = MappingProxyType({k: tuple(v) for k, v in index.items()})
        object.__setattr__(self, "_entries", ordered)
        object.__setattr__(self, "_provenance", provenance)
        object.__setattr__(self, "_index", frozen)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Snapshot is immutable (tried to set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Snapshot is immutable (tried to delete {name})")

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._entries

    @property
    def provenance(self) -> Provenance | None:
        return self._provenance

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, chain_family: str, address: str) -> list[Entry]:
        """Every entry listing ``address`` in ``chain_family`` (evm|tron|...); AddressError if malformed."""
        family = Family(chain_family)
        return list(self._index.get((family.value, canonical(family, address)), ()))

    def addresses(self) -> frozenset[AddressKey]:
        return frozenset(self._index)

    def keys(self) -> frozenset[tuple[str, str, str]]:
        return frozenset(entry.key for entry in self._entries)

    def counts_by_tag(self) -> dict[str, int]:
        return dict(sorted(Counter(entry.tag for entry in self._entries).items()))

    def counts_by_family(self) -> dict[str, int]:
        return dict(sorted(Counter(entry.family for entry in self._entries).items()))

    def counts(self) -> dict[str, dict[str, int]]:
        return {"tag": self.counts_by_tag(), "family": self.counts_by_family()}


@dataclass(frozen=True)
class Diff:
    """Entries (one address under one tag) added and removed between two versions."""

    added: tuple[Entry, ...] = ()
    removed: tuple[Entry, ...] = ()
    added_addresses: frozenset[AddressKey] = frozenset()  # not listed at all before
    removed_addresses: frozenset[AddressKey] = frozenset()  # not listed at all any more

    @property
    def is_empty(self) -> bool:
        return not self.added and not self.removed

    def summary(self) -> str:
        return (
            f"+{len(self.added)} -{len(self.removed)} entries "
            f"(+{len(self.added_addresses)} -{len(self.removed_addresses)} addresses)"
        )


def _first_by_key(snapshot: Snapshot) -> dict[tuple[str, str, str], Entry]:
    out: dict[tuple[str, str, str], Entry] = {}
    for entry in snapshot.entries:
        out.setdefault(entry.key, entry)
    return out


def diff(old: Snapshot | None, new: Snapshot) -> Diff:
    """What changed from ``old`` (None: nothing before) to ``new``; entity renames are not changes."""
    old_keys = _first_by_key(old) if old is not None else {}
    new_keys = _first_by_key(new)
    added = tuple(entry for key, entry in new_keys.items() if key not in old_keys)
    removed = tuple(entry for key, entry in old_keys.items() if key not in new_keys)
    old_addresses = old.addresses() if old is not None else frozenset()
    new_addresses = new.addresses()
    return Diff(
        added=added,
        removed=removed,
        added_addresses=new_addresses - old_addresses,
        removed_addresses=old_addresses - new_addresses,
    )
