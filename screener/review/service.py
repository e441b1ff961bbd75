"""Review service: verdicts into the ledger, and what people do to holds. Public API for the other areas.

Every function works in the caller's transaction (takes a Session, flushes, never commits) and writes its
audit events there, so a decision and its record commit or vanish together. Every function that writes locks
the audit head first, then the hold/deposit rows (``SELECT ... FOR UPDATE``), then ledger accounts: one lock
order for everyone, so concurrent operators serialise instead of deadlocking, and the loser of a race sees
the winner's committed state and gets a ReviewError.

A hold never expires into a credit. Only ``release_hold``/``approve_hold`` (a person) and ``clear_hold`` (the
system, for a hold that was only "screening unavailable" and now screens clean) post one, and each first looks at
a screen taken in the same transaction (``screen_now``, built by screener.decide.credit): if the list cannot be
checked, or the screen found evidence the hold does not show yet, nothing is credited (CreditRefused). Any change
of a hold's verdict or findings (``revise_hold``) voids its pending four-eyes request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from screener.ledger import audit
from screener.ledger import store as ledger
from screener.ledger.rules import BLOCKED
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold
from screener.review.evidence import Action, Judgement, judge_credit, judge_rescreen, judge_return, stricter
from screener.review.flags import list_flags, raise_review_flag, resolve_flag
from screener.review.identity import IdentityMode
from screener.review.rules import (
    DepositStatus,
    HoldState,
    check_assigned,
    check_can_approve,
    check_can_reject,
    check_can_release,
    due_at,
    effective_decision,
    hold_label,
    is_overdue,
    merge_findings,
    needs_four_eyes,
    rank,
    reject_target,
    require_operator,
    require_text,
    same_operator,
    system_text,
)
from screener.review.signing import NO_SIGNING, Signing
from screener.review.statements import check_two_keys, digest, findings_digest, parse_sshsig, statement
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ReviewError

SYSTEM_ACTOR = "system"
# A screen of one deposit taken in the caller's transaction, against the list version it holds FOR SHARE.
FreshScreen = Callable[[Session, Deposit], Verdict]


class CreditRefused(ReviewError):
    """A release or approval that must not credit now; ``judgement`` says why and what the hold should show."""

    def __init__(self, cause: str, remedy: str, judgement: Judgement) -> None:
        super().__init__(cause, remedy)
        self.judgement = judgement


__all__ = [
    "SYSTEM_ACTOR",
    "CreditRefused",
    "FreshScreen",
    "annotate_hold",
    "apply_verdict",
    "approve_hold",
    "clear_hold",
    "escalate_hold",
    "get_hold",
    "hold_for_deposit",
    "list_flags",
    "lock_hold",
    "mark_sla_breached",
    "note_hold",
    "overdue_holds",
    "raise_review_flag",
    "recorded_findings",
    "reject_hold",
    "release_hold",
    "resolve_flag",
    "revise_hold",
    "void_release_request",
    "withdraw_request",
]


def _hold_payload(hold: Hold, deposit: Deposit, **extra: Any) -> dict[str, Any]:
    # state and verdict are in every hold event: `audit verify` checks the hold row against the latest one.
    return {
        "hold": hold_label(hold.id),
        "deposit_id": deposit.id,
        "state": hold.state,
        "verdict": hold.verdict,
        "amount": str(deposit.amount_raw),
        "asset": f"{deposit.token_symbol}@{deposit.chain}",
        "account": deposit.account,
        **extra,
    }


def hold_facts(hold: Hold, deposit: Deposit) -> dict[str, Any]:
    """What a reviewer's signed statement says about the hold: which deposit, how much, on what evidence."""
    return {
        "hold": hold_label(hold.id),
        "deposit": deposit.event_label,
        "amount": str(deposit.amount_raw),
        "asset": f"{deposit.token_symbol}@{deposit.chain}",
        "account": deposit.account,
        "verdict": hold.verdict,
        "findings": findings_digest(deposit.findings),
    }


def _attest(
    signing: Signing, action: str, hold: Hold, deposit: Deposit, reason: str, actor: str, now: datetime, **extra: Any
) -> dict[str, str]:
    """The signed statement of a decision on ``hold`` (empty when signing is off); ReviewError if unsigned."""
    if not signing.required:
        return {}
    text = statement(action, f"hold:{hold.id}", hold_facts(hold, deposit), reason, actor, audit.format_at(now), **extra)
    return signing.attest(text, actor)


