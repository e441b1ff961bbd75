"""`screener demo` as a user runs it: it finishes, and shows held and credited deposits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from screener.db import make_engine, session_scope
from screener.models.deposits import Deposit


def test_demo_finishes_with_held_and_credited_deposits(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "screener", "demo", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # The relaxed list age is said out loud.
    assert "NOTE: the bundled OFAC snapshot is from 2025" in out and "max_list_age_h" in out
    # Holds: the OFAC-listed sender is blocked, the mixer-funded one held; balances show both kinds.
    holds = out.split("$ screener holds list", 1)[1].split("$ screener balances", 1)[0]
    assert "H-1" in holds and "BLOCK" in holds and "LAZARUS GROUP" in holds
    assert "H-2" in holds and "HOLD" in holds and "mixer" in holds
    balances = out.split("$ screener balances", 1)[1]
    assert "customer:alice" in balances and "customer:carol" in balances
    assert "2 deposit(s) credited, 2 held for review" in out
    assert "warning" not in out
    engine = make_engine(f"sqlite:///{workdir / 'demo.db'}")
    with session_scope(engine) as s:
        got = sorted((d.account, d.status, d.verdict) for d in s.exec(select(Deposit)))
    engine.dispose()
    assert got == [
        ("alice", "credited", "CREDIT"),
        ("bob", "credited", "CREDIT"),
        ("carol", "held", "BLOCK"),
        ("dave", "held", "HOLD"),
    ]
