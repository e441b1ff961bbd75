"""An in-memory model of the ledger and of hold review, written independently of screener.ledger.rules,
plus small helpers the ledger/review/audit tests share (deposit factory, table snapshots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.models.deposits import Deposit
from screener.screening.verdicts import Decision, Verdict

# ---------------------------------------------------------------- the model


class ModelRejected(Exception):
    """The model says the real ledger must refuse this operation (and change nothing)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # "conflict" | "resolved" | "no_pending" | "state" | "self_approval" | "blocked_return"


@dataclass
class ModelTransfer:
    debit: str
    credit: str
    asset: str
    amount: int
    flags: str
    pending_id: str | None = None


@dataclass
class LedgerModel:
    """(name, asset) -> [debits_posted, debits_pending, credits_posted, credits_pending]."""

    accounts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    transfers: dict[str, ModelTransfer] = field(default_factory=dict)
    resolved: dict[str, str] = field(default_factory=dict)  # pending id -> resolving transfer id

    def _acc(self, name: str, asset: str) -> list[int]:
        return self.accounts.setdefault((name, asset), [0, 0, 0, 0])

    def submit(self, tid: str, t: ModelTransfer) -> bool:
        """Apply; True if new, False if an identical retry; ModelRejected if the ledger must refuse."""
        if tid in self.transfers:
            if self.transfers[tid] != t:
                raise ModelRejected("conflict")
            return False
        if t.pending_id is not None:
            pending = self.transfers.get(t.pending_id)
            if pending is None or pending.flags != "pending":
                raise ModelRejected("no_pending")
            if t.pending_id in self.resolved:
                raise ModelRejected("resolved")
        d, c, a = self._acc(t.debit, t.asset), self._acc(t.credit, t.asset), t.amount
        if t.flags == "posted":
            d[0] += a
            c[2] += a
        elif t.flags == "pending":
            d[1] += a
            c[3] += a
        else:
            d[1] -= a
            c[3] -= a
            if t.flags == "post_pending":
                d[0] += a
                c[2] += a
            assert t.pending_id is not None
            self.resolved[t.pending_id] = tid
        self.transfers[tid] = t
        return True

    def sums_per_asset(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (_name, asset), (dp, dq, cp, cq) in self.accounts.items():
            totals[asset] = totals.get(asset, 0) + dp + dq - cp - cq
        return totals


@dataclass
class ModelDeposit:
    key: str  # chain:tx:log
    asset: str
    customer: str
    amount: int
    decimals: int
    decision: str | None = None
    hold_state: str | None = None
    requested_by: str | None = None


@dataclass
class ReviewModel:
    """Holds and deposits on top of the ledger model, following the review rules in the brief."""

    threshold_units: int
    ledger: LedgerModel = field(default_factory=LedgerModel)

    def _t(self, dep: ModelDeposit, debit: str, credit: str, flags: str, pending: str | None = None) -> ModelTransfer:
        return ModelTransfer(debit, credit, dep.asset, dep.amount, flags, pending)

    def apply_verdict(self, dep: ModelDeposit, decision: str) -> None:
        if dep.decision is not None:
            return  # first decision stands (only same-or-weaker verdicts are generated)
        dep.decision = decision
        if decision == "CREDIT":
            self.ledger.submit(f"{dep.key}:credit", self._t(dep, "custody", dep.customer, "posted"))
        else:
            self.ledger.submit(f"{dep.key}:hold", self._t(dep, "custody", dep.customer, "pending"))
            dep.hold_state = "open"

    def four_eyes(self, dep: ModelDeposit) -> bool:
        return dep.decision == "BLOCK" or dep.amount >= self.threshold_units * 10**dep.decimals

    def release(self, dep: ModelDeposit, operator: str) -> None:
        if dep.hold_state != "open":
            raise ModelRejected("state")
        if self.four_eyes(dep):
            dep.hold_state, dep.requested_by = "awaiting_approval", operator
            return
        self._post(dep)

    def approve(self, dep: ModelDeposit, operator: str) -> None:
        if dep.hold_state != "awaiting_approval":
            raise ModelRejected("state")
        if (dep.requested_by or "").casefold() == operator.casefold():
            raise ModelRejected("self_approval")
        self._post(dep)

    def _post(self, dep: ModelDeposit) -> None:
        pid = f"{dep.key}:hold"
        self.ledger.submit(f"{dep.key}:post", self._t(dep, "custody", dep.customer, "post_pending", pid))
        dep.hold_state = "released"

    def reject(self, dep: ModelDeposit, target: str) -> None:
        if dep.hold_state not in ("open", "awaiting_approval"):
            raise ModelRejected("state")
        if dep.decision == "BLOCK" and target != "blocked":
            raise ModelRejected("blocked_return")
        pid = f"{dep.key}:hold"
        self.ledger.submit(f"{dep.key}:void", self._t(dep, "custody", dep.customer, "void_pending", pid))
        self.ledger.submit(f"{dep.key}:reject-move", self._t(dep, "custody", target, "posted"))
        dep.hold_state = "rejected"


# ---------------------------------------------------------------- shared test helpers

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEDGER_TABLES = (
    "ledger_accounts",
    "ledger_transfers",
    "holds",
    "review_flags",
    "audit_events",
    "audit_head",
    "deposits",
)


def make_deposit(
    n: int,
    amount: int = 1_000_000,
    *,
    chain: str = "ethereum",
    token: str = "USDT",
    decimals: int = 6,
    account: str = "acct-1",
    initiator: str | None = "0x" + "33" * 20,
) -> Deposit:
    return Deposit(
        chain=chain,
        tx_hash="0x" + f"{n:064x}",
        log_index=n % 7,
        block_number=100 + n,
        block_hash="0x" + "cd" * 32,
        token_symbol=token,
        token_contract="0x" + "ee" * 20,
        decimals=decimals,
        amount_raw=amount,
        from_address="0x" + "11" * 20,
        initiator=initiator,
        to_address="0x" + "22" * 20,
        account=account,
        observed_at=NOW,
    )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger-area tables (plus deposits), for before/after comparisons."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in LEDGER_TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
            out[table] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def not_listed(session: object, deposit: object) -> Verdict:
    """A fresh screen that finds nothing (``screen_now`` of the review service). Used where the test is about
    four-eyes, states and the ledger, not the list; the credit gate against the real list and real refreshes is
    tests/test_attacks_crediting.py."""
    del session, deposit
    return Verdict(Decision.CREDIT, (), 1)


# A [lists] table for configs of CLI tests whose releases pass the credit gate: the bundled list counts as fresh.
FRESH_LISTS_TOML = "\n[lists]\nmax_list_age_h = 87600\n"
# One OS account plays several reviewers in a CLI test: names are declared (never in a real deployment).
DECLARED_TOML = '\n[review]\nidentity = "declared"\n'


def make_screenable(session: Any, now: datetime, chains: tuple[str, ...] = ("ethereum",)) -> None:
    """What the real credit gate needs to let a release through: an active list (the bundle) and indexes that
    cover every block of ``chains``. For tests whose subject is not screening."""
    from screener.lists import store as lists_store
    from tests.support.screening_env import cover_indexes

    lists_store.ensure_active(session, now)
    cover_indexes(session, now, *chains)
