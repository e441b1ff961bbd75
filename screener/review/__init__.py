"""Review: verdicts into the ledger, and what people do to holds and flags (four-eyes, SLA, reasons).

rules.py, evidence.py, roles.py and statements.py are pure; service.py and flags.py write in the caller's
transaction; queries.py is the read side; signing.py, ssh.py and signed_audit.py sign decisions and check them.
May import: screener.ledger, screener.screening (verdicts), screener.models, screener.db, screener_base.
"""

__all__ = [
    "evidence",
    "flags",
    "identity",
    "queries",
    "roles",
    "rules",
    "service",
    "signed_audit",
    "signing",
    "ssh",
    "statements",
]