def policy_digest(settings: Settings) -> str:
    """What the screening decided under: the sha256 of the settings that decide (screening, list age, four-eyes),
    so a later change of the config shows in the decisions recorded after it."""
    decisive = {
        "screening": settings.screening.model_dump(mode="json"),
        "max_list_age_h": settings.lists.max_list_age_h,
        "four_eyes_above_units": settings.review.four_eyes_above_units,
        "credit_after_rescreen": settings.review.credit_after_rescreen,
    }
    text = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _sealed(hold: Hold | None, deposit: Deposit) -> list[tuple[str, int | None]]:
    """The rows an event about this hold and deposit commits to (screener.ledger.seals)."""
    return ([("holds", hold.id)] if hold is not None else []) + [("deposits", deposit.id)]


def _lock_deposit(session: Session, deposit_id: int) -> Deposit:
    stmt = select(Deposit).where(Deposit.id == deposit_id).with_for_update().execution_options(populate_existing=True)
    deposit = session.exec(stmt).first()
    if deposit is None:
        raise ReviewError(f"deposit {deposit_id} does not exist", "record the deposit before deciding it")
    return deposit


def _lock_hold(session: Session, hold_id: int) -> tuple[Hold, Deposit]:
    """Audit head, then hold, then deposit: the project's lock order."""
    audit.lock_head(session)
    stmt = select(Hold).where(Hold.id == hold_id).with_for_update().execution_options(populate_existing=True)
    hold = session.exec(stmt).first()
    if hold is None:
        raise ReviewError(f"hold {hold_label(hold_id)} does not exist", "check the id with `screener holds list`")
    deposit = _lock_deposit(session, hold.deposit_id)
    # screener never opens a hold on an unassigned deposit: such a hold was written behind its back.
    check_assigned(f"hold {hold_label(hold.id)}'s deposit {deposit.event_label}", deposit.status)
    return hold, deposit


def lock_hold(session: Session, hold_id: int) -> tuple[Hold, Deposit]:
    """The hold and its deposit, locked (after the audit head) until the transaction ends."""
    return _lock_hold(session, hold_id)


def get_hold(session: Session, hold_id: int) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise ReviewError(f"hold {hold_label(hold_id)} does not exist", "check the id with `screener holds list`")
    return hold


def hold_for_deposit(session: Session, deposit_id: int) -> Hold | None:
    return session.exec(select(Hold).where(Hold.deposit_id == deposit_id)).first()


def apply_verdict(
    session: Session,
    deposit: Deposit,
    verdict: Verdict,
    settings: Settings,
    now: datetime,
    *,
    relied_on: dict[str, Any] | None = None,
) -> Hold | None:
    """CREDIT posts a credit; HOLD/BLOCK open a pending credit and a Hold. Idempotent for the same deposit.

    Fail closed: the decision acted on is never weaker than the verdict's findings, and an unknown initiator
    cannot credit. A deposit already decided keeps its decision; a later, stricter verdict escalates its open
    hold or raises a review flag on it when already credited, and a weaker one changes nothing. ``relied_on``
    (the index coverage the facts came from) is recorded with the decision as ``indexes``. An unassigned
    deposit (wrong network) is refused (ReviewError): it is never screened to a credit or a hold.
    """
    now = ensure_utc(now)
    decision, findings, raised_why = effective_decision(verdict, deposit.initiator is not None)
    audit.lock_head(session)
    if deposit.id is None:
        session.add(deposit)
        session.flush()
    deposit_id = deposit.id
    assert deposit_id is not None
    deposit = _lock_deposit(session, deposit_id)
    check_assigned(f"deposit {deposit.event_label}", deposit.status)
    if deposit.status != DepositStatus.RECORDED:
        strict = Verdict(decision, findings, verdict.list_version_id, verdict.decided_at)
        return _redecide(session, deposit, strict, now)
    deposit.verdict = decision.value
    deposit.findings = [f.to_json() for f in findings]
    deposit.list_version_id = verdict.list_version_id
    deposit.decided_at = ensure_utc(verdict.decided_at or now)
    base: dict[str, Any] = {
        "deposit_id": deposit.id,
        "event": deposit.event_label,
        "verdict": decision.value,
        "findings": deposit.findings,
        "list_version_id": verdict.list_version_id,
        "raised": raised_why,
        "policy": policy_digest(settings),
    }
    if relied_on is not None:
        base["indexes"] = relied_on
    if decision == Decision.CREDIT:
        _credit(session, deposit, base, now)
        return None
    return _open_hold(session, deposit, Verdict(decision, findings), base, settings, now)


