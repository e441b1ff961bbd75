"""Review service on SQLite and PostgreSQL: verdicts into the ledger, holds, four-eyes, rejects, flags, SLA."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import session_scope
from screener.ledger import store as ledger
from screener.models.deposits import Deposit
from screener.models.ledger import Hold, ReviewFlag
from screener.review import service as review
from screener.review.rules import DepositStatus, HoldState
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ReviewError
from tests.support.ledger_model import NOW, make_deposit, not_listed, snapshot

SETTINGS = Settings(review={"sla_h": 24, "four_eyes_above_units": 10_000})
OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20, 7, "Garantex", ("CYBER2",))
MIXER = Finding("mixer.direct", Severity.REVIEW, "initiator", "0x" + "44" * 20, detail="Tornado 100 ETH")
HOLD = Verdict(Decision.HOLD, (MIXER,), list_version_id=6)
BLOCK = Verdict(Decision.BLOCK, (OFAC,), list_version_id=7)
CREDIT = Verdict(Decision.CREDIT, (), list_version_id=6)


def _decide(engine: Engine, deposit: Deposit, verdict: Verdict) -> tuple[int, int | None]:
    with session_scope(engine) as s:
        hold = review.apply_verdict(s, deposit, verdict, SETTINGS, NOW)
        assert deposit.id is not None
        return deposit.id, hold.id if hold else None


def _customer(engine: Engine, asset: str = "USDT@ethereum") -> tuple[int, int, int, int]:
    with session_scope(engine) as s:
        for a in ledger.list_accounts(s, "acct-1"):
            if a.asset == asset:
                return (a.debits_posted, a.debits_pending, a.credits_posted, a.credits_pending)
    return (0, 0, 0, 0)


def _hold(engine: Engine, hold_id: int) -> Hold:
    with session_scope(engine) as s:
        return review.get_hold(s, hold_id)


def test_credit_verdict_posts_a_credit(engine: Engine) -> None:
    dep_id, hold_id = _decide(engine, make_deposit(1, 5_000_000), CREDIT)
    assert hold_id is None
    assert _customer(engine) == (0, 0, 5_000_000, 0)
    with session_scope(engine) as s:
        dep = s.get(Deposit, dep_id)
        assert dep is not None
        assert (dep.status, dep.verdict, dep.list_version_id) == (DepositStatus.CREDITED, "CREDIT", 6)


def test_hold_verdict_opens_a_pending_credit_and_hold(engine: Engine) -> None:
    dep_id, hold_id = _decide(engine, make_deposit(1, 5_000_000), HOLD)
    assert hold_id is not None
    assert _customer(engine) == (0, 0, 0, 5_000_000)
    hold = _hold(engine, hold_id)
    assert hold.state == HoldState.OPEN and hold.verdict == "HOLD"
    assert ensure_utc(hold.due_at) == NOW + timedelta(hours=24)
    with session_scope(engine) as s:
        dep = s.get(Deposit, dep_id)
        assert dep is not None and dep.status == DepositStatus.HELD
        assert dep.findings == [MIXER.to_json()]


def test_apply_verdict_is_idempotent(engine: Engine) -> None:
    dep = make_deposit(1)
    _, hold_id = _decide(engine, dep, BLOCK)
    before = snapshot(engine)
    with session_scope(engine) as s:
        again = review.apply_verdict(s, s.get(Deposit, dep.id), BLOCK, SETTINGS, NOW + timedelta(hours=1))
        assert again is not None and again.id == hold_id
    assert snapshot(engine) == before


def test_fail_closed_credit_with_blocking_finding_is_blocked(engine: Engine) -> None:
    _, hold_id = _decide(engine, make_deposit(1), Verdict(Decision.CREDIT, (OFAC,)))
    assert hold_id is not None and _hold(engine, hold_id).verdict == "BLOCK"
    assert _customer(engine)[2] == 0


def test_fail_closed_unknown_initiator_cannot_credit(engine: Engine) -> None:
    dep_id, hold_id = _decide(engine, make_deposit(1, initiator=None), CREDIT)
    assert hold_id is not None and _hold(engine, hold_id).verdict == "HOLD"
    with session_scope(engine) as s:
        dep = s.get(Deposit, dep_id)
        assert dep is not None and dep.findings[-1]["rule_id"] == "unavailable"


def test_release_small_hold_posts_at_once(engine: Engine) -> None:
    _, hold_id = _decide(engine, make_deposit(1, 5_000_000), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        hold = review.release_hold(
            s, hold_id, "false positive: exchange hot wallet", "alice", SETTINGS, NOW, screen_now=not_listed
        )
        assert hold.state == HoldState.RELEASED and hold.resolved_by == "alice"
    assert _customer(engine) == (0, 0, 5_000_000, 0)


@pytest.mark.parametrize(
    ("verdict", "amount"),
    [(BLOCK, 1), (HOLD, 10_000 * 10**6)],  # BLOCK at any amount; HOLD at exactly the threshold
    ids=["block", "threshold"],
)
def test_four_eyes_needs_a_second_operator(engine: Engine, verdict: Verdict, amount: int) -> None:
    _, hold_id = _decide(engine, make_deposit(1, amount), verdict)
    assert hold_id is not None
    with session_scope(engine) as s:
        hold = review.release_hold(s, hold_id, "cleared by compliance", "alice", SETTINGS, NOW, screen_now=not_listed)
        assert hold.state == HoldState.AWAITING_APPROVAL
    assert _customer(engine) == (0, 0, 0, amount)
    before = snapshot(engine)
    with pytest.raises(ReviewError, match="cannot also approve"), session_scope(engine) as s:
        review.approve_hold(s, hold_id, " ALICE ", NOW, screen_now=not_listed)
    with pytest.raises(ReviewError, match="already awaits approval"), session_scope(engine) as s:
        review.release_hold(s, hold_id, "again", "bob", SETTINGS, NOW, screen_now=not_listed)
    assert snapshot(engine) == before
    with session_scope(engine) as s:
        hold = review.approve_hold(s, hold_id, "bob", NOW, screen_now=not_listed)
        assert (hold.state, hold.release_requested_by, hold.resolved_by) == (HoldState.RELEASED, "alice", "bob")
    assert _customer(engine) == (0, 0, amount, 0)


@pytest.mark.parametrize(
    ("approver", "error"),
    [
        ("\uff41\uff4c\uff49\uff43\uff45", "cannot also approve"),  # fullwidth "alice": the same person after NFKC
        ("alice\u200b", "characters outside"),  # zero-width space
        ("\u0430lice", "characters outside"),  # Cyrillic a
    ],
    ids=["fullwidth", "zero-width", "cyrillic"],
)
def test_lookalike_operator_cannot_approve_own_release(engine: Engine, approver: str, error: str) -> None:
    _, hold_id = _decide(engine, make_deposit(1), BLOCK)
    assert hold_id is not None
    with session_scope(engine) as s:
        review.release_hold(s, hold_id, "cleared by compliance", "alice", SETTINGS, NOW, screen_now=not_listed)
    before = snapshot(engine)
    with pytest.raises(ReviewError, match=error), session_scope(engine) as s:
        review.approve_hold(s, hold_id, approver, NOW, screen_now=not_listed)
    assert snapshot(engine) == before


def test_just_below_threshold_needs_no_second_operator(engine: Engine) -> None:
    _, hold_id = _decide(engine, make_deposit(1, 10_000 * 10**6 - 1), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        assert (
            review.release_hold(s, hold_id, "ok", "alice", SETTINGS, NOW, screen_now=not_listed).state
            == HoldState.RELEASED
        )


def test_big_amount_above_2_63_held_and_released_exactly(engine: Engine) -> None:
    amount = 10**27
    _, hold_id = _decide(engine, make_deposit(1, amount, chain="bsc", decimals=18), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        review.release_hold(s, hold_id, "ok", "alice", SETTINGS, NOW, screen_now=not_listed)
    with session_scope(engine) as s:
        review.approve_hold(s, hold_id, "bob", NOW, screen_now=not_listed)
    assert _customer(engine, "USDT@bsc") == (0, 0, amount, 0)


@pytest.mark.parametrize(
    ("verdict", "to", "account"), [(BLOCK, "blocked", "blocked"), (HOLD, "return", "return_payable")]
)
def test_reject_voids_and_moves(engine: Engine, verdict: Verdict, to: str, account: str) -> None:
    _, hold_id = _decide(engine, make_deposit(1, 900), verdict)
    assert hold_id is not None
    with session_scope(engine) as s:
        hold = review.reject_hold(s, hold_id, "confirmed match", to, "carol", NOW, screen_now=not_listed)
        assert (hold.state, hold.rejected_to) == (HoldState.REJECTED, account)
    assert _customer(engine) == (0, 0, 0, 0)
    with session_scope(engine) as s:
        [target] = ledger.list_accounts(s, account)
        assert target.credits_posted == 900


def test_block_cannot_be_returned(engine: Engine) -> None:
    _, hold_id = _decide(engine, make_deposit(1), BLOCK)
    assert hold_id is not None
    before = snapshot(engine)
    with pytest.raises(ReviewError, match="cannot be returned"), session_scope(engine) as s:
        review.reject_hold(s, hold_id, "send it back", "return", "carol", NOW, screen_now=not_listed)
    assert snapshot(engine) == before


def test_resolved_hold_refuses_every_further_action(engine: Engine) -> None:
    _, hold_id = _decide(engine, make_deposit(1), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        review.release_hold(s, hold_id, "ok", "alice", SETTINGS, NOW, screen_now=not_listed)
    before = snapshot(engine)
    actions = [
        lambda s: review.release_hold(s, hold_id, "again", "bob", SETTINGS, NOW, screen_now=not_listed),
        lambda s: review.approve_hold(s, hold_id, "bob", NOW, screen_now=not_listed),
        lambda s: review.reject_hold(s, hold_id, "late", "return", "bob", NOW, screen_now=not_listed),
        lambda s: review.escalate_hold(s, hold_id, BLOCK, NOW),
    ]
    for action in actions:
        with pytest.raises(ReviewError, match="already released"), session_scope(engine) as s:
            action(s)
    assert snapshot(engine) == before


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_reason_or_operator_refused(engine: Engine, bad: str | None) -> None:
    _, hold_id = _decide(engine, make_deposit(1), HOLD)
    assert hold_id is not None
    before = snapshot(engine)
    with pytest.raises(ReviewError, match="reason is missing"), session_scope(engine) as s:
        review.release_hold(s, hold_id, bad, "alice", SETTINGS, NOW, screen_now=not_listed)  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="operator is missing"), session_scope(engine) as s:
        review.reject_hold(s, hold_id, "r", "return", bad, NOW, screen_now=not_listed)  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="does not exist"), session_scope(engine) as s:
        review.note_hold(s, 999, "hello", "alice", NOW)
    assert snapshot(engine) == before


def test_escalate_makes_four_eyes_apply(engine: Engine) -> None:
    dep_id, hold_id = _decide(engine, make_deposit(1, 100), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        hold = review.escalate_hold(s, hold_id, BLOCK, NOW)
        assert hold.verdict == "BLOCK"
        dep = s.get(Deposit, dep_id)
        assert dep is not None and dep.verdict == "BLOCK" and dep.list_version_id == 7
        assert [f["rule_id"] for f in dep.findings] == ["mixer.direct", "ofac.sdn"]
    before = snapshot(engine)
    with session_scope(engine) as s:  # not stricter: no-op
        review.escalate_hold(s, hold_id, HOLD, NOW)
    assert snapshot(engine) == before
    with session_scope(engine) as s:
        assert (
            review.release_hold(s, hold_id, "ok", "alice", SETTINGS, NOW, screen_now=not_listed).state
            == HoldState.AWAITING_APPROVAL
        )


def test_stricter_verdict_later_escalates_or_flags_and_weaker_changes_nothing(engine: Engine) -> None:
    held = make_deposit(1)
    credited = make_deposit(2)
    _, hold_id = _decide(engine, held, HOLD)
    _decide(engine, credited, CREDIT)
    with session_scope(engine) as s:
        review.apply_verdict(s, s.get(Deposit, held.id), BLOCK, SETTINGS, NOW)
        review.apply_verdict(s, s.get(Deposit, credited.id), BLOCK, SETTINGS, NOW)
    assert hold_id is not None and _hold(engine, hold_id).verdict == "BLOCK"
    with session_scope(engine) as s:
        [flag] = review.list_flags(s)
        assert (flag.deposit_id, flag.rule_id) == (credited.id, "ofac.sdn")
    before = snapshot(engine)
    with session_scope(engine) as s:
        review.apply_verdict(s, s.get(Deposit, held.id), CREDIT, SETTINGS, NOW)
    assert snapshot(engine) == before


def test_review_flag_is_idempotent_and_resolves_once(engine: Engine) -> None:
    dep = make_deposit(1)
    _decide(engine, dep, CREDIT)
    with session_scope(engine) as s:
        d = s.get(Deposit, dep.id)
        assert d is not None
        first = review.raise_review_flag(s, d, [MIXER, OFAC], "list v7 added the sender", NOW)
        again = review.raise_review_flag(s, d, [OFAC], "list v8 again", NOW)
        assert first.id == again.id and first.rule_id == "ofac.sdn"
        other = review.raise_review_flag(s, d, [MIXER], "mixer", NOW)
        assert other.id != first.id
        flag_id = first.id
    assert flag_id is not None
    with session_scope(engine) as s:
        assert review.resolve_flag(s, flag_id, "reported to OFAC", "alice", NOW).state == "resolved"
    before = snapshot(engine)
    with pytest.raises(ReviewError, match="already resolved"), session_scope(engine) as s:
        review.resolve_flag(s, flag_id, "again", "bob", NOW)
    assert snapshot(engine) == before
    assert _customer(engine)[2] == 1_000_000  # a flag moves no money


def test_flag_on_held_deposit_is_refused(engine: Engine) -> None:
    dep = make_deposit(1)
    _decide(engine, dep, HOLD)
    with pytest.raises(ReviewError, match="escalate_hold"), session_scope(engine) as s:
        review.raise_review_flag(s, s.get(Deposit, dep.id), [OFAC], "x", NOW)
    with session_scope(engine) as s:
        assert s.exec(select(ReviewFlag)).all() == []


def test_overdue_holds_and_sla_breach_recorded_once(engine: Engine) -> None:
    _, early = _decide(engine, make_deposit(1), HOLD)
    _, done = _decide(engine, make_deposit(2), HOLD)
    assert early is not None and done is not None
    with session_scope(engine) as s:
        review.release_hold(s, done, "ok", "alice", SETTINGS, NOW, screen_now=not_listed)
    due = NOW + timedelta(hours=24)
    with session_scope(engine) as s:
        assert review.overdue_holds(s, due - timedelta(microseconds=1)) == []
        assert [h.id for h in review.overdue_holds(s, due)] == [early]
        assert review.mark_sla_breached(s, early, due) is True
        assert review.mark_sla_breached(s, early, due) is False
    hold = _hold(engine, early)
    assert hold.state == HoldState.OPEN  # a hold never expires into a credit
    assert _customer(engine) == (0, 0, 1_000_000, 1_000_000)  # only the released one is posted


def test_notes_and_annotations_go_to_history(engine: Engine) -> None:
    from screener.review.queries import hold_detail

    _, hold_id = _decide(engine, make_deposit(1), HOLD)
    assert hold_id is not None
    with session_scope(engine) as s:
        review.note_hold(s, hold_id, "called the customer", "alice", NOW)
        review.annotate_hold(s, hold_id, "matching list entry removed in version 9; not auto-released", "system", NOW)
    with session_scope(engine) as s:
        detail = hold_detail(s, hold_id)
        kinds = [(e.kind, e.actor) for e in detail.events]
    assert kinds == [
        ("ledger.transfer", "system"),
        ("hold.opened", "system"),
        ("hold.note", "alice"),
        ("hold.annotation", "system"),
    ]
