"""Audit chain and ledger cross-checks on SQLite and PostgreSQL: every kind of tampering is named."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import make_engine, session_scope, upgrade
from screener.ledger import audit
from screener.ledger.audit import VerifyReport, verify_chain
from screener.ledger.verify import verify_ledger
from screener.models.ledger import AuditEvent
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.errors import AuditError
from tests.support.index_facts import seed_index_facts
from tests.support.ledger_model import NOW, make_deposit, not_listed, snapshot
from tests.support.tamper import drop_append_only

SETTINGS = Settings(review={"four_eyes_above_units": 10_000})
HOLD = Verdict(Decision.HOLD, (Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20),))


def _verify(engine: Engine) -> VerifyReport:
    with session_scope(engine) as s:
        return verify_ledger(s, verify_chain(s))


def _seed(engine: Engine) -> None:
    """Events: 1 credit transfer, 2 deposit.credited, 3 hold transfer, 4 hold.opened, 5 post, 6 hold.released."""
    with session_scope(engine) as s:
        review.apply_verdict(s, make_deposit(1, 10**27), Verdict(Decision.CREDIT), SETTINGS, NOW)
        hold = review.apply_verdict(s, make_deposit(2, 500), HOLD, SETTINGS, NOW)
        assert hold is not None and hold.id == 1
    with session_scope(engine) as s:
        review.release_hold(s, 1, "looked fine", "alice", SETTINGS, NOW, screen_now=not_listed)


def _exec(engine: Engine, sql: str, **params: object) -> None:
    """Tampering as the schema's owner (PostgreSQL), or with the file (SQLite: drops the append-only triggers)."""
    with engine.begin() as conn:
        drop_append_only(conn)
        assert conn.execute(sa.text(sql), params).rowcount == 1


def test_clean_chain_verifies(engine: Engine) -> None:
    _seed(engine)
    report = _verify(engine)
    assert report.ok, report.problems
    assert (report.events, report.head_seq) == (6, 6)
    with session_scope(engine) as s:
        kinds = [e.kind for e in s.exec(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert kinds == [
        "ledger.transfer",
        "deposit.credited",
        "ledger.transfer",
        "hold.opened",
        "ledger.transfer",
        "hold.released",
    ]


def test_event_hash_covers_every_field() -> None:
    base = ("0" * 64, 1, "k", "s", "a", NOW, {"x": "1"})
    h = audit.event_hash(*base)
    for i, other in enumerate(["1" * 64, 2, "k2", "s2", "a2", NOW.replace(microsecond=1), {"x": "2"}]):
        changed = list(base)
        changed[i] = other
        assert audit.event_hash(*changed) != h


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE audit_events SET payload = :p WHERE seq = 4", r"^event 4 \(hold.opened\) was altered"),
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 6", r"^event 6 \(hold.released\) was altered"),
        ("DELETE FROM audit_events WHERE seq = 3", r"^event 3 is missing"),
        ("DELETE FROM audit_events WHERE seq = 6", r"^event 6 is missing: the head says"),
    ],
    ids=["payload", "actor", "deleted-middle", "deleted-last"],
)
def test_tampered_audit_rows_are_named(engine: Engine, tamper: str, expected: str) -> None:
    _seed(engine)
    _exec(engine, tamper, p='{"hold": "H-1", "state": "released"}')
    report = _verify(engine)
    assert not report.ok
    assert re.search(expected, report.problems[0]), report.problems


def _transfer_id(n: int, step: str) -> str:
    dep = make_deposit(n)
    return f"{dep.chain}:{dep.tx_hash}:{dep.log_index}:{step}"


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            "UPDATE ledger_transfers SET amount = :v WHERE id = :t",
            r"^transfer .*:hold no longer matches event 3: amount '501' \(recorded '500'\)",
        ),
        (
            "UPDATE ledger_accounts SET credits_posted = :v WHERE name = 'customer:acct-1'",
            r"customer:acct-1 USDT@ethereum: credits_posted is 501 but its transfers sum to",
        ),
        ("UPDATE holds SET state = 'open' WHERE id = 1", r"^hold H-1: state is 'open' but event 6 recorded 'released'"),
        ("DELETE FROM ledger_transfers WHERE id = :t2", r"^transfer .*:post recorded by event 5 is missing"),
        ("DELETE FROM holds WHERE id = 1", r"^hold H-1 recorded by event 6 is missing"),
        (
            "UPDATE deposits SET status = 'credited' WHERE id = 2",
            r"^deposit 2 is credited but has transfers \['hold', 'post'\], not \['credit'\]",
        ),
        ("UPDATE deposits SET amount_raw = :v WHERE id = 2", r"^deposit 2: amount 501 but its hold transfer moves 500"),
    ],
    ids=[
        "transfer-amount",
        "account-balance",
        "hold-state",
        "deleted-transfer",
        "deleted-hold",
        "deposit-status",
        "deposit-amount",
    ],
)
def test_tampered_ledger_rows_are_named(engine: Engine, tamper: str, expected: str) -> None:
    _seed(engine)
    _exec(engine, tamper, v=501, t=_transfer_id(2, "hold"), t2=_transfer_id(2, "post"))
    report = _verify(engine)
    assert not report.ok
    assert re.search(expected, report.problems[0]), report.problems


