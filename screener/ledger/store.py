"""Ledger persistence: applies the pure rules of screener.ledger.rules to account and transfer rows.

Everything runs in the caller's transaction (flush, never commit). Balances change in the same transaction as
the transfer that moves them; each new transfer writes a ``ledger.transfer`` audit event carrying its digest,
so `screener audit verify` can tell an edited transfer or balance from one the ledger wrote.

Concurrency: ``record_transfer`` first locks the audit head (the project's first lock, see screener.ledger.audit),
then the two accounts with ``SELECT ... FOR UPDATE`` in id order, and only then looks for an existing transfer
with the same id, so a concurrent retry sees the committed first attempt and becomes a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from screener.db import insert_ignore
from screener.ledger import audit
from screener.ledger.rules import (
    CUSTODY,
    PENDING,
    POST_PENDING,
    POSTED,
    REJECT_TARGETS,
    STEP_CREDIT,
    STEP_HOLD,
    STEP_POST,
    STEP_REJECT_MOVE,
    STEP_VOID,
    STEPS,
    VOID_PENDING,
    Balance,
    TransferSpec,
    apply,
    asset_code,
    check_resolution,
    check_retry,
    customer_account,
    normal_side,
    transfer_digest,
    transfer_id,
    validate_spec,
)
from screener.models.deposits import Deposit
from screener.models.ledger import LedgerAccount, LedgerTransfer
from screener_base.clock import ensure_utc
from screener_base.errors import LedgerError


@dataclass(frozen=True)
class DepositRef:
    """What the ledger needs to know about a deposit."""

    chain: str
    tx_hash: str
    log_index: int
    account: str
    token_symbol: str
    amount: int

    @property
    def asset(self) -> str:
        return asset_code(self.token_symbol, self.chain)

    @property
    def customer(self) -> str:
        return customer_account(self.account)

    def tid(self, step: str) -> str:
        return transfer_id(self.chain, self.tx_hash, self.log_index, step)


def deposit_ref(deposit: Deposit) -> DepositRef:
    return DepositRef(
        chain=deposit.chain,
        tx_hash=deposit.tx_hash,
        log_index=deposit.log_index,
        account=deposit.account,
        token_symbol=deposit.token_symbol,
        amount=deposit.amount_raw,
    )


@dataclass(frozen=True)
class TransferOutcome:
    transfer: LedgerTransfer
    spec: TransferSpec
    created: bool  # False: an identical transfer already existed (idempotent retry)


def balance_of(account: LedgerAccount) -> Balance:
    return Balance(
        normal=account.normal,
        debits_posted=account.debits_posted,
        debits_pending=account.debits_pending,
        credits_posted=account.credits_posted,
        credits_pending=account.credits_pending,
    )


def _ensure_accounts(session: Session, names: list[str], asset: str, now: datetime) -> None:
    """Create missing accounts; ON CONFLICT DO NOTHING keeps a concurrent creator harmless."""
    table = LedgerAccount.__table__  # type: ignore[attr-defined]
    for name in names:
        values = {
            "name": name,
            "asset": asset,
            "normal": normal_side(name),
            "debits_posted": 0,
            "debits_pending": 0,
            "credits_posted": 0,
            "credits_pending": 0,
            "created_at": ensure_utc(now),
        }
        insert_ignore(session, table, values, ["name", "asset"])


def lock_accounts(session: Session, names: list[str], asset: str, now: datetime) -> dict[str, LedgerAccount]:
    """Create if needed and row-lock the named accounts of ``asset``, always in id order (no deadlock cycles)."""
    _ensure_accounts(session, names, asset, now)
    stmt = (
        select(LedgerAccount)
        .where(LedgerAccount.asset == asset, col(LedgerAccount.name).in_(names))
        .order_by(col(LedgerAccount.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {acc.name: acc for acc in session.exec(stmt)}
    for name in names:
        if found[name].normal != normal_side(name):
            raise LedgerError(f"account {name} {asset} has the wrong normal side", "repair the account row")
    return found


def spec_of(session: Session, row: LedgerTransfer) -> TransferSpec:
    debit = session.get(LedgerAccount, row.debit_account_id)
    credit = session.get(LedgerAccount, row.credit_account_id)
    if debit is None or credit is None:
        raise LedgerError(f"transfer {row.id} names a missing account", "run `screener audit verify`")
    return TransferSpec(
        id=row.id,
        step=row.step,
        flags=row.flags,
        debit=debit.name,
        credit=credit.name,
        asset=row.asset,
        amount=row.amount,
        pending_id=row.pending_id,
    )


def _fresh_transfer(session: Session, tid: str) -> LedgerTransfer | None:
    stmt = select(LedgerTransfer).where(LedgerTransfer.id == tid).execution_options(populate_existing=True)
    return session.exec(stmt).first()


def _resolver_of(session: Session, pending_id: str) -> str | None:
    stmt = select(LedgerTransfer.id).where(LedgerTransfer.pending_id == pending_id)
    return session.exec(stmt).first()


def _check_pending(session: Session, spec: TransferSpec) -> None:
    if spec.pending_id is None:
        return
    pending_row = _fresh_transfer(session, spec.pending_id)
    pending = spec_of(session, pending_row) if pending_row is not None else None
    check_resolution(spec, pending, _resolver_of(session, spec.pending_id))


def record_transfer(session: Session, spec: TransferSpec, actor: str, now: datetime) -> TransferOutcome:
    """Apply one transfer: a no-op if the identical transfer exists, IdempotencyConflict if it differs."""
    validate_spec(spec)
    now = ensure_utc(now)
    audit.lock_head(session)
    accounts = lock_accounts(session, [spec.debit, spec.credit], spec.asset, now)
    existing = _fresh_transfer(session, spec.id)
    if existing is not None:
        check_retry(spec_of(session, existing), spec)
        return TransferOutcome(existing, spec, created=False)
    _check_pending(session, spec)
    debit, credit = accounts[spec.debit], accounts[spec.credit]
    new_debit, new_credit = apply(balance_of(debit), balance_of(credit), spec)
    for row, bal in ((debit, new_debit), (credit, new_credit)):
        row.debits_posted, row.debits_pending = bal.debits_posted, bal.debits_pending
        row.credits_posted, row.credits_pending = bal.credits_posted, bal.credits_pending
        session.add(row)
    assert debit.id is not None and credit.id is not None
    transfer = LedgerTransfer(
        id=spec.id,
        step=spec.step,
        flags=spec.flags,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        asset=spec.asset,
        amount=spec.amount,
        pending_id=spec.pending_id,
        created_at=now,
    )
    session.add(transfer)
    session.flush()
    payload = dict(spec.comparable(), created_at=audit.format_at(now), digest=transfer_digest(spec, now))
    audit.append(session, "ledger.transfer", f"transfer:{spec.id}", payload, actor, now)
    return TransferOutcome(transfer, spec, created=True)


def _spec(ref: DepositRef, step: str, flags: str, debit: str, credit: str, pending: str | None = None) -> TransferSpec:
    return TransferSpec(
        id=ref.tid(step),
        step=step,
        flags=flags,
        debit=debit,
        credit=credit,
        asset=ref.asset,
        amount=ref.amount,
        pending_id=pending,
    )


def _check_amount(ref: DepositRef) -> bool:
    """True when the deposit moves money; zero-value transfers (address poisoning) get no ledger entry."""
    if isinstance(ref.amount, bool) or not isinstance(ref.amount, int) or ref.amount < 0:
        raise LedgerError(f"deposit {ref.tid('credit')} has amount {ref.amount!r}", "amounts are int base units >= 0")
    return ref.amount > 0


def credit(session: Session, ref: DepositRef, actor: str, now: datetime) -> TransferOutcome | None:
    """Posted credit: custody (debit) -> customer (credit)."""
    if not _check_amount(ref):
        return None
    return record_transfer(session, _spec(ref, STEP_CREDIT, POSTED, CUSTODY, ref.customer), actor, now)


def hold(session: Session, ref: DepositRef, actor: str, now: datetime) -> TransferOutcome | None:
    """Pending credit: reserved for the customer, not available until posted."""
    if not _check_amount(ref):
        return None
    return record_transfer(session, _spec(ref, STEP_HOLD, PENDING, CUSTODY, ref.customer), actor, now)


def post_hold(session: Session, ref: DepositRef, actor: str, now: datetime) -> TransferOutcome | None:
    """Release: post the pending credit."""
    if not _check_amount(ref):
        return None
    spec = _spec(ref, STEP_POST, POST_PENDING, CUSTODY, ref.customer, ref.tid(STEP_HOLD))
    return record_transfer(session, spec, actor, now)


def void_hold(session: Session, ref: DepositRef, target: str, actor: str, now: datetime) -> list[TransferOutcome]:
    """Reject: void the pending credit, then move the funds to ``blocked`` or ``return_payable``."""
    if target not in REJECT_TARGETS:
        raise LedgerError(f"unknown reject target {target!r}", f"use one of {', '.join(REJECT_TARGETS)}")
    if not _check_amount(ref):
        return []
    void = _spec(ref, STEP_VOID, VOID_PENDING, CUSTODY, ref.customer, ref.tid(STEP_HOLD))
    move = _spec(ref, STEP_REJECT_MOVE, POSTED, CUSTODY, target)
    return [record_transfer(session, void, actor, now), record_transfer(session, move, actor, now)]


def transfers_for(session: Session, ref: DepositRef) -> list[TransferSpec]:
    """The deposit's transfers in step order (credit, hold, post, void, reject-move)."""
    ids = [ref.tid(step) for step in STEPS]
    rows = session.exec(select(LedgerTransfer).where(col(LedgerTransfer.id).in_(ids)))
    by_id = {row.id: spec_of(session, row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def list_accounts(session: Session, name: str | None = None) -> list[LedgerAccount]:
    stmt = select(LedgerAccount).order_by(col(LedgerAccount.asset), col(LedgerAccount.name))
    if name is not None:
        stmt = stmt.where(sa.or_(col(LedgerAccount.name) == name, col(LedgerAccount.name) == customer_account(name)))
    return list(session.exec(stmt))
