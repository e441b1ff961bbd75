"""Screening policy: facts about one deposit in, a Verdict with evidence out. Pure: no I/O, no clock.

May import: screener_base, screener.settings (the policy settings). Nothing that touches a database,
the network or web3.
"""

__all__ = ["facts", "policy", "verdicts"]
