"""Hypothesis fuzzing of the parsers that read what the outside world sends: the ERC-20 Transfer decoder
(node JSON), the address codecs (operators, OFAC, nodes) and the sanctions list parsers (OFAC's advanced
XML, sdn.csv, our gzip bundle). Whatever the input, the only exception allowed out is the project's own
(ScreenerError subclasses); and where a parse succeeds, what comes out is well-formed.

Regressions found by fuzzing are pinned with ``@example``. Example counts grow with SCREENER_LONG=1.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chains.codec import from_hex20, to_hex20
from chains.transfers import TRANSFER_TOPIC0, Transfer, decode_transfer, decode_transfers
from sanctions_lists.bundle import FORMAT_ID, parse_bundle
from sanctions_lists.entries import FEATURE_PREFIX, ParsedList
from sanctions_lists.formats import parse_file
from sanctions_lists.ofac import NS_SLS, NS_UN_1_0, parse_advanced_xml
from sanctions_lists.sdn_csv import parse_sdn_csv
from sanctions_lists.snapshot import Snapshot, diff
from screener_base import addresses as ad
from screener_base.addresses import Family
from screener_base.errors import AddressError, ListError, ScreenerError
from tests.support.advanced_writer import Party, write_advanced_xml

LONG = os.environ.get("SCREENER_LONG") == "1"
FUZZ = settings(
    max_examples=2000 if LONG else 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
EVM_CANON = re.compile(r"0x[0-9a-f]{40}")
HASH = re.compile(r"0x[0-9a-f]{64}")
TOKEN = "0x" + "a1" * 20
OTHER_TOKEN = "0x" + "b2" * 20
TOKENS = frozenset({TOKEN})

# ----------------------------------------------------------------------------------------------- strategies

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=80)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
hex_digits = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=70)
# strings that look like hex quantities/words but are subtly wrong: signs, underscores, spaces, case, length
hexish = st.one_of(
    hex_digits.map(lambda h: "0x" + h),
    hex_digits.map(lambda h: "0X" + h),
    hex_digits.map(lambda h: "-0x" + h),
    hex_digits.map(lambda h: " 0x" + h + " "),
    hex_digits.map(lambda h: "0x_" + h),
    hex_digits,
    st.text(max_size=70),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.none(),
)
words = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
address_words = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + "0" * 24 + b.hex())


@st.composite
def near_transfer_logs(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed watched Transfer log with any number of its fields replaced by something odd."""
    log: dict[str, Any] = {
        "address": draw(st.sampled_from([TOKEN, TOKEN.upper().replace("0X", "0x"), OTHER_TOKEN])),
        "topics": [TRANSFER_TOPIC0, draw(address_words), draw(address_words)],
        "data": draw(words),
        "blockNumber": hex(draw(st.integers(0, 2**40))),
        "blockHash": draw(words),
        "transactionHash": draw(words),
        "logIndex": hex(draw(st.integers(0, 2**16))),
        "removed": draw(st.sampled_from([False, None, True])),
    }
    for key in draw(st.lists(st.sampled_from(sorted(log)), max_size=4, unique=True)):
        if draw(st.booleans()):
            del log[key]
        else:
            log[key] = draw(hexish | json_values)
    if draw(st.booleans()) and isinstance(log.get("topics"), list):
        topics = list(log["topics"])
        i = draw(st.integers(0, max(0, len(topics) - 1)))
        change = draw(st.sampled_from(["replace", "append", "drop"]))
        if change == "replace" and topics:
            topics[i] = draw(hexish | json_values | words)
        elif change == "append":
            topics.append(draw(words))
        elif topics:
            topics.pop(i)
        log["topics"] = topics
    return log


def _assert_well_formed(t: Transfer) -> None:
    assert t.token in TOKENS
    assert EVM_CANON.fullmatch(t.from_hex) and EVM_CANON.fullmatch(t.to_hex)
    assert HASH.fullmatch(t.tx_hash) and HASH.fullmatch(t.block_hash)
    assert 0 <= t.amount < 2**256
    assert t.log_index >= 0 and t.block_number >= 0


# ----------------------------------------------------------------------------------------------- decoder


@FUZZ
@given(log=near_transfer_logs() | json_values)
@example(log={"topics": [TRANSFER_TOPIC0, 5, "0x" + "0" * 64], "data": "0x" + "0" * 64, "address": TOKEN})
@example(
    log={
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC0, "0x" + "0" * 64, "0x" + "0" * 64],
        "data": "0x" + "0" * 64,
        "blockNumber": "0x1",
        "blockHash": "0x" + "0" * 64,
        "transactionHash": "0x" + "0" * 64,
        "logIndex": "-0x1",
    }
)
def test_transfer_decoder_never_raises_and_only_yields_well_formed_transfers(log: Any) -> None:
    try:
        result = decode_transfer(log, TOKENS)
    except ScreenerError:
        return
    if isinstance(result, Transfer):
        _assert_well_formed(result)


