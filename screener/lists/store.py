"""Sanctions list versions in the database: the active version, staleness, snapshots and diffs.

Every worker screens against the version with the highest ``seq``; verdicts record its id. A refresh
(screener.lists.refresh) activates a new version only after the download parsed and passed the guards
(sanctions_lists.guards: not empty, not HTML, a sound publication date, no drop beyond lists.max_drop_fraction
per screened family or in total); anything else keeps the active version and is recorded with its reason in
list_refreshes. Staleness fails closed: past lists.max_list_age_h since the active version was last verified,
screening_snapshot raises ScreeningUnavailable and callers hold deposits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sanctions_lists.bundle import bundled_path
from sanctions_lists.entries import Entry
from sanctions_lists.fetch import sha256_file
from sanctions_lists.formats import parse_file
from sanctions_lists.snapshot import Diff, Provenance, Snapshot, diff
from screener.ledger import audit, seals
from screener.lists import rules
from screener.models.lists import ListEntry, ListRefresh, ListVersion
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ListError, ScreeningUnavailable

SNAPSHOT_CACHE_SIZE = 4
ACTIVE_LOCK_ATTEMPTS = 5  # versions activated while a screening read waits for its share lock
_cache: OrderedDict[tuple[str, int, str], Snapshot] = OrderedDict()
_cache_lock = threading.Lock()


# -- reading ---------------------------------------------------------------------------------------------------


def active_version(session: Session, *, for_update: bool = False) -> ListVersion | None:
    stmt = select(ListVersion).order_by(col(ListVersion.seq).desc()).limit(1)
    if for_update:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def lock_active_version(session: Session, *, exclusive: bool = False) -> ListVersion | None:
    """The active version, its row locked until the transaction ends; None when there is none.

    PostgreSQL: a screening read takes FOR SHARE; an activation (``exclusive``) first takes LOCK TABLE
    list_versions IN EXCLUSIVE MODE, which waits for every transaction holding such a share lock and makes
    new ones queue behind it (a row lock alone lets a stream of share lockers starve it), then FOR UPDATE.
    So an activation, and the re-screen hook in its transaction, run only after the in-flight screening
    transactions committed their deposits, and those never decide against a version that is being replaced.
    A share lock that had to wait may hold a version that is no longer the highest: read again, a bounded
    number of times. SQLite: BEGIN IMMEDIATE already serialises the transactions that read here.
    """
    if exclusive and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("LOCK TABLE list_versions IN EXCLUSIVE MODE"))
    locking = (
        select(ListVersion)
        .order_by(col(ListVersion.seq).desc())
        .limit(1)
        .with_for_update(read=not exclusive)
        .execution_options(populate_existing=True)
    )
    highest_id = select(ListVersion.id).order_by(col(ListVersion.seq).desc()).limit(1)
    for _ in range(ACTIVE_LOCK_ATTEMPTS):
        version = session.exec(locking).first()
        if version is None:
            return None
        if session.exec(highest_id).first() == version.id:  # still the highest once the lock was granted
            return version
    raise ListError(
        f"the active list version changed {ACTIVE_LOCK_ATTEMPTS} times while it was being locked",
        "try again; if it persists, check for a runaway `screener lists refresh` loop",
    )


def get_version(session: Session, version_id: int) -> ListVersion:
    # ids are INTEGER (int4 on PostgreSQL): a larger number is no version, not an "integer out of range" error
    version = session.get(ListVersion, version_id) if 0 < version_id < 2**31 else None
    if version is None:
        raise ListError(f"list version {version_id} does not exist", "see `screener lists status` for versions")
    return version


def newest_publication(session: Session) -> ListVersion | None:
    """The version with the latest publication date ever activated (None when no version is dated).

    The refresh compares a candidate with it, not only with the active version: once an undated list was
    accepted (``--accept-undated``), the active version has no date, and an old mirror must still be refused.
    """
    stmt = (
        select(ListVersion)
        .where(col(ListVersion.published_at).is_not(None))
        .order_by(col(ListVersion.published_at).desc(), col(ListVersion.seq).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def previous_version(session: Session, version: ListVersion) -> ListVersion | None:
    stmt = select(ListVersion).where(ListVersion.seq < version.seq).order_by(col(ListVersion.seq).desc()).limit(1)
    return session.exec(stmt).first()


def list_age(version: ListVersion, now: datetime) -> timedelta:
    return rules.list_age(version.last_verified_at, now)


def is_stale(version: ListVersion, settings: Settings, now: datetime) -> bool:
    return rules.is_stale(version.last_verified_at, settings.lists.max_list_age_h, now)


def _provenance(version: ListVersion) -> Provenance:
    return Provenance(
        source=version.source,
        source_format=version.source_format,
        sha256=version.sha256,
        size_bytes=version.size_bytes,
        fetched_at=ensure_utc(version.fetched_at),
        published_at=ensure_utc(version.published_at) if version.published_at else None,
        meta=dict(version.meta or {}),
    )


def load_snapshot(session: Session, version: ListVersion) -> Snapshot:
    """The version's snapshot; parsed once per process and version (versions never change)."""
    assert version.id is not None
    key = (str(session.get_bind().engine.url), version.id, version.sha256)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    t = ListEntry.__table__.c  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(t.address, t.tag, t.family, t.canonical, t.entity, t.programs, t.profile_id, t.note).where(
            t.version_id == version.id
        )
    )
    entries = [
        Entry(
            address=r[0],
            tag=r[1],
            family=r[2],
            canonical=r[3],
            entity=r[4],
            programs=tuple(r[5] or ()),
            profile_id=r[6],
            note=r[7],
        )
        for r in rows
    ]
    snapshot = Snapshot(entries, _provenance(version))
    with _cache_lock:
        _cache[key] = snapshot
        while len(_cache) > SNAPSHOT_CACHE_SIZE:
            _cache.popitem(last=False)
    return snapshot


