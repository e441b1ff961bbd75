"""`screener db roles` on a real PostgreSQL server, with real login roles: the database itself keeps the worker
from deciding holds and one reviewer from approving their own release, even when the CLI is bypassed (direct
SQL, or the service functions called with another name)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from screener.db import make_engine, session_scope, upgrade
from screener.decide.holds import rescreen_holds
from screener.models.deposits import Deposit
from screener.review import service as review
from screener.review.identity import IdentityMode
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from tests.support import cli_fork
from tests.support.ledger_model import NOW, make_deposit, make_screenable, not_listed, snapshot
from tests.support.reliability import SCREENER, clean_env

# Roles are cluster-wide: one such test at a time across xdist workers (tests/conftest.py).
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("global_identities")]

WORKER, ALICE, BOB, AUDITOR = "scr_worker", "scr_alice", "scr_bob", "scr_audit"
MIXER = Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20, detail="Tornado Cash pool")
GAP = Finding("unavailable", Severity.REVIEW, "-", detail="lists: sanctions list version 1 is stale")
BIG = 50_000 * 10**6
FRESH = Settings(lists={"max_list_age_h": 87600})


@dataclass
class World:
    dir: Path
    admin_url: str
    hold_id: int
    flag_id: int

    def url(self, role: str) -> str:
        return make_url(self.admin_url).set(username=role).render_as_string(hide_password=False)

    def config(self, role: str | None) -> Path:
        path = self.dir / f"{role or 'admin'}.toml"
        url = self.url(role) if role else self.admin_url
        path.write_text(
            f'[database]\nurl = "{url}"\n\n[review]\nfour_eyes_above_units = 10000\n\n[lists]\nmax_list_age_h = 87600\n'
        )
        return path

    def cli(self, role: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(SCREENER), "--config", str(self.config(role)), *args]
        return cli_fork.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=120)

    def engine(self, role: str) -> Engine:
        return make_engine(self.url(role))


def _roles_args() -> list[str]:
    return ["db", "roles", "--worker", WORKER, "--reviewers", f"{ALICE},{BOB}", "--auditor", AUDITOR]


@pytest.fixture
def world(pg_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(pg_url)
    upgrade(engine)
    with session_scope(engine) as s:
        make_screenable(s, NOW)
        hold = review.apply_verdict(s, make_deposit(1, BIG), Verdict(Decision.HOLD, (MIXER,)), FRESH, NOW)
        credited = make_deposit(2, 5)
        review.apply_verdict(s, credited, Verdict(Decision.CREDIT), FRESH, NOW)
        flag = review.raise_review_flag(s, credited, [MIXER], "new evidence after the credit", NOW)
        assert hold is not None and hold.id is not None and flag.id is not None
        ids = (hold.id, flag.id)
    engine.dispose()
    w = World(tmp_path, pg_url, *ids)
    made = w.cli(None, *_roles_args())
    assert made.returncode == 0, made.stderr
    yield w


def _refused_by_db(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout, res.stderr)
    assert res.stderr.startswith("error: the database refused") and len(res.stderr.strip().splitlines()) == 1


def test_sql_is_printed_and_the_command_is_idempotent(world: World) -> None:
    printed = world.cli(None, *_roles_args(), "--sql")
    assert printed.returncode == 0 and "CREATE CONSTRAINT TRIGGER screener_guard_transfers" in printed.stdout
    again = world.cli(None, *_roles_args())
    assert again.returncode == 0, again.stderr
    bad = world.cli(None, "db", "roles", "--worker", "x; drop table holds", "--reviewers", f"{ALICE},{BOB}")
    assert bad.returncode == 2 and "not a plain lowercase" in bad.stderr


def test_the_worker_cannot_decide_a_hold_through_the_cli_or_sql(world: World) -> None:
    admin = make_engine(world.admin_url)
    before = snapshot(admin)
    label = f"H-{world.hold_id}"
    _refused_by_db(world.cli(WORKER, "holds", "release", label, "--reason", "compromised daemon"))
    _refused_by_db(world.cli(WORKER, "holds", "reject", label, "--reason", "x", "--to", "return"))
    _refused_by_db(world.cli(WORKER, "flags", "resolve", f"F-{world.flag_id}", "--reason", "x"))
    worker = world.engine(WORKER)
    with pytest.raises(sa.exc.ProgrammingError, match="only a reviewer"), worker.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE holds SET state = 'released', resolved_by = '{WORKER}' WHERE id = :i"),
            {"i": world.hold_id},
        )
    # Refused by the transfers guard or the balances guard, whichever runs first at commit.
    refusal = r"no hold resolution|other than the transfers"
    with pytest.raises(sa.exc.ProgrammingError, match=refusal), worker.begin() as conn:
        row = conn.execute(sa.text("SELECT * FROM ledger_transfers WHERE step = 'hold'")).mappings().first()
        assert row is not None
        post = {
            **row,
            "id": row["id"].replace(":hold", ":post"),
            "step": "post",
            "flags": "post_pending",
            "pending_id": row["id"],
        }
        cols = ", ".join(post)
        conn.execute(
            sa.text(f"INSERT INTO ledger_transfers ({cols}) VALUES ({', '.join(':' + c for c in post)})"), post
        )
    worker.dispose()
    assert snapshot(admin) == before
    admin.dispose()


def test_two_reviewers_complete_four_eyes_and_one_alone_is_refused_by_the_database(world: World) -> None:
    label = f"H-{world.hold_id}"
    asked = world.cli(ALICE, "holds", "release", label, "--reason", "known customer")
    assert asked.returncode == 0 and "awaits approval" in asked.stdout, asked.stderr
    alice = world.engine(ALICE)
    # Bypass the CLI: the service called under alice's login with bob's name passes the code's four-eyes check.
    with pytest.raises(sa.exc.ProgrammingError, match="under their own login"), session_scope(alice) as s:
        review.approve_hold(s, world.hold_id, BOB, NOW, screen_now=not_listed, identity=IdentityMode.DATABASE)
    with pytest.raises(sa.exc.ProgrammingError, match="four-eyes"), alice.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE holds SET state = 'released', resolved_by = '{ALICE}' WHERE id = :i"), {"i": world.hold_id}
        )
    alice.dispose()
    approved = world.cli(BOB, "holds", "approve", label)
    assert approved.returncode == 0 and f"approved by {BOB} (requested by {ALICE})" in approved.stdout, approved
    resolved = world.cli(ALICE, "flags", "resolve", f"F-{world.flag_id}", "--reason", "checked")
    assert resolved.returncode == 0, resolved.stderr
    verified = world.cli(AUDITOR, "audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_the_auditor_only_reads(world: World) -> None:
    auditor = world.engine(AUDITOR)
    with auditor.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM holds")).scalar_one() == 1
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), auditor.begin() as conn:
        conn.execute(sa.text("UPDATE holds SET reason = 'x'"))
    auditor.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE index_cursors SET next_block = next_block + 1000000",  # trust blocks nobody scanned
        "INSERT INTO index_cursors (chain, kind, next_block, first_block, sources, updated_at) "
        "VALUES ('base', 'mixer', 1000000000, 0, '-', now())",
        "UPDATE scan_cursors SET next_block = next_block + 1000",
    ],
    ids=["move-index-cursor", "invent-index-cursor", "move-scan-cursor"],
)
def test_a_reviewer_cannot_write_what_the_chain_says(world: World, sql: str) -> None:
    """The attack (it went through before `db roles` revoked it): a reviewer with psql moves the mixer index
    forward, so screening trusts a range nobody scanned and credits a mixer-funded deposit in it."""
    alice = world.engine(ALICE)
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), alice.begin() as conn:
            conn.execute(sa.text(sql))
    finally:
        alice.dispose()


def test_the_worker_still_decides_and_clears_what_a_re_screen_cleared(world: World) -> None:
    """The daemon's own work passes the guards: deciding new deposits, and crediting as the system a hold that
    was only "screening unavailable" once it screens clean."""
    worker = world.engine(WORKER)
    with session_scope(worker) as s:
        hold = review.apply_verdict(s, make_deposit(3, 7_000_000), Verdict(Decision.HOLD, (GAP,)), FRESH, NOW)
        assert hold is not None and hold.id is not None
        hold_id = hold.id
    with session_scope(worker) as s:
        counts = rescreen_holds(s, FRESH, NOW, [hold_id])
    assert counts.cleared == 1, counts
    with session_scope(worker) as s:
        assert review.get_hold(s, hold_id).state == "released"
        assert s.get(Deposit, review.get_hold(s, hold_id).deposit_id).status == "released"  # type: ignore[union-attr]
    worker.dispose()


def test_one_reviewer_rejects_and_notes_under_the_guards(world: World) -> None:
    label = f"H-{world.hold_id}"
    noted = world.cli(ALICE, "holds", "note", label, "called the customer")
    assert noted.returncode == 0, noted.stderr
    rejected = world.cli(ALICE, "holds", "reject", label, "--reason", "mixer funds", "--to", "return")
    assert rejected.returncode == 0 and "funds moved to return_payable" in rejected.stdout, rejected.stderr
    verified = world.cli(AUDITOR, "audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_signed_four_eyes_under_database_logins(world: World) -> None:
    """review.identity = database and review.signing = ssh together: each reviewer's login is the principal
    their key is listed under, someone else's key is refused, and the auditor's login verifies every signature."""
    from tests.test_signing import _keygen

    keys = {name: _keygen(world.dir, f"key-{name}") for name in (ALICE, BOB)}
    allowed = world.dir / "allowed_signers"
    allowed.write_text(
        "".join(
            f'{name} namespaces="screener-review" {" ".join(key.with_suffix(".pub").read_text().split()[:2])}\n'
            for name, key in keys.items()
        )
    )
    signing = f'[review]\nsigning = "ssh"\nallowed_signers_path = "{allowed}"\n'

    def cli(role: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
        cfg = world.dir / f"{role}-signed.toml"
        cfg.write_text(world.config(role).read_text().replace("[review]\n", signing))
        env = clean_env(SCREENER_REVIEW__SIGNING_KEY_PATH=str(keys[key]))
        cmd = [str(SCREENER), "--config", str(cfg), *args]
        return cli_fork.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    label = f"H-{world.hold_id}"
    refused = cli(ALICE, BOB, "holds", "release", label, "--reason", "bob's key")
    assert refused.returncode == 2 and f"does not verify for {ALICE}" in refused.stderr, refused.stderr
    assert cli(ALICE, ALICE, "holds", "release", label, "--reason", "known customer").returncode == 0
    approved = cli(BOB, BOB, "holds", "approve", label)
    assert approved.returncode == 0 and "credited" in approved.stdout, approved.stderr
    verified = cli(AUDITOR, ALICE, "audit", "verify")
    assert verified.returncode == 0 and "2 signed decision(s) verified" in verified.stdout, verified.stdout
