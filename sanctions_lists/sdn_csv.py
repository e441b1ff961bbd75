"""Fallback parser of OFAC's legacy sdn.csv: addresses from the Remarks column.

OFAC cuts Remarks at 1000 characters (the rest goes to sdn_comments.csv), so an entity with many
addresses shows only the first few here (Tornado Cash: ~12 of ~100). Every entry from this format carries
a note saying so, and an address cut in the middle is dropped rather than half-matched.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from typing import BinaryIO

from sanctions_lists.entries import FEATURE_PREFIX, MAX_ENTRIES, Entry, ParsedList, make_entry
from screener_base.errors import ListError

REMARKS_LIMIT = 1000
NULL = "-0-"
# Address followed by a separator; at the very end of a cut remark there is none, and the match fails.
_ADDRESS_RE = re.compile(re.escape(FEATURE_PREFIX) + r"([A-Za-z0-9]+) ([A-Za-z0-9]+)(?=[;.,\s])")
NOTE = (
    "from sdn.csv: OFAC cuts Remarks at 1000 characters, so this entity may have more addresses than "
    "this fallback list shows"
)
NOTE_CUT = NOTE + " (this entity's Remarks were cut)"
_REMEDY = "use the SDN advanced XML instead, or check the file; the active list stays in force"


def _programs(field: str) -> tuple[str, ...]:
    # OFAC writes several programs as "DPRK3] [CYBER2".
    return tuple(p.strip(" []") for p in field.split("] [") if p.strip(" []"))


def _clean(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", NULL) else value


def _row_entries(row: list[str]) -> list[Entry]:
    remarks = row[11]
    if FEATURE_PREFIX not in remarks:
        return []
    cut = len(remarks.strip()) >= REMARKS_LIMIT - 1 or not remarks.rstrip().endswith(".")
    note = NOTE_CUT if cut else NOTE
    entity = _clean(row[1])
    programs = _programs(row[3]) if _clean(row[3]) else ()
    profile_id = _clean(row[0])
    return [
        make_entry(address, tag, entity=entity, programs=programs, profile_id=profile_id, note=note)
        for tag, address in _ADDRESS_RE.findall(remarks)
    ]


def parse_sdn_csv(stream: BinaryIO, source_name: str = "sdn.csv") -> ParsedList:
    """Digital-currency addresses in the Remarks column of an sdn.csv file."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")
    entries: dict[tuple[str, str, str, str | None], Entry] = {}
    try:
        for line_no, row in enumerate(csv.reader(text, strict=True), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # OFAC ends the file with a control-Z or blank line
            if len(row) != 12 or not row[0].strip().isdigit():
                if row == ["\x1a"]:
                    continue
                raise ListError(
                    f"{source_name} line {line_no} is not an sdn.csv record ({len(row)} fields, expected 12)",
                    _REMEDY,
                )
            for entry in _row_entries(row):
                entries.setdefault((entry.family, entry.canonical, entry.tag, entry.profile_id), entry)
            if len(entries) > MAX_ENTRIES:
                raise ListError(f"{source_name} lists more than {MAX_ENTRIES} addresses", _REMEDY)
    except UnicodeDecodeError as exc:
        raise ListError(f"{source_name} is not UTF-8 text ({exc.reason} at byte {exc.start})", _REMEDY) from None
    except csv.Error as exc:
        raise ListError(f"{source_name} is not valid CSV: {exc}", _REMEDY) from None
    finally:
        text.detach()
    return ParsedList(entries=tuple(entries.values()), source_format="sdn_csv", meta={"note": NOTE})


def looks_like_sdn_csv(head: bytes) -> bool:
    """First bytes of an sdn.csv: a numeric ent_num, a comma, a quoted name."""
    text = codecs.decode(head[:200], "utf-8", errors="replace").lstrip("\ufeff")
    return bool(re.match(r'\s*\d+,"', text))
