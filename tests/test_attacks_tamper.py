"""Attacks on the row seals, checkpoints and append-only controls by someone with SQL write access to the
database (not to the checkpoint file). Each test asserts what docs/security.md promises; a failing test is a hole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from screener.ledger import audit
from screener.ledger.audit import verify_chain
from screener.ledger.checkpoint_rules import parse_checkpoints
from screener.ledger.checkpoints import judge_text
from screener.ledger.verify import verify_ledger
from screener.ledger.verify_rows import verify_rows
from screener.lists import store
from screener.review import service as review
from screener_base.errors import ScreenerError
from tests.support.ledger_model import NOW, not_listed
from tests.test_db_roles import FRESH
from tests.test_tamper_rows import sealed  # noqa: F401  (fixture)

Attack = Callable[[Session], None]


def _all_problems(engine: Engine, attack: Attack) -> list[str]:
    """Run the attack, then everything `audit verify` runs on the rows (chain, ledger, seals); rolled back."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            with Session(bind=conn) as s:
                attack(s)
                s.flush()
                report = verify_chain(s)
                verify_ledger(s, report)
                verify_rows(s, report)
                return report.problems
        finally:
            tx.rollback()


def _sql(s: Session, sql: str, **params: object) -> None:
    s.execute(sa.text(sql), params)
    s.expire_all()


def test_edited_row_resealed_by_a_forged_system_event(sealed: Engine) -> None:  # noqa: F811
    """Edit hold 1 so bob requested and approved his own release, then append an event of an unrelated kind
    (actor "system") whose payload.rows re-seals the edited row: verify should not accept it as the newest seal."""

    def attack(s: Session) -> None:
        _sql(s, "UPDATE holds SET release_requested_by = 'bob' WHERE id = 1")
        audit.append(s, "system.heartbeat", "worker", {}, "system", NOW, rows=[("holds", 1)])

    problems = _all_problems(sealed, attack)
    assert any("holds id 1" in p for p in problems), problems


def test_sql_edit_laundered_by_the_next_legitimate_decision(sealed: Engine) -> None:  # noqa: F811
    """Four-eyes bypass: alice requests the release of hold 3, rewrites release_requested_by to 'carol' in SQL,
    then approves it herself; the approval would re-seal the edited row as stored. Refused at decision time (the
    requester is taken from the audit trail), and a note that re-seals the edited row is found by verify."""

    def approve(s: Session) -> None:
        review.release_hold(s, 3, "ok", "alice", FRESH, NOW, screen_now=not_listed)
        _sql(s, "UPDATE holds SET release_requested_by = 'carol' WHERE id = 3")
        review.approve_hold(s, 3, "alice", NOW + timedelta(seconds=1), screen_now=not_listed)

    with pytest.raises(ScreenerError, match="changed outside screener"):
        _all_problems(sealed, approve)

    def note(s: Session) -> None:
        review.release_hold(s, 3, "ok", "alice", FRESH, NOW, screen_now=not_listed)
        _sql(s, "UPDATE holds SET release_requested_by = 'carol' WHERE id = 3")
        review.note_hold(s, 3, "looks fine", "dave", NOW + timedelta(seconds=1))

    problems = _all_problems(sealed, note)
    assert any("holds id 3: column release_requested_by" in p and "records 'alice'" in p for p in problems), problems


@pytest.mark.parametrize("row_id", [0, -1])
def test_list_version_inserted_below_the_first_seal(sealed: Engine, row_id: int) -> None:  # noqa: F811
    """Insert an empty list version with id 0 (or -1), below the first sealed id, and the highest seq: it becomes
    the active list (nobody is sanctioned), and "ids below the first seal are not checked" lets it through."""

    def attack(s: Session) -> None:
        _sql(
            s,
            "INSERT INTO list_versions (id, seq, source, source_format, sha256, size_bytes, fetched_at, "
            "published_at, activated_at, last_verified_at, entry_count, counts, meta) "
            "SELECT :id, 999, source, source_format, sha256, size_bytes, fetched_at, published_at, activated_at, "
            "last_verified_at, 0, counts, meta FROM list_versions WHERE id = 1",
            id=row_id,
        )
        active = store.active_version(s)
        assert active is not None and active.id == row_id and active.entry_count == 0

    problems = _all_problems(sealed, attack)
    assert any(f"list_versions id {row_id}" in p for p in problems), problems


