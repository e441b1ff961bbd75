"""Retroactive screening: when the sanctions list or the mixer/blacklist indexes learn something new,
deposits already decided are looked at again. Money never moves here:

- a credited (or released/returned) deposit gets a review flag;
- an open hold gets escalated to BLOCK (new OFAC match), takes new heuristic evidence (which voids a pending
  release request), or is annotated when its OFAC match was removed from the list. A removal never releases
  a hold. (Every open hold is also screened again after the activation commits: screener.decide.holds.)

Findings are built by the same pure policy (screener.screening.policy) that decides new deposits, so a retroactive
flag carries the same evidence a fresh decision would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, or_, select

from sanctions_lists.entries import Entry
from sanctions_lists.snapshot import Diff
from screener.decide.gather import ListState, Scope, gather
from screener.indexes.rules import IndexKind
from screener.indexes.store import NewFactsHook, deposits_touching
from screener.models.deposits import Deposit
from screener.models.ledger import Hold
from screener.review import service as review
from screener.review.rules import DepositStatus, HoldState, merge_findings
from screener.screening.policy import (
    RULE_ISSUER_BLACKLIST,
    RULE_ISSUER_PROPOSED,
    RULE_MIXER_RECIPIENT,
    RULE_OFAC,
    DepositFacts,
    screen,
)
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.addresses import SCREENED_FAMILIES
from screener_base.clock import ensure_utc, utc_now
from screener_base.errors import ScreenerError

log = logging.getLogger(__name__)

DECIDED = (DepositStatus.CREDITED, DepositStatus.RELEASED, DepositStatus.REJECTED, DepositStatus.HELD)
_CHUNK = 500  # addresses per IN (...) query


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


def on_list_activated(
    session: Session, new_version_id: int, diff: Diff, settings: Settings, now: datetime
) -> dict[str, int]:
    """In the activation's transaction: flag or escalate deposits from newly listed addresses, annotate holds
    whose match was removed; returns counts for the caller's log."""
    now = ensure_utc(now)
    counts = _rescreen_added(session, new_version_id, diff, settings, now)
    counts["annotated"] = _annotate_removed(session, new_version_id, diff, now)
    return counts


def make_list_hook(
    settings: Settings, now_fn: Callable[[], datetime] = utc_now
) -> Callable[[Session, int | None, int, Diff], dict[str, int]]:
    """The ``on_activated`` hook of screener.lists.refresh.refresh, bound to the caller's settings."""

    def hook(session: Session, old_version_id: int | None, new_version_id: int, diff: Diff) -> dict[str, int]:
        del old_version_id  # the diff says what changed
        return on_list_activated(session, new_version_id, diff, settings, now_fn())

    return hook


def make_index_hook(settings: Settings) -> NewFactsHook:
    """The ``on_new_facts`` hook of the index scans (screener.indexes.store), bound to the caller's settings."""

    def hook(session: Session, kind: str, rows: Sequence[Any], now: datetime) -> int:
        return apply_index_facts(session, kind, rows, settings, now)

    return hook


def _rescreen_added(session: Session, version_id: int, diff: Diff, settings: Settings, now: datetime) -> dict[str, int]:
    """Deposits in the lookback window from newly listed addresses: flag if credited, BLOCK if held."""
    added: dict[str, list[Entry]] = {}
    for entry in diff.added:
        if entry.family in SCREENED_FAMILIES:
            added.setdefault(entry.canonical, []).append(entry)
    since = now - timedelta(days=settings.lists.rescreen_lookback_days)
    newly_listed = ListState.only(version_id, [e for entries in added.values() for e in entries])
    counts = {"flagged": 0, "escalated": 0, "voided": 0, "failed": 0}
    for chunk in _chunks(sorted(added)):
        for deposit in deposits_touching(session, chunk, DECIDED):
            if DepositFacts.of(deposit).block_time < since:
                continue
            try:
                # One deposit that cannot be handled (a malformed row) must not refuse the whole list.
                with session.begin_nested():
                    done = _block_newly_listed(session, deposit, newly_listed, settings, now)
            except ScreenerError as exc:
                counts["failed"] += 1
                log.error("deposit %s from a newly listed address could not be re-screened: %s", deposit.id, exc)
                continue
            if done is not None:
                counts[done] += 1
    return counts


def _block_newly_listed(
    session: Session, deposit: Deposit, newly_listed: ListState, settings: Settings, now: datetime
) -> str | None:
    """Escalate the hold or flag the credit of a deposit from a newly listed address; what was done, if anything."""
    inp = gather(session, deposit, newly_listed, settings, None, Scope.LISTS)
    verdict = screen(inp, settings.screening, now)
    ofac = tuple(f for f in verdict.findings if f.rule_id == RULE_OFAC)
    if not ofac:
        return None
    if deposit.verdict == Decision.BLOCK.value:
        return _relisted(session, deposit, newly_listed.version_id, now)
    was = deposit.status
    # apply_verdict routes a stricter verdict on a decided deposit: escalate the hold, or flag the credit.
    review.apply_verdict(session, deposit, Verdict(Decision.BLOCK, ofac, newly_listed.version_id, now), settings, now)
    return "escalated" if was == DepositStatus.HELD else "flagged"


