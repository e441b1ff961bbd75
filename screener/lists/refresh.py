"""The refresh of the sanctions list: fetch, parse, guard, activate (:func:`refresh` is the front door).

Fetching and parsing happen outside any transaction; only the final decision takes the active version's
lock (``lists_store.lock_active_version(exclusive=True)``: on PostgreSQL an EXCLUSIVE table lock, which waits
for the screening transactions holding the version FOR SHARE, then FOR UPDATE; BEGIN IMMEDIATE on SQLite),
re-reads it, and either marks it verified (same sha256) or vets and activates the candidate, so two workers
refreshing at once activate one version and the re-screen hook sees every deposit screened against the old one.
The guards (sanctions_lists.guards) run there, against the active version: a candidate dated in the future, or
before the active version, or undated while the active version is dated (unless the operator passes
``accept_undated``), or removing too much of a screened family or of the total, is rejected. An undated list
accepted that way is audited (``list.accepted_undated``) under the OS account running the refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from sanctions_lists.candidate import build_candidate, vet_candidate
from sanctions_lists.fetch import fetch
from sanctions_lists.guards import check_publication
from sanctions_lists.snapshot import Diff, Provenance, Snapshot, diff
from screener.db import session_scope
from screener.ledger import audit
from screener.lists.rules import RefreshStatus
from screener.lists.store import (
    active_version,
    ensure_active,
    insert_version,
    load_snapshot,
    lock_active_version,
    newest_publication,
)
from screener.models.lists import ListRefresh, ListVersion
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ListError, ScreenerError
from screener_base.identity import os_account

# The hook's return value (e.g. re-screen counts) is the caller's to log; the refresh ignores it.
OnActivated = Callable[[Session, int | None, int, Diff], object]
ACTIVATION_ATTEMPTS = 3
BUNDLE_FORMAT = "bundle"
AUDIT_ACCEPTED_UNDATED = "list.accepted_undated"


@dataclass(frozen=True)
class RefreshResult:
    status: str  # updated | unchanged | rejected
    version_id: int | None  # the version in force after the attempt
    reason: str = ""
    added: int = 0  # entries (address under a tag) added vs the previous version
    removed: int = 0
    sha256: str | None = None
    entry_count: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in (RefreshStatus.UPDATED, RefreshStatus.UNCHANGED)

    def summary_line(self) -> str:
        sha = (self.sha256 or "")[:12]
        if self.status == RefreshStatus.UPDATED:
            return (
                f"updated: list version {self.version_id} active ({self.entry_count} entries, sha256 {sha}; "
                f"+{self.added} -{self.removed} entries)"
            )
        if self.status == RefreshStatus.UNCHANGED:
            return f"unchanged: list version {self.version_id} verified (sha256 {sha})"
        return f"rejected: {self.reason}; list version {self.version_id} stays active"


def _record(
    session: Session,
    source: str,
    status: str,
    reason: str,
    now: datetime,
    *,
    sha256: str | None,
    size_bytes: int | None,
    entry_count: int | None,
    version_id: int | None,
) -> None:
    session.add(
        ListRefresh(
            attempted_at=now,
            source=source[:1024],
            status=status,
            reason=reason,
            sha256=sha256,
            size_bytes=size_bytes,
            entry_count=entry_count,
            version_id=version_id,
        )
    )


def _mark_unchanged(
    session: Session, active: ListVersion, source: str, now: datetime, size: int | None
) -> RefreshResult:
    # Re-reading the bundled snapshot proves nothing about OFAC today: it stays as old as its publication.
    if active.source_format != BUNDLE_FORMAT and ensure_utc(active.last_verified_at) < now:
        active.last_verified_at = now
        session.add(active)
        # Freshness decides whether deposits are screened or held: the new row is sealed in the chain.
        payload = {"version_id": active.id, "last_verified_at": now, "sha256": active.sha256}
        audit.append(
            session,
            "list.verified",
            f"list_version:{active.id}",
            payload,
            "system",
            now,
            rows=[("list_versions", active.id)],
        )
    _record(
        session,
        source,
        RefreshStatus.UNCHANGED,
        "same sha256 as the active version",
        now,
        sha256=active.sha256,
        size_bytes=size,
        entry_count=active.entry_count,
        version_id=active.id,
    )
    return RefreshResult(RefreshStatus.UNCHANGED, active.id, "", sha256=active.sha256, entry_count=active.entry_count)


def _audit_accepted_undated(
    session: Session, new_id: int, replaced: ListVersion, prov: Provenance, now: datetime
) -> None:
    """The operator let an undated list replace ``replaced``: who, what and what it replaced, in the chain."""
    payload = {
        "version_id": new_id,
        "source": prov.source,
        "sha256": prov.sha256,
        "replaced_version_id": replaced.id,
        "replaced_published_at": ensure_utc(replaced.published_at).isoformat() if replaced.published_at else None,
    }
    # The activation holds the list_versions lock; the audit head comes after it (the documented order).
    audit.append(session, AUDIT_ACCEPTED_UNDATED, f"list_version:{new_id}", payload, os_account(), now)


def _activate(
    session: Session,
    active: ListVersion,
    candidate: Snapshot,
    change: Diff,
    now: datetime,
    on_activated: OnActivated | None,
    *,
    accept_undated: bool,
) -> RefreshResult:
    prov = candidate.provenance
    assert prov is not None
    verified_at = (prov.published_at or now) if prov.source_format == BUNDLE_FORMAT else now
    new_id = insert_version(session, active.seq + 1, candidate, now, verified_at)
    if accept_undated and prov.published_at is None:
        _audit_accepted_undated(session, new_id, active, prov, now)
    if on_activated is not None:
        try:
            on_activated(session, active.id, new_id, change)
        except ScreenerError as exc:
            raise ListError(
                f"the activation hook failed, so the new list was not activated: {exc}",
                "fix the cause and run the refresh again",
            ) from exc
    _record(
        session,
        prov.source,
        RefreshStatus.UPDATED,
        change.summary(),
        now,
        sha256=prov.sha256,
        size_bytes=prov.size_bytes,
        entry_count=len(candidate),
        version_id=new_id,
    )
    return RefreshResult(
        RefreshStatus.UPDATED, new_id, "", len(change.added), len(change.removed), prov.sha256, len(candidate)
    )


def _vet(
    session: Session, active: ListVersion, candidate: Snapshot, settings: Settings, now: datetime, accept_undated: bool
) -> Diff:
    """Every guard, against the active version (under its lock); the candidate's diff from it."""
    prov = candidate.provenance
    assert prov is not None
    # Against the newest dated version, not only the active one: an accepted undated list must not open the
    # door to any old dated copy after it.
    dated = active if active.published_at is not None else newest_publication(session)
    check_publication(
        prov.published_at,
        dated.published_at if dated else None,
        active_version_id=dated.id if dated else active.id,
        now=now,
        accept_undated=accept_undated,
        source=prov.source,
    )
    current = load_snapshot(session, active)
    change = diff(current, candidate)
    vet_candidate(candidate, current, change, settings.lists.max_drop_fraction, settings.lists.drop_floor_entries)
    return change


