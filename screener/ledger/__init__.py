"""The double-entry ledger and the hash-chained audit trail it writes to.

rules.py is pure (data in, data out); store.py and audit.py persist in the caller's transaction; verify.py
checks the stored rows against the chain. May import: screener.models, screener.db, screener_base.
"""

__all__ = ["audit", "rules", "store", "verify"]
