"""Stored text shown in a terminal: control and format characters escaped, so a note cannot forge output.

A reason or note is kept exactly as typed, but printed as one line: a newline would start a fake history
line, an escape sequence could recolour or rewrite the screen, and a right-to-left override could reverse what
a reader sees. Each such character is printed as its Python escape (``\\n``, ``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every control (Cc), format (Cf), line/paragraph separator and unassigned character escaped."""
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cn", "Cs"):
            out.append(_NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    return "".join(out)
