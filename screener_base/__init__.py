"""Pieces every package shares: the exception root and the clock. No I/O, no side effects."""
