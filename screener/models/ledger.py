"""Tables of the ledger area (see screener/models/__init__.py)."""
