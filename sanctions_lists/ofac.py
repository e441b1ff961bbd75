"""Streaming parser of OFAC's SDN advanced XML (SDN_ADVANCED.XML), both namespaces seen in the wild.

Built on expat directly rather than ElementTree: no element objects are created, only the few texts that
matter are collected, so memory stays flat whatever the file size (bench/bench_ofac_parse.py). A DOCTYPE is
refused outright: OFAC never sends one, and refusing it shuts out entity expansion and external entities
before any is declared.

The XSD fixes the order DateOfIssue, ReferenceValueSets, ..., DistinctParties, ..., SanctionsEntries, so the
digital-currency feature types are known before the first party, and programs arrive after all parties
(they are attached by profile id at the end).
"""

from __future__ import annotations

import xml.parsers.expat as expat
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sanctions_lists.entries import FEATURE_PREFIX, MAX_ADDRESS_CHARS, MAX_ENTRIES, Entry, ParsedList, make_entry
from screener_base.errors import ListError

NS_UN_1_0 = "http://www.un.org/sanctions/1.0"
NS_SLS = "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ADVANCED_XML"
NAMESPACES = frozenset({NS_UN_1_0, NS_SLS})
CHUNK_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_TEXT_CHARS = 4096
_REMEDY = "check the source; the active list stays in force"

# (parent, element) pairs whose text is collected; everything else is skipped without building anything.
_TEXT_OF = {
    ("DateOfIssue", "Year"),
    ("DateOfIssue", "Month"),
    ("DateOfIssue", "Day"),
    ("FeatureTypeValues", "FeatureType"),
    ("NamePartTypeValues", "NamePartType"),
    ("SanctionsTypeValues", "SanctionsType"),
}


class _Refused(ListError):
    """Raised inside expat callbacks; turned into ListError with the source name outside."""


def _refuse_dtd(*_args: Any) -> None:
    raise _Refused("it declares a DOCTYPE (entity declarations and external references are refused)")


def _refuse_external(*_args: Any) -> int:
    raise _Refused("it references an external entity")


