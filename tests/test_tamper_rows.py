"""The generated tamper suite (issue 13): for every column of every sealed table (deposits, holds, review_flags,
list versions, deposit addresses, the mixer and blacklist index facts), an edit made in SQL behind the CLI is
found by `audit verify` with that table, id and column named; so is a row inserted or deleted that way. SQLite
and PostgreSQL. Each edit runs in a transaction that is rolled back after the check, so one database serves
every column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from screener.db import session_scope
from screener.ledger.audit import VerifyReport
from screener.ledger.seals import SEALED_TABLES
from screener.ledger.verify_rows import verify_rows
from screener.pipeline.addresses import add_address
from screener.review import service as review
from screener.screening.verdicts import Decision, Verdict
from screener_base.addresses import Family
from tests.support import cli_fork
from tests.support.index_facts import seed_index_facts
from tests.support.ledger_model import NOW, make_deposit, make_screenable, not_listed
from tests.support.reliability import SCREENER, clean_env
from tests.support.tamper import drop_append_only
from tests.test_db_roles import FRESH, MIXER

Edit = Callable[[Connection], None]


def _seed(engine: Engine, shared_data: Path) -> Engine:
    """A released hold (four-eyes: requested by alice, approved by bob), a rejected one, an open one, a credited
    deposit with a resolved flag and one without; a real Tornado withdrawal and a blacklisting indexed."""
    with session_scope(engine) as s:
        seed_index_facts(s, shared_data, FRESH, NOW)
        make_screenable(s, NOW)
        ids = []
        for n in (1, 2, 3):
            hold = review.apply_verdict(
                s, make_deposit(n, 50_000 * 10**6), Verdict(Decision.HOLD, (MIXER,)), FRESH, NOW
            )
            assert hold is not None and hold.id is not None
            ids.append(hold.id)
        review.release_hold(s, ids[0], "ok", "alice", FRESH, NOW, screen_now=not_listed)
        review.approve_hold(s, ids[0], "bob", NOW, screen_now=not_listed)
        review.reject_hold(s, ids[1], "no", "blocked", "alice", NOW, screen_now=not_listed)
        credited = make_deposit(4, 5)
        review.apply_verdict(s, credited, Verdict(Decision.CREDIT), FRESH, NOW)
        flag = review.raise_review_flag(s, credited, [MIXER], "later evidence", NOW)
        review.resolve_flag(s, flag.id or 0, "seen", "alice", NOW)
        review.apply_verdict(s, make_deposit(5, 6), Verdict(Decision.CREDIT), FRESH, NOW)
        for n, account in ((1, "acct-1"), (2, "acct-2")):
            add_address(s, lambda _chain: Family.EVM, "ethereum", "0x" + f"{n:02x}" * 20, account, NOW, "alice")
    return engine


@pytest.fixture
def sealed(engine: Engine, shared_data: Path) -> Iterator[Engine]:
    yield _seed(engine, shared_data)


def _problems(engine: Engine, edit: Edit) -> list[str]:
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            drop_append_only(conn)  # SQLite: DDL is transactional, the rollback below restores the triggers
            edit(conn)
            with Session(bind=conn) as s:
                return verify_rows(s, VerifyReport()).problems
        finally:
            tx.rollback()


def _changed(value: Any, column: sa.Column[Any]) -> Any:
    """A different value of the column's type that the schema accepts (length, uniqueness, foreign keys)."""
    kind = column.type
    if column.foreign_keys:
        return 5  # deposit 5: credited, with no hold and no flag
    if isinstance(value, str) and value:
        return value[:-1] + ("y" if value[-1] == "x" else "x")
    if isinstance(kind, sa.DateTime):
        return (value or NOW) + timedelta(seconds=1) if isinstance(value, datetime) else NOW
    if isinstance(kind, sa.JSON):
        return [*value, {"rule_id": "x"}] if isinstance(value, list) else {"x": 1}
    if isinstance(kind, sa.Boolean):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None and isinstance(kind, sa.Integer | sa.BigInteger):
        return 1
    return (value or "") + "x"


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def _edit(name: str, column: str, row_id: int) -> Edit:
    table = _table(name)

    def edit(conn: Connection) -> None:
        old = conn.execute(sa.select(table.c[column]).where(table.c.id == row_id)).scalar_one()
        conn.execute(sa.update(table).where(table.c.id == row_id).values({column: _changed(old, table.c[column])}))

    return edit