def screening_snapshot(session: Session, settings: Settings, now: datetime) -> tuple[int, Snapshot]:
    """(version id, snapshot) to screen against; ScreeningUnavailable when there is none or it is stale.

    Call it in the transaction that records the verdicts, before its first audit append (lock order): the
    version stays locked (``lock_active_version``) until that transaction ends, so a concurrent activation
    waits for it and its re-screen hook sees the deposits decided here.
    """
    try:
        version = lock_active_version(session)
    except ListError as exc:
        raise ScreeningUnavailable(exc.cause, "deposits are held until the list can be read") from exc
    if version is None or version.id is None:
        raise ScreeningUnavailable(
            "no sanctions list version is active",
            "run `screener lists refresh` (the bundled snapshot is imported first); deposits are held until then",
        )
    if is_stale(version, settings, now):
        age_h = list_age(version, now).total_seconds() / 3600
        raise ScreeningUnavailable(
            f"sanctions list version {version.id} was last verified {age_h:.1f} h ago, more than "
            f"lists.max_list_age_h={settings.lists.max_list_age_h:g}",
            "run `screener lists refresh`; deposits are held until a fresh list is verified",
        )
    return version.id, load_snapshot(session, version)


def diff_versions(session: Session, v1: int, v2: int) -> Diff:
    """Entries added and removed going from version ``v1`` to version ``v2``."""
    old = load_snapshot(session, get_version(session, v1))
    new = load_snapshot(session, get_version(session, v2))
    return diff(old, new)


def recent_refreshes(session: Session, limit: int = 5) -> list[ListRefresh]:
    stmt = select(ListRefresh).order_by(col(ListRefresh.id).desc()).limit(limit)
    return list(session.exec(stmt).all())


# -- writing ---------------------------------------------------------------------------------------------------


def insert_version(session: Session, seq: int, snapshot: Snapshot, now: datetime, verified_at: datetime) -> int:
    prov = snapshot.provenance
    assert prov is not None
    version = ListVersion(
        seq=seq,
        source=prov.source[:1024],
        source_format=prov.source_format,
        sha256=prov.sha256,
        size_bytes=prov.size_bytes,
        fetched_at=prov.fetched_at,
        published_at=prov.published_at,
        activated_at=now,
        last_verified_at=verified_at,
        entry_count=len(snapshot),
        counts=snapshot.counts(),
        meta=dict(prov.meta),
    )
    session.add(version)
    session.flush()
    assert version.id is not None
    _check_field_lengths(snapshot)
    rows: list[dict[str, Any]] = [{"version_id": version.id, **e.to_json()} for e in snapshot.entries]
    for row in rows:
        row["programs"] = list(row["programs"])
    if rows:
        session.execute(sa.insert(ListEntry.__table__), rows)  # type: ignore[attr-defined]
    _audit_activated(session, version, now)
    return version.id


def _audit_activated(session: Session, version: ListVersion, now: datetime) -> None:
    """The chain commits to the version row and to its entries as stored (screener.ledger.seals): a LAZARUS
    entry deleted in SQL later makes `audit verify` fail instead of `lists check` saying "no match"."""
    assert version.id is not None
    digest, count = seals.entries_digest(session, version.id)
    payload = {"version_id": version.id, "seq": version.seq, "sha256": version.sha256, "source": version.source}
    payload |= {"entries_digest": digest, "entry_count": count}
    audit.append(
        session,
        "list.activated",
        f"list_version:{version.id}",
        payload,
        "system",
        now,
        rows=[("list_versions", version.id)],
    )


# Bounded columns of list_entries (entity and note are TEXT).
_FIELD_LIMITS = {"address": 256, "canonical": 256, "tag": 32, "profile_id": 32}


def _check_field_lengths(snapshot: Snapshot) -> None:
    """ListError (the list is refused, as the list's own fault) instead of a database error mid-activation."""
    for entry in snapshot.entries:
        for name, limit in _FIELD_LIMITS.items():
            value = getattr(entry, name) or ""
            if len(value) > limit:
                raise ListError(
                    f"an entry's {name} is {len(value)} characters long (at most {limit}): {value[:60]!r}...",
                    "the list is malformed; the active list stays in force; check the source",
                )


def ensure_active(session: Session, now: datetime) -> ListVersion:
    """The active version; imports the bundled snapshot as the first version when there is none."""
    version = active_version(session)
    if version is not None:
        return version
    path = bundled_path()
    parsed = parse_file(path, f"bundled snapshot {path.name}")
    published = parsed.published_at or ensure_utc(now)
    provenance = Provenance(
        source=f"bundled:{path.name}",
        source_format=parsed.source_format,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        fetched_at=published,
        published_at=parsed.published_at,
        meta=parsed.meta,
    )
    try:
        with session.begin_nested():
            # The bundle is as fresh as its publication date, not as the moment it was imported.
            insert_version(session, 1, Snapshot(parsed.entries, provenance), ensure_utc(now), published)
    except sa.exc.IntegrityError:
        pass  # another worker imported it first; use theirs
    version = active_version(session)
    if version is None:
        raise ListError("the bundled snapshot could not be imported", "check the database")
    return version
