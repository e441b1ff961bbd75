"""Ledger rules and persistence on SQLite and PostgreSQL: two-phase transfers, idempotency, invariants."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.ledger import store as ledger
from screener.ledger.rules import (
    CREDIT_NORMAL,
    Balance,
    TransferSpec,
    apply,
    sum_per_asset,
    transfer_id,
)
from screener.ledger.store import DepositRef
from screener.models.ledger import LedgerAccount
from screener_base.errors import IdempotencyConflict, LedgerError
from tests.support.ledger_model import NOW, snapshot

BIG = 10**27  # above 2**63: 18-decimal tokens on BSC


def _ref(n: int = 1, amount: int = 1_000_000, chain: str = "bsc", token: str = "USDT") -> DepositRef:
    return DepositRef(chain, "0x" + f"{n:064x}", 3, "acct-1", token, amount)


def _balances(engine: Engine) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    with session_scope(engine) as s:
        return {
            (a.name, a.asset): (a.debits_posted, a.debits_pending, a.credits_posted, a.credits_pending)
            for a in ledger.list_accounts(s)
        }


def _assert_balanced(engine: Engine) -> None:
    with session_scope(engine) as s:
        pairs = [(a.asset, ledger.balance_of(a)) for a in ledger.list_accounts(s)]
    assert pairs, "expected accounts"
    assert all(v == 0 for v in sum_per_asset(pairs).values())


def test_credit_posts_custody_to_customer(engine: Engine) -> None:
    ref = _ref(amount=BIG)
    with session_scope(engine) as s:
        out = ledger.credit(s, ref, "system", NOW)
        assert out is not None and out.created and out.spec.id == transfer_id("bsc", ref.tx_hash, 3, "credit")
    assert _balances(engine) == {
        ("custody", "USDT@bsc"): (BIG, 0, 0, 0),
        ("customer:acct-1", "USDT@bsc"): (0, 0, BIG, 0),
    }
    _assert_balanced(engine)


def test_retry_with_same_id_is_a_noop(engine: Engine) -> None:
    ref = _ref()
    with session_scope(engine) as s:
        ledger.credit(s, ref, "system", NOW)
    before = snapshot(engine)
    with session_scope(engine) as s:
        out = ledger.credit(s, ref, "system", NOW)
        assert out is not None and not out.created
    assert snapshot(engine) == before


def test_same_id_other_fields_is_a_conflict_and_changes_nothing(engine: Engine) -> None:
    with session_scope(engine) as s:
        ledger.credit(s, _ref(amount=5), "system", NOW)
    before = snapshot(engine)
    with pytest.raises(IdempotencyConflict, match="amount '5' != '6'"), session_scope(engine) as s:
        ledger.credit(s, _ref(amount=6), "system", NOW)
    assert snapshot(engine) == before


def test_hold_then_post_moves_pending_to_posted_exactly(engine: Engine) -> None:
    ref = _ref(amount=BIG + 1)
    with session_scope(engine) as s:
        ledger.hold(s, ref, "system", NOW)
    assert _balances(engine)[("customer:acct-1", "USDT@bsc")] == (0, 0, 0, BIG + 1)
    with session_scope(engine) as s:
        ledger.post_hold(s, ref, "alice", NOW)
    assert _balances(engine) == {
        ("custody", "USDT@bsc"): (BIG + 1, 0, 0, 0),
        ("customer:acct-1", "USDT@bsc"): (0, 0, BIG + 1, 0),
    }
    _assert_balanced(engine)


@pytest.mark.parametrize("target", ["blocked", "return_payable"])
def test_void_moves_funds_to_target(engine: Engine, target: str) -> None:
    ref = _ref(amount=777)
    with session_scope(engine) as s:
        ledger.hold(s, ref, "system", NOW)
    with session_scope(engine) as s:
        outs = ledger.void_hold(s, ref, target, "alice", NOW)
        assert [o.spec.step for o in outs] == ["void", "reject-move"]
    assert _balances(engine) == {
        ("custody", "USDT@bsc"): (777, 0, 0, 0),
        ("customer:acct-1", "USDT@bsc"): (0, 0, 0, 0),
        (target, "USDT@bsc"): (0, 0, 777, 0),
    }
    _assert_balanced(engine)


def test_pending_resolves_exactly_once(engine: Engine) -> None:
    ref = _ref()
    with session_scope(engine) as s:
        ledger.hold(s, ref, "system", NOW)
        ledger.post_hold(s, ref, "alice", NOW)
    before = snapshot(engine)
    with pytest.raises(LedgerError, match="already resolved"), session_scope(engine) as s:
        ledger.void_hold(s, ref, "blocked", "bob", NOW)
    assert snapshot(engine) == before
    with session_scope(engine) as s:  # the identical post again is a retry, not a second resolution
        out = ledger.post_hold(s, ref, "alice", NOW)
        assert out is not None and not out.created
    assert snapshot(engine) == before


def test_post_without_pending_is_refused(engine: Engine) -> None:
    with pytest.raises(LedgerError, match="does not exist"), session_scope(engine) as s:
        ledger.post_hold(s, _ref(), "alice", NOW)
    with session_scope(engine) as s:
        assert ledger.list_accounts(s) == []


def test_assets_never_mix(engine: Engine) -> None:
    with session_scope(engine) as s:
        ledger.credit(s, _ref(1, 10, chain="bsc"), "system", NOW)
        ledger.credit(s, _ref(2, 20, chain="tron"), "system", NOW)
        ledger.credit(s, _ref(3, 30, chain="tron", token="USDC"), "system", NOW)
    got = _balances(engine)
    assert got[("customer:acct-1", "USDT@bsc")][2] == 10
    assert got[("customer:acct-1", "USDT@tron")][2] == 20
    assert got[("customer:acct-1", "USDC@tron")][2] == 30


def test_zero_amount_has_no_ledger_entry_and_negative_is_refused(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert ledger.credit(s, _ref(amount=0), "system", NOW) is None
        assert ledger.list_accounts(s) == []
    with pytest.raises(LedgerError, match="int base units"), session_scope(engine) as s:
        ledger.hold(s, _ref(amount=-1), "system", NOW)


def test_transfers_for_lists_steps_in_order(engine: Engine) -> None:
    ref = _ref()
    with session_scope(engine) as s:
        ledger.hold(s, ref, "system", NOW)
        ledger.void_hold(s, ref, "return_payable", "bob", NOW)
        assert [t.step for t in ledger.transfers_for(s, ref)] == ["hold", "void", "reject-move"]


def test_account_balances_are_exact_columns(engine: Engine) -> None:
    with session_scope(engine) as s:
        ledger.credit(s, _ref(amount=2**256 - 1), "system", NOW)
    with session_scope(engine) as s:
        acc = s.get(LedgerAccount, 2)
        assert acc is not None and acc.credits_posted == 2**256 - 1


# ---------------------------------------------------------------- pure rules


def _spec(flags: str, amount: int = 5, pending: str | None = None) -> TransferSpec:
    return TransferSpec("t", "x", flags, "custody", "customer:a", "USDT@bsc", amount, pending)


def test_credit_normal_account_may_not_go_negative() -> None:
    customer = Balance(CREDIT_NORMAL, credits_posted=4)
    spec = TransferSpec("t", "x", "posted", "customer:a", "blocked", "USDT@bsc", 5)
    with pytest.raises(LedgerError, match="would go negative"):
        apply(customer, Balance(CREDIT_NORMAL), spec)
    exact = TransferSpec("t", "x", "posted", "customer:a", "blocked", "USDT@bsc", 4)
    new_customer, new_blocked = apply(customer, Balance(CREDIT_NORMAL), exact)
    assert (new_customer.available, new_blocked.posted) == (0, 4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_spec("posted", amount=0), "not positive"),
        (_spec("posted", amount=-3), "not positive"),
        (_spec("posted", amount=True), "int base units"),  # type: ignore[arg-type]
        (_spec("posted", amount=1.0), "int base units"),  # type: ignore[arg-type]
        (_spec("weird"), "unknown flags"),
        (_spec("post_pending"), "pending_id goes with"),
        (_spec("posted", pending="p"), "pending_id goes with"),
        (TransferSpec("t", "x", "posted", "custody", "custody", "USDT@bsc", 1), "both custody"),
    ],
)
def test_malformed_transfers_are_refused(spec: TransferSpec, message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        apply(Balance("debit"), Balance(CREDIT_NORMAL), spec)
