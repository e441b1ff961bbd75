"""Chain watching: one tick per chain reads a safe block range, records its deposits, hands them to a
decider and moves the cursor, in one transaction; backfill does the same for an explicit past range.

May import: chains, screener.models, screener.db, screener.settings, screener.ledger (audit events for
address changes), the pure rules modules (DepositStatus), screener_base. Never screener.decide, indexes or
review's services: the decider is passed in.
"""

__all__ = ["addresses", "backfill", "read", "runtime", "store", "tick"]
