"""Who acts comes from authentication (review.identity), never from a flag or the environment.

On SQLite the actor is the real OS account: tests create accounts with useradd and run the CLI as them with
runuser (a real setuid). On PostgreSQL it is the role the connection logged in as: tests create login roles.
Every spoof is one `error:` line, exit 2, and changes nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from screener.db import make_engine, session_scope, upgrade
from screener.review import service as review
from screener.review.identity import IdentityMode, identity_mode
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from screener_base.errors import ConfigError
from tests.support import cli_fork
from tests.support.ledger_model import NOW, make_deposit, make_screenable, snapshot
from tests.support.os_users import ensure_user, run_as, shared_dir
from tests.support.reliability import SCREENER, clean_env

# Roles and OS accounts are machine-wide: one such test at a time across xdist workers (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("global_identities")

MIXER = Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20, detail="Tornado Cash pool")
BIG = 50_000 * 10**6  # four-eyes
ALICE, BOB = "scr_alice", "scr_bob"


def _seed(engine: Engine) -> int:
    with session_scope(engine) as s:
        make_screenable(s, NOW)
        hold = review.apply_verdict(s, make_deposit(1, BIG), Verdict(Decision.HOLD, (MIXER,)), Settings(), NOW)
        assert hold is not None and hold.id is not None
        return hold.id


def _refused(res: object, *words: str) -> None:
    code, out, err = res.returncode, res.stdout, res.stderr  # type: ignore[attr-defined]
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_the_mode_defaults_by_store_and_database_needs_postgres() -> None:
    assert identity_mode(Settings()) is IdentityMode.OS
    assert identity_mode(Settings(database={"url": "postgresql://x@h/db"})) is IdentityMode.DATABASE
    assert identity_mode(Settings(review={"identity": "declared"})) is IdentityMode.DECLARED
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        identity_mode(Settings(review={"identity": "database"}))


@pytest.fixture
def os_world() -> Iterator[tuple[Path, Engine, int]]:
    alice, bob = ensure_user(ALICE), ensure_user(BOB)
    assert (alice, bob) == (ALICE, BOB)
    d = shared_dir()
    db = d / "s.db"
    cfg = d / "c.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[review]\nfour_eyes_above_units = 10000\n\n'
        "[lists]\nmax_list_age_h = 87600\n"
    )
    # SQLite creates its -wal/-shm files with the database file's mode: make it writable by both accounts
    # (and close this process's connections first, so no file is left with the old mode).
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    hold_id = _seed(engine)
    engine.dispose()
    for path in d.glob("s.db*"):
        path.chmod(0o666)
    engine = make_engine(f"sqlite:///{db}")
    try:
        yield cfg, engine, hold_id
    finally:
        engine.dispose()


def test_os_accounts_complete_four_eyes_and_every_spoof_is_refused(os_world: tuple[Path, Engine, int]) -> None:
    cfg, engine, hold_id = os_world
    label = f"H-{hold_id}"
    asked = run_as(ALICE, cfg, "holds", "release", label, "--reason", "known customer")
    assert asked.returncode == 0 and "awaits approval" in asked.stdout, asked.stderr
    before = snapshot(engine)
    spoofs = [
        (["--operator", BOB, "holds", "approve", label], {}, ("not your OS account", ALICE)),
        (["holds", "approve", label, "--operator", BOB], {}, ("not your OS account",)),
        (["holds", "approve", label], {"SCREENER_OPERATOR": BOB}, ("not your OS account",)),
        (["--operator", f"{ALICE}.", "holds", "approve", label], {}, ("not your OS account",)),
        (["holds", "approve", label], {"USER": BOB, "LOGNAME": BOB}, ("cannot also approve it",)),  # env ignored
        (["holds", "approve", label], {}, ("cannot also approve it",)),
    ]
    for args, env, words in spoofs:
        _refused(run_as(ALICE, cfg, *args, env=env), *words)
        assert snapshot(engine) == before, args
    approved = run_as(BOB, cfg, "holds", "approve", label)
    assert approved.returncode == 0 and f"approved by {BOB} (requested by {ALICE})" in approved.stdout, approved
    shown = run_as(BOB, cfg, "holds", "show", label)
    assert "declared identity" not in shown.stdout
    verified = run_as(BOB, cfg, "audit", "verify")
    assert verified.returncode == 0 and "declared" not in verified.stdout, verified


def test_declared_identity_is_explicit_and_marked(os_world: tuple[Path, Engine, int]) -> None:
    """The demo's mode: names are taken as typed, and every decision says so where an auditor looks."""
    cfg, _engine, hold_id = os_world
    cfg.write_text(cfg.read_text().replace("[review]\n", '[review]\nidentity = "declared"\n'))
    label = f"H-{hold_id}"
    assert run_as(ALICE, cfg, "--operator", "alice", "holds", "release", label, "--reason", "ok").returncode == 0
    assert run_as(ALICE, cfg, "--operator", "bob", "holds", "approve", label).returncode == 0
    shown = run_as(ALICE, cfg, "holds", "show", label).stdout
    assert shown.count("[declared identity]") == 2
    exported = run_as(ALICE, cfg, "holds", "export", "--format", "json").stdout
    assert '"decided_identity": "declared"' in exported
    verified = run_as(ALICE, cfg, "audit", "verify")
    assert verified.returncode == 0 and "2 decision(s) were made under a declared identity" in verified.stdout


# -- PostgreSQL: the login role -----------------------------------------------------------------------------


def _login_roles(admin_url: str, *names: str) -> None:
    """Login roles (trust auth on the test server) with the privileges a reviewer needs on this database."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            conn.execute(
                sa.text(f"DO $$ BEGIN CREATE ROLE {name} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
            )
            conn.execute(sa.text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}"))
            conn.execute(sa.text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}"))
    engine.dispose()


@pytest.mark.postgres
def test_database_logins_complete_four_eyes_and_every_spoof_is_refused(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    hold_id = _seed(engine)
    _login_roles(pg_url, ALICE, BOB)
    d = shared_dir()

    def config_for(role: str) -> Path:
        url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        path = d / f"{role}.toml"
        path.write_text(
            f'[database]\nurl = "{url}"\n\n[review]\nfour_eyes_above_units = 10000\n\n[lists]\nmax_list_age_h = 87600\n'
        )
        return path

    alice, bob = config_for(ALICE), config_for(BOB)
    label = f"H-{hold_id}"

    def run(cfg: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(SCREENER), "--config", str(cfg), *args]
        return cli_fork.run(cmd, capture_output=True, text=True, env=clean_env(**env), timeout=120)

    asked = run(alice, "holds", "release", label, "--reason", "known customer")
    assert asked.returncode == 0 and "awaits approval" in asked.stdout, asked.stderr
    before = snapshot(engine)
    _refused(run(alice, "--operator", BOB, "holds", "approve", label), "not your database login", ALICE)
    _refused(run(alice, "holds", "approve", label, SCREENER_OPERATOR=BOB), "not your database login")
    _refused(run(alice, "holds", "approve", label, USER=BOB, LOGNAME=BOB), "cannot also approve it")
    assert snapshot(engine) == before
    approved = run(bob, "holds", "approve", label)
    assert approved.returncode == 0 and f"approved by {BOB} (requested by {ALICE})" in approved.stdout, approved
    engine.dispose()
