"""Cross-checks of the ledger against the audit chain, for `screener audit verify`.

The chain proves the events were not edited; these checks prove the ledger rows still match the events:
every transfer row has exactly the digest its ``ledger.transfer`` event recorded, every such event has its
row, every account balance equals the sum of its transfers, every asset sums to zero, every hold's state and
verdict (and every flag's state) are those its latest audit event recorded, and every decided deposit has exactly
the transfers its status calls for, of its amount (so a second credit, or a credit of a held deposit, shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from screener.ledger.audit import VerifyReport, format_at
from screener.ledger.rules import (
    CREDIT_NORMAL,
    PENDING,
    POST_PENDING,
    POSTED,
    STEP_CREDIT,
    STEP_HOLD,
    STEP_POST,
    STEP_REJECT_MOVE,
    STEP_VOID,
    STEPS,
    Balance,
    TransferSpec,
    check_balance,
    transfer_digest,
    transfer_id,
)
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, LedgerAccount, LedgerTransfer, ReviewFlag
from screener.review.rules import DepositStatus, HoldState
from screener_base.errors import LedgerError

BALANCE_FIELDS = ("debits_posted", "debits_pending", "credits_posted", "credits_pending")


@dataclass
class _Claim:
    seq: int
    payload: dict[str, object]


def _claims(session: Session, problems: list[tuple[int, str]]) -> dict[str, _Claim]:
    stmt = select(AuditEvent).where(AuditEvent.kind == "ledger.transfer").order_by(col(AuditEvent.seq))
    claims: dict[str, _Claim] = {}
    for event in session.exec(stmt):
        tid = str(event.payload.get("id"))
        if tid in claims:
            problems.append((event.seq, f"event {event.seq} records transfer {tid} a second time"))
            continue
        claims[tid] = _Claim(event.seq, event.payload)
    return claims


def _zero() -> dict[str, int]:
    return dict.fromkeys(BALANCE_FIELDS, 0)


def _accumulate(totals: dict[int, dict[str, int]], row: LedgerTransfer) -> None:
    debit = totals.setdefault(row.debit_account_id, _zero())
    credit = totals.setdefault(row.credit_account_id, _zero())
    amount = row.amount
    if row.flags == POSTED:
        debit["debits_posted"] += amount
        credit["credits_posted"] += amount
    elif row.flags == PENDING:
        debit["debits_pending"] += amount
        credit["credits_pending"] += amount
    else:
        posted = amount if row.flags == POST_PENDING else 0
        debit["debits_pending"] -= amount
        debit["debits_posted"] += posted
        credit["credits_pending"] -= amount
        credit["credits_posted"] += posted


def _describe_diff(claim: dict[str, object], spec: TransferSpec, created_at: str) -> str:
    current = dict(spec.comparable(), created_at=created_at)
    diffs = [f"{k} {current[k]!r} (recorded {claim.get(k)!r})" for k in current if claim.get(k) != current[k]]
    return ", ".join(diffs) or "fields hash differently"


def _check_transfers(
    session: Session, accounts: dict[int, LedgerAccount], problems: list[tuple[int, str]]
) -> tuple[dict[int, dict[str, int]], dict[str, int]]:
    """Balances recomputed from the transfers, and each transfer's amount by id."""
    claims = _claims(session, problems)
    totals: dict[int, dict[str, int]] = {}
    amounts: dict[str, int] = {}
    for row in session.exec(select(LedgerTransfer).order_by(col(LedgerTransfer.id))):
        _accumulate(totals, row)
        amounts[row.id] = row.amount
        debit, credit = accounts.get(row.debit_account_id), accounts.get(row.credit_account_id)
        claim = claims.pop(row.id, None)
        if claim is None:
            problems.append((0, f"transfer {row.id} has no ledger.transfer audit event (written outside the ledger?)"))
            continue
        if debit is None or credit is None:
            problems.append((claim.seq, f"transfer {row.id} (event {claim.seq}) names a missing account"))
            continue
        for acc in (debit, credit):
            if acc.asset != row.asset:  # the account's asset column was edited: its balance is in another asset
                problems.append(
                    (claim.seq, f"account {acc.name} holds transfer {row.id} of {row.asset} as {acc.asset!r}")
                )
        spec = TransferSpec(row.id, row.step, row.flags, debit.name, credit.name, row.asset, row.amount, row.pending_id)
        if transfer_digest(spec, row.created_at) != claim.payload.get("digest"):
            diff = _describe_diff(claim.payload, spec, format_at(row.created_at))
            problems.append((claim.seq, f"transfer {row.id} no longer matches event {claim.seq}: {diff}"))
    for tid, claim in claims.items():
        problems.append((claim.seq, f"transfer {tid} recorded by event {claim.seq} is missing from the ledger"))
    return totals, amounts


