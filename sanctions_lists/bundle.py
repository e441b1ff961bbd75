"""The bundled snapshot format: gzipped JSON of entries plus provenance, shipped in sanctions_lists/data/.

Written by sanctions_lists/build_bundle.py (deterministic bytes: sorted entries, gzip mtime 0), read when
the database has no list yet and as a refresh source (detected by the gzip magic).
"""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from sanctions_lists.entries import MAX_ENTRIES, ParsedList, make_entry
from screener_base.clock import ensure_utc
from screener_base.errors import ListError

FORMAT_ID = "screener-ofac-bundle/1"
BUNDLE_NAME = "ofac_bundle.json.gz"
GZIP_MAGIC = b"\x1f\x8b"
MAX_BUNDLE_JSON_BYTES = 64 * 1024 * 1024
_REMEDY = "rebuild it with `python -m sanctions_lists.build_bundle` or reinstall the package"


def bundled_path() -> Path:
    return Path(str(resources.files("sanctions_lists") / "data" / BUNDLE_NAME))


def encode_bundle(entries: list[dict[str, Any]], header: dict[str, Any]) -> bytes:
    doc = {"format": FORMAT_ID, **header, "entries": sorted(entries, key=lambda e: (e["tag"], e["address"]))}
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def _read_json(stream: BinaryIO, source_name: str) -> dict[str, Any]:
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            raw = gz.read(MAX_BUNDLE_JSON_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ListError(f"{source_name} is not a readable gzip bundle: {exc}", _REMEDY) from None
    if len(raw) > MAX_BUNDLE_JSON_BYTES:
        raise ListError(f"{source_name} expands beyond {MAX_BUNDLE_JSON_BYTES} bytes", _REMEDY)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ListError(f"{source_name} is not UTF-8 JSON: {exc}", _REMEDY) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_ID:
        raise ListError(f"{source_name} is not a {FORMAT_ID} document", _REMEDY)
    return doc


def _opt_str(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is a {type(value).__name__}, not a string")
    return value


def _programs(row: dict[str, Any]) -> tuple[str, ...]:
    value = row.get("programs") or []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise TypeError("programs is not a list of strings")
    return tuple(value)


def parse_bundle(stream: BinaryIO, source_name: str = "bundle") -> ParsedList:
    doc = _read_json(stream, source_name)
    rows = doc.get("entries")
    if not isinstance(rows, list) or len(rows) > MAX_ENTRIES:
        raise ListError(f"{source_name} has no valid entries list", _REMEDY)
    try:
        entries = tuple(
            make_entry(
                str(row["address"]),
                str(row["tag"]),
                entity=_opt_str(row, "entity"),
                programs=_programs(row),
                profile_id=_opt_str(row, "profile_id"),
                note=_opt_str(row, "note"),
            )
            for row in rows
        )
        published = doc.get("published_at")
        published_at = ensure_utc(datetime.fromisoformat(published)) if published else None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ListError(f"{source_name} has a malformed entry or date: {exc!r}", _REMEDY) from None
    meta = {k: v for k, v in doc.items() if k not in ("entries", "format", "published_at")}
    return ParsedList(entries=entries, source_format="bundle", published_at=published_at, meta=meta)
