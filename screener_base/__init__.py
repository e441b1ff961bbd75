"""Pieces every package shares: the exception root, the UTC clock, address codecs, the URL redactor, the OS
account of this process.
No side effects (the one read of the system is the passwd entry of this process, in identity).

May import: the standard library and small pure libraries (eth_utils, base58); no project package.
"""

__all__ = ["addresses", "clock", "errors", "identity", "redact", "text"]
