"""Shared fixtures: storage on SQLite and PostgreSQL, and a real anvil node."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from screener.db import make_engine, upgrade
from tests.support.anvil import Anvil, run_anvil
from tests.support.pg import fresh_pg_database, recreate_from_template

# The files that take longest (`make test PYTEST_ARGS=--durations=60` on 2026-12-01), longest first. Under
# `--dist loadfile` a long file handed out last keeps one worker busy alone at the end; handing the long ones out
# first lets the short ones fill in around them (the order within a file, and of the others, is kept).
_LONG_FILES = (
    "test_reliability_crash_loop.py", "test_reliability_bad_input.py", "test_cli_holds.py",
    "test_reliability_rpc_faults.py", "test_e2e_screening.py", "test_reliability_concurrency.py",
    "test_daemon_workers.py", "test_signing.py", "test_lists_cli.py", "test_daemon_alerts.py", "test_identity.py",
    "test_provider_errors.py", "test_addresses.py", "test_db_roles.py", "test_attacks_crediting.py",
)  # fmt: skip


# Long tests whose other store's variant runs in `make test`: this one runs in `make test-long` only (a full CI run
# must stay under 15 minutes on two cores). Each covers the same code on both stores; the store-specific parts
# (locks, roles, triggers) have their own tests on each store.
_LONG_VARIANTS = frozenset(
    {
        "test_e2e_screening.py::test_deposits_get_verdicts_and_evidence[sqlite]",
        "test_e2e_screening.py::test_list_refresh_flags_past_depositor_and_annotates_removed_match[postgres]",
        "test_reliability_bad_input.py::test_cli_arguments_out_of_range[postgres]",
        "test_daemon_workers.py::test_sigterm_during_catch_up_then_restart[sqlite]",
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if f"{item.path.name}::{item.name}" in _LONG_VARIANTS:
            item.add_marker(pytest.mark.slow)
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


# Upgraded databases are copies of one upgraded per test session (and xdist worker): the same schema as
# `upgrade()` gives, without running every migration again for each of a few hundred tests.
@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "screener.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    with fresh_pg_database() as url:
        eng = make_engine(url)
        upgrade(eng)
        eng.dispose()
        yield url.rpartition("/")[2]


@pytest.fixture
def engine(db_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on an upgraded (Alembic head) database at ``db_url``, SQLite and PostgreSQL."""
    if db_url.startswith("sqlite:///"):
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), db_url.removeprefix("sqlite:///"))
    else:
        recreate_from_template(db_url, request.getfixturevalue("_pg_template"))
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, _sqlite_template: Path) -> Iterator[Engine]:
    path = tmp_path / "screener.db"
    shutil.copyfile(_sqlite_template, path)
    eng = make_engine(f"sqlite:///{path}")
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
