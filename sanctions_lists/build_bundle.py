"""Build sanctions_lists/data/ofac_bundle.json.gz from the real OFAC data in ../shared/data.

Content: every address of the per-asset lists ("Digital Currency Address - <TAG>" features of OFAC's SDN
advanced XML, as extracted by the 0xB10C generator) of the newest dated set, with the asset tag as
published. Those lists carry no names, so entity, programs and ent_num come from the Remarks of the real
sdn.csv files (newest first) where they show the address; Remarks are cut at 1000 characters, so some
addresses stay unnamed, and each entry's note says where its name came from or that there is none.

    python -m sanctions_lists.build_bundle [--data ../shared/data] [--date 2025-05-30] [--out FILE]

The output is byte-for-byte reproducible (sorted entries, gzip mtime 0).
"""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanctions_lists.bundle import BUNDLE_NAME, encode_bundle
from sanctions_lists.entries import Entry, make_entry
from sanctions_lists.sdn_csv import parse_sdn_csv

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATE = "2025-05-30"
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / BUNDLE_NAME
PER_ASSET_ORIGIN = "0xB10C/ofac-sanctioned-digital-currency-addresses per-asset lists"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _csv_names(data: Path) -> tuple[dict[tuple[str, str], tuple[Entry, str]], list[dict[str, str]]]:
    """(family, canonical) -> (entry with name, csv file name), newest csv winning."""
    names: dict[tuple[str, str], tuple[Entry, str]] = {}
    files = []
    for path in sorted((data / "ofac_raw" / "sdn_csv").glob("sdn_*.csv"), reverse=True):
        files.append({"file": f"ofac_raw/sdn_csv/{path.name}", "sha256": _sha256(path)})
        with path.open("rb") as fh:
            for entry in parse_sdn_csv(fh, path.name).entries:
                names.setdefault((entry.family, entry.canonical), (entry, path.name))
    return names, files


def build_rows(data: Path, day: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    list_dir = data / "ofac" / day
    lists = sorted(list_dir.glob("sanctioned_addresses_*.txt"))
    if not lists:
        raise SystemExit(f"no per-asset lists in {list_dir}")
    names, csv_files = _csv_names(data)
    rows: list[dict[str, Any]] = []
    for path in lists:
        tag = path.stem.removeprefix("sanctioned_addresses_")
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            bare = make_entry(line, tag)
            named = names.get((bare.family, bare.canonical))
            if named:
                src, csv_name = named
                note = f"entity from OFAC sdn.csv Remarks ({csv_name}); address from the {day} per-asset list"
                entry = make_entry(
                    line, tag, entity=src.entity, programs=src.programs, profile_id=src.profile_id, note=note
                )
            else:
                note = (
                    f"entity not named: the {day} per-asset list has no names and the bundled sdn.csv "
                    "Remarks (cut at 1000 characters) do not show this address"
                )
                entry = make_entry(line, tag, note=note)
            rows.append({k: entry.to_json()[k] for k in ("address", "tag", "entity", "programs", "profile_id", "note")})
    header = {
        "published_at": datetime.fromisoformat(day).replace(tzinfo=UTC).isoformat(),
        "source": f"{PER_ASSET_ORIGIN}, snapshot {day}; names from OFAC sdn.csv",
        "built_from": [{"file": f"ofac/{day}/{p.name}", "sha256": _sha256(p)} for p in lists] + csv_files,
        "named_entries": sum(1 for r in rows if r["entity"]),
    }
    return rows, header


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--date", default=DEFAULT_DATE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows, header = build_rows(args.data, args.date)
    blob = encode_bundle(rows, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    print(
        f"wrote {args.out}: {len(rows)} entries ({header['named_entries']} named), {len(blob)} bytes, "
        f"sha256 {hashlib.sha256(blob).hexdigest()}"
    )


if __name__ == "__main__":
    main()