def test_transfer_inserted_outside_the_ledger_is_named(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ledger_transfers (id, step, flags, debit_account_id, credit_account_id, asset, amount,"
                " created_at) VALUES ('forged', 'credit', 'posted', 1, 2, 'USDT@ethereum', :a, :at)"
            ),
            {"a": 5 if engine.dialect.name == "postgresql" else "5", "at": NOW},
        )
    problems = _verify(engine).problems
    assert problems[0] == "transfer forged has no ledger.transfer audit event (written outside the ledger?)"
    assert any("credits_posted" in p for p in problems)  # and the balances no longer sum from the transfers


def test_append_refuses_bad_input_and_missing_head(engine: Engine) -> None:
    with pytest.raises(AuditError, match="actor is empty"), session_scope(engine) as s:
        audit.append(s, "k", "s", {}, " ", NOW)
    with pytest.raises(AuditError, match="cannot be stored"), session_scope(engine) as s:
        audit.append(s, "k", "s", {"x": float("nan")}, "a", NOW)
    _exec(engine, "DELETE FROM audit_head WHERE id = 1")
    with pytest.raises(AuditError, match="head row is missing"), session_scope(engine) as s:
        audit.append(s, "k", "s", {}, "a", NOW)


def test_verify_pages_through_long_chains(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "VERIFY_PAGE", 3)
    with session_scope(sqlite_engine) as s:
        for i in range(10):
            audit.append(s, "test.event", f"t:{i}", {"i": i}, "tester", NOW)
    _exec(sqlite_engine, "UPDATE audit_events SET subject = 'x' WHERE seq = 8")
    with session_scope(sqlite_engine) as s:
        report = verify_chain(s, None)
    assert report.events == 10
    assert report.problems[0].startswith("event 8 (test.event) was altered")


@pytest.mark.postgres
def test_concurrent_appends_serialise_on_postgres(pg_url: str) -> None:
    """Writers in parallel threads, each its own transaction: the chain stays gapless and valid."""
    engine = make_engine(pg_url)
    upgrade(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with session_scope(engine) as s:
                    audit.append(s, "test.event", f"w{n}:{i}", {"n": n, "i": i}, f"writer{n}", NOW)
        except BaseException as exc:  # reported below; a thread cannot raise into pytest
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    report = _verify(engine)
    assert report.ok, report.problems
    assert report.events == 60
    before = snapshot(engine)
    assert len(before["audit_events"]) == 60
    engine.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)",
        "UPDATE ledger_transfers SET amount = amount + 1",
        "DELETE FROM ledger_transfers",
        "UPDATE mixer_withdrawals SET recipient = '0x00'",
        "DELETE FROM issuer_blacklist_events",
    ],
    ids=["event-update", "event-delete", "transfer-update", "transfer-delete", "withdrawal-update", "blacklist-delete"],
)
def test_events_and_transfers_are_append_only(engine: Engine, sql: str, shared_data: Path) -> None:
    """SQLite: refused for everyone (a mistake, a tool). PostgreSQL: refused for any role but the owner, even one
    a DBA granted UPDATE and DELETE on the tables. The index facts (migration 0010) too."""
    _seed(engine)
    with session_scope(engine) as s:
        seed_index_facts(s, shared_data, SETTINGS, NOW)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(
                sa.text("DO $$ BEGIN CREATE ROLE scr_dba_tool LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
            )
            conn.execute(
                sa.text(
                    "GRANT SELECT, UPDATE, DELETE ON audit_events, ledger_transfers, mixer_withdrawals, "
                    "issuer_blacklist_events TO scr_dba_tool"
                )
            )
        url = engine.url.set(username="scr_dba_tool")
        other = sa.create_engine(url)
    else:
        other = engine
    try:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), other.begin() as conn:
            conn.execute(sa.text(sql))
    finally:
        if other is not engine:
            other.dispose()
    report = _verify(engine)
    assert report.ok, report.problems
