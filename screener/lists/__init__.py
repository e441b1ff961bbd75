"""Sanctions list versions in the database: activation, staleness, refresh and diffs.

May import: sanctions_lists (parsing, snapshots, fetch), screener.models, screener.db, screener_base.
"""

__all__ = ["refresh", "rules", "store"]
