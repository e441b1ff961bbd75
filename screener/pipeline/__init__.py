"""Chain watching: one tick per chain reads a safe block range, records its deposits, hands them to a
decider and moves the cursor, in one transaction; backfill does the same for an explicit past range.

May import: chains, screener.models, screener.db, screener.ledger (audit events for address changes),
screener_base. Never screener.decide: the decider is passed in.
"""

__all__ = ["addresses", "backfill", "read", "runtime", "store", "tick"]