@FUZZ
@given(
    logs=st.lists(near_transfer_logs() | json_values, max_size=8),
    recipients=st.none() | st.frozensets(st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())),
)
@example(logs=[None], recipients=None)
@example(  # the fast path for other recipients once hashed an unhashable address
    logs=[{"address": [], "topics": [TRANSFER_TOPIC0, "0x" + "0" * 64, "0x" + "0" * 64], "data": "0x" + "0" * 64}],
    recipients=frozenset(),
)
@example(logs=[{"topics": [TRANSFER_TOPIC0, "0x", 7], "data": "0x" + "0" * 64, "address": TOKEN}], recipients=None)
def test_transfer_batch_accounts_for_every_log(logs: list[Any], recipients: frozenset[str] | None) -> None:
    try:
        out = decode_transfers(logs, TOKENS, recipients)
    except ScreenerError:
        return
    assert len(out.transfers) + out.rejected_total + out.other_recipients == len(logs)
    for t in out.transfers:
        _assert_well_formed(t)
        assert recipients is None or t.to_hex in recipients


@FUZZ
@given(
    frm=st.binary(min_size=20, max_size=20), to=st.binary(min_size=20, max_size=20), amount=st.integers(0, 2**256 - 1)
)
def test_a_valid_transfer_decodes_exactly(frm: bytes, to: bytes, amount: int) -> None:
    log = {
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC0, "0x" + "0" * 24 + frm.hex(), "0x" + "0" * 24 + to.hex().upper()],
        "data": "0x" + f"{amount:064x}",
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "CD" * 32,
        "logIndex": "0x3",
    }
    t = decode_transfer(log, TOKENS)
    assert isinstance(t, Transfer)
    assert (t.from_hex, t.to_hex, t.amount, t.log_index, t.block_number) == (
        "0x" + frm.hex(),
        "0x" + to.hex(),
        amount,
        3,
        16,
    )
    assert t.tx_hash == "0x" + "cd" * 32


# ----------------------------------------------------------------------------------------------- addresses

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
address_texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=B58, min_size=30, max_size=36).map(lambda s: "T" + s[:33]),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    st.binary(min_size=20, max_size=20).map(lambda b: ad.hex_to_tron("0x" + b.hex())),
    st.text(alphabet="0123456789abcdefABCDEFx \n\t\r", max_size=48),
    st.text(alphabet=B58 + "0Il \n", max_size=40),
)
padding = st.sampled_from(["", "\n", " ", "\t", "\r\n", "\u2028", "\x00", "\u00a0"])


@FUZZ
@given(text=address_texts, before=padding, after=padding)
@example(text="0x" + "ab" * 20, before="", after="\n")
@example(text="TQ7Xj7e6u3XqVxoXpP5TLSxT7iCYszApR7", before="", after="\n")
def test_address_codecs_raise_only_address_errors(text: str, before: str, after: str) -> None:
    value = before + text + after
    family = ad.infer_family(value)  # never raises
    assert isinstance(family, Family)
    for fam in Family:
        for fn in (ad.canonical, ad.display):
            try:
                out = fn(fam, value)
            except AddressError:
                continue
            assert out == out.strip() and out
            if fam is Family.EVM:
                assert EVM_CANON.fullmatch(out.lower())
            if fam is Family.TRON:
                assert ad.infer_family(out) is Family.TRON
    for fn1 in (ad.evm_canonical, ad.evm_display, ad.tron_to_hex20, ad.hex_to_tron, ad.tron_canonical):
        try:
            out = fn1(value)
        except AddressError:
            continue
        if fn1 in (ad.evm_canonical, ad.tron_to_hex20):
            assert EVM_CANON.fullmatch(out), (fn1.__name__, value, out)
        if fn1 in (ad.hex_to_tron, ad.tron_canonical):
            assert ad.infer_family(out) is Family.TRON, (fn1.__name__, value, out)
    for fam in (Family.EVM, Family.TRON):
        for fn2 in (to_hex20, from_hex20):
            try:
                fn2(fam, value)
            except AddressError:
                pass
    if family in (Family.EVM, Family.TRON):  # what infer_family accepts, canonical accepts, idempotently
        canon = ad.canonical(family, value)
        assert ad.canonical(family, canon) == canon
        assert ad.canonical(family, ad.display(family, value)) == canon


