"""Cross-checks of the ledger against the audit chain, for `screener audit verify`.

The chain proves the events were not edited; these checks prove the ledger rows still match the events:
every transfer row has exactly the digest its ``ledger.transfer`` event recorded, every such event has its
row, every account balance equals the sum of its transfers, every asset sums to zero, and every hold's state
and verdict are those its latest audit event recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from screener.audit import VerifyReport
from screener.ledger_rules import (
    CREDIT_NORMAL,
    PENDING,
    POST_PENDING,
    POSTED,
    Balance,
    TransferSpec,
    check_balance,
    transfer_digest,
)
from screener.models.ledger import AuditEvent, Hold, LedgerAccount, LedgerTransfer
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
) -> dict[int, dict[str, int]]:
    from screener.audit import format_at

    claims = _claims(session, problems)
    totals: dict[int, dict[str, int]] = {}
    for row in session.exec(select(LedgerTransfer).order_by(col(LedgerTransfer.id))):
        _accumulate(totals, row)
        debit, credit = accounts.get(row.debit_account_id), accounts.get(row.credit_account_id)
        claim = claims.pop(row.id, None)
        if claim is None:
            problems.append((0, f"transfer {row.id} has no ledger.transfer audit event (written outside the ledger?)"))
            continue
        if debit is None or credit is None:
            problems.append((claim.seq, f"transfer {row.id} (event {claim.seq}) names a missing account"))
            continue
        spec = TransferSpec(row.id, row.step, row.flags, debit.name, credit.name, row.asset, row.amount, row.pending_id)
        if transfer_digest(spec, row.created_at) != claim.payload.get("digest"):
            diff = _describe_diff(claim.payload, spec, format_at(row.created_at))
            problems.append((claim.seq, f"transfer {row.id} no longer matches event {claim.seq}: {diff}"))
    for tid, claim in claims.items():
        problems.append((claim.seq, f"transfer {tid} recorded by event {claim.seq} is missing from the ledger"))
    return totals


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


def _check_holds(session: Session, report: VerifyReport) -> None:
    latest: dict[str, dict[str, object]] = {}
    stmt = select(AuditEvent).where(col(AuditEvent.subject).like("hold:%")).order_by(col(AuditEvent.seq))
    for event in session.exec(stmt):
        if "state" in event.payload:
            latest[event.subject] = {"seq": event.seq, **event.payload}
    for hold in session.exec(select(Hold).order_by(col(Hold.id))):
        recorded = latest.get(f"hold:{hold.id}")
        if recorded is None:
            report.add(f"hold H-{hold.id} has no audit event")
            continue
        for name in ("state", "verdict"):
            if recorded.get(name) != getattr(hold, name):
                report.add(
                    f"hold H-{hold.id}: {name} is {getattr(hold, name)!r} but event {recorded['seq']} "
                    f"recorded {recorded.get(name)!r}"
                )


def verify_ledger(session: Session, report: VerifyReport) -> VerifyReport:
    accounts = {acc.id: acc for acc in session.exec(select(LedgerAccount)) if acc.id is not None}
    problems: list[tuple[int, str]] = []
    totals = _check_transfers(session, accounts, problems)
    for _seq, problem in sorted(problems, key=lambda p: p[0]):
        report.add(problem)
    _check_accounts(accounts, totals, report)
    _check_holds(session, report)
    return report
