"""Concurrent reviewers on PostgreSQL: row locks make exactly one of two racing actions win."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import make_engine, session_scope, upgrade
from screener.ledger import store as ledger
from screener.ledger.audit import verify_chain
from screener.ledger.verify import verify_ledger
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.errors import ReviewError
from tests.support.ledger_model import (
    DECLARED_TOML,
    FRESH_LISTS_TOML,
    NOW,
    make_deposit,
    make_screenable,
    not_listed,
)

pytestmark = pytest.mark.postgres

SCREENER = Path(sys.executable).with_name("screener")
SETTINGS = Settings(review={"four_eyes_above_units": 10_000})
HOLD = Verdict(Decision.HOLD, (Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20),))
AMOUNT = 3_000_000


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _open_holds(engine: Engine, count: int) -> list[int]:
    ids = []
    with session_scope(engine) as s:
        make_screenable(s, NOW)
        for n in range(1, count + 1):
            hold = review.apply_verdict(s, make_deposit(n, AMOUNT), HOLD, SETTINGS, NOW)
            assert hold is not None and hold.id is not None
            ids.append(hold.id)
    return ids


def _customer_posted(engine: Engine) -> int:
    with session_scope(engine) as s:
        return sum(a.credits_posted for a in ledger.list_accounts(s, "acct-1"))


def _assert_verifies(engine: Engine) -> None:
    with session_scope(engine) as s:
        report = verify_ledger(s, verify_chain(s))
    assert report.ok, report.problems


def test_two_cli_processes_release_the_same_hold(pg_engine: Engine, pg_url: str, tmp_path: Path) -> None:
    hold_ids = _open_holds(pg_engine, 3)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{pg_url}"\n' + FRESH_LISTS_TOML + DECLARED_TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    for hold_id in hold_ids:
        procs = [
            subprocess.Popen(
                [*(str(SCREENER), "--config", str(cfg), "--operator", who), *release_args(hold_id, who)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for who in ("alice", "bob")
        ]
        outputs = [p.communicate(timeout=120) for p in procs]  # communicate closes the pipes
        results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
        codes = sorted(code for code, _, _ in results)
        assert codes[0] == 0 and codes[1] != 0, results
        loser_err = next(err for code, _, err in results if code != 0).strip().splitlines()
        assert loser_err == [
            f"error: cannot release hold H-{hold_id}: it is already released; "
            "a hold is resolved once; nothing was changed"
        ]
    assert _customer_posted(pg_engine) == 3 * AMOUNT
    _assert_verifies(pg_engine)


def release_args(hold_id: int, who: str) -> list[str]:
    return ["holds", "release", str(hold_id), "--reason", f"{who} checked"]


def _waiting_on_lock(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


@pytest.mark.parametrize("rival", ["release", "reject"])
def test_second_reviewer_waits_for_the_first_then_is_refused(pg_engine: Engine, rival: str) -> None:
    """Deterministic: the first transaction holds the row locks until we let it commit."""
    [hold_id] = _open_holds(pg_engine, 1)
    outcome: dict[str, BaseException | str] = {}

    def second() -> None:
        try:
            with session_scope(pg_engine) as s:
                if rival == "release":
                    review.release_hold(s, hold_id, "me too", "bob", SETTINGS, NOW, screen_now=not_listed)
                else:
                    review.reject_hold(s, hold_id, "no", "return", "bob", NOW, screen_now=not_listed)
            outcome["second"] = "won"
        except BaseException as exc:  # handed back to the test thread
            outcome["second"] = exc

    with session_scope(pg_engine) as s:
        review.release_hold(s, hold_id, "first", "alice", SETTINGS, NOW, screen_now=not_listed)
        rival_thread = threading.Thread(target=second)
        rival_thread.start()
        # Bounded wait until the rival is blocked on our row lock (proves the lock, not a lucky order).
        for _ in range(1000):
            if _waiting_on_lock(pg_engine) >= 1:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the second reviewer never waited on a row lock")
    rival_thread.join(timeout=60)
    assert not rival_thread.is_alive()
    assert isinstance(outcome["second"], ReviewError)
    assert "already released" in str(outcome["second"])
    assert _customer_posted(pg_engine) == AMOUNT
    _assert_verifies(pg_engine)
