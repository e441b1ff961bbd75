"""The test seam tests/support/cli_fork.py gives what a real `screener` process gives: same exit status, stdout,
stderr, working directory, environment and stdin, and the database left as a real process leaves it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support import cli_fork
from tests.support.reliability import clean_env

SCREENER = str(cli_fork.SCREENER)


def _both(argv: list[str], **kw: object) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    real = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    forked = cli_fork.run(argv, capture_output=True, text=True, timeout=120, **kw)
    return real, forked


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--config", "missing.toml", "status"],  # exit 2, one line on stderr, resolved against the cwd
        ["lists", "check", "0x08723392Ed15743cc38513C4925f5e6be5c17243", "--json"],  # a listed Lazarus address
        ["holds", "show", "H-nope"],
    ],
    ids=["help", "missing-config", "lists-check", "bad-id"],
)
def test_same_status_and_output_as_a_real_process(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    env = clean_env(COLUMNS="100")
    if args[0] != "--config":
        args = ["--config", "c.toml", *args]
    subprocess.run([SCREENER, "--config", "c.toml", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)  # fmt: skip
    real, forked = _both([SCREENER, *args], cwd=tmp_path, env=env)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)


def test_the_database_is_left_as_a_real_process_leaves_it(tmp_path: Path) -> None:
    """SQLite in WAL mode: a process that ends normally checkpoints its log into the file. A copy of the file alone
    (as tests make of a template database) must hold the schema."""
    (tmp_path / "c.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    res = cli_fork.run([SCREENER, "--config", "c.toml", "db", "upgrade"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "s.db").read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall()


def test_non_screener_commands_and_the_switch_run_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = cli_fork.run(["sh", "-c", "echo $$; pwd"], capture_output=True, text=True, cwd=tmp_path)
    assert res.stdout.split()[1] == str(tmp_path)
    monkeypatch.setenv("SCREENER_TESTS_REAL_CLI", "1")
    assert not cli_fork._forkable([SCREENER, "--help"])
    assert os.environ["SCREENER_TESTS_REAL_CLI"] == "1"


def test_a_timeout_kills_the_command() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        cli_fork.run([SCREENER, "demo", "--help"], capture_output=True, text=True, timeout=0.001)