def _credit(session: Session, deposit: Deposit, base: dict[str, Any], now: datetime) -> None:
    ref = ledger.deposit_ref(deposit)
    outcome = ledger.credit(session, ref, SYSTEM_ACTOR, now)
    deposit.status = DepositStatus.CREDITED
    session.add(deposit)
    payload = dict(base, amount=str(ref.amount), asset=ref.asset, transfer=outcome and outcome.spec.id)
    audit.append(
        session, "deposit.credited", f"deposit:{deposit.id}", payload, SYSTEM_ACTOR, now, rows=_sealed(None, deposit)
    )


def _open_hold(
    session: Session, deposit: Deposit, verdict: Verdict, base: dict[str, Any], settings: Settings, now: datetime
) -> Hold:
    assert deposit.id is not None
    outcome = ledger.hold(session, ledger.deposit_ref(deposit), SYSTEM_ACTOR, now)
    deposit.status = DepositStatus.HELD
    session.add(deposit)
    hold = Hold(
        deposit_id=deposit.id,
        pending_transfer_id=outcome.spec.id if outcome else None,
        verdict=verdict.decision.value,
        reason=verdict.summary,
        state=HoldState.OPEN,
        opened_at=now,
        due_at=due_at(now, settings.review.sla_h),
    )
    session.add(hold)
    session.flush()
    extra = dict(base, reason=hold.reason, due_at=hold.due_at, transfer=hold.pending_transfer_id)
    audit.append(
        session,
        "hold.opened",
        f"hold:{hold.id}",
        _hold_payload(hold, deposit, **extra),
        SYSTEM_ACTOR,
        now,
        rows=_sealed(hold, deposit),
    )
    return hold


def _redecide(session: Session, deposit: Deposit, verdict: Verdict, now: datetime) -> Hold | None:
    """A verdict for a deposit already decided: keep the decision; route a stricter one, never weaken."""
    assert deposit.id is not None
    hold = hold_for_deposit(session, deposit.id)
    previous = deposit.verdict or Decision.CREDIT.value
    if rank(verdict.decision) <= rank(previous):
        return hold
    if deposit.status == DepositStatus.REJECTED and hold is not None and hold.rejected_to == BLOCKED:
        return hold
    if deposit.status in (DepositStatus.CREDITED, DepositStatus.RELEASED, DepositStatus.REJECTED):
        findings = [f for f in verdict.findings if f.severity != Severity.INFO] or [
            Finding(rule_id=f"verdict.{verdict.decision.value}", severity=Severity.REVIEW, party="-")
        ]
        reason = f"re-screen after credit found {verdict.decision.value}: {verdict.summary}"
        raise_review_flag(session, deposit, findings, reason, now)
    elif hold is not None and hold.state in HoldState.UNRESOLVED and verdict.decision == Decision.BLOCK:
        escalate_hold(session, hold.id or 0, verdict, now)
    return hold


def _post(session: Session, hold: Hold, deposit: Deposit, operator: str, reason: str, now: datetime) -> None:
    ledger.post_hold(session, ledger.deposit_ref(deposit), operator, now)
    hold.state = HoldState.RELEASED
    hold.resolved_by, hold.resolved_at, hold.resolution_reason = operator, now, reason
    deposit.status = DepositStatus.RELEASED
    session.add_all([hold, deposit])
    session.flush()


def recorded_findings(deposit: Deposit) -> list[Finding]:
    """The findings stored with a deposit; ReviewError (nothing is decided on them) when a row is malformed."""
    try:
        return [Finding.from_json(f) for f in deposit.findings]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReviewError(
            f"deposit {deposit.id} has malformed findings in the database ({type(exc).__name__}: {exc})",
            "nothing was changed; restore the row from the audit trail (`screener audit verify`) and retry",
        ) from exc