@FUZZ
@given(body=st.binary(min_size=20, max_size=20))
def test_tron_and_evm_forms_round_trip(body: bytes) -> None:
    hex20 = "0x" + body.hex()
    tron = ad.hex_to_tron(hex20)
    assert ad.infer_family(tron) is Family.TRON and ad.tron_to_hex20(tron) == hex20
    assert ad.hex_to_tron("41" + body.hex()) == tron == ad.hex_to_tron("0x41" + body.hex().upper())
    assert to_hex20(Family.TRON, tron) == hex20 and from_hex20(Family.TRON, hex20) == tron
    checksummed = ad.evm_display(hex20)
    assert ad.evm_canonical(checksummed) == hex20 == ad.canonical(Family.EVM, hex20.upper().replace("0X", "0x"))
    # one wrong character in a Tron address is caught by the checksum (or the regex), never accepted
    i = 1 + body[0] % 33
    swapped = tron[:i] + ("2" if tron[i] != "2" else "3") + tron[i + 1 :]
    with pytest.raises(AddressError):
        ad.tron_to_hex20(swapped)


# ----------------------------------------------------------------------------------------------- list parsers


def _parse_bytes(data: bytes, parser: Any) -> ParsedList | None:
    try:
        parsed = parser(io.BytesIO(data), "fuzzed")
    except ListError:
        return None
    _check_parsed(parsed)
    return parsed


def _check_parsed(parsed: ParsedList) -> None:
    snap = Snapshot(parsed.entries)  # what activation builds; must not raise either
    diff(None, snap)
    for entry in parsed.entries:
        assert entry.address == entry.address.strip() and entry.family in {f.value for f in Family}
        if entry.family in (Family.EVM.value, Family.TRON.value):
            assert snap.match(entry.family, entry.address)


# XML 1.0 characters only (no controls, surrogates or noncharacters): what a real XML file can carry
party_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")), max_size=40)
tags = st.sampled_from(["ETH", "XBT", "USDT", "USDC", "TRX", "ARB", "BSC", "Fancy Tag"]) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=8
)
party_addresses = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex().upper()),
    st.binary(min_size=20, max_size=20).map(lambda b: ad.hex_to_tron("0x" + b.hex())),
    st.text(alphabet=B58, min_size=26, max_size=34).map(lambda s: "1" + s),
    party_text,
)


@st.composite
def advanced_documents(draw: st.DrawFn) -> tuple[bytes, list[Party]]:
    parties = []
    for n in range(draw(st.integers(0, 4))):
        addrs = tuple(draw(st.lists(st.tuples(tags, party_addresses), max_size=4)))
        programs = tuple(draw(st.lists(party_text, max_size=3)))
        if draw(st.booleans()):
            parties.append(Party(100 + n, addrs, programs, entity_name=draw(party_text) or None))
        else:
            parties.append(Party(100 + n, addrs, programs, last_name=draw(party_text), first_name=draw(party_text)))
    buf = io.StringIO()
    published = draw(st.dates(min_value=date(1, 1, 1)))
    write_advanced_xml(buf, parties, published=published, namespace=draw(st.sampled_from([NS_UN_1_0, NS_SLS])))
    return buf.getvalue().encode("utf-8"), parties


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "cut":
            del data[pos:]
        elif op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [b"<", b">", b"&", b"&amp;", b"<![CDATA[x]]>", b"<!DOCTYPE x>", b"\xff\xfe", b"\x00", b"</a>"]
                )
                | st.binary(max_size=8)
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


XML_DATE_TEMPLATE = (
    '<Sanctions xmlns="{ns}"><DateOfIssue><Year>{y}</Year><Month>{m}</Month><Day>{d}</Day></DateOfIssue>'
    "<ReferenceValueSets /></Sanctions>"
)


@FUZZ
@given(doc=advanced_documents())
def test_advanced_xml_round_trips_every_crypto_address(doc: tuple[bytes, list[Party]]) -> None:
    data, parties = doc
    parsed = _parse_bytes(data, parse_advanced_xml)
    assert parsed is not None
    got = {(e.tag, e.address) for e in parsed.entries}
    want = {(tag.strip(), address.strip()) for p in parties for tag, address in p.addresses if address.strip()}
    assert got == want


