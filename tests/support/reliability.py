"""Helpers of the reliability suites: the real `screener` CLI as a subprocess, whole-database snapshots for
"nothing changed" checks, one-line error checks, and the figures the suites report (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from screener.db import make_engine
from tests.support import cli_fork

SCREENER = Path(sys.executable).with_name("screener")
REPO = Path(__file__).resolve().parents[2]
FIGURES_FILE = Path(
    os.environ.get("SCREENER_RELIABILITY_FIGURES", Path(tempfile.gettempdir()) / "screener-reliability-figures.json")
)
_figures_lock = threading.Lock()


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any SCREENER_* variable (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env.update(extra)
    return env


@dataclass
class Cli:
    """`screener --config <config> ...` in ``cwd``."""

    config: Path
    cwd: Path

    def run(
        self, *args: str, operator: str | None = "alice", env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        pre = ["--operator", operator] if operator else []
        return cli_fork.run(
            [str(SCREENER), "--config", str(self.config), *pre, *args],
            capture_output=True,
            text=True,
            env=env or clean_env(),
            cwd=self.cwd,
            timeout=timeout,
        )

    def ok(self, *args: str, operator: str | None = "alice") -> str:
        res = self.run(*args, operator=operator)
        assert res.returncode == 0, f"screener {' '.join(args)} failed: {res.stderr}"
        return res.stdout


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str, prefix: str = "error: ") -> str:
    """Non-zero exit, no traceback, exactly one line on stderr starting with ``prefix`` and naming ``needles``."""
    shown = f"exit {res.returncode}\nstdout: {res.stdout!r}\nstderr: {res.stderr!r}"
    assert res.returncode != 0, shown
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, shown
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    line = lines[0]
    assert line.startswith(prefix), shown
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in the error line\n{shown}"
    return line


def db_state(url: str, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table (sorted, as text), except ``exclude``: compare before/after a bad input."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(sa.inspect(conn).get_table_names())
            out = {}
            for table in tables:
                if table in exclude:
                    continue
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                out[table] = sorted(tuple(str(v) for v in row) for row in rows)
            return out
    finally:
        engine.dispose()


def state_diff(before: dict[str, list[tuple[str, ...]]], after: dict[str, list[tuple[str, ...]]]) -> str:
    """Which tables changed and how many rows appeared/vanished (for assertion messages)."""
    parts = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            parts.append(f"{table}: +{len(new - old)} -{len(old - new)} e.g. {sorted(new - old)[:2]}")
    return "; ".join(parts) or "no change"


def record_figures(suite: str, figures: dict[str, Any]) -> None:
    """Merge one suite's figures of this run into FIGURES_FILE and print them (copied into docs/reliability.md)."""
    with _figures_lock:
        try:
            data = json.loads(FIGURES_FILE.read_text())
        except (OSError, ValueError):
            data = {}
        data[suite] = figures
        FIGURES_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\nreliability figures [{suite}]: {json.dumps(figures, sort_keys=True)}")
