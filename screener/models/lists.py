"""Tables of the lists area (see screener/models/__init__.py)."""
