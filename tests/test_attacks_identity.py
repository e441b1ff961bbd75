# ruff: noqa: F811  (the fixtures world and os_world are imported, and named as parameters)
"""Attacks on the two controls of docs/security.md: identities (review.identity) and the PostgreSQL roles and
guard triggers of `screener db roles`. Each test asserts what the document promises; a failing test is a hole.

The PostgreSQL tests reuse the world of tests/test_db_roles.py: a HOLD hold H (50,000 USDT: four-eyes by
amount, MIXER finding), an open review flag F, the roles installed, the worker/alice/bob/auditor logins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from screener.db import session_scope
from screener.ledger import store as ledger
from screener.ledger.rules import CUSTODY, POSTED, RETURN_PAYABLE, STEP_REJECT_MOVE
from screener.models.deposits import Deposit
from screener.review import service as review
from screener.screening.verdicts import Decision, Verdict
from tests.support import cli_fork
from tests.support.ledger_model import NOW, make_deposit
from tests.support.os_users import run_as
from tests.support.reliability import SCREENER, clean_env
from tests.test_db_roles import ALICE, BIG, BOB, FRESH, MIXER, WORKER, World, world  # noqa: F401 (fixture)
from tests.test_identity import os_world  # noqa: F401 (fixture)

# Roles and OS accounts are machine-wide: one such test at a time across xdist workers (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("global_identities")


def _refused(attack: Callable[[], object]) -> bool:
    """True when the database refused ``attack`` (and so rolled it back)."""
    try:
        attack()
    except sa.exc.DBAPIError:
        return True
    return False


def _as(w: World, role: str, body: Callable[[Session], object]) -> Callable[[], None]:
    """An attack: ``body`` in one transaction under ``role``'s login."""

    def run() -> None:
        engine = w.engine(role)
        try:
            with session_scope(engine) as s:
                body(s)
        finally:
            engine.dispose()

    return run


def _customer_posted(w: World) -> int:
    admin = sa.create_engine(w.admin_url)
    with admin.connect() as conn:
        value = conn.execute(
            sa.text("SELECT credits_posted FROM ledger_accounts WHERE name LIKE 'customer:%'")
        ).scalar_one()
    admin.dispose()
    return int(value)


def _hold_row(w: World, hold_id: int) -> dict[str, object]:
    admin = sa.create_engine(w.admin_url)
    with admin.connect() as conn:
        row = dict(conn.execute(sa.text("SELECT * FROM holds WHERE id = :i"), {"i": hold_id}).mappings().one())
    admin.dispose()
    return row


def _escalate_to_block(w: World) -> None:
    admin = sa.create_engine(w.admin_url)
    with session_scope(admin) as s:
        review.escalate_hold(s, w.hold_id, Verdict(Decision.BLOCK, (MIXER,)), NOW)
    admin.dispose()


def _post_as(w: World, role: str, actor: str) -> Callable[[], None]:
    """What `_post` does (post the pending credit, mark hold and deposit released), under ``role``'s login."""

    def body(s: Session) -> None:
        hold, deposit = review.lock_hold(s, w.hold_id)
        review._post(s, hold, deposit, actor, "alone", NOW)

    return _as(w, role, body)


def _sql(w: World, role: str, statement: str, **params: object) -> Callable[[], None]:
    return _as(w, role, lambda s: s.execute(sa.text(statement), params))


# -- PostgreSQL: four-eyes completed by one reviewer ----------------------------------------------------------


def test_reviewer_skips_four_eyes_with_her_own_threshold(world: World) -> None:
    """The four-eyes threshold is read from the caller's own config file, and the holds guard only checks the
    approver when the hold was awaiting_approval: alice writes `four_eyes_above_units` huge in her config and
    `holds release` posts the 50,000 USDT hold at once, open -> released, with nobody else."""
    cfg = world.dir / "alice-own.toml"
    cfg.write_text(world.config(ALICE).read_text().replace("10000", "1000000000000"))
    cmd = [str(SCREENER), "--config", str(cfg), "holds", "release", f"H-{world.hold_id}", "--reason", "alone"]
    res = cli_fork.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=120)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert _hold_row(world, world.hold_id)["state"] == "open"


def test_reviewer_releases_a_block_hold_alone_by_sql(world: World) -> None:
    """A BLOCK hold always needs four-eyes, but a reviewer with psql goes open -> released under her own
    login (and posts the credit): the guard's four-eyes check only runs when OLD.state = 'awaiting_approval'."""
    _escalate_to_block(world)
    before = _customer_posted(world)
    assert _refused(_post_as(world, ALICE, ALICE)), f"alice alone credited {_customer_posted(world) - before}"


