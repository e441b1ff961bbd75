"""Deciding deposits: gather the facts, run the screening policy, apply the verdict; and re-screen
decided deposits when the sanctions list or the indexes learn something new.

Orchestration over screening, indexes, lists and review. May import all of those, screener.pipeline.runtime,
chains and sanctions_lists; nothing above it (daemon, ops, demo, cli).
"""

__all__ = ["credit", "decide", "gather", "holds", "rescreen"]
