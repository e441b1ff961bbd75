"""Checks a parsed candidate list must pass before it may replace the active version.

Pure decisions: data in, ListError (cause + remedy) out; no I/O, ``now`` is passed in.

- not empty;
- its publication date (``check_publication``): at most a day ahead of ``now`` (a list from the future would
  make every real list after it look older, and freeze screening on it), not before the active version's (an
  old copy must not unlist addresses), and present when the active version's is, unless the operator accepts
  an undated list explicitly (an undated list cannot be shown to be newer);
- what it removes from the active version (``check_drop``), measured on the real diff: removed addresses in
  each family the worker screens (EVM, Tron) and removed entries in total, each against the active version's.
  More than ``max_drop_fraction`` of any of them is refused, unless at most ``floor_entries`` were removed
  (so one real delisting from a small family passes). Counting per screened family stops ~500 bitcoin-like
  entries from hiding the loss of every EVM address; counting removals rather than sizes stops a list that
  swaps real addresses for junk ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sanctions_lists.snapshot import Diff, Snapshot
from screener_base.addresses import SCREENED_FAMILIES
from screener_base.clock import ensure_utc
from screener_base.errors import ListError

# OFAC dates its file in US time: up to a day ahead of UTC is a time zone, more is a forgery or a broken clock.
MAX_FUTURE_DAYS = 1
TOTAL = "total"
_KEEP = "the active list stays in force"
_DROP_REMEDY = (
    f"{_KEEP}; check the source (a partial or forged export?); if OFAC really delisted that many, raise "
    "lists.max_drop_fraction for this one refresh, then review `screener lists diff`"
)


def check_not_empty(candidate_count: int, source: str) -> None:
    """ListError when the candidate holds no address at all."""
    if candidate_count <= 0:
        raise ListError(
            f"{source} contains no digital-currency addresses (not the SDN list, or a broken export)",
            f"{_KEEP}; check the source",
        )


@dataclass(frozen=True)
class Drop:
    """What a candidate removes from one part of the active version."""

    scope: str  # a screened family ("evm", "tron") or TOTAL
    unit: str  # "addresses" (a family: an address gone under every tag) or "entries" (the total)
    removed: int
    active: int

    @property
    def fraction(self) -> float:
        return self.removed / self.active if self.active else 0.0

    def describe(self) -> str:
        return f"{self.scope}: {self.removed} of {self.active} {self.unit} removed, a drop of {self.fraction:.0%}"


def measure_drops(active: Snapshot, change: Diff) -> tuple[Drop, ...]:
    """Removed addresses per screened family and removed entries in total, ``change`` being active -> candidate."""
    listed = Counter(family for family, _ in active.addresses())
    gone = Counter(family for family, _ in change.removed_addresses)
    drops = [Drop(family, "addresses", gone[family], listed[family]) for family in SCREENED_FAMILIES]
    drops.append(Drop(TOTAL, "entries", len(change.removed), len(active.keys())))
    return tuple(drops)


def check_drop(active: Snapshot, change: Diff, max_drop_fraction: float, floor_entries: int, source: str) -> None:
    """ListError when the candidate removes more than ``max_drop_fraction`` of a screened family or of the
    total, and more than ``floor_entries`` of it."""
    over = [d for d in measure_drops(active, change) if d.removed > floor_entries and d.fraction > max_drop_fraction]
    if over:
        raise ListError(
            f"{source} removes too much of the active list ({'; '.join(d.describe() for d in over)}); allowed: "
            f"lists.max_drop_fraction={max_drop_fraction:.0%} of each screened family and of the total, "
            f"or up to lists.drop_floor_entries={floor_entries}",
            _DROP_REMEDY,
        )


def check_publication(
    published_at: datetime | None,
    active_published_at: datetime | None,
    *,
    active_version_id: int | None,
    now: datetime,
    accept_undated: bool,
    source: str,
) -> None:
    """ListError when the candidate's publication date is in the future, before the active version's, or
    missing while the active version's is known (unless ``accept_undated``).

    Only the order of publication counts: OFAC may not republish for weeks, so an old publication date alone
    says nothing about staleness (that is last_verified_at's job).
    """
    active_published = ensure_utc(active_published_at) if active_published_at is not None else None
    if published_at is None:
        if active_published is not None and not accept_undated:
            raise ListError(
                f"{source} has no publication date, so it cannot be shown to be newer than active list version "
                f"{active_version_id} (published {active_published:%Y-%m-%d})",
                f"{_KEEP}; use the dated SDN advanced XML, or, having checked that this list is current, run "
                "`screener lists refresh --source ... --accept-undated` (audited under your OS account)",
            )
        return
    published, now = ensure_utc(published_at), ensure_utc(now)
    if published > now + timedelta(days=MAX_FUTURE_DAYS):
        raise ListError(
            f"{source} is dated {published:%Y-%m-%d}, in the future (now {now:%Y-%m-%d %H:%M} UTC, more than "
            f"{MAX_FUTURE_DAYS} day ahead): forged or mis-dated, and every real list after it would look older",
            f"{_KEEP}; check the source and its DateOfIssue",
        )
    if active_published is not None and published < active_published:
        raise ListError(
            f"{source} was published {published:%Y-%m-%d}, before active list version {active_version_id} "
            f"(published {active_published:%Y-%m-%d}); an older list must not replace a newer one",
            "check that the source is current (not a stale mirror or cached copy) and refresh again",
        )