def _check_accounts(
    accounts: dict[int, LedgerAccount], totals: dict[int, dict[str, int]], report: VerifyReport
) -> None:
    per_asset: dict[str, int] = {}
    for acc_id, acc in sorted(accounts.items()):
        label = f"account {acc.name} {acc.asset}"
        expected = totals.get(acc_id, _zero())
        for name in BALANCE_FIELDS:
            stored = getattr(acc, name)
            if stored != expected[name]:
                report.add(f"{label}: {name} is {stored} but its transfers sum to {expected[name]}")
        bal = Balance(acc.normal, *(getattr(acc, f) for f in BALANCE_FIELDS))
        if acc.normal == CREDIT_NORMAL:
            try:
                check_balance(acc.name, acc.asset, bal)
            except LedgerError as exc:
                report.add(f"{label}: {exc.cause}")
        net = bal.debits_posted + bal.debits_pending - bal.credits_posted - bal.credits_pending
        per_asset[acc.asset] = per_asset.get(acc.asset, 0) + net
    for asset, net in sorted(per_asset.items()):
        if net != 0:
            report.add(f"asset {asset}: debits and credits differ by {net} (double entry broken)")


def _latest_states(session: Session, prefix: str) -> dict[str, dict[str, object]]:
    """subject -> payload (plus seq) of the latest event about it that recorded a state."""
    latest: dict[str, dict[str, object]] = {}
    stmt = select(AuditEvent).where(col(AuditEvent.subject).like(f"{prefix}:%")).order_by(col(AuditEvent.seq))
    for event in session.exec(stmt):
        if "state" in event.payload:
            latest[event.subject] = {"seq": event.seq, **event.payload}
    return latest


def _check_rows(
    report: VerifyReport,
    rows: list[Any],
    prefix: str,
    label: str,
    fields: tuple[str, ...],
    latest: dict[str, dict[str, object]],
) -> None:
    for row in rows:
        recorded = latest.pop(f"{prefix}:{row.id}", None)
        if recorded is None:
            report.add(f"{label}-{row.id} has no audit event")
            continue
        for name in fields:
            if recorded.get(name) != getattr(row, name):
                report.add(
                    f"{label}-{row.id}: {name} is {getattr(row, name)!r} but event {recorded['seq']} "
                    f"recorded {recorded.get(name)!r}"
                )
    for subject, recorded in latest.items():
        report.add(f"{label}-{subject.split(':', 1)[1]} recorded by event {recorded['seq']} is missing")


# Which of a deposit's transfer steps must exist, by deposit status (for a non-zero amount).
EXPECTED_STEPS: dict[str, set[str]] = {
    DepositStatus.RECORDED: set(),
    DepositStatus.CREDITED: {STEP_CREDIT},
    DepositStatus.HELD: {STEP_HOLD},
    DepositStatus.RELEASED: {STEP_HOLD, STEP_POST},
    DepositStatus.REJECTED: {STEP_HOLD, STEP_VOID, STEP_REJECT_MOVE},
    DepositStatus.UNASSIGNED: set(),  # wrong network: never in the ledger, and never with a hold
}
HOLD_STATE_OF: dict[str, set[str]] = {
    DepositStatus.HELD: set(HoldState.UNRESOLVED),
    DepositStatus.RELEASED: {HoldState.RELEASED},
    DepositStatus.REJECTED: {HoldState.REJECTED},
}


def _check_deposits(session: Session, amounts: dict[str, int], holds: dict[int, Hold], report: VerifyReport) -> None:
    """Each decided deposit has exactly its status's transfers, of its amount: none missing, none extra."""
    for dep in session.exec(select(Deposit).order_by(col(Deposit.id))):
        if dep.status not in EXPECTED_STEPS:
            continue  # a status another area owns; nothing the ledger can say about it
        expected = EXPECTED_STEPS[dep.status] if dep.amount_raw > 0 else set()
        ids = {step: transfer_id(dep.chain, dep.tx_hash, dep.log_index, step) for step in STEPS}
        present = {step for step, tid in ids.items() if tid in amounts}
        if present != expected:
            report.add(f"deposit {dep.id} is {dep.status} but has transfers {sorted(present)}, not {sorted(expected)}")
        for step in sorted(present):
            if amounts[ids[step]] != dep.amount_raw:
                report.add(
                    f"deposit {dep.id}: amount {dep.amount_raw} but its {step} transfer moves {amounts[ids[step]]}"
                )
        hold = holds.get(dep.id or 0)
        allowed = HOLD_STATE_OF.get(dep.status)
        if (hold is None) != (allowed is None) or (hold is not None and allowed and hold.state not in allowed):
            report.add(f"deposit {dep.id} is {dep.status} but its hold is {hold.state if hold else 'absent'}")


def verify_ledger(session: Session, report: VerifyReport) -> VerifyReport:
    accounts = {acc.id: acc for acc in session.exec(select(LedgerAccount)) if acc.id is not None}
    problems: list[tuple[int, str]] = []
    totals, amounts = _check_transfers(session, accounts, problems)
    for _seq, problem in sorted(problems, key=lambda p: p[0]):
        report.add(problem)
    _check_accounts(accounts, totals, report)
    holds = list(session.exec(select(Hold).order_by(col(Hold.id))))
    _check_rows(report, holds, "hold", "hold H", ("state", "verdict"), _latest_states(session, "hold"))
    flags = list(session.exec(select(ReviewFlag).order_by(col(ReviewFlag.id))))
    _check_rows(report, flags, "flag", "flag F", ("state",), _latest_states(session, "flag"))
    _check_deposits(session, amounts, {h.deposit_id: h for h in holds}, report)
    return report