def test_deposit_address_inserted_below_the_first_seal(sealed: Engine) -> None:  # noqa: F811
    """Insert a deposit address crediting mallory's account with id 0: below the first sealed id, so unchecked."""

    def attack(s: Session) -> None:
        row = dict(s.execute(sa.text("SELECT * FROM deposit_addresses WHERE id = 1")).mappings().one())
        row.update(id=0, account="mallory", address="0x" + "ab" * 20)
        cols = ", ".join(row)
        _sql(s, f"INSERT INTO deposit_addresses ({cols}) VALUES ({', '.join(':' + c for c in row)})", **row)

    problems = _all_problems(sealed, attack)
    assert any("deposit_addresses id 0" in p for p in problems), problems


def test_delete_and_reinsert_under_another_id_is_found(sealed: Engine) -> None:  # noqa: F811
    """Defended: delete hold 3 and insert it back with a high id (and a changed state); the sealed row is gone."""

    def attack(s: Session) -> None:
        row = dict(s.execute(sa.text("SELECT * FROM holds WHERE id = 3")).mappings().one())
        _sql(s, "DELETE FROM holds WHERE id = 3")
        row["id"] = 1000
        cols = ", ".join(row)
        _sql(s, f"INSERT INTO holds ({cols}) VALUES ({', '.join(':' + c for c in row)})", **row)

    problems = _all_problems(sealed, attack)
    assert any("hold H-3" in p and "missing" in p for p in problems), problems
    assert any(p.startswith("holds id 1000:") and "more row problem" in p for p in problems), problems


def test_checkpoint_file_tricks_do_not_hide_a_rewrite(sealed: Engine) -> None:  # noqa: F811
    """Defended: a file with a good checkpoint, a duplicate seq with another hash, seq 0 and a huge seq."""
    with Session(sealed) as s:
        head = s.get(audit.AuditHead, audit.HEAD_ID)
        assert head is not None
        good = f'{{"seq":{head.seq},"head_hash":"{head.hash}","at":"x"}}'
        bad = f'{{"seq":{head.seq},"head_hash":"{"0" * 64}","at":"x"}}'
        huge = f'{{"seq":{10**30},"head_hash":"{head.hash}","at":"x"}}'
        zero = f'{{"seq":0,"head_hash":"{head.hash}","at":"x"}}'
        text = "\n".join([good, "  ", bad, huge, zero, "\ufeff" + good])
        _, unparsed = parse_checkpoints(text)
        judged = judge_text(s, text, head.seq)
    assert len(judged.problems) == 4, (unparsed, judged.problems)


@pytest.mark.postgres
def test_truncate_by_a_granted_non_owner_is_refused(pg_url: str) -> None:
    """A role that is not the owner but was granted ALL on audit_events (the doc: "whatever a DBA granted")
    empties it with TRUNCATE: the row triggers refuse UPDATE and DELETE only."""
    import uuid

    from sqlalchemy.engine import make_url

    from screener.db import make_engine, upgrade

    owner = make_engine(pg_url)
    upgrade(owner)
    role = f"scr_attk_{uuid.uuid4().hex[:8]}"
    with owner.begin() as conn:
        audit.append(Session(bind=conn), "system.test", "x", {}, "system", NOW)
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(sa.text(f"GRANT ALL ON audit_events, ledger_transfers TO {role}"))
    attacker = make_engine(make_url(pg_url).set(username=role).render_as_string(hide_password=False))
    try:
        with pytest.raises(sa.exc.DBAPIError):  # sanity: DELETE is refused
            with attacker.begin() as conn:
                conn.execute(sa.text("DELETE FROM audit_events"))
        with pytest.raises(sa.exc.DBAPIError):
            with attacker.begin() as conn:
                conn.execute(sa.text("TRUNCATE audit_events"))
    finally:
        attacker.dispose()
        with owner.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        owner.dispose()