def _check_fresh(hold: Hold, deposit: Deposit, fresh: Verdict) -> None:
    """CreditRefused unless the fresh screen shows nothing the hold's reviewers have not seen."""
    recorded = recorded_findings(deposit)
    judgement = judge_credit(recorded, hold.verdict, fresh)
    if judgement.action is Action.CREDIT:
        return
    label = hold_label(hold.id)
    if judgement.action is Action.REFUSE:
        remedy = "nothing was changed"  # the list's own message says how to get a fresh one
    elif judgement.action is Action.LISTED:
        remedy = (
            f"the hold is BLOCK and any pending release request is voided; reject it with "
            f"`screener holds reject {label} --to blocked`"
        )
    else:
        remedy = "the hold is re-screened to show it and any pending release request is voided; review it again"
    raise CreditRefused(f"hold {label} was not credited: {judgement.why}", remedy, judgement)


def release_hold(
    session: Session,
    hold_id: int,
    reason: str,
    operator: str,
    settings: Settings,
    now: datetime,
    *,
    screen_now: FreshScreen,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """Release a hold: posted at once, or (four-eyes) moved to awaiting_approval for a second operator.

    Either way the deposit is screened again first (``screen_now``): CreditRefused, and nothing changes, when
    the list cannot be checked or the screen found evidence the hold does not show.
    """
    reason, operator, now = require_text(reason, "reason"), require_operator(operator), ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    label = hold_label(hold.id)
    check_can_release(label, hold.state, hold.release_requested_by)
    fresh = screen_now(session, deposit)
    _check_fresh(hold, deposit, fresh)
    threshold = settings.review.four_eyes_above_units
    if needs_four_eyes(hold.verdict, deposit.amount_raw, deposit.decimals, threshold):
        signed = _attest(signing, "request", hold, deposit, reason, operator, now)
        hold.state = HoldState.AWAITING_APPROVAL
        hold.release_requested_by, hold.release_requested_at, hold.release_reason = operator, now, reason
        session.add(hold)
        session.flush()
        why = "BLOCK verdict" if hold.verdict == Decision.BLOCK.value else f"amount >= {threshold} tokens"
        payload = _hold_payload(
            hold,
            deposit,
            reason=reason,
            four_eyes=why,
            screened_with=fresh.list_version_id,
            identity=identity,
            **signed,
        )
        audit.append(
            session, "hold.release_requested", f"hold:{hold.id}", payload, operator, now, rows=_sealed(hold, deposit)
        )
        return hold
    signed = _attest(signing, "release", hold, deposit, reason, operator, now)
    _post(session, hold, deposit, operator, reason, now)
    transfer = ledger.deposit_ref(deposit).tid("post")
    payload = _hold_payload(
        hold,
        deposit,
        reason=reason,
        transfer=transfer,
        screened_with=fresh.list_version_id,
        identity=identity,
        **signed,
    )
    audit.append(session, "hold.released", f"hold:{hold.id}", payload, operator, now, rows=_sealed(hold, deposit))
    return hold


def approve_hold(
    session: Session,
    hold_id: int,
    operator: str,
    now: datetime,
    reason: str | None = None,
    *,
    screen_now: FreshScreen,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """Second operator approves a requested release; the deposit is screened again, then the credit posted.

    With signing on, the approval names the request's statement and must be signed by a different key.
    """
    operator, now = require_operator(operator), ensure_utc(now)
    note = (reason or "").strip() or None
    hold, deposit = _lock_hold(session, hold_id)
    # The request as the audit trail has it: its actor is the requester, its payload how they were identified
    # and what they signed (read once, under the hold's lock).
    request = audit.latest_event(session, f"hold:{hold.id}", "hold.release_requested")
    requested = request.payload if request is not None and isinstance(request.payload, dict) else {}
    check_can_approve(hold_label(hold.id), hold.state, _recorded_requester(hold, request), operator)
    _check_identity_kept(hold, requested, identity)
    fresh = screen_now(session, deposit)
    _check_fresh(hold, deposit, fresh)
    signed = _attest_approval(signing, hold, deposit, requested, operator, note, now)
    _post(session, hold, deposit, operator, note or hold.release_reason or "", now)
    payload = _hold_payload(
        hold,
        deposit,
        reason=hold.release_reason,
        approval_note=note,
        requested_by=hold.release_requested_by,
        approved_by=operator,
        transfer=ledger.deposit_ref(deposit).tid("post"),
        screened_with=fresh.list_version_id,
        identity=identity,
        **signed,
    )
    audit.append(session, "hold.released", f"hold:{hold.id}", payload, operator, now, rows=_sealed(hold, deposit))
    return hold


def _recorded_requester(hold: Hold, event: AuditEvent | None) -> str | None:
    """Who requested the release, as the audit trail says (``event``: the newest request); ReviewError when the
    row says someone else (it was edited behind the CLI: four-eyes must not compare against a typed-in name)."""
    if hold.state != HoldState.AWAITING_APPROVAL:
        return hold.release_requested_by
    if event is None or not same_operator(event.actor, hold.release_requested_by):
        recorded = event.actor if event is not None else "nobody"
        raise ReviewError(
            f"hold {hold_label(hold.id)} says its release was requested by {hold.release_requested_by!r}, but the "
            f"audit trail says {recorded!r}: the row was changed outside screener",
            "nothing was changed; run `screener audit verify` and restore the row before deciding",
        )
    return event.actor


def _attest_approval(
    signing: Signing,
    hold: Hold,
    deposit: Deposit,
    requested: dict[str, Any],
    operator: str,
    note: str | None,
    now: datetime,
) -> dict[str, str]:
    if not signing.required:
        return {}
    request_text, request_sig = requested.get("statement"), requested.get("signature")
    request = digest(request_text) if isinstance(request_text, str) else None
    reason = hold.release_reason or ""
    signed = _attest(signing, "approve", hold, deposit, reason, operator, now, approval_note=note, request=request)
    request_key = parse_sshsig(request_sig).fingerprint if isinstance(request_sig, str) and request else None
    check_two_keys(request_key, signed["signed_key"], hold_label(hold.id))
    return signed


def _check_identity_kept(hold: Hold, requested: dict[str, Any], identity: str) -> None:
    """A release requested by an authenticated person cannot be approved under a typed name: a private config
    with review.identity = declared would otherwise let one account play the second person."""
    if identity != IdentityMode.DECLARED:
        return
    mode = requested.get("identity")
    if mode in (IdentityMode.OS, IdentityMode.DATABASE):
        raise ReviewError(
            f"hold {hold_label(hold.id)} was requested by an authenticated {mode} identity and cannot be approved "
            "under a declared one",
            "approve it as yourself (review.identity = os or database); nothing was changed",
        )


def clear_hold(session: Session, hold_id: int, fresh: Verdict, cleared_by: dict[str, Any], now: datetime) -> Hold:
    """The system credits a hold that was only "screening unavailable" and now screens clean (``fresh``).

    ``cleared_by`` names what cleared it (list version, index heights) for the audit event. Refused unless the
    fresh screen has no finding that holds: this is the decision the pipeline would have taken with the data.
    """
    now = ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    label = hold_label(hold.id)
    if hold.state not in HoldState.UNRESOLVED:
        raise ReviewError(f"cannot clear hold {label}: it is already {hold.state}", "nothing was changed")
    judged = judge_rescreen(recorded_findings(deposit), hold.verdict, fresh, credit_when_clean=True)
    if judged.action is not Action.CLEAR:  # only a hold that waited for data alone, and now screens clean
        raise ReviewError(f"hold {label} may not be cleared: {fresh.summary}", "a person decides; nothing changed")
    voided = _void_request(hold)
    reason = f"screens clean now ({', '.join(f'{k} {v}' for k, v in sorted(cleared_by.items()))})"
    _post(session, hold, deposit, SYSTEM_ACTOR, reason, now)
    deposit.list_version_id = fresh.list_version_id
    session.add(deposit)
    payload = _hold_payload(
        hold,
        deposit,
        reason=reason,
        cleared_by=cleared_by,
        findings=fresh.findings_json(),
        previous_findings=deposit.findings,
        voided_request=voided,
        transfer=ledger.deposit_ref(deposit).tid("post"),
    )
    audit.append(session, "hold.cleared", f"hold:{hold.id}", payload, SYSTEM_ACTOR, now, rows=_sealed(hold, deposit))
    return hold


def reject_hold(
    session: Session,
    hold_id: int,
    reason: str,
    target: str,
    operator: str,
    now: datetime,
    *,
    screen_now: FreshScreen,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> Hold:
    """Void the pending credit and move the funds to ``blocked`` (sanctions) or ``return_payable``.

    Owing funds back is a payment to the sender: refused (CreditRefused, nothing changes) when the fresh screen
    finds a party listed now or cannot check the list. ``--to blocked`` is always allowed.
    """
    reason, operator, now = require_text(reason, "reason"), require_operator(operator), ensure_utc(now)
    account = reject_target(target)
    hold, deposit = _lock_hold(session, hold_id)
    label = hold_label(hold.id)
    check_can_reject(label, hold.state, hold.verdict, account)
    if account != BLOCKED:
        judged = judge_return(recorded_findings(deposit), hold.verdict, screen_now(session, deposit))
        if judged is not None:
            raise CreditRefused(
                f"hold {label} cannot be returned to the sender: {judged.why}",
                "reject it with --to blocked (blocked property is reported, not returned); nothing was changed",
                judged,
            )
    signed = _attest(signing, "reject", hold, deposit, reason, operator, now, to=account)
    outcomes = ledger.void_hold(session, ledger.deposit_ref(deposit), account, operator, now)
    hold.state = HoldState.REJECTED
    hold.resolved_by, hold.resolved_at, hold.resolution_reason = operator, now, reason
    hold.rejected_to = account
    deposit.status = DepositStatus.REJECTED
    session.add_all([hold, deposit])
    session.flush()
    transfers = [o.spec.id for o in outcomes]
    payload = _hold_payload(hold, deposit, reason=reason, to=account, transfers=transfers, identity=identity, **signed)
    audit.append(session, "hold.rejected", f"hold:{hold.id}", payload, operator, now, rows=_sealed(hold, deposit))
    return hold


def _annotate(
    session: Session, hold_id: int, text: str, actor: str, now: datetime, kind: str, **extra: Any
) -> AuditEvent:
    hold, deposit = _lock_hold(session, hold_id)
    payload = _hold_payload(hold, deposit, text=text, **extra)
    return audit.append(session, kind, f"hold:{hold.id}", payload, actor, ensure_utc(now), rows=_sealed(hold, deposit))


def note_hold(
    session: Session, hold_id: int, text: str, operator: str, now: datetime, *, identity: str = IdentityMode.DECLARED
) -> AuditEvent:
    """An operator's note on a hold (any state); kept in its history."""
    text, operator = require_text(text, "note text"), require_operator(operator)
    return _annotate(session, hold_id, text, operator, now, "hold.note", identity=identity)


def annotate_hold(session: Session, hold_id: int, text: str, actor: str, now: datetime) -> AuditEvent:
    """A system note, e.g. "matching list entry removed in version N; not auto-released".

    Not bounded like a person's note: a re-screen's text must never fail the list activation it runs in.
    """
    return _annotate(
        session, hold_id, system_text(text, "note text"), system_text(actor, "actor"), now, "hold.annotation"
    )


def escalate_hold(session: Session, hold_id: int, verdict: Verdict, now: datetime) -> Hold:
    """An unresolved HOLD becomes BLOCK (new list match); four-eyes then applies to its release.

    The new findings join the recorded ones, and a pending release request is voided: it was asked against
    other evidence. A verdict that is not stricter than the hold's changes nothing; a resolved hold cannot be
    escalated (a released deposit gets a review flag instead).
    """
    hold = get_hold(session, hold_id)
    if hold.state in HoldState.UNRESOLVED and rank(verdict.decision) <= rank(hold.verdict):
        return hold
    deposit = session.get(Deposit, hold.deposit_id)
    recorded = recorded_findings(deposit) if deposit else []
    findings = merge_findings(recorded, verdict.findings)
    why = f"escalated to {Decision(verdict.decision).value}: {verdict.summary}"
    return revise_hold(session, hold_id, Decision(verdict.decision), findings, verdict.list_version_id, why, now)


def void_release_request(session: Session, hold_id: int, why: str, now: datetime) -> bool:
    """A pending four-eyes request is voided (e.g. its hold's party is listed now); True when there was one."""
    now = ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    voided = _void_request(hold)
    if voided is None:
        return False
    session.add(hold)
    session.flush()
    payload = _hold_payload(hold, deposit, why=system_text(why, "why"), voided_request=voided)
    audit.append(
        session, "hold.request_voided", f"hold:{hold.id}", payload, SYSTEM_ACTOR, now, rows=_sealed(hold, deposit)
    )
    return True


def withdraw_request(
    session: Session, hold_id: int, operator: str, now: datetime, *, identity: str = IdentityMode.DECLARED
) -> Hold:
    """The requester takes back their own pending release request; the hold is open again. Moves no money."""
    operator, now = require_operator(operator), ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    label = hold_label(hold.id)
    if hold.state != HoldState.AWAITING_APPROVAL:
        raise ReviewError(
            f"hold {label} is {hold.state}: there is no release request to withdraw", "nothing was changed"
        )
    if not same_operator(hold.release_requested_by, operator):
        raise ReviewError(
            f"only {hold.release_requested_by}, who requested the release of hold {label}, may withdraw it",
            "approve it, or ask them to withdraw it; nothing was changed",
        )
    voided = _void_request(hold)
    session.add(hold)
    session.flush()
    payload = _hold_payload(hold, deposit, voided_request=voided, identity=identity)
    audit.append(
        session, "hold.request_withdrawn", f"hold:{hold.id}", payload, operator, now, rows=_sealed(hold, deposit)
    )
    return hold


def _void_request(hold: Hold) -> dict[str, Any] | None:
    """Back to open: a release request was asked against evidence that has changed."""
    if hold.state != HoldState.AWAITING_APPROVAL:
        return None
    voided = {"by": hold.release_requested_by, "at": hold.release_requested_at, "reason": hold.release_reason}
    hold.state = HoldState.OPEN
    hold.release_requested_by = hold.release_requested_at = hold.release_reason = None
    return voided


def revise_hold(
    session: Session,
    hold_id: int,
    decision: Decision,
    findings: Sequence[Finding],
    list_version_id: int | None,
    why: str,
    now: datetime,
) -> Hold:
    """An unresolved hold takes new evidence: its findings, and a verdict never weaker than before.

    Any change voids a pending release request (four-eyes is asked again against the new evidence); an
    unchanged verdict and findings change nothing.
    """
    now = ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    label = hold_label(hold.id)
    if hold.state not in HoldState.UNRESOLVED:
        raise ReviewError(
            f"cannot revise hold {label}: it is already {hold.state}",
            "raise a review flag on the deposit instead (raise_review_flag)",
        )
    new_verdict = stricter(hold.verdict, decision.value)
    new_findings = [f.to_json() for f in findings]
    if new_verdict.value == hold.verdict and new_findings == list(deposit.findings):
        return hold
    previous, previous_findings = hold.verdict, list(deposit.findings)
    voided = _void_request(hold)
    hold.verdict = deposit.verdict = new_verdict.value
    deposit.findings = new_findings
    if list_version_id is not None:
        deposit.list_version_id = list_version_id
    hold.reason = Verdict(new_verdict, tuple(findings)).summary
    session.add_all([hold, deposit])
    session.flush()
    payload = _hold_payload(
        hold,
        deposit,
        previous_verdict=previous,
        findings=new_findings,
        previous_findings=previous_findings,
        list_version_id=list_version_id,
        why=why,
        voided_request=voided,
    )
    kind = "hold.escalated" if rank(new_verdict) > rank(previous) else "hold.revised"
    audit.append(session, kind, f"hold:{hold.id}", payload, SYSTEM_ACTOR, now, rows=_sealed(hold, deposit))
    return hold


def overdue_holds(session: Session, now: datetime) -> list[Hold]:
    """Unresolved holds past their SLA, oldest due first (due_at compared in Python: UTC-safe on SQLite)."""
    stmt = select(Hold).where(col(Hold.state).in_(HoldState.UNRESOLVED))
    holds = [h for h in session.exec(stmt) if is_overdue(h.state, h.due_at, now)]
    return sorted(holds, key=lambda h: (ensure_utc(h.due_at), h.id or 0))


def mark_sla_breached(session: Session, hold_id: int, now: datetime) -> bool:
    """Record (once) that an overdue hold breached its SLA; True when newly recorded, so alert once.

    Nothing else changes: an overdue hold stays held until a person decides.
    """
    now = ensure_utc(now)
    hold, deposit = _lock_hold(session, hold_id)
    if hold.sla_breached_at is not None or not is_overdue(hold.state, hold.due_at, now):
        return False
    hold.sla_breached_at = now
    session.add(hold)
    session.flush()
    payload = _hold_payload(hold, deposit, due_at=hold.due_at)
    audit.append(
        session, "hold.sla_breached", f"hold:{hold.id}", payload, SYSTEM_ACTOR, now, rows=_sealed(hold, deposit)
    )
    return True