@pytest.mark.parametrize("name", sorted(SEALED_TABLES))
def test_every_column_edit_is_named(sealed: Engine, name: str) -> None:
    assert _problems(sealed, lambda _conn: None) == []
    table = _table(name)
    with sealed.connect() as conn:
        row_id = conn.execute(sa.select(sa.func.min(table.c.id))).scalar_one()
    missed = []
    for column in table.c:
        if column.name == "id":
            continue
        problems = _problems(sealed, _edit(name, column.name, row_id))
        if not any(f"{name} id {row_id}: column {column.name} " in p for p in problems):
            missed.append((column.name, problems))
    assert missed == []


def _copy_row(name: str, changes: dict[str, Any]) -> Edit:
    table = _table(name)

    def insert(conn: Connection) -> None:
        row = dict(conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(1)).mappings().one())
        conn.execute(sa.insert(table).values({**row, "id": row["id"] + 100, **changes}))

    return insert


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("deposits", {"tx_hash": "0x" + "ee" * 32, "status": "credited"}),
        ("holds", {"deposit_id": 5}),
        ("review_flags", {"rule_id": "inserted"}),
        ("deposit_addresses", {"address": "0x" + "ab" * 20}),
        ("list_versions", {"seq": 99}),
        ("mixer_withdrawals", {"tx_hash": "0x" + "ee" * 32, "recipient": "0x" + "ab" * 20}),
        ("issuer_blacklist_events", {"tx_hash": "0x" + "ee" * 32}),
    ],
)
def test_inserted_and_deleted_rows_are_named(sealed: Engine, name: str, changes: dict[str, Any]) -> None:
    [inserted] = _problems(sealed, _copy_row(name, changes))
    assert f"{name} id " in inserted and "in no audit event" in inserted
    table = _table(name)
    victim = {
        "deposits": 5, "holds": 3, "review_flags": 1, "deposit_addresses": 2, "list_versions": 1,
        "mixer_withdrawals": 1, "issuer_blacklist_events": 1,
    }[name]  # fmt: skip

    def delete(conn: Connection) -> None:
        if name == "list_versions":
            conn.execute(sa.text("DELETE FROM list_entries WHERE version_id = :v"), {"v": victim})
        conn.execute(sa.delete(table).where(table.c.id == victim))

    problems = _problems(sealed, delete)
    assert any(f"{name} id {victim}: sealed by event" in p and "deleted" in p for p in problems), problems