def test_reviewer_releases_anonymously_as_system(world: World) -> None:
    """The system-clear branch accepts `worker OR reviewer`: alice sets resolved_by = 'system' on the four-eyes
    HOLD hold and posts it; no name, no second person."""
    assert _refused(_post_as(world, ALICE, review.SYSTEM_ACTOR)), _hold_row(world, world.hold_id)["resolved_by"]


def test_reviewer_turns_a_resolved_hold_into_a_second_payout(world: World) -> None:
    """Resolved holds are not final: the released/rejected branch never looks at OLD.state. After bob approves
    alice's request (customer credited), alice alone flips the hold to rejected under her login and posts a
    reject-move: custody pays return_payable as well, and bob's approval is overwritten."""
    assert world.cli(ALICE, "holds", "release", f"H-{world.hold_id}", "--reason", "ok").returncode == 0
    assert world.cli(BOB, "holds", "approve", f"H-{world.hold_id}").returncode == 0

    def flip(s: Session) -> None:
        hold, deposit = review.lock_hold(s, world.hold_id)
        move = ledger._spec(ledger.deposit_ref(deposit), STEP_REJECT_MOVE, POSTED, CUSTODY, RETURN_PAYABLE)
        ledger.record_transfer(s, move, ALICE, NOW)
        hold.state, hold.resolved_by, hold.rejected_to = "rejected", ALICE, RETURN_PAYABLE
        s.add(hold)
        s.flush()

    assert _refused(_as(world, ALICE, flip)), _hold_row(world, world.hold_id)


# -- PostgreSQL: a compromised worker -------------------------------------------------------------------------


def test_worker_downgrades_block_then_credits_as_system(world: World) -> None:
    """Verdict changes with the state unchanged pass as 'escalations', even downwards: the worker sets a BLOCK
    hold back to HOLD, then credits it as the system."""
    _escalate_to_block(world)
    downgraded = not _refused(_sql(world, WORKER, "UPDATE holds SET verdict = 'HOLD' WHERE id = :i", i=world.hold_id))
    credited = downgraded and not _refused(_post_as(world, WORKER, review.SYSTEM_ACTOR))
    assert not credited, _hold_row(world, world.hold_id)


def test_worker_credits_a_mixer_hold_as_system_without_any_rescreen(world: World) -> None:
    """The guard cannot tell 'a re-screen cleared it' from anything else: any plain HOLD (here a Tornado Cash
    finding, 50,000 USDT) is credited by the worker as 'system'."""
    assert _refused(_post_as(world, WORKER, review.SYSTEM_ACTOR)), _hold_row(world, world.hold_id)


def test_temp_table_named_holds_fools_the_transfers_guard(world: World) -> None:
    """screener_guard_transfers reads unqualified `holds` with the caller's search_path, where pg_temp comes
    first. The worker creates a TEMP TABLE holds saying 'released by system, HOLD', then posts the BLOCK hold's
    pending credit: the customer is credited while the real hold stays open and BLOCK."""
    _escalate_to_block(world)
    before = _customer_posted(world)

    def shadow(s: Session) -> None:
        s.execute(sa.text("CREATE TEMP TABLE holds AS SELECT * FROM public.holds"))
        s.execute(sa.text("UPDATE pg_temp.holds SET state = 'released', resolved_by = 'system', verdict = 'HOLD'"))
        deposit = s.get(Deposit, 1)
        assert deposit is not None
        ledger.post_hold(s, ledger.deposit_ref(deposit), "system", NOW)

    refused = _refused(_as(world, WORKER, shadow))
    row = _hold_row(world, world.hold_id)
    assert refused, f"credited {_customer_posted(world) - before}; real hold still {row['state']} {row['verdict']}"


def test_worker_credits_a_held_deposit_with_a_credit_step(world: World) -> None:
    """The transfers guard ignores every step but post/void/reject-move: the worker credits the held deposit
    with the ledger's own `credit` (custody -> customer, posted) and the hold never changes."""
    before = _customer_posted(world)

    def credit(s: Session) -> None:
        deposit = s.get(Deposit, 1)
        assert deposit is not None
        ledger.credit(s, ledger.deposit_ref(deposit), "system", NOW)

    assert _refused(_as(world, WORKER, credit)), f"credited {_customer_posted(world) - before}, hold open"


@pytest.mark.parametrize("role", [WORKER, ALICE])
def test_worker_and_reviewer_write_balances_directly(world: World, role: str) -> None:
    """UPDATE on ledger_accounts is granted to both groups: a balance changed with no transfer behind it."""
    assert _refused(_sql(world, role, BUMP, a=BIG))


BUMP = "UPDATE ledger_accounts SET credits_posted = credits_posted + :a WHERE name LIKE 'customer:%'"


