"""Tables of the daemon area (see screener/models/__init__.py)."""
