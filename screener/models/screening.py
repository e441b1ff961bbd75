"""Tables of the screening area (see screener/models/__init__.py)."""
