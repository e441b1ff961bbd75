"""Pure index rules: the index kinds, their lookback windows, and stored facts against a rescan. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from screener.settings import Settings


class IndexKind(StrEnum):
    MIXER = "mixer"
    BLACKLIST = "blacklist"


def lookback_days(settings: Settings, kind: str) -> int:
    sc = settings.screening
    return sc.mixer_lookback_days if kind == IndexKind.MIXER else sc.blacklist_lookback_days


def lookback_blocks(settings: Settings, kind: str, block_time_s: float) -> int:
    """The lookback window of ``kind`` in blocks of a chain with ``block_time_s`` blocks."""
    return math.ceil(lookback_days(settings, kind) * 86_400 / block_time_s)


# Columns a rescan does not reproduce: the row id and when this worker stored it.
_NOT_FROM_CHAIN = frozenset({"id", "indexed_at"})
# Differences kept per kind of difference; the counts stay exact.
MAX_LISTED = 20


@dataclass
class FactComparison:
    """Stored index facts of a block range against the same range read again from the chain."""

    on_chain: int = 0
    stored: int = 0
    missing: list[str] = field(default_factory=list)  # on the chain, not stored: deleted, or a range skipped
    extra: list[str] = field(default_factory=list)  # stored, not on the chain: inserted behind the worker
    differing: list[str] = field(default_factory=list)  # both, with another value: edited
    counts: dict[str, int] = field(default_factory=lambda: {"missing": 0, "extra": 0, "differing": 0})

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def note(self, what: str, text: str) -> None:
        self.counts[what] += 1
        listed = getattr(self, what)
        if len(listed) < MAX_LISTED:
            listed.append(text)


def compare_facts(
    on_chain: Sequence[Mapping[str, Any]], stored: Sequence[Mapping[str, Any]], out: FactComparison | None = None
) -> FactComparison:
    """Match facts by (tx_hash, log_index) and compare every column the chain determines; adds to ``out`` (one
    comparison over several ranges) or to a new one."""
    out = out if out is not None else FactComparison()
    out.on_chain += len(on_chain)
    out.stored += len(stored)
    chain_by = {(str(r["tx_hash"]), int(r["log_index"])): r for r in on_chain}
    stored_by = {(str(r.get("tx_hash")), _int(r.get("log_index"))): r for r in stored}
    for key in sorted(chain_by.keys() - stored_by.keys()):
        out.note("missing", f"{key[0]}:{key[1]} (block {chain_by[key].get('block_number')})")
    for key in sorted(stored_by.keys() - chain_by.keys(), key=str):
        out.note("extra", f"{key[0]}:{key[1]} (stored id {stored_by[key].get('id')})")
    for key in sorted(chain_by.keys() & stored_by.keys()):
        mine, theirs = stored_by[key], chain_by[key]
        for column in sorted(k for k in theirs if k not in _NOT_FROM_CHAIN):
            if _norm(mine.get(column)) != _norm(theirs.get(column)):
                out.note(
                    "differing",
                    f"{key[0]}:{key[1]}: {column} is {mine.get(column)!r}, the chain says {theirs.get(column)!r}",
                )
                break
    return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _norm(value: Any) -> str:
    """Stored and decoded values in one form: SQLite hands back naive UTC datetimes, the decoder aware ones."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return str(value)