def test_the_issues_edits_through_the_cli(sqlite_engine: Engine, tmp_path: Path, shared_data: Path) -> None:
    """The edits the issue tried on the demo database, each found by `screener audit verify` (exit 1). SQLite:
    the column suite above covers PostgreSQL."""
    sealed = _seed(sqlite_engine, shared_data)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{sealed.url}"\n')
    edits = [
        ("UPDATE holds SET release_requested_by = 'bob' WHERE id = 1", "holds id 1: column release_requested_by"),
        ("UPDATE deposits SET account = 'mallory' WHERE id = 3", "deposits id 3: column account"),
        ("UPDATE deposits SET verdict = 'CREDIT' WHERE id = 3", "deposits id 3: column verdict"),
        ("UPDATE deposits SET findings = '[]' WHERE id = 3", "deposits id 3: column findings"),
        ("UPDATE deposits SET from_address = '0x00' WHERE id = 3", "deposits id 3: column from_address"),
        ("UPDATE deposits SET decimals = 18 WHERE id = 3", "deposits id 3: column decimals"),
        ("UPDATE deposits SET status = 'weird' WHERE id = 3", "deposits id 3: column status"),
    ]
    for sql, named in edits:
        with sealed.begin() as conn:
            old = dict(conn.execute(sa.text("SELECT * FROM deposits WHERE id = 3")).mappings().one())
            hold = dict(conn.execute(sa.text("SELECT * FROM holds WHERE id = 1")).mappings().one())
            conn.execute(sa.text(sql))
        res = cli_fork.run(
            [str(SCREENER), "--config", str(cfg), "audit", "verify", "--json"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
        )
        assert res.returncode == 1, (sql, res.stdout, res.stderr)
        assert any(named in p for p in json.loads(res.stdout)["problems"]), (sql, res.stdout)
        with sealed.begin() as conn:  # put the stored values back, as they were, for the next edit
            for name, row in (("deposits", old), ("holds", hold)):
                sets = ", ".join(f"{k} = :{k}" for k in row if k != "id")
                conn.execute(sa.text(f"UPDATE {name} SET {sets} WHERE id = :id"), row)


def test_each_decision_records_the_policy_it_was_made_under(sqlite_engine: Engine) -> None:
    """A config change (here the four-eyes threshold) shows as a different policy digest in later decisions."""
    stricter = FRESH.model_copy(update={"review": FRESH.review.model_copy(update={"four_eyes_above_units": 1})})
    with session_scope(sqlite_engine) as s:
        make_screenable(s, NOW)
        review.apply_verdict(s, make_deposit(1, 5), Verdict(Decision.CREDIT), FRESH, NOW)
        review.apply_verdict(s, make_deposit(2, 5), Verdict(Decision.CREDIT), stricter, NOW)
    with sqlite_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload FROM audit_events WHERE kind = 'deposit.credited'")).all()
    first, second = (json.loads(r[0])["policy"] for r in rows)
    assert first.startswith("sha256:") and first != second


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM list_entries WHERE entity LIKE '%LAZARUS%'",
        "UPDATE list_entries SET canonical = canonical || 'ff' WHERE id = (SELECT min(id) FROM list_entries)",
        "INSERT INTO list_entries (version_id, address, canonical, family, tag, entity, programs, profile_id, note) "
        "SELECT version_id, address, canonical, family, tag, 'ME', programs, profile_id, note "
        "FROM list_entries LIMIT 1",
    ],
    ids=["delete-lazarus", "edit-address", "insert"],
)
def test_list_entries_are_those_the_activation_recorded(sealed: Engine, sql: str) -> None:
    """The issue's case: LAZARUS GROUP's row deleted from list_entries (`lists check` then says "no match")."""

    def edit(conn: Connection) -> None:
        assert conn.execute(sa.text(sql)).rowcount >= 1

    problems = _problems(sealed, edit)
    assert any(p.startswith("list_entries of version 1:") and "activated by event" in p for p in problems), problems


def test_a_table_added_to_sealing_gets_its_baseline_from_the_next_upgrade(sqlite_engine: Engine) -> None:
    """A database from before the index facts were sealed: its index rows carry no seal, and its baseline names
    only the older tables. The next `db upgrade` (record_seal_baseline) adds a baseline for the new tables only;
    an attacker's baseline for a table that already carries seals changes nothing."""
    from screener.ledger import audit, seals
    from screener.models.screening import MixerWithdrawalRow

    old_tables = {"deposits": 0, "holds": 0, "review_flags": 0, "list_versions": 0, "deposit_addresses": 0}
    with session_scope(sqlite_engine) as s:
        audit.append(s, seals.BASELINE_KIND, "seals", {"pre_sealing_max_ids": old_tables}, "system", NOW)
        s.add(
            MixerWithdrawalRow(
                chain="ethereum", pool="0x" + "01" * 20, recipient="0x" + "02" * 20, fee=0, nullifier_hash="0x00",
                tx_hash="0x" + "03" * 32, log_index=0, block_number=1, block_hash="0x" + "04" * 32,
                block_time=NOW, indexed_at=NOW,
            )
        )  # fmt: skip
        make_screenable(s, NOW)
        review.apply_verdict(s, make_deposit(1, 5), Verdict(Decision.CREDIT), FRESH, NOW)
    [unsealed] = _problems(sqlite_engine, lambda _conn: None)
    assert unsealed.startswith("mixer_withdrawals id 1: the row is in no audit event")
    with session_scope(sqlite_engine) as s:
        added = audit.record_seal_baseline(s, NOW)
        assert added == {"mixer_withdrawals": 1, "issuer_blacklist_events": 0}
        assert audit.record_seal_baseline(s, NOW) is None  # once per table
        # The attack: a late baseline that would excuse deposits inserted behind the CLI.
        audit.append(s, seals.BASELINE_KIND, "seals", {"pre_sealing_max_ids": {"deposits": 99}}, "system", NOW)
    assert _problems(sqlite_engine, lambda _conn: None) == []
    [inserted] = _problems(sqlite_engine, _copy_row("deposits", {"tx_hash": "0x" + "ee" * 32, "status": "credited"}))
    assert inserted.startswith("deposits id 101: the row is in no audit event")
