"""Pieces every package shares: the exception root, the UTC clock, address codecs, the URL redactor.
No I/O, no side effects.

May import: the standard library and small pure libraries (eth_utils, base58); no project package.
"""

__all__ = ["addresses", "clock", "errors", "redact"]
