"""The double-entry ledger and the hash-chained audit trail it writes to.

rules.py and checkpoint_rules.py are pure (data in, data out); store.py and audit.py persist in the caller's
transaction; verify.py checks the stored rows against the chain; checkpoints.py keeps the chain's head outside.
May import: screener.models, screener.db, screener_base.
"""

__all__ = [
    "audit",
    "checkpoint_rules",
    "checkpoints",
    "rules",
    "seals",
    "store",
    "stored",
    "verify",
    "verify_rows",
]