def _settle(
    engine: Engine,
    settings: Settings,
    sha: str,
    size: int,
    candidate: Snapshot | None,
    source: str,
    now: datetime,
    on_activated: OnActivated | None,
    accept_undated: bool,
) -> RefreshResult:
    """Under the active version's lock: mark it verified, or vet and activate the candidate."""
    for _ in range(ACTIVATION_ATTEMPTS):
        try:
            with session_scope(engine) as session:
                active = lock_active_version(session, exclusive=True)
                if active is None:
                    raise ListError("the active list version disappeared during the refresh", "run it again")
                if active.sha256 == sha:
                    return _mark_unchanged(session, active, source, now, size)
                if candidate is None:
                    raise ListError("another list version was activated during the download", "run it again")
                change = _vet(session, active, candidate, settings, now, accept_undated)
                return _activate(session, active, candidate, change, now, on_activated, accept_undated=accept_undated)
        except sa.exc.IntegrityError:
            continue  # another worker took the next seq at the same moment: re-read and decide again
    raise ListError("other workers kept activating list versions at the same time", "run the refresh again")


def _reject(
    engine: Engine, source: str, reason: str, now: datetime, sha: str | None, size: int | None
) -> RefreshResult:
    with session_scope(engine) as session:
        active = active_version(session)
        active_id = active.id if active else None
        _record(
            session,
            source,
            RefreshStatus.REJECTED,
            reason,
            now,
            sha256=sha,
            size_bytes=size,
            entry_count=None,
            version_id=active_id,
        )
    return RefreshResult(RefreshStatus.REJECTED, active_id, reason, sha256=sha)


def refresh(
    engine: Engine,
    settings: Settings,
    source: str | None,
    now: datetime,
    on_activated: OnActivated | None = None,
    *,
    accept_undated: bool = False,
) -> RefreshResult:
    """Fetch ``source`` (default lists.source_url) and activate it if it passes the guards.

    ``on_activated(session, old_version_id, new_version_id, diff)`` runs in the activating transaction; if
    it raises a ScreenerError nothing is activated. Fetch, parse and guard failures return "rejected" (and
    are recorded in list_refreshes) rather than raise; database failures raise. ``accept_undated`` lets a
    list without a publication date replace a dated one: only an operator's explicit ``screener lists refresh
    --accept-undated`` passes it (the daemon never does), and the activation is audited under the OS account.
    """
    cfg = settings.lists
    src = source or cfg.source_url
    now = ensure_utc(now)
    with session_scope(engine) as session:
        active_sha = ensure_active(session, now).sha256
    sha: str | None = None
    size: int | None = None
    try:
        with fetch(
            src,
            timeout_s=cfg.download_timeout_s,
            max_bytes=cfg.max_download_bytes,
            max_attempts=cfg.max_attempts,
            retry_wait_s=cfg.retry_wait_s,
        ) as fetched:
            sha, size = fetched.sha256, fetched.size_bytes
            candidate = None if sha == active_sha else build_candidate(fetched, now)
        return _settle(engine, settings, sha, size, candidate, src, now, on_activated, accept_undated)
    except ListError as exc:
        return _reject(engine, src, str(exc), now, sha, size)
