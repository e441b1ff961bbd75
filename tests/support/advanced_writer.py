"""Write an SDN advanced XML document (structure per the XSD and OFAC's real files) from parties.

Used by the tests (per-asset lists rendered as the XML OFAC would publish, in either namespace) and by
bench/bench_ofac_parse.py (a full-size file). Not used in production: OFAC writes the real file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from sanctions_lists.entries import FEATURE_PREFIX
from sanctions_lists.ofac import NS_UN_1_0

# Real ids where known (345 = ETH, 344 = XBT in sdn_advanced.xml); others are assigned from 1000 up.
KNOWN_FEATURE_IDS = {"XBT": 344, "ETH": 345}
OTHER_FEATURE_TYPES = {8: "Birthdate", 14: "Website", 21: "Email Address", 25: "Location"}
LAST_NAME, FIRST_NAME, ENTITY_NAME = 1520, 1521, 1525
PROGRAM_TYPE = 1


@dataclass(frozen=True)
class Party:
    profile_id: int
    addresses: tuple[tuple[str, str], ...]  # (tag, address)
    programs: tuple[str, ...] = ()
    entity_name: str | None = None  # an entity
    last_name: str | None = None  # or an individual
    first_name: str | None = None


def feature_type_ids(tags: Iterable[str]) -> dict[str, int]:
    ids = dict(KNOWN_FEATURE_IDS)
    next_id = 1000
    for tag in sorted(set(tags)):
        if tag not in ids:
            ids[tag] = next_id
            next_id += 1
    return ids


def header(namespace: str, published: date, tag_ids: dict[str, int]) -> str:
    feature_types = [
        f'<FeatureType ID="{i}" FeatureTypeGroupID="1">{t}</FeatureType>' for i, t in OTHER_FEATURE_TYPES.items()
    ]
    feature_types += [
        f'<FeatureType ID="{i}" FeatureTypeGroupID="1">{escape(FEATURE_PREFIX + t)}</FeatureType>'
        for t, i in sorted(tag_ids.items(), key=lambda kv: kv[1])
    ]
    return (
        '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n'
        f'<Sanctions xmlns="{namespace}" Version="3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        f'  <DateOfIssue CalendarTypeID="1"><Year>{published.year}</Year><Month>{published.month}</Month>'
        f"<Day>{published.day}</Day></DateOfIssue>\n"
        "  <ReferenceValueSets>\n"
        '    <AliasTypeValues><AliasType ID="1400">A.K.A.</AliasType><AliasType ID="1403">Name</AliasType>'
        "</AliasTypeValues>\n"
        f"    <FeatureTypeValues>{''.join(feature_types)}</FeatureTypeValues>\n"
        f'    <NamePartTypeValues><NamePartType ID="{LAST_NAME}">Last Name</NamePartType>'
        f'<NamePartType ID="{FIRST_NAME}">First Name</NamePartType>'
        f'<NamePartType ID="{ENTITY_NAME}">Entity Name</NamePartType></NamePartTypeValues>\n'
        '    <SanctionsTypeValues><SanctionsType ID="1705">Block</SanctionsType>'
        f'<SanctionsType ID="{PROGRAM_TYPE}">Program</SanctionsType></SanctionsTypeValues>\n'
        "  </ReferenceValueSets>\n"
        "  <Locations />\n  <IDRegDocuments />\n  <DistinctParties>\n"
    )


def _name_parts(party: Party) -> list[tuple[int, str]]:
    if party.entity_name:
        return [(ENTITY_NAME, party.entity_name)]
    parts = [(LAST_NAME, party.last_name or f"PARTY {party.profile_id}")]
    if party.first_name:
        parts.append((FIRST_NAME, party.first_name))
    return parts


def party_xml(party: Party, tag_ids: dict[str, int]) -> str:
    pid = party.profile_id
    parts = _name_parts(party)
    name_xml = "".join(
        f'<DocumentedNamePart><NamePartValue NamePartGroupID="{pid * 10 + n}" ScriptID="215" '
        f'ScriptStatusID="1" Acronym="false">{escape(value)}</NamePartValue></DocumentedNamePart>'
        for n, (_, value) in enumerate(parts)
    )
    groups_xml = "".join(
        f'<MasterNamePartGroup><NamePartGroup ID="{pid * 10 + n}" NamePartTypeID="{kind}" /></MasterNamePartGroup>'
        for n, (kind, _) in enumerate(parts)
    )
    features = [
        f'<Feature ID="{pid * 100}" FeatureTypeID="14"><FeatureVersion ID="{pid * 100}" ReliabilityID="1">'
        f'<Comment /><VersionDetail DetailTypeID="1432">www.example-{pid}.test</VersionDetail></FeatureVersion>'
        f'<IdentityReference IdentityID="{pid}" IdentityFeatureLinkTypeID="1" /></Feature>'
    ]
    for n, (tag, address) in enumerate(party.addresses, start=1):
        features.append(
            f'<Feature ID="{pid * 100 + n}" FeatureTypeID="{tag_ids[tag]}">'
            f'<FeatureVersion ID="{pid * 100 + n}" ReliabilityID="1560"><Comment />'
            f'<VersionDetail DetailTypeID="1432">{escape(address)}</VersionDetail></FeatureVersion>'
            f'<IdentityReference IdentityID="{pid}" IdentityFeatureLinkTypeID="1" /></Feature>'
        )
    return (
        f'    <DistinctParty FixedRef="{pid}"><Comment />'
        f'<Profile ID="{pid}" PartySubTypeID="{3 if party.entity_name else 4}">'
        f'<Identity ID="{pid}" FixedRef="{pid}" Primary="true" False="false">'
        f'<Alias FixedRef="{pid}" AliasTypeID="1403" Primary="true" LowQuality="false">'
        f'<DocumentedName ID="{pid}" FixedRef="{pid}" DocNameStatusID="1">{name_xml}</DocumentedName></Alias>'
        f"<NamePartGroups>{groups_xml}</NamePartGroups></Identity>{''.join(features)}</Profile></DistinctParty>\n"
    )


def middle() -> str:
    return "  </DistinctParties>\n  <ProfileRelationships />\n  <SanctionsEntries>\n"


def sanctions_entry_xml(party: Party) -> str:
    pid = party.profile_id
    measures = "".join(
        f'<SanctionsMeasure ID="{pid * 10 + n}" SanctionsTypeID="{PROGRAM_TYPE}"><Comment>{escape(p)}</Comment>'
        '<DatePeriod CalendarTypeID="1" YearFixed="true" MonthFixed="true" DayFixed="true" /></SanctionsMeasure>'
        for n, p in enumerate(party.programs)
    )
    return (
        f'    <SanctionsEntry ID="{pid}" ProfileID="{pid}" ListID="1550">'
        f'<EntryEvent ID="{pid}" EntryEventTypeID="1" LegalBasisID="1"><Comment />'
        '<Date CalendarTypeID="1"><Year>2022</Year><Month>1</Month><Day>1</Day></Date></EntryEvent>'
        f'<SanctionsMeasure ID="{pid * 10 + 9}" SanctionsTypeID="1705"><Comment />'
        f'<DatePeriod CalendarTypeID="1" YearFixed="true" MonthFixed="true" DayFixed="true" /></SanctionsMeasure>'
        f"{measures}</SanctionsEntry>\n"
    )


def footer() -> str:
    return "  </SanctionsEntries>\n  <SanctionsEntryLinks />\n</Sanctions>\n"


def write_advanced_xml(out: IO[str], parties: list[Party], *, published: date, namespace: str = NS_UN_1_0) -> None:
    tag_ids = feature_type_ids(tag for party in parties for tag, _ in party.addresses)
    out.write(header(namespace, published, tag_ids))
    for party in parties:
        out.write(party_xml(party, tag_ids))
    out.write(middle())
    for party in parties:
        out.write(sanctions_entry_xml(party))
    out.write(footer())


def load_per_asset_lists(directory: Path) -> list[tuple[str, str]]:
    """(tag, address) pairs of a directory of ``sanctioned_addresses_<TAG>.txt`` files, in file order."""
    pairs: list[tuple[str, str]] = []
    for path in sorted(directory.glob("sanctioned_addresses_*.txt")):
        tag = path.stem.removeprefix("sanctioned_addresses_")
        pairs.extend((tag, line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return pairs


def parties_from_pairs(pairs: list[tuple[str, str]], per_party: int = 7, first_id: int = 10_000) -> list[Party]:
    """Group addresses into parties the way OFAC does (several addresses, often several tags, per party)."""
    parties = []
    for n, start in enumerate(range(0, len(pairs), per_party)):
        chunk = tuple(pairs[start : start + per_party])
        programs = ("CYBER2",) if n % 3 else ("DPRK3", "CYBER2")
        if n % 2:
            parties.append(Party(first_id + n, chunk, programs, entity_name=f"EXAMPLE ENTITY {n} LTD"))
        else:
            parties.append(Party(first_id + n, chunk, programs, last_name=f"DOE{n}", first_name="Jane Q"))
    return parties


def render(pairs: list[tuple[str, str]], *, published: date, namespace: str = NS_UN_1_0) -> bytes:
    buf = io.StringIO()
    write_advanced_xml(buf, parties_from_pairs(pairs), published=published, namespace=namespace)
    return buf.getvalue().encode("utf-8")
