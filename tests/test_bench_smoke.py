"""The benchmark scripts still run end to end on tiny inputs (they live outside the package, so a move
can break their imports without any other test noticing). Nothing is timed or compared here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import cli_fork

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    proc = cli_fork.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_ofac_parse_bench_runs() -> None:
    assert "both found" in _run("bench_ofac_parse.py", "--mb", "1", "--repeats", "1")


@pytest.mark.anvil
def test_scan_bench_runs() -> None:
    assert "deposits recorded by ours" in _run("bench_scan.py", "--logs", "2000", "--repeats", "1")


def test_audit_verify_bench_runs() -> None:
    out = _run("bench_audit_verify.py", "--events", "200", "--holds", "40", "--repeats", "1")
    assert "ratio ours / baseline" in out
