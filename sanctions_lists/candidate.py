"""Turn fetched bytes into a candidate snapshot, or a ListError saying why it must not be activated (no DB)."""

from __future__ import annotations

from datetime import datetime

from sanctions_lists.fetch import Fetched
from sanctions_lists.formats import parse_file
from sanctions_lists.guards import check_drop, check_not_empty
from sanctions_lists.snapshot import Diff, Provenance, Snapshot


def build_candidate(fetched: Fetched, fetched_at: datetime) -> Snapshot:
    """Parse the fetched copy (any supported format) into a snapshot with provenance; ListError if unreadable."""
    parsed = parse_file(fetched.path, fetched.source)
    provenance = Provenance(
        source=fetched.source,
        source_format=parsed.source_format,
        sha256=fetched.sha256,
        size_bytes=fetched.size_bytes,
        fetched_at=fetched_at,
        published_at=parsed.published_at,
        meta={**parsed.meta, "attempts": fetched.attempts},
    )
    return Snapshot(parsed.entries, provenance)


def vet_candidate(
    candidate: Snapshot, active: Snapshot, change: Diff, max_drop_fraction: float, drop_floor_entries: int
) -> None:
    """ListError unless the candidate holds addresses and removes no more from ``active`` than the drop guard
    allows (``change`` is ``diff(active, candidate)``)."""
    source = candidate.provenance.source if candidate.provenance else "candidate list"
    check_not_empty(len(candidate), source)
    check_drop(active, change, max_drop_fraction, drop_floor_entries, source)
