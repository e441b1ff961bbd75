"""Review flags: findings about deposits whose money already moved (credited, released or returned).

A flag moves no money; it asks a person to look (e.g. a list version added the sender after the credit, or the
issuer blacklisted it). One flag per (deposit, rule, matched address) of the most severe finding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from screener.ledger import audit
from screener.models.deposits import Deposit
from screener.models.ledger import ReviewFlag
from screener.review.identity import IdentityMode
from screener.review.rules import (
    DepositStatus,
    FlagState,
    flag_label,
    primary_finding,
    require_operator,
    require_text,
    system_text,
)
from screener.review.signing import NO_SIGNING, Signing
from screener.review.statements import findings_digest, statement
from screener.screening.verdicts import Finding
from screener_base.clock import ensure_utc
from screener_base.errors import ReviewError

FLAGGABLE = (DepositStatus.CREDITED, DepositStatus.RELEASED, DepositStatus.REJECTED)


def raise_review_flag(
    session: Session, deposit: Deposit, findings: list[Finding], reason: str, now: datetime
) -> ReviewFlag:
    """Open a flag on a decided deposit; idempotent per (deposit, rule, matched address).

    The system raises flags; the reason is kept in full however long its evidence makes it.
    """
    reason, now = system_text(reason, "reason"), ensure_utc(now)
    primary = primary_finding(findings)
    if deposit.id is None or deposit.status not in FLAGGABLE:
        raise ReviewError(
            f"deposit {deposit.id} is {deposit.status}, not credited/released/rejected",
            "use apply_verdict for undecided deposits and escalate_hold for held ones",
        )
    audit.lock_head(session)
    address = primary.matched_address or ""
    stmt = select(ReviewFlag).where(
        ReviewFlag.deposit_id == deposit.id,
        ReviewFlag.rule_id == primary.rule_id,
        ReviewFlag.matched_address == address,
    )
    existing = session.exec(stmt).first()
    if existing is not None:
        return existing
    flag = ReviewFlag(
        deposit_id=deposit.id,
        rule_id=primary.rule_id,
        matched_address=address,
        reason=reason,
        findings=[f.to_json() for f in findings],
        state=FlagState.OPEN,
        raised_at=now,
    )
    session.add(flag)
    session.flush()
    payload = {
        "flag": flag_label(flag.id),
        "deposit_id": deposit.id,
        "deposit_status": deposit.status,
        "rule_id": primary.rule_id,
        "matched_address": address,
        "reason": reason,
        "findings": flag.findings,
        "state": flag.state,
    }
    audit.append(session, "flag.raised", f"flag:{flag.id}", payload, "system", now, rows=[("review_flags", flag.id)])
    return flag


def resolve_flag(
    session: Session,
    flag_id: int,
    reason: str,
    operator: str,
    now: datetime,
    *,
    identity: str = IdentityMode.DECLARED,
    signing: Signing = NO_SIGNING,
) -> ReviewFlag:
    """A reviewer closes a flag with a reason (signed when review.signing = ssh)."""
    reason, operator, now = require_text(reason, "reason"), require_operator(operator), ensure_utc(now)
    audit.lock_head(session)
    stmt = (
        select(ReviewFlag).where(ReviewFlag.id == flag_id).with_for_update().execution_options(populate_existing=True)
    )
    flag = session.exec(stmt).first()
    label = flag_label(flag_id)
    if flag is None:
        raise ReviewError(f"flag {label} does not exist", "check the id with `screener flags list`")
    if flag.state != FlagState.OPEN:
        raise ReviewError(f"flag {label} is already {flag.state} (by {flag.resolved_by})", "nothing was changed")
    deposit = session.get(Deposit, flag.deposit_id)
    facts = _flag_facts(flag, deposit)
    signed = {}
    if signing.required:
        text = statement("resolve-flag", f"flag:{flag.id}", facts, reason, operator, audit.format_at(now))
        signed = signing.attest(text, operator)
    flag.state, flag.resolved_by, flag.resolved_at, flag.resolution_reason = FlagState.RESOLVED, operator, now, reason
    session.add(flag)
    session.flush()
    payload = {
        **{k: v for k, v in facts.items() if k not in ("deposit", "findings")},
        "deposit_id": flag.deposit_id,
        "state": flag.state,
        "reason": reason,
        "identity": identity,
        **signed,
    }
    audit.append(session, "flag.resolved", f"flag:{flag.id}", payload, operator, now, rows=[("review_flags", flag.id)])
    return flag


def _flag_facts(flag: ReviewFlag, deposit: Deposit | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "flag": flag_label(flag.id),
        "rule_id": flag.rule_id,
        "matched_address": flag.matched_address,
        "findings": findings_digest(flag.findings),
    }
    if deposit is not None:
        facts.update(
            deposit=deposit.event_label,
            amount=str(deposit.amount_raw),
            asset=f"{deposit.token_symbol}@{deposit.chain}",
            account=deposit.account,
        )
    return facts


def list_flags(session: Session, state: str = FlagState.OPEN) -> list[ReviewFlag]:
    if state not in (FlagState.OPEN, FlagState.RESOLVED, "all"):
        raise ReviewError(f"--state must be open, resolved or all, not {state!r}", "pass a valid --state")
    stmt = select(ReviewFlag).order_by(col(ReviewFlag.id))
    if state != "all":
        stmt = stmt.where(ReviewFlag.state == state)
    return list(session.exec(stmt))
