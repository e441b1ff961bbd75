"""Pure double-entry rules after TigerBeetle's two-phase transfers: data in, data out, no I/O.

Accounts are keyed by (name, asset) with asset = f"{token_symbol}@{chain}" (decimals differ per chain, so
USDT on BSC and USDT on Tron are different assets that never mix).

Which side is normal:
- ``custody`` is debit-normal: the on-chain clearing account of the service's deposit wallets. A debit records
  tokens that arrived on chain; it is the single inflow side of every deposit.
- ``customer:<account>``, ``blocked`` (sanctioned property, reported not returned) and ``return_payable``
  (owed back to the sender) are credit-normal liabilities and must never go negative: posted + pending debits
  may not exceed posted credits.

Transfer kinds (flags): ``posted`` moves money at once; ``pending`` reserves it (a hold: pending credit to the
customer); ``post_pending`` turns a pending transfer into a posted one (release); ``void_pending`` cancels it
(reject, followed by a posted move to ``blocked`` or ``return_payable``). A pending transfer resolves once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from screener_base.clock import ensure_utc
from screener_base.errors import IdempotencyConflict, LedgerError

CUSTODY = "custody"
BLOCKED = "blocked"
RETURN_PAYABLE = "return_payable"
CUSTOMER_PREFIX = "customer:"

DEBIT_NORMAL = "debit"
CREDIT_NORMAL = "credit"

POSTED = "posted"
PENDING = "pending"
POST_PENDING = "post_pending"
VOID_PENDING = "void_pending"
FLAGS = (POSTED, PENDING, POST_PENDING, VOID_PENDING)

# Steps of one deposit's life; each gives one transfer id.
STEP_CREDIT = "credit"
STEP_HOLD = "hold"
STEP_POST = "post"
STEP_VOID = "void"
STEP_REJECT_MOVE = "reject-move"
STEPS = (STEP_CREDIT, STEP_HOLD, STEP_POST, STEP_VOID, STEP_REJECT_MOVE)

REJECT_TARGETS = (BLOCKED, RETURN_PAYABLE)


def asset_code(token_symbol: str, chain: str) -> str:
    return f"{token_symbol}@{chain}"


def customer_account(account: str) -> str:
    """The ledger account of a customer; LedgerError for a deposit without one (an unassigned deposit)."""
    if not account.strip():
        raise LedgerError(
            "this deposit has no customer account (an unassigned deposit: sent on a chain where its address is "
            "not registered), so nothing is credited or held for it",
            "nothing was changed; settle it outside screener",
        )
    return f"{CUSTOMER_PREFIX}{account}"


def normal_side(name: str) -> str:
    """Custody is debit-normal; every other account (customers, blocked, return_payable) is credit-normal."""
    return DEBIT_NORMAL if name == CUSTODY else CREDIT_NORMAL


def transfer_id(chain: str, tx_hash: str, log_index: int, step: str) -> str:
    """Deterministic idempotency key: the same deposit step always gets the same id."""
    if step not in STEPS:
        raise LedgerError(f"unknown transfer step {step!r}", f"use one of {', '.join(STEPS)}")
    return f"{chain}:{tx_hash}:{log_index}:{step}"


@dataclass(frozen=True)
class Balance:
    normal: str
    debits_posted: int = 0
    debits_pending: int = 0
    credits_posted: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        """Posted balance on the account's normal side."""
        net = self.credits_posted - self.debits_posted
        return net if self.normal == CREDIT_NORMAL else -net

    @property
    def available(self) -> int:
        """What a credit-normal account may spend: posted credits less posted and pending debits."""
        if self.normal == CREDIT_NORMAL:
            return self.credits_posted - self.debits_posted - self.debits_pending
        return self.debits_posted - self.credits_posted - self.credits_pending


@dataclass(frozen=True)
class TransferSpec:
    """What a transfer says; two specs with the same id must be equal or the retry is a conflict."""

    id: str
    step: str
    flags: str
    debit: str  # account name
    credit: str  # account name
    asset: str
    amount: int
    pending_id: str | None = None

    def comparable(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "step": self.step,
            "flags": self.flags,
            "debit": self.debit,
            "credit": self.credit,
            "asset": self.asset,
            "amount": str(self.amount),
            "pending_id": self.pending_id,
        }


