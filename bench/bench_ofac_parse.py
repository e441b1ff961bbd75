"""Streaming SDN advanced XML parser vs loading the whole tree with ElementTree.

Builds a full-size (~100 MB, like OFAC's sdn_advanced.xml) document in a temp dir by repeating the real
parties and sanctions entries of ../shared/data's consolidated advanced XML, plus parties carrying every
address of the newest per-asset lists, then parses it in separate processes (so peak RSS is each one's own):

- streaming: sanctions_lists.ofac.parse_advanced_xml (expat, nothing kept but the crypto features)
- baseline:  xml.etree.ElementTree.parse of the whole file, then a walk extracting the same entries

Both must find the same entries. Prints time and peak RSS (minus the interpreter's own, measured by a
process that only imports the same modules) and the ratios. Run:

    .venv/bin/python bench/bench_ofac_parse.py [--mb 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the XML writer lives in tests/support (test-only code, not installed)
SHARED = ROOT.parent / "shared" / "data"
CONS = SHARED / "ofac_raw" / "advanced_xml" / "cons_advanced_2020-03-17.xml"
NEWEST = SHARED / "ofac" / "2025-05-30"


def _section(text: str, tag: str) -> tuple[int, int]:
    start = text.index(f"<{tag}>") + len(f"<{tag}>")
    return start, text.index(f"</{tag}>")


def build(path: Path, target_mb: int) -> int:
    """Write the document; returns the number of crypto addresses in it."""
    from sanctions_lists.entries import FEATURE_PREFIX
    from tests.support.advanced_writer import (
        feature_type_ids,
        load_per_asset_lists,
        parties_from_pairs,
        party_xml,
        sanctions_entry_xml,
    )

    cons = CONS.read_text(encoding="utf-8")
    pairs = load_per_asset_lists(NEWEST)
    crypto = parties_from_pairs(pairs, first_id=900_000)
    tag_ids = feature_type_ids(tag for tag, _ in pairs)
    feature_types = "".join(
        f'<FeatureType ID="{i}" FeatureTypeGroupID="1">{FEATURE_PREFIX}{t}</FeatureType>' for t, i in tag_ids.items()
    )
    cons = cons.replace("</FeatureTypeValues>", feature_types + "</FeatureTypeValues>", 1)
    p0, p1 = _section(cons, "DistinctParties")
    e0, e1 = _section(cons, "SanctionsEntries")
    parties, entries = cons[p0:p1], cons[e0:e1]
    repeats = max(1, (target_mb * 1024 * 1024) // (len(parties) + len(entries)))
    with path.open("w", encoding="utf-8") as out:
        out.write(cons[:p0])
        for n in range(repeats):
            out.write(parties)
            if n == repeats // 2:  # crypto parties in the middle, as in the real file
                out.writelines(party_xml(p, tag_ids) for p in crypto)
        out.write(cons[p1:e0])
        for n in range(repeats):
            out.write(entries)
            if n == repeats // 2:
                out.writelines(sanctions_entry_xml(p) for p in crypto)
        out.write(cons[e1:])
    return len(pairs)


def _streaming(path: Path) -> list[tuple[str, str, str, str]]:
    from sanctions_lists.ofac import parse_advanced_xml

    with path.open("rb") as fh:
        parsed = parse_advanced_xml(fh, path.name)
    return [(e.tag, e.address, e.entity or "", ",".join(e.programs)) for e in parsed.entries]


def _baseline_name(identity: Any, ns: str, part_types: dict[str, str]) -> str:
    groups = {g.get("ID"): g.get("NamePartTypeID") for g in identity.iter(f"{ns}NamePartGroup")}
    for alias in identity.iter(f"{ns}Alias"):
        if alias.get("Primary") != "true":
            continue
        last, rest = [], []
        for value in alias.iter(f"{ns}NamePartValue"):
            kind = part_types.get(groups.get(value.get("NamePartGroupID"), ""), "")
            (last if kind == "Last Name" else rest).append((value.text or "").strip())
        return f"{' '.join(last)}, {' '.join(rest)}" if last and rest else " ".join(last or rest)
    return ""


def _baseline(path: Path) -> list[tuple[str, str, str, str]]:
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()  # trusted input: we generated it
    ns = root.tag[: root.tag.index("}") + 1]
    refs = root.find(f"{ns}ReferenceValueSets")
    assert refs is not None
    crypto = {
        f.get("ID"): (f.text or "")[len("Digital Currency Address - ") :].strip()
        for f in refs.iter(f"{ns}FeatureType")
        if (f.text or "").startswith("Digital Currency Address - ")
    }
    part_types = {t.get("ID", ""): (t.text or "") for t in refs.iter(f"{ns}NamePartType")}
    program_types = {t.get("ID") for t in refs.iter(f"{ns}SanctionsType") if (t.text or "").lower() == "program"}
    programs: dict[str, list[str]] = {}
    for entry in root.iter(f"{ns}SanctionsEntry"):
        for measure in entry.iter(f"{ns}SanctionsMeasure"):
            comment = measure.find(f"{ns}Comment")
            if measure.get("SanctionsTypeID") in program_types and comment is not None and comment.text:
                programs.setdefault(entry.get("ProfileID", ""), []).append(comment.text.strip())
    found = []
    for profile in root.iter(f"{ns}Profile"):
        addresses = [
            (crypto[f.get("FeatureTypeID", "")], (d.text or "").strip())
            for f in profile.findall(f"{ns}Feature")
            if f.get("FeatureTypeID") in crypto
            for d in f.iter(f"{ns}VersionDetail")
        ]
        if not addresses:
            continue
        identity = profile.find(f"{ns}Identity")
        name = _baseline_name(identity, ns, part_types) if identity is not None else ""
        progs = ",".join(dict.fromkeys(programs.get(profile.get("ID", ""), [])))
        found.extend((tag, address, name, progs) for tag, address in addresses)
    return found


def run_one(mode: str, path: Path) -> dict[str, Any]:
    import xml.etree.ElementTree  # noqa: F401  (same imports in every mode, so "noop" is a fair floor)

    import sanctions_lists.ofac  # noqa: F401  (as above)

    traced = mode.endswith("+trace")
    mode = mode.removesuffix("+trace")
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    found = [] if mode == "noop" else (_streaming(path) if mode == "streaming" else _baseline(path))
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"mode": mode, "seconds": seconds, "peak_rss_mb": peak_kb / 1024, "entries": sorted(found)}
    if traced:
        result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        tracemalloc.stop()
    return result


def _child(mode: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True, check=True, timeout=900
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ofac-") as tmp:
        path = Path(tmp) / "sdn_advanced.xml"
        addresses = build(path, args.mb)
        size_mb = path.stat().st_size / 1024 / 1024
        print(f"document: {size_mb:.1f} MB, {addresses} crypto addresses (built {date.today()})")
        floor = _child("noop", path)["peak_rss_mb"]
        runs = {mode: [_child(mode, path) for _ in range(args.repeats)] for mode in ("streaming", "baseline")}
        traced = {mode: _child(mode + "+trace", path)["traced_peak_mb"] for mode in ("streaming", "baseline")}
    best = {mode: min(rs, key=lambda r: r["seconds"]) for mode, rs in runs.items()}
    if best["streaming"]["entries"] != best["baseline"]["entries"]:
        raise SystemExit("streaming and baseline parsers disagree")
    print(f"both found {len(best['streaming']['entries'])} entries; interpreter floor {floor:.1f} MB RSS")
    for mode, r in best.items():
        print(
            f"{mode:>9}: {r['seconds']:.2f} s (best of {args.repeats}), peak RSS {r['peak_rss_mb']:.1f} MB "
            f"({r['peak_rss_mb'] - floor:.1f} MB above floor)"
        )
    for mode in ("streaming", "baseline"):
        print(f"{mode:>9}: tracemalloc peak {traced[mode]:.1f} MB (a separate, slower run)")
    s, b = best["streaming"], best["baseline"]
    speedup = b["seconds"] / s["seconds"]
    mem_ratio = (s["peak_rss_mb"] - floor) / max(b["peak_rss_mb"] - floor, 1e-9)
    print(
        f"speed-up {speedup:.1f}x (target >= 2x); peak memory vs baseline (target < 0.1): "
        f"RSS {s['peak_rss_mb'] / b['peak_rss_mb']:.3f}, RSS above floor {mem_ratio:.3f}, "
        f"tracemalloc {traced['streaming'] / traced['baseline']:.4f}"
    )


if __name__ == "__main__":
    main()
