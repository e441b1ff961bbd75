"""Shared fixtures: storage on SQLite and PostgreSQL, and a real anvil node."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from screener.db import make_engine, upgrade
from tests.support.anvil import Anvil, run_anvil
from tests.support.pg import fresh_pg_database

# The files that take longest (`make test PYTEST_ARGS=--durations=60` on 2026-12-01), longest first. Under
# `--dist loadfile` a long file handed out last keeps one worker busy alone at the end; handing the long ones out
# first lets the short ones fill in around them (the order within a file, and of the others, is kept).
_LONG_FILES = (
    "test_reliability_crash_loop.py", "test_reliability_bad_input.py", "test_cli_holds.py",
    "test_reliability_rpc_faults.py", "test_e2e_screening.py", "test_reliability_concurrency.py",
    "test_daemon_workers.py", "test_signing.py", "test_lists_cli.py", "test_daemon_alerts.py", "test_identity.py",
    "test_provider_errors.py", "test_addresses.py", "test_db_roles.py", "test_attacks_crediting.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"../shared/data not found at {SHARED_DATA}: the tests read the real OFAC data from there")
    return SHARED_DATA


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'screener.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an upgraded (Alembic head) database, SQLite and PostgreSQL."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'screener.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def anvil_module() -> Iterator[Anvil]:
    """One anvil per test module (modules that rewrite history must not share a node)."""
    with run_anvil() as node:
        yield node


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A fresh anvil for one test."""
    with run_anvil() as node:
        yield node


# Login roles and OS accounts are global to the machine, not to a test's database: tests that create or grant them
# take this lock, so parallel workers (`make test` runs pytest-xdist) never race on the same role or account.
IDENTITIES_LOCK = Path("/tmp/screener-tests-identities.lock")


@pytest.fixture
def global_identities() -> Iterator[None]:
    with IDENTITIES_LOCK.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