def _relisted(session: Session, deposit: Deposit, version_id: int | None, now: datetime) -> str | None:
    """A BLOCK hold whose party a list adds again (it was delisted in between): a release requested while it
    was off the list was asked against other evidence, so it is voided."""
    hold = review.hold_for_deposit(session, deposit.id or 0) if deposit.status == DepositStatus.HELD else None
    if hold is None or hold.state != HoldState.AWAITING_APPROVAL:
        return None  # blocked already (open, or rejected to the blocked account): nothing to add
    why = f"a party is listed again in list version {version_id}; the release was requested while it was not"
    return "voided" if review.void_release_request(session, hold.id or 0, why, now) else None


def _open_holds_from(session: Session, addresses: list[str]) -> list[tuple[Hold, Deposit]]:
    stmt = (
        select(Hold, Deposit)
        .join(Deposit, col(Deposit.id) == col(Hold.deposit_id))
        .where(col(Hold.state).in_(HoldState.UNRESOLVED))
        .where(or_(col(Deposit.from_address).in_(addresses), col(Deposit.initiator).in_(addresses)))
        .order_by(col(Hold.id))
    )
    return [(h, d) for h, d in session.exec(stmt)]


def _annotate_removed(session: Session, version_id: int, diff: Diff, now: datetime) -> int:
    """Open holds whose OFAC match is no longer listed get a note saying so; they stay held.

    Each hold in its own savepoint: one malformed row is logged and skipped, never a reason to refuse the list.
    """
    removed = sorted({canon for family, canon in diff.removed_addresses if family in SCREENED_FAMILIES})
    count = 0
    for chunk in _chunks(removed):
        gone = set(chunk)
        for hold, deposit in _open_holds_from(session, chunk):
            try:
                with session.begin_nested():
                    count += _annotate_one(session, hold, deposit, gone, version_id, now)
            except ScreenerError as exc:
                log.error("hold %s could not be annotated after a delisting: %s", hold.id, exc)
    return count


def _annotate_one(
    session: Session, hold: Hold, deposit: Deposit, gone: set[str], version_id: int, now: datetime
) -> int:
    findings = review.recorded_findings(deposit)
    ofac = [f for f in findings if f.rule_id == RULE_OFAC]
    cleared = sorted({f.matched_address or "" for f in ofac if f.matched_address in gone})
    if not cleared:
        return 0
    still = sorted({f.matched_address or "" for f in ofac} - set(cleared))
    others = sorted({f.rule_id for f in findings if f.rule_id != RULE_OFAC and f.severity != Severity.INFO})
    text = (
        f"OFAC match {', '.join(cleared)} is not on list version {version_id} any more; "
        + (f"still listed: {', '.join(still)}; " if still else "no OFAC match remains; ")
        + (f"other findings remain: {', '.join(others)}; " if others else "")
        + "the hold is not released automatically: a person decides"
    )
    review.annotate_hold(session, hold.id or 0, text, review.SYSTEM_ACTOR, now)
    return 1


def apply_index_facts(session: Session, kind: str, rows: Sequence[Any], settings: Settings, now: datetime) -> int:
    """New mixer withdrawals or issuer facts (freezes, destroyed funds, proposals): re-screen decided deposits."""
    if kind == IndexKind.MIXER:
        rules, scope, addresses = {RULE_MIXER_RECIPIENT}, Scope.MIXER, sorted({r.recipient for r in rows})
    else:
        # A freeze, a destroyed frozen balance, or the multisig asked to freeze: each holds the address's deposits.
        added = sorted({r.address for r in rows if r.action in ("added", "destroyed", "proposed")})
        rules, scope, addresses = {RULE_ISSUER_BLACKLIST, RULE_ISSUER_PROPOSED}, Scope.BLACKLIST, added
    evidence = {r.tx_hash for r in rows}
    touched = 0
    for chunk in _chunks(addresses):
        for deposit in deposits_touching(session, chunk, DECIDED):
            unchanged = ListState.unchanged(deposit.list_version_id)
            inp = gather(session, deposit, unchanged, settings, None, scope)
            found = [
                f
                for f in screen(inp, settings.screening, now).findings
                if f.rule_id in rules and f.severity is Severity.REVIEW and f.evidence_tx in evidence
            ]
            if found and _act_on(session, deposit, found, now):
                touched += 1
    return touched


def _act_on(session: Session, deposit: Deposit, findings: list[Finding], now: datetime) -> bool:
    summary = Verdict(Decision.HOLD, tuple(findings)).summary
    if deposit.status == DepositStatus.HELD:
        found = review.hold_for_deposit(session, deposit.id or 0)
        if found is None:
            return False
        hold, deposit = review.lock_hold(session, found.id or 0)  # a person may have resolved it meanwhile
        if hold.state in HoldState.UNRESOLVED:
            recorded = review.recorded_findings(deposit)
            merged = merge_findings(recorded, findings)
            why = f"new evidence after the decision: {summary}"
            # The hold shows the evidence, and a release requested before it was known is voided.
            review.revise_hold(session, hold.id or 0, Decision.HOLD, merged, None, why, now)
            return True
    review.raise_review_flag(session, deposit, findings, f"new evidence after the credit: {summary}", now)
    return True