def validate_spec(spec: TransferSpec) -> None:
    if isinstance(spec.amount, bool) or not isinstance(spec.amount, int):
        raise LedgerError(f"transfer {spec.id}: amount must be int base units", "convert the amount to an int")
    if spec.amount <= 0:
        raise LedgerError(f"transfer {spec.id}: amount {spec.amount} is not positive", "transfer a positive amount")
    if spec.flags not in FLAGS:
        raise LedgerError(f"transfer {spec.id}: unknown flags {spec.flags!r}", f"use one of {', '.join(FLAGS)}")
    if spec.debit == spec.credit:
        raise LedgerError(f"transfer {spec.id}: debit and credit are both {spec.debit}", "use two accounts")
    if (spec.flags in (POST_PENDING, VOID_PENDING)) != (spec.pending_id is not None):
        raise LedgerError(
            f"transfer {spec.id}: pending_id goes with post_pending/void_pending only", "fix the transfer flags"
        )


def check_retry(existing: TransferSpec, spec: TransferSpec) -> None:
    """Same id and same fields is a harmless retry; same id with other fields is an IdempotencyConflict."""
    old, new = existing.comparable(), spec.comparable()
    if old == new:
        return
    diffs = ", ".join(f"{k} {old[k]!r} != {new[k]!r}" for k in old if old[k] != new[k])
    raise IdempotencyConflict(
        f"transfer {spec.id} already exists with other fields ({diffs})",
        "a retry must repeat the original transfer exactly; investigate the caller",
    )


def check_resolution(spec: TransferSpec, pending: TransferSpec | None, resolved_by: str | None) -> None:
    """A post/void must match an unresolved pending transfer exactly (accounts, asset, amount)."""
    if pending is None:
        raise LedgerError(f"transfer {spec.id}: pending transfer {spec.pending_id} does not exist", "hold first")
    if pending.flags != PENDING:
        raise LedgerError(f"transfer {spec.id}: {pending.id} is not a pending transfer", "resolve a pending one")
    if resolved_by is not None:
        raise LedgerError(
            f"pending transfer {pending.id} was already resolved by {resolved_by}",
            "a hold resolves exactly once; nothing was changed",
        )
    same = (pending.debit, pending.credit, pending.asset, pending.amount)
    if (spec.debit, spec.credit, spec.asset, spec.amount) != same:
        raise LedgerError(f"transfer {spec.id} does not match pending {pending.id}", "resolve it with its own fields")


def apply(debit: Balance, credit: Balance, spec: TransferSpec) -> tuple[Balance, Balance]:
    """New balances of the debit and credit accounts after ``spec``; raises LedgerError if a rule breaks."""
    validate_spec(spec)
    amount = spec.amount
    if spec.flags == POSTED:
        new_debit = replace(debit, debits_posted=debit.debits_posted + amount)
        new_credit = replace(credit, credits_posted=credit.credits_posted + amount)
    elif spec.flags == PENDING:
        new_debit = replace(debit, debits_pending=debit.debits_pending + amount)
        new_credit = replace(credit, credits_pending=credit.credits_pending + amount)
    else:
        posting = spec.flags == POST_PENDING
        new_debit = replace(
            debit,
            debits_pending=debit.debits_pending - amount,
            debits_posted=debit.debits_posted + (amount if posting else 0),
        )
        new_credit = replace(
            credit,
            credits_pending=credit.credits_pending - amount,
            credits_posted=credit.credits_posted + (amount if posting else 0),
        )
    for name, bal in ((spec.debit, new_debit), (spec.credit, new_credit)):
        check_balance(name, spec.asset, bal)
    return new_debit, new_credit


def check_balance(name: str, asset: str, bal: Balance) -> None:
    if min(bal.debits_posted, bal.debits_pending, bal.credits_posted, bal.credits_pending) < 0:
        raise LedgerError(f"account {name} {asset} would have a negative total", "this transfer cannot apply")
    if bal.normal == CREDIT_NORMAL and bal.debits_posted + bal.debits_pending > bal.credits_posted:
        raise LedgerError(
            f"account {name} {asset} would go negative (debits exceed posted credits)",
            "credit-normal accounts may not be overdrawn; nothing was changed",
        )


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def transfer_digest(spec: TransferSpec, created_at: datetime) -> str:
    """sha256 of a transfer's fields; audit events carry it so any later edit of the row shows."""
    body = dict(spec.comparable(), created_at=ensure_utc(created_at).isoformat(timespec="microseconds"))
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def sum_per_asset(balances: list[tuple[str, Balance]]) -> dict[str, int]:
    """Per asset, all debits minus all credits (posted and pending); double entry keeps each at zero."""
    totals: dict[str, int] = {}
    for asset, bal in balances:
        net = bal.debits_posted + bal.debits_pending - bal.credits_posted - bal.credits_pending
        totals[asset] = totals.get(asset, 0) + net
    return totals
