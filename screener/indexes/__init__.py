"""The mixer withdrawal and issuer blacklist indexes: scan jobs, coverage, and the facts screening reads.

May import: chains, screener.pipeline.runtime (what a chain's RPC offers), screener.screening (fact types),
screener.models, screener.db, screener_base. Never screener.decide: re-screening is a hook passed in.
"""

__all__ = ["recheck", "rules", "sources", "store"]
