"""Sanctions lists: OFAC SDN parsing (advanced XML, sdn.csv), snapshots and diffs, fetch, guards, the
bundled snapshot. No database, no chain.

May import: screener_base only (never screener or chains).
"""

__all__ = [
    "build_bundle",
    "bundle",
    "candidate",
    "entries",
    "fetch",
    "formats",
    "guards",
    "ofac",
    "sdn_csv",
    "snapshot",
]
