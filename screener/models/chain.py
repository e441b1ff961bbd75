"""Tables of the chain area (see screener/models/__init__.py)."""
