"""Malformed rows already in the database (issue 13): whatever a column holds, `audit verify`, `holds list`,
`holds show` and `balances` end with a reported finding or one `error:` line, never a traceback.

Hypothesis writes arbitrary values (text, numbers, JSON-looking text, nothing) into the columns of the tables
those commands read, in a copy of a real database (SQLite's columns take any value, as a hand edit would), and
runs the real CLI in-process. SCREENER_LONG=1 runs more examples.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel
from typer.testing import CliRunner

from screener.cli import app
from screener.cli.common import STATE
from screener.db import make_engine, session_scope, upgrade
from screener.ledger.stored import CHECKED_TABLES
from screener.review import service as review
from screener.screening.verdicts import Decision, Verdict
from tests.support.ledger_model import NOW, make_deposit, make_screenable
from tests.support.tamper import SQLITE_APPEND_ONLY_TRIGGERS
from tests.test_db_roles import FRESH, MIXER

EXAMPLES = 300 if os.environ.get("SCREENER_LONG") == "1" else 40
COLUMNS = [(t, c.name) for t in CHECKED_TABLES for c in SQLModel.metadata.tables[t].c if not c.primary_key]
VALUES = st.one_of(
    st.sampled_from(["", "abc", "1e9", "{{", "yesterday", "[1,", "null", "-1", "2026-13-45 99:99:99", "\x00\n"]),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.none(),
)
COMMANDS = (["audit", "verify"], ["holds", "list"], ["holds", "show", "H-1"], ["balances"], ["flags", "list"])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("malformed") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with session_scope(engine) as s:
        make_screenable(s, NOW)
        review.apply_verdict(s, make_deposit(1, 50_000 * 10**6), Verdict(Decision.HOLD, (MIXER,)), FRESH, NOW)
        credited = make_deposit(2, 5)
        review.apply_verdict(s, credited, Verdict(Decision.CREDIT), FRESH, NOW)
        review.raise_review_flag(s, credited, [MIXER], "later evidence", NOW)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        for trigger in SQLITE_APPEND_ONLY_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
    yield path


def _run(config: Path, args: list[str]) -> tuple[int, str, BaseException | None]:
    STATE._settings, STATE._engine = None, None  # each invocation loads its own config, as a new process would
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if STATE._engine is not None:
        STATE._engine.dispose()
    return result.exit_code, result.output, result.exception


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(COLUMNS), value=VALUES)
def test_any_stored_value_is_a_finding_or_one_line(
    template: Path, tmp_path: Path, column: tuple[str, str], value: object
) -> None:
    here = Path(tempfile.mkdtemp(dir=tmp_path))  # per example: tmp_path is shared, and so would be the -wal file
    db = here / "s.db"
    shutil.copy(template, db)
    config = here / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[lists]\nmax_list_age_h = 87600\n')
    table, name = column
    with sqlite3.connect(db) as conn:
        try:
            conn.execute(f"UPDATE {table} SET {name} = ?", (value,))
        except (sqlite3.IntegrityError, OverflowError):
            return  # NOT NULL or too large for SQLite: the database itself refused it
    for args in COMMANDS:
        code, output, exc = _run(config, args)
        assert exc is None or isinstance(exc, SystemExit), (
            args,
            column,
            value,
            "".join(traceback.format_exception(exc)),
        )
        assert "Traceback" not in output, (args, column, value, output)
        assert code in (0, 1, 2), (args, column, value, code, output)
        if code:
            errors = [line for line in output.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1, (args, column, value, output)
