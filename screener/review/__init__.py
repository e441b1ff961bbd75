"""Review: verdicts into the ledger, and what people do to holds and flags (four-eyes, SLA, reasons).

rules.py is pure; service.py and flags.py write in the caller's transaction; queries.py is the read side.
May import: screener.ledger, screener.screening (verdicts), screener.models, screener.db, screener_base.
"""

__all__ = ["evidence", "flags", "identity", "queries", "roles", "rules", "service"]
