"""Recognise a list document by its first bytes and parse it with the matching parser.

Formats: OFAC SDN advanced XML, OFAC sdn.csv (fallback), and this project's bundled snapshot (gzip).
An empty body or an HTML page (a portal's error page served with 200) is refused with a clear reason.
"""

from __future__ import annotations

from pathlib import Path

from sanctions_lists.bundle import GZIP_MAGIC, parse_bundle
from sanctions_lists.entries import ParsedList
from sanctions_lists.ofac import parse_advanced_xml
from sanctions_lists.sdn_csv import looks_like_sdn_csv, parse_sdn_csv
from screener_base.errors import ListError

SNIFF_BYTES = 1024
_REMEDY = "check the source; the active list stays in force"


def detect_format(head: bytes, source_name: str) -> str:
    """ "advanced_xml" | "sdn_csv" | "bundle", or ListError saying what the bytes look like instead."""
    if not head.strip():
        raise ListError(f"{source_name} is empty", _REMEDY)
    if head.startswith(GZIP_MAGIC):
        return "bundle"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:SNIFF_BYTES]:
        raise ListError(f"{source_name} is an HTML page, not a sanctions list (an error or login page?)", _REMEDY)
    if text.startswith(b"<"):
        return "advanced_xml"
    if looks_like_sdn_csv(head):
        return "sdn_csv"
    preview = head[:40].decode("utf-8", errors="backslashreplace")
    raise ListError(f"{source_name} is neither OFAC advanced XML nor sdn.csv (starts with {preview!r})", _REMEDY)


def parse_file(path: Path, source_name: str | None = None) -> ParsedList:
    """Parse a list file of any supported format; ListError on anything else."""
    name = source_name or str(path)
    try:
        with path.open("rb") as fh:
            kind = detect_format(fh.read(SNIFF_BYTES), name)
            fh.seek(0)
            if kind == "bundle":
                return parse_bundle(fh, name)
            if kind == "sdn_csv":
                return parse_sdn_csv(fh, name)
            return parse_advanced_xml(fh, name)
    except OSError as exc:
        raise ListError(f"cannot read {name}: {exc.strerror or exc}", "check the path and its permissions") from None