class _Reader:
    """Expat callbacks with the little state the extraction needs."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.stack: list[str] = []
        self.local_names: dict[str, str] = {}
        self.namespace: str | None = None
        self.date_parts: dict[str, str] = {}
        self.crypto_types: dict[str, str] = {}  # FeatureType ID -> asset tag
        self.name_part_types: dict[str, str] = {}
        self.program_type_ids: set[str] = set()
        self.ref_attrs: dict[str, str] = {}
        self.text: list[str] = []
        self.text_chars = 0
        self.seen_reference_values = False
        # per profile
        self.profile_id: str | None = None
        self.profile_name: str | None = None
        self.identity_primary = False
        self.alias_primary = False
        self.name_parts: list[tuple[str, str]] = []
        self.name_groups: dict[str, str] = {}
        self.part_group: str = ""
        self.feature_tag: str | None = None
        self.found: list[tuple[str, str]] = []  # (tag, address) of the current profile
        # results
        self.raw: list[tuple[str | None, str | None, str, str]] = []  # profile, name, tag, address
        self.wanted_profiles: set[str] = set()
        self.entry_profile: str | None = None
        self.measure_is_program = False
        self.programs: dict[str, list[str]] = {}

    # -- text capture --------------------------------------------------------------------------------------
    def _begin_text(self) -> None:
        self.text = []
        self.text_chars = 0
        self.parser.CharacterDataHandler = self._chars

    def _chars(self, data: str) -> None:
        self.text_chars += len(data)
        if self.text_chars > MAX_TEXT_CHARS:
            raise _Refused(f"an element text is longer than {MAX_TEXT_CHARS} characters")
        self.text.append(data)

    def _end_text(self) -> str:
        self.parser.CharacterDataHandler = None
        return "".join(self.text).strip()

    # -- dispatch ------------------------------------------------------------------------------------------
    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = self.local_names.get(name)
        if local is None:
            uri, _, local = name.rpartition(" ")
            self.local_names[name] = local
            if not self.stack:
                self._check_root(uri, local, attrs)
        parent = self.stack[-1] if self.stack else ""
        self.stack.append(local)
        if len(self.stack) > MAX_DEPTH:
            raise _Refused(f"elements nest deeper than {MAX_DEPTH} levels")
        if (parent, local) in _TEXT_OF:
            self.ref_attrs = attrs
            self._begin_text()
            return
        handler = _STARTS.get(local)
        if handler is not None:
            handler(self, parent, attrs)

    def end(self, _name: str) -> None:
        local = self.stack.pop()
        parent = self.stack[-1] if self.stack else ""
        if (parent, local) in _TEXT_OF:
            self._reference_value(local, self._end_text())
            return
        handler = _ENDS.get(local)
        if handler is not None:
            handler(self, parent)

    def _check_root(self, uri: str, local: str, attrs: dict[str, str]) -> None:
        if local != "Sanctions" or uri not in NAMESPACES:
            raise _Refused(f"its root element is {{{uri}}}{local}, not Sanctions in an OFAC advanced-XML namespace")
        if attrs.get("DeltaBaseVersion"):
            raise _Refused("it is a delta file (DeltaBaseVersion), not a full list")
        self.namespace = uri

    def _reference_value(self, local: str, text: str) -> None:
        if local in ("Year", "Month", "Day"):
            if len(self.stack) == 2:  # Sanctions/DateOfIssue/<part>
                self.date_parts[local] = text
            return
        ref_id = self.ref_attrs.get("ID", "")
        if local == "FeatureType" and text.startswith(FEATURE_PREFIX):
            self.crypto_types[ref_id] = text[len(FEATURE_PREFIX) :].strip()
        elif local == "NamePartType":
            self.name_part_types[ref_id] = text
        elif local == "SanctionsType" and text.lower() == "program":
            self.program_type_ids.add(ref_id)

    # -- parties -------------------------------------------------------------------------------------------
    def s_reference_sets(self, _parent: str, _attrs: dict[str, str]) -> None:
        self.seen_reference_values = True

    def s_parties(self, _parent: str, _attrs: dict[str, str]) -> None:
        if not self.seen_reference_values:
            raise _Refused("DistinctParties comes before ReferenceValueSets (the XSD requires the reverse)")

    def s_profile(self, parent: str, attrs: dict[str, str]) -> None:
        if parent == "DistinctParty":
            self.profile_id = attrs.get("ID")
            self.profile_name = None
            self.found = []

    def s_identity(self, parent: str, attrs: dict[str, str]) -> None:
        if parent == "Profile":
            self.identity_primary = attrs.get("Primary") == "true"
            self.name_parts = []
            self.name_groups = {}

    def s_alias(self, parent: str, attrs: dict[str, str]) -> None:
        self.alias_primary = parent == "Identity" and attrs.get("Primary") == "true"

    def s_name_part_value(self, _parent: str, attrs: dict[str, str]) -> None:
        if self.alias_primary:
            self.part_group = attrs.get("NamePartGroupID", "")
            self._begin_text()

    def s_name_part_group(self, parent: str, attrs: dict[str, str]) -> None:
        if parent == "MasterNamePartGroup":
            self.name_groups[attrs.get("ID", "")] = attrs.get("NamePartTypeID", "")

    def s_feature(self, parent: str, attrs: dict[str, str]) -> None:
        if parent == "Profile":
            self.feature_tag = self.crypto_types.get(attrs.get("FeatureTypeID", ""))

    def s_version_detail(self, parent: str, _attrs: dict[str, str]) -> None:
        if self.feature_tag is not None and parent == "FeatureVersion":
            self._begin_text()

    def e_name_part_value(self, _parent: str) -> None:
        if self.alias_primary:
            self.name_parts.append((self.part_group, self._end_text()))

    def e_alias(self, _parent: str) -> None:
        self.alias_primary = False

    def e_identity(self, parent: str) -> None:
        if parent == "Profile" and (self.identity_primary or self.profile_name is None) and self.name_parts:
            self.profile_name = self._format_name()

    def e_version_detail(self, parent: str) -> None:
        if self.feature_tag is not None and parent == "FeatureVersion":
            address = self._end_text()
            if len(address) > MAX_ADDRESS_CHARS:
                raise _Refused(f"an address is longer than {MAX_ADDRESS_CHARS} characters")
            if address:
                self.found.append((self.feature_tag, address))

    def e_feature(self, _parent: str) -> None:
        self.feature_tag = None

    def e_profile(self, parent: str) -> None:
        if parent != "DistinctParty" or not self.found:
            return
        if len(self.raw) + len(self.found) > MAX_ENTRIES:
            raise _Refused(f"it lists more than {MAX_ENTRIES} addresses")
        for tag, address in self.found:
            self.raw.append((self.profile_id, self.profile_name, tag, address))
        if self.profile_id:
            self.wanted_profiles.add(self.profile_id)
        self.found = []

    def _format_name(self) -> str:
        last: list[str] = []
        rest: list[str] = []
        for group, value in self.name_parts:
            kind = self.name_part_types.get(self.name_groups.get(group, ""), "")
            (last if kind == "Last Name" else rest).append(value)
        if last and rest:
            return f"{' '.join(last)}, {' '.join(rest)}"
        return " ".join(last or rest)

    # -- sanctions entries (programs) ----------------------------------------------------------------------
    def s_sanctions_entry(self, parent: str, attrs: dict[str, str]) -> None:
        if parent == "SanctionsEntries":
            profile = attrs.get("ProfileID")
            self.entry_profile = profile if profile in self.wanted_profiles else None

    def s_measure(self, _parent: str, attrs: dict[str, str]) -> None:
        self.measure_is_program = (
            self.entry_profile is not None and attrs.get("SanctionsTypeID", "") in self.program_type_ids
        )

    def s_comment(self, parent: str, _attrs: dict[str, str]) -> None:
        if parent == "SanctionsMeasure" and self.measure_is_program:
            self._begin_text()

    def e_comment(self, parent: str) -> None:
        if parent == "SanctionsMeasure" and self.measure_is_program and self.entry_profile is not None:
            program = self._end_text()
            if program:
                self.programs.setdefault(self.entry_profile, []).append(program)

    def e_measure(self, _parent: str) -> None:
        self.measure_is_program = False

    def e_sanctions_entry(self, _parent: str) -> None:
        self.entry_profile = None


_STARTS = {
    "ReferenceValueSets": _Reader.s_reference_sets,
    "DistinctParties": _Reader.s_parties,
    "Profile": _Reader.s_profile,
    "Identity": _Reader.s_identity,
    "Alias": _Reader.s_alias,
    "NamePartValue": _Reader.s_name_part_value,
    "NamePartGroup": _Reader.s_name_part_group,
    "Feature": _Reader.s_feature,
    "VersionDetail": _Reader.s_version_detail,
    "SanctionsEntry": _Reader.s_sanctions_entry,
    "SanctionsMeasure": _Reader.s_measure,
    "Comment": _Reader.s_comment,
}
_ENDS = {
    "NamePartValue": _Reader.e_name_part_value,
    "Alias": _Reader.e_alias,
    "Identity": _Reader.e_identity,
    "VersionDetail": _Reader.e_version_detail,
    "Feature": _Reader.e_feature,
    "Profile": _Reader.e_profile,
    "Comment": _Reader.e_comment,
    "SanctionsMeasure": _Reader.e_measure,
    "SanctionsEntry": _Reader.e_sanctions_entry,
}


def _new_parser() -> tuple[Any, _Reader]:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_external
    reader = _Reader(parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    return parser, reader


def _feed(parser: Any, stream: BinaryIO, source_name: str) -> None:
    try:
        while chunk := stream.read(CHUNK_BYTES):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _Refused as exc:
        raise ListError(f"{source_name} refused: {exc}", _REMEDY) from None
    except expat.ExpatError as exc:
        raise ListError(
            f"{source_name} is not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno}, "
            f"column {exc.offset}); it may be truncated or not UTF-8",
            _REMEDY,
        ) from None
    except (LookupError, ValueError) as exc:  # pyexpat asks Python's codecs for a declared non-UTF encoding
        raise ListError(f"{source_name} declares an encoding that cannot be read: {exc}", _REMEDY) from None


def _publication_date(parts: dict[str, str], source_name: str) -> datetime | None:
    if not parts:
        return None
    try:
        return datetime(int(parts["Year"]), int(parts["Month"]), int(parts["Day"]), tzinfo=UTC)
    except (KeyError, ValueError, OverflowError) as exc:  # OverflowError: a Year of 20 digits
        raise ListError(f"{source_name} has an invalid DateOfIssue {parts}: {exc}", _REMEDY) from None


def parse_advanced_xml(stream: BinaryIO, source_name: str = "advanced XML") -> ParsedList:
    """Every "Digital Currency Address - *" feature of the document, with entity name and programs."""
    parser, reader = _new_parser()
    _feed(parser, stream, source_name)
    if reader.namespace is None:
        raise ListError(f"{source_name} has no root element", _REMEDY)
    entries: dict[tuple[str, str, str, str | None], Entry] = {}
    for profile_id, name, tag, address in reader.raw:
        programs = tuple(reader.programs.get(profile_id or "", ()))
        entry = make_entry(address, tag, entity=name, programs=programs, profile_id=profile_id)
        entries.setdefault((entry.family, entry.canonical, entry.tag, entry.profile_id), entry)
    return ParsedList(
        entries=tuple(entries.values()),
        source_format="advanced_xml",
        published_at=_publication_date(reader.date_parts, source_name),
        meta={"namespace": reader.namespace, "feature_types": dict(sorted(reader.crypto_types.items()))},
    )
