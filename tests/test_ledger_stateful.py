"""Hypothesis state machine: the ledger and review service on SQLite against the in-memory model.

Random deposits (credits and holds, amounts past 2**63), releases, four-eyes approvals, rejects, escalations,
verdict retries, raw transfer retries with the same ids and conflicting ones: balances equal the model, every
asset sums to zero, no pending transfer resolves twice, hold states match, and the audit chain verifies.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlmodel import Session, func, select

from screener.db import make_engine, session_scope, upgrade
from screener.ledger import store as ledger
from screener.ledger.audit import verify_chain
from screener.ledger.rules import TransferSpec
from screener.ledger.verify import verify_ledger
from screener.models.deposits import Deposit
from screener.models.ledger import Hold, LedgerTransfer
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.errors import IdempotencyConflict, LedgerError, ReviewError
from tests.support.ledger_model import NOW, ModelDeposit, ModelRejected, ReviewModel, make_deposit, not_listed

THRESHOLD_UNITS = 1000
SETTINGS = Settings(review={"four_eyes_above_units": THRESHOLD_UNITS})
ASSETS = [("ethereum", "USDT", 6), ("bsc", "USDT", 18), ("tron", "USDC", 6)]
FINDING = {
    Decision.HOLD: Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20),
    Decision.BLOCK: Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20),
}
AMOUNTS = st.one_of(
    st.integers(1, 10**12),  # around the 6-decimal four-eyes threshold (10**9)
    st.integers(10**20, 10**30),  # 18 decimals, above 2**63
    st.sampled_from([1, 2**63 - 1, 2**63, 2**63 + 1, 10**27]),
)

_template: Path | None = None


def _template_db() -> Path:
    """One upgraded SQLite file, copied for each example (running Alembic each time would be slow)."""
    global _template
    if _template is None:
        path = Path(tempfile.mkdtemp(prefix="ledger-sm-")) / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        _template = path
    return _template


def _verdict(decision: str) -> Verdict:
    d = Decision(decision)
    return Verdict(d, (FINDING[d],) if d in FINDING else ())


@dataclass
class Entry:
    model: ModelDeposit
    deposit_id: int
    hold_id: int | None


class LedgerMachine(RuleBasedStateMachine):
    deposits = Bundle("deposits")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-ex-"))
        shutil.copy(_template_db(), self.dir / "s.db")
        self.engine = make_engine(f"sqlite:///{self.dir / 's.db'}")
        self.model = ReviewModel(threshold_units=THRESHOLD_UNITS)
        self.count = 0
        self.entries: list[Entry] = []

    def teardown(self) -> None:
        try:
            with session_scope(self.engine) as s:
                report = verify_ledger(s, verify_chain(s))
            assert report.ok, report.problems
        finally:
            self.engine.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _attempt(self, entry: Entry, model_op: Callable[[], object], real_op: Callable[[Session], object]) -> None:
        """Run the model and the real thing; both refuse (and change nothing), or both succeed."""
        saved_model, saved_deposit = copy.deepcopy(self.model), dict(entry.model.__dict__)
        try:
            model_op()
            expected: str | None = None
        except ModelRejected as exc:
            self.model, expected = saved_model, exc.why
            entry.model.__dict__.update(saved_deposit)
        try:
            with session_scope(self.engine) as s:
                real_op(s)
            got: Exception | None = None
        except (ReviewError, LedgerError) as exc:
            got = exc
        assert (expected is None) == (got is None), (expected, got)
        if expected == "conflict":
            assert isinstance(got, IdempotencyConflict)

    @rule(target=deposits, amount=AMOUNTS, asset=st.sampled_from(ASSETS), account=st.sampled_from(["a", "b"]),
          decision=st.sampled_from(["CREDIT", "HOLD", "BLOCK"]))  # fmt: skip
    def new_deposit(self, amount: int, asset: tuple[str, str, int], account: str, decision: str) -> Entry:
        chain, token, decimals = asset
        self.count += 1
        dep = make_deposit(self.count, amount, chain=chain, token=token, decimals=decimals, account=account)
        key = f"{chain}:{dep.tx_hash}:{dep.log_index}"
        mdep = ModelDeposit(key, f"{token}@{chain}", f"customer:{account}", amount, decimals)
        self.model.apply_verdict(mdep, decision)
        with session_scope(self.engine) as s:
            hold = review.apply_verdict(s, dep, _verdict(decision), SETTINGS, NOW)
            assert dep.id is not None
            entry = Entry(mdep, dep.id, hold.id if hold else None)
        self.entries.append(entry)
        return entry

    @rule(entry=deposits, weaker=st.booleans())
    def retry_verdict(self, entry: Entry, weaker: bool) -> None:
        decision = "CREDIT" if weaker else (entry.model.decision or "CREDIT")
        with session_scope(self.engine) as s:
            review.apply_verdict(s, s.get(Deposit, entry.deposit_id), _verdict(decision), SETTINGS, NOW)

    @rule(entry=deposits)
    def escalate(self, entry: Entry) -> None:
        if entry.model.hold_state in ("open", "awaiting_approval"):
            if entry.model.decision != "BLOCK" and entry.model.hold_state == "awaiting_approval":
                # A change of verdict voids the pending request: four-eyes is asked again on the new evidence.
                entry.model.hold_state, entry.model.requested_by = "open", None
            entry.model.decision = "BLOCK"
        with session_scope(self.engine) as s:
            review.apply_verdict(s, s.get(Deposit, entry.deposit_id), _verdict("BLOCK"), SETTINGS, NOW)

    def _hold_id(self, entry: Entry) -> int:
        return entry.hold_id or 10**9  # an id that does not exist: the service must refuse

    @rule(entry=deposits, operator=st.sampled_from(["alice", "bob", "ALICE"]))
    def release(self, entry: Entry, operator: str) -> None:
        self._attempt(
            entry,
            lambda: self.model.release(entry.model, operator),
            lambda s: review.release_hold(
                s, self._hold_id(entry), "ok", operator, SETTINGS, NOW, screen_now=not_listed
            ),
        )

    @rule(entry=deposits, operator=st.sampled_from(["alice", "bob", "ALICE"]))
    def approve(self, entry: Entry, operator: str) -> None:
        self._attempt(
            entry,
            lambda: self.model.approve(entry.model, operator),
            lambda s: review.approve_hold(s, self._hold_id(entry), operator, NOW, screen_now=not_listed),
        )

    @rule(entry=deposits, to=st.sampled_from(["blocked", "return"]))
    def reject(self, entry: Entry, to: str) -> None:
        target = "blocked" if to == "blocked" else "return_payable"
        self._attempt(
            entry,
            lambda: self.model.reject(entry.model, target),
            lambda s: review.reject_hold(s, self._hold_id(entry), "no", to, "carol", NOW, screen_now=not_listed),
        )

    def _specs(self, entry: Entry) -> list[TransferSpec]:
        with session_scope(self.engine) as s:
            dep = s.get(Deposit, entry.deposit_id)
            assert dep is not None
            return ledger.transfers_for(s, ledger.deposit_ref(dep))

    @rule(entry=deposits, data=st.data(), conflict=st.booleans())
    def raw_retry(self, entry: Entry, data: st.DataObject, conflict: bool) -> None:
        """Resubmit one of the deposit's transfers: identical is a no-op, changed is a conflict."""
        specs = self._specs(entry)
        if not specs:
            return
        spec = data.draw(st.sampled_from(specs))
        if conflict:
            spec = dataclasses.replace(spec, amount=spec.amount + 1)
        changed = dataclasses.replace(self.model.ledger.transfers[spec.id], amount=spec.amount)
        self._attempt(
            entry,
            lambda: self.model.ledger.submit(spec.id, changed),
            lambda s: ledger.record_transfer(s, spec, "retrier", NOW),
        )

    @invariant()
    def balances_match_model(self) -> None:
        with session_scope(self.engine) as s:
            real = {
                (a.name, a.asset): [a.debits_posted, a.debits_pending, a.credits_posted, a.credits_pending]
                for a in ledger.list_accounts(s)
            }
            resolutions = s.exec(
                select(LedgerTransfer.pending_id, func.count())
                .where(LedgerTransfer.pending_id.is_not(None))  # type: ignore[union-attr]
                .group_by(LedgerTransfer.pending_id)
            ).all()
            holds = {h.deposit_id: (h.state, h.verdict) for h in s.exec(select(Hold))}
        assert real == self.model.ledger.accounts
        assert all(v == 0 for v in self.model.ledger.sums_per_asset().values())
        assert all(count == 1 for _pid, count in resolutions)
        assert len(resolutions) == len(self.model.ledger.resolved)
        expected_holds = {
            e.deposit_id: (e.model.hold_state, e.model.decision) for e in self.entries if e.model.hold_state
        }
        assert holds == expected_holds


def _run(max_examples: int, steps: int) -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_ledger_matches_model() -> None:
    _run(max_examples=20, steps=25)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 400 examples of 60 steps: about 7 minutes on a slow 2-core machine, past the default 300 s
def test_ledger_matches_model_long() -> None:
    _run(max_examples=400, steps=60)