def _credit_new_deposit_and(extra: str) -> Callable[[Session], None]:
    """The worker's own, legitimate credit of a new deposit, with ``extra`` SQL in the same transaction."""

    def body(s: Session) -> None:
        review.apply_verdict(s, make_deposit(9, 3_000_000), Verdict(Decision.CREDIT), FRESH, NOW)
        s.execute(sa.text(extra), {"a": BIG})

    return body


@pytest.mark.parametrize(
    "attack",
    [
        # a real credit in the same transaction does not cover more than itself
        "credit+bump",
        # force the deferred check early, then change the balance after it ran
        "immediate-then-bump",
        # move money between two accounts by editing both rows: debits and credits still balance
        "balanced-edit",
        # tell the guard to expect the money first (its helper is the owner's)
        "expect-then-bump",
        # open an account that already holds money
        "rich-account",
        # rename someone's account to mine
        "rename",
        # change a written transfer
        "edit-transfer",
    ],
)
def test_balances_only_move_with_their_transfers(world: World, attack: str) -> None:
    """Each way around the balances guard (screener_guard_accounts / screener_check_balances) is refused and
    changes nothing; the customer's posted balance is the same before and after."""
    before = _customer_posted(world)
    custody_edit = "UPDATE ledger_accounts SET debits_posted = debits_posted + :a WHERE name = 'custody'"
    attacks: dict[str, Callable[[], None]] = {
        "credit+bump": _as(world, WORKER, _credit_new_deposit_and(BUMP)),
        "immediate-then-bump": _as(
            world,
            WORKER,
            lambda s: [s.execute(sa.text(q), {"a": BIG}) for q in ("SET CONSTRAINTS ALL IMMEDIATE", BUMP)],
        ),
        "balanced-edit": _as(world, ALICE, lambda s: [s.execute(sa.text(q), {"a": BIG}) for q in (custody_edit, BUMP)]),
        "expect-then-bump": _sql(
            world,
            WORKER,
            "SELECT screener_expect((SELECT id FROM ledger_accounts WHERE name LIKE 'customer:%'), 0, 0, :a, 0)",
            a=BIG,
        ),
        "rich-account": _sql(
            world,
            WORKER,
            "INSERT INTO ledger_accounts (name, asset, normal, debits_posted, debits_pending, credits_posted, "
            "credits_pending, created_at) VALUES ('customer:mallory', 'USDT@ethereum', 'credit', 0, 0, :a, 0, now())",
            a=BIG,
        ),
        "rename": _sql(
            world, ALICE, "UPDATE ledger_accounts SET name = 'customer:mallory' WHERE name LIKE 'customer:%'"
        ),
        "edit-transfer": _sql(
            world, WORKER, "UPDATE ledger_transfers SET amount = amount + :a WHERE step = 'credit'", a=BIG
        ),
    }
    assert _refused(attacks[attack])
    assert _customer_posted(world) == before


def test_the_workers_own_credit_still_moves_the_balance(world: World) -> None:
    """The control for the attacks above: the same credit without the extra SQL commits."""
    before = _customer_posted(world)
    assert not _refused(_as(world, WORKER, _credit_new_deposit_and("SELECT :a")))
    assert _customer_posted(world) == before + 3_000_000


def test_worker_deletes_an_open_flag_and_a_hold(world: World) -> None:
    """The worker has DELETE on every table and no guard fires on DELETE: an open review flag (which only a
    reviewer may resolve) and the hold itself disappear."""
    flag_gone = not _refused(_sql(world, WORKER, "DELETE FROM review_flags WHERE id = :i", i=world.flag_id))
    hold_gone = not _refused(_sql(world, WORKER, "DELETE FROM holds WHERE id = :i", i=world.hold_id))
    assert not (flag_gone or hold_gone), (flag_gone, hold_gone)


# -- SQLite, review.identity = os -----------------------------------------------------------------------------


def test_os_mode_one_account_completes_four_eyes_with_a_private_declared_config(
    os_world: tuple[Path, object, int],
) -> None:
    """review.identity comes from whatever --config the caller passes: alice requests under `os`, then runs
    with her own copy of the config saying identity = "declared" and approves as scr_bob. The audit event is
    marked `declared`, but the credit is posted by one person."""
    cfg, _engine, hold_id = os_world
    label = f"H-{hold_id}"
    assert run_as(ALICE, cfg, "holds", "release", label, "--reason", "ok").returncode == 0
    own = cfg.with_name("alice-own.toml")
    own.write_text(cfg.read_text().replace("[review]\n", '[review]\nidentity = "declared"\n'))
    own.chmod(0o644)
    res = run_as(ALICE, own, "--operator", BOB, "holds", "approve", label)
    assert res.returncode == 2, (res.stdout, res.stderr)