@FUZZ
@given(data=mutated(advanced_documents().map(lambda d: d[0])) | st.binary(max_size=400))
@example(data=XML_DATE_TEMPLATE.format(ns=NS_SLS, y="9" * 20, m=1, d=1).encode())
@example(data=XML_DATE_TEMPLATE.format(ns=NS_SLS, y="\uff12\uff10\uff12\uff15", m="0", d=1).encode())
@example(data=b'<?xml version="1.0" encoding="utf-16"?><a/>')
@example(data=b'<?xml version="1.0" encoding="utfyes"?><a/>')  # LookupError from pyexpat's codec lookup
@example(data=b'<?xml version="1.0" encoding="rot13"?><a/>')  # not a text encoding: LookupError
@example(data=b'<?xml version="1.0" encoding="shift_jis"?><a/>')  # multi-byte: ValueError
@example(data=b'<?xml version="1.0" encoding="idna"?><a>\xe9</a>')  # UnicodeError
def test_advanced_xml_parser_raises_only_list_errors(data: bytes) -> None:
    _parse_bytes(data, parse_advanced_xml)


@FUZZ
@given(y=st.text(max_size=25) | st.integers().map(str), m=st.text(max_size=5), d=st.integers().map(str))
def test_advanced_xml_date_of_issue_any_value(y: str, m: str, d: str) -> None:
    from xml.sax.saxutils import escape

    doc = XML_DATE_TEMPLATE.format(ns=NS_UN_1_0, y=escape(y), m=escape(m), d=escape(d))
    try:
        _parse_bytes(doc.encode("utf-8", errors="surrogatepass"), parse_advanced_xml)
    except UnicodeEncodeError:  # pragma: no cover - lone surrogates are not text
        pass


csv_field = st.one_of(
    st.text(max_size=30),
    st.just("-0-"),
    st.integers(0, 10**6).map(str),
    st.lists(st.tuples(tags, party_addresses, st.sampled_from([";", ".", ",", " ", ""])), min_size=1, max_size=4).map(
        lambda xs: " ".join(f"{FEATURE_PREFIX}{t} {a}{sep}" for t, a, sep in xs)
    ),
)


@st.composite
def sdn_csv_files(draw: st.DrawFn) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for _ in range(draw(st.integers(0, 5))):
        row = draw(st.lists(csv_field, min_size=12, max_size=12))
        if draw(st.booleans()):
            row[0] = str(draw(st.integers(0, 99999)))
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, 13))]
        writer.writerow(row)
    text = out.getvalue() + draw(st.sampled_from(["", "\x1a", "\n", "\r\n\x1a\r\n"]))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), errors="replace")


@FUZZ
@given(data=sdn_csv_files() | mutated(sdn_csv_files()) | st.binary(max_size=300))
def test_sdn_csv_parser_raises_only_list_errors(data: bytes) -> None:
    _parse_bytes(data, parse_sdn_csv)


bundle_rows = st.lists(
    st.dictionaries(
        st.sampled_from(["address", "tag", "entity", "programs", "profile_id", "note", "x"]),
        json_values | party_addresses,
        max_size=7,
    )
    | json_values,
    max_size=5,
)


@FUZZ
@given(
    rows=bundle_rows,
    published=st.none() | st.text(max_size=30) | st.just("2025-05-30T00:00:00+00:00") | json_values,
    fmt=st.sampled_from([FORMAT_ID, FORMAT_ID, "other"]),
)
@example(
    rows=[{"address": "0x" + "11" * 20, "tag": "ETH", "profile_id": 5}, {"address": "0x" + "11" * 20, "tag": "ETH"}],
    published=None,
    fmt=FORMAT_ID,
)
@example(rows=[{"address": "0x" + "11" * 20, "tag": "ETH", "entity": {"a": 1}}], published=None, fmt=FORMAT_ID)
def test_bundle_parser_raises_only_list_errors(rows: Any, published: Any, fmt: str) -> None:
    doc = {"format": fmt, "entries": rows}
    if published is not None:
        doc["published_at"] = published
    data = gzip.compress(json.dumps(doc).encode())
    parsed = _parse_bytes(data, parse_bundle)
    if parsed is not None:
        for entry in parsed.entries:
            assert entry.entity is None or isinstance(entry.entity, str)
            assert entry.profile_id is None or isinstance(entry.profile_id, str)
            assert all(isinstance(p, str) for p in entry.programs)


@FUZZ
@given(data=st.binary(max_size=300) | mutated(advanced_documents().map(lambda d: d[0])) | sdn_csv_files())
@example(data=b"\x1f\x8b" + b"\x00" * 20)
@example(data=b"<html><body>rate limited</body></html>")
def test_any_file_is_a_list_or_a_list_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "list.bin"
    path.write_bytes(data)
    try:
        parsed = parse_file(path)
    except ListError:
        return
    _check_parsed(parsed)
