"""The credit gate for people: a release or an approval screens the deposit again in its own transaction.

``fresh_screen`` takes the active list version FOR SHARE (as a tick does, and before the audit head: the lock
order), so a list activation waits for the release to commit, and a release that waited sees the new list. The
review service compares that screen with what the hold shows (screener.review.evidence.judge_credit): a list
that cannot be checked refuses and changes nothing; new evidence refuses, and then the hold is re-screened in a
second transaction so it shows the evidence and its pending release request is voided.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from screener.db import session_scope
from screener.decide.gather import ListState
from screener.decide.holds import rescreen_holds, screen_held
from screener.models.deposits import Deposit
from screener.models.ledger import Hold
from screener.review import service as review
from screener.review.evidence import Action
from screener.review.identity import IdentityMode
from screener.review.signing import NO_SIGNING, Signing
from screener.screening.verdicts import Verdict
from screener.settings import Settings
from screener_base.clock import ensure_utc


def fresh_screen(session: Session, settings: Settings, now: datetime) -> review.FreshScreen:
    """A ``screen_now`` for the review service, bound to the active list as of this transaction."""
    now = ensure_utc(now)
    lists = ListState.active(session, settings, now)

    def screen_now(s: Session, deposit: Deposit) -> Verdict:
        return screen_held(s, deposit, lists, settings, now)

    return screen_now


# A decision on one hold, given the caller's session and the fresh screen bound to it.
Decide = Callable[[Session, review.FreshScreen], Hold]


def _gated(engine: Engine, hold_id: int, settings: Settings, now: datetime, decide: Decide) -> Hold:
    """Run ``decide`` behind a fresh screen; on CreditRefused the hold takes the evidence, then it is raised."""
    try:
        with session_scope(engine) as s:
            return decide(s, fresh_screen(s, settings, now))
    except review.CreditRefused as exc:
        _take_evidence(engine, hold_id, settings, now, exc)
        raise


def release(
    engine: Engine,
    hold_id: int,
    reason: str,
    operator: str,
    settings: Settings,
    now: datetime,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """`screener holds release`: CreditRefused (after the hold took any new evidence) or the released hold."""

    def decide(s: Session, gate: review.FreshScreen) -> Hold:
        return review.release_hold(
            s, hold_id, reason, operator, settings, now, screen_now=gate, identity=identity, signing=signing
        )

    return _gated(engine, hold_id, settings, now, decide)


def approve(
    engine: Engine,
    hold_id: int,
    operator: str,
    now: datetime,
    settings: Settings,
    note: str | None,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """`screener holds approve`: as :func:`release`, for the second operator."""

    def decide(s: Session, gate: review.FreshScreen) -> Hold:
        return review.approve_hold(s, hold_id, operator, now, note, screen_now=gate, identity=identity, signing=signing)

    return _gated(engine, hold_id, settings, now, decide)


def reject(
    engine: Engine,
    hold_id: int,
    reason: str,
    target: str,
    operator: str,
    settings: Settings,
    now: datetime,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """`screener holds reject`: returning funds to a sender listed now (or unscreenable) is refused."""

    def decide(s: Session, gate: review.FreshScreen) -> Hold:
        return review.reject_hold(
            s, hold_id, reason, target, operator, now, screen_now=gate, identity=identity, signing=signing
        )

    return _gated(engine, hold_id, settings, now, decide)


def _take_evidence(engine: Engine, hold_id: int, settings: Settings, now: datetime, exc: review.CreditRefused) -> None:
    """After a refusal for new evidence or a listed party: the hold shows the evidence, its request is void."""
    if exc.judgement.action not in (Action.REVISE, Action.LISTED):
        return  # the list could not be checked: nothing changes
    with session_scope(engine) as s:
        rescreen_holds(s, settings, now, [hold_id])
        if exc.judgement.action is Action.LISTED:
            review.void_release_request(s, hold_id, exc.judgement.why, now)
