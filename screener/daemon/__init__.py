"""`screener run`: the long-running worker, its scheduled jobs, leases with fencing tokens, chain status.

May import everything below it (decide, pipeline, indexes, lists, review, ops); never screener.cli or
screener.demo.
"""

__all__ = ["checkpoint", "jobs", "leases", "state", "usage", "worker"]
