"""The OFAC parsers on the real data in ../shared/data: advanced XML (both namespaces), sdn.csv, bundle."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sanctions_lists.build_bundle import build_rows
from sanctions_lists.bundle import bundled_path, encode_bundle
from sanctions_lists.formats import parse_file
from sanctions_lists.ofac import NS_SLS, NS_UN_1_0, parse_advanced_xml
from sanctions_lists.sdn_csv import NOTE_CUT, parse_sdn_csv
from sanctions_lists.snapshot import Snapshot, diff
from screener_base.addresses import tron_to_hex20
from screener_base.errors import AddressError, ListError
from tests.support.advanced_writer import load_per_asset_lists, render

DATES = ["2022-09-03", "2022-11-09", "2023-09-27", "2024-09-27", "2025-03-05", "2025-03-22", "2025-05-30"]


def _pairs(shared_data: Path, day: str) -> list[tuple[str, str]]:
    return load_per_asset_lists(shared_data / "ofac" / day)


def _parse_bytes(data: bytes) -> Snapshot:
    return Snapshot(parse_advanced_xml(io.BytesIO(data), "test.xml").entries)


@pytest.mark.parametrize("namespace", [NS_UN_1_0, NS_SLS], ids=["un-1.0", "sls"])
@pytest.mark.parametrize("day", DATES)
def test_parser_agrees_with_per_asset_lists(shared_data: Path, day: str, namespace: str) -> None:
    pairs = _pairs(shared_data, day)
    # The .txt and .json renderings of each list are the same list.
    for path in sorted((shared_data / "ofac" / day).glob("*.txt")):
        assert json.loads(path.with_suffix(".json").read_text()) == path.read_text().splitlines()
    parsed = parse_advanced_xml(io.BytesIO(render(pairs, published=date.fromisoformat(day), namespace=namespace)))
    assert parsed.published_at == datetime.fromisoformat(day).replace(tzinfo=UTC)
    assert parsed.meta["namespace"] == namespace
    assert sorted((e.tag, e.address) for e in parsed.entries) == sorted(pairs)
    tags = {tag for tag, _ in pairs}
    assert set(parsed.meta["feature_types"].values()) == tags  # discovered, not from a fixed list


def test_parser_attaches_names_and_programs(shared_data: Path) -> None:
    pairs = _pairs(shared_data, "2025-05-30")
    entries = parse_advanced_xml(io.BytesIO(render(pairs, published=date(2025, 5, 30)))).entries
    by_profile = {e.profile_id: e for e in entries}
    assert by_profile["10000"].entity == "DOE0, Jane Q"  # individual: "LAST, First" like sdn.csv
    assert by_profile["10000"].programs == ("DPRK3", "CYBER2")
    assert by_profile["10001"].entity == "EXAMPLE ENTITY 1 LTD"
    assert by_profile["10001"].programs == ("CYBER2",)  # the "Block" measure is not a program
    assert all(e.entity and e.programs and e.note is None for e in entries)


def test_tornado_delisting_diff(shared_data: Path) -> None:
    before = _parse_bytes(render(_pairs(shared_data, "2025-03-05"), published=date(2025, 3, 5)))
    after = _parse_bytes(render(_pairs(shared_data, "2025-03-22"), published=date(2025, 3, 22), namespace=NS_SLS))
    expected = json.loads((shared_data / "mixers.json").read_text())["tornado_cash"]["ofac_history"][
        "removed_eth_addresses_2025_03"
    ]
    change = diff(before, after)
    assert len(expected) == 90
    assert change.added == ()
    assert sorted(e.canonical for e in change.removed) == sorted(a.lower() for a in expected)
    assert {(e.family, e.tag) for e in change.removed} == {("evm", "ETH")}
    assert change.removed_addresses == {("evm", a.lower()) for a in expected}


def test_usdt_entries_split_by_family(shared_data: Path) -> None:
    snap = _parse_bytes(render(_pairs(shared_data, "2025-05-30"), published=date(2025, 5, 30)))
    usdt = [e for e in snap.entries if e.tag == "USDT"]
    families = {e.family for e in usdt}
    assert families == {"evm", "tron", "bitcoin-like"}
    for entry in usdt:
        if entry.address.startswith("0x"):
            assert entry.family == "evm" and entry.canonical == entry.address.lower()
        elif entry.address.startswith("T"):
            assert entry.family == "tron" and tron_to_hex20(entry.address)  # checksum-valid
        else:
            assert entry.family == "bitcoin-like" and entry.address[0] in "13"
    tron = next(e for e in usdt if e.family == "tron")
    evm = next(e for e in usdt if e.family == "evm")
    assert snap.match("tron", tron.address)[0].tag == "USDT"
    assert snap.match("tron", tron_to_hex20(tron.address))[0].address == tron.address  # JSON-RPC hex form
    with pytest.raises(AddressError):
        snap.match("evm", tron.address)
    assert [e.tag for e in snap.match("evm", evm.address.upper().replace("0X", "0x"))] == ["USDT"]


def test_real_consolidated_advanced_xml_has_no_crypto(shared_data: Path) -> None:
    parsed = parse_file(shared_data / "ofac_raw" / "advanced_xml" / "cons_advanced_2020-03-17.xml")
    assert parsed.source_format == "advanced_xml"
    assert parsed.entries == ()
    assert parsed.published_at == datetime(2020, 3, 17, tzinfo=UTC)
    assert parsed.meta["namespace"] == NS_UN_1_0


def _fragment_document(shared_data: Path, namespace: str) -> bytes:
    fragment = (shared_data / "ofac_raw" / "advanced_xml" / "sdn_advanced_excerpt_eth_feature.xml.txt").read_text()
    feature_type, feature = fragment.strip().split("\n", 1)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Sanctions xmlns="{namespace}" Version="3">'
        "<DateOfIssue><Year>2022</Year><Month>9</Month><Day>19</Day></DateOfIssue>"
        f"<ReferenceValueSets><FeatureTypeValues>{feature_type}</FeatureTypeValues></ReferenceValueSets>"
        '<DistinctParties><DistinctParty FixedRef="21386"><Profile ID="21386" PartySubTypeID="4">'
        f"{feature}</Profile></DistinctParty></DistinctParties></Sanctions>"
    ).encode()


@pytest.mark.parametrize("namespace", [NS_UN_1_0, NS_SLS])
def test_real_sdn_fragment_yields_eth_feature(shared_data: Path, namespace: str) -> None:
    parsed = parse_advanced_xml(io.BytesIO(_fragment_document(shared_data, namespace)))
    assert parsed.meta["feature_types"] == {"345": "ETH"}
    [entry] = parsed.entries
    assert (entry.tag, entry.family, entry.profile_id) == ("ETH", "evm", "21386")
    assert entry.canonical == "0x901bb9583b24d97e995513c6778dc6888ab6870e"


def test_sdn_csv_fallback_finds_tornado_with_truncation_note(shared_data: Path) -> None:
    with (shared_data / "ofac_raw" / "sdn_csv" / "sdn_2022-11-09.csv").open("rb") as fh:
        parsed = parse_sdn_csv(fh)
    tornado = [e for e in parsed.entries if e.entity == "TORNADO CASH"]
    removed_2025 = json.loads((shared_data / "mixers.json").read_text())["tornado_cash"]["ofac_history"][
        "removed_eth_addresses_2025_03"
    ]
    assert 10 <= len(tornado) < 20  # Remarks cut at 1000 characters: only the first dozen show
    assert {e.canonical for e in tornado} <= set(removed_2025)
    assert all(e.note == NOTE_CUT and "1000 characters" in e.note for e in tornado)
    assert all(e.programs == ("DPRK3", "CYBER2") and e.profile_id == "39796" for e in tornado)
    assert all(e.family == "evm" and e.tag == "ETH" for e in tornado)  # a half-cut address is never kept


def test_bundled_snapshot_is_the_newest_lists_and_reproducible(shared_data: Path) -> None:
    parsed = parse_file(bundled_path())
    assert parsed.source_format == "bundle"
    assert parsed.published_at == datetime(2025, 5, 30, tzinfo=UTC)
    assert sorted((e.tag, e.address) for e in parsed.entries) == sorted(_pairs(shared_data, "2025-05-30"))
    named = [e for e in parsed.entries if e.entity]
    assert named and all(e.programs and e.profile_id for e in named)
    assert all(e.note for e in parsed.entries)  # every entry says where its name came from, or that it has none
    rows, header = build_rows(shared_data, "2025-05-30")
    assert encode_bundle(rows, header) == bundled_path().read_bytes()


# -- hostile and broken input ----------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Sanctions xmlns="http://www.un.org/sanctions/1.0"><DateOfIssue><Year>&lol9;</Year></DateOfIssue></Sanctions>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Sanctions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Sanctions xmlns="http://www.un.org/sanctions/1.0"><DateOfIssue><Year>&xxe;</Year></DateOfIssue></Sanctions>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Sanctions [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<Sanctions xmlns="http://www.un.org/sanctions/1.0"/>
"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY], ids=["laughs", "xxe", "param"])
def test_malicious_xml_refused_with_bounded_memory(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "evil.xml"
    path.write_bytes(doc)
    tracemalloc.start()
    try:
        with pytest.raises(ListError, match="DOCTYPE"):
            parse_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # an expansion would need gigabytes


def test_undeclared_entity_is_an_error() -> None:
    doc = f'<Sanctions xmlns="{NS_UN_1_0}"><DateOfIssue><Year>&x;</Year></DateOfIssue></Sanctions>'.encode()
    with pytest.raises(ListError, match="not well-formed"):
        parse_advanced_xml(io.BytesIO(doc))


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.97, -12])
def test_truncated_xml_is_a_list_error(shared_data: Path, tmp_path: Path, fraction: float) -> None:
    data = render(_pairs(shared_data, "2025-05-30"), published=date(2025, 5, 30))
    cut = len(data) + fraction if fraction < 0 else int(len(data) * fraction)
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: int(cut)])
    with pytest.raises(ListError, match=r"not well-formed XML .*truncated"):
        parse_file(path)


def test_non_utf8_input_is_a_list_error(shared_data: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(128, 256)) * 50)
    with pytest.raises(ListError, match=r"neither OFAC advanced XML nor sdn\.csv"):
        parse_file(garbage)
    latin1 = tmp_path / "latin1.xml"
    doc = render(_pairs(shared_data, "2025-05-30")[:5], published=date(2025, 5, 30)).decode()
    latin1.write_bytes(doc.replace("Jane Q", "J\u00fcrgen").encode("latin-1"))  # declared utf-8, is not
    with pytest.raises(ListError, match="not well-formed"):
        parse_file(latin1)
    utf16 = tmp_path / "utf16.xml"
    utf16.write_bytes(doc.encode("utf-16"))
    with pytest.raises(ListError):
        parse_file(utf16)
    csv_latin1 = tmp_path / "sdn.csv"
    csv_latin1.write_bytes('36,"M\u00dcLLER",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'.encode("latin-1"))
    with pytest.raises(ListError, match="not UTF-8"):
        parse_file(csv_latin1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "is empty"),
        (b"  \n ", "is empty"),
        (b"<!DOCTYPE html><html><body>Service Unavailable</body></html>", "HTML page"),
        (b"<html><head><title>Login</title></head></html>", "HTML page"),
        (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', "not Sanctions"),
        (f'<Sanctions xmlns="{NS_UN_1_0}" DeltaBaseVersion="7"/>'.encode(), "delta file"),
        (f'<Sanctions xmlns="{NS_UN_1_0}"><DistinctParties/></Sanctions>'.encode(), "before ReferenceValueSets"),
        (f'<Sanctions xmlns="{NS_UN_1_0}">{"<a>" * 80}{"</a>" * 80}</Sanctions>'.encode(), "deeper than"),
        (
            f'<Sanctions xmlns="{NS_UN_1_0}"><DateOfIssue><Year>{"9" * 5000}</Year></DateOfIssue></Sanctions>'.encode(),
            "longer than",
        ),
        (f'<Sanctions xmlns="{NS_UN_1_0}"><DateOfIssue><Year>2020</Year></DateOfIssue></Sanctions>'.encode(), "DateOf"),
        (b'1,"X",-0- \n', "not an sdn.csv record"),
    ],
)
def test_bad_documents_give_one_line_list_errors(tmp_path: Path, body: bytes, message: str) -> None:
    path = tmp_path / "doc"
    path.write_bytes(body)
    with pytest.raises(ListError, match=message) as info:
        parse_file(path)
    assert "\n" not in str(info.value)
