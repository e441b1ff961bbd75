"""Turn fetched bytes into a candidate snapshot, or a ListError saying why it must not be activated (no DB)."""

from __future__ import annotations

from datetime import datetime

from sanctions_lists.fetch import Fetched
from sanctions_lists.formats import parse_file
from sanctions_lists.guards import check_candidate
from sanctions_lists.snapshot import Provenance, Snapshot


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


def vet_candidate(candidate: Snapshot, active_count: int | None, max_drop_fraction: float) -> None:
    """ListError unless the candidate may replace a list of ``active_count`` entries."""
    source = candidate.provenance.source if candidate.provenance else "candidate list"
    check_candidate(len(candidate), active_count, max_drop_fraction, source)
