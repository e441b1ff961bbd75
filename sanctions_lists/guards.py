"""Checks a parsed candidate list must pass before it may replace the active version (pure)."""

from __future__ import annotations

from screener_base.errors import ListError

_REMEDY = "the active list stays in force; check the source, or raise lists.max_drop_fraction if OFAC really delisted"


def check_candidate(candidate_count: int, active_count: int | None, max_drop_fraction: float, source: str) -> None:
    """ListError when the candidate is empty or shrinks by more than ``max_drop_fraction`` of the active list."""
    if candidate_count <= 0:
        raise ListError(
            f"{source} contains no digital-currency addresses (not the SDN list, or a broken export)",
            "the active list stays in force; check the source",
        )
    if not active_count:
        return
    drop = (active_count - candidate_count) / active_count
    if drop > max_drop_fraction:
        raise ListError(
            f"{source} has {candidate_count} entries against {active_count} in the active list, a drop of "
            f"{drop:.0%} (more than lists.max_drop_fraction={max_drop_fraction:.0%})",
            _REMEDY,
        )
