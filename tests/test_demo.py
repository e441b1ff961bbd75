"""`screener demo` as a user runs it: it finishes, and shows held and credited deposits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from screener.db import make_engine, session_scope
from screener.demo import world as dw
from screener.demo.run import _fresh_database, cli_hints
from screener.models.deposits import Deposit
from tests.support import cli_fork


def test_demo_finishes_with_held_and_credited_deposits(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "demo.db").write_text("a previous demo's database")
    proc = cli_fork.run(
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
    db = workdir / "demo.db"
    assert f"Creating a fresh demo database at {db} (the previous demo's data there is replaced)." in out
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
        deposits = list(s.exec(select(Deposit)))
        got = sorted((d.account, d.status, d.verdict) for d in deposits)
        carol = next(d for d in deposits if d.account == "carol")
    engine.dispose()
    # The sending line names the sender (EIP-55, what the deposit records as `from`) and the tx separately.
    assert carol.from_address == dw.OFAC_SENDER.lower()
    sender = f"from {dw.OFAC_SENDER} (an OFAC-listed sender: LAZARUS GROUP)"
    line = f"5000.000000 USDT to carol  {sender}, tx {carol.tx_hash[:12]}…"
    assert line in out
    assert "1000.000000 USDT to alice" in out and "750.000000 USDC to dave" in out
    # The closing hint runs the CLI with the demo's config.
    exe = Path(sys.executable).with_name("screener")
    assert f"  {exe} --config {workdir / 'demo.toml'} holds list" in out.splitlines()
    assert got == [
        ("alice", "credited", "CREDIT"),
        ("bob", "credited", "CREDIT"),
        ("carol", "held", "BLOCK"),
        ("dave", "held", "HOLD"),
    ]
    # The daemon kept the chain's head beside the database, the last one as it stopped.
    lines = (workdir / "checkpoints.jsonl").read_text().splitlines()
    verified = cli_fork.run(
        [sys.executable, "-m", "screener", "--config", str(workdir / "demo.toml"), "audit", "verify", "--json",
         "--checkpoints", str(workdir / "checkpoints.jsonl")],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["checkpoints"]["matched"] == len(lines), verified.stderr
    assert report["checkpoints"]["last_matching"]["seq"] == report["head_seq"]  # the final one, taken on stop


def test_fresh_database_says_whether_a_previous_demo_is_replaced(tmp_path: Path) -> None:
    said: list[str] = []
    url = _fresh_database(tmp_path / "w", said.append)
    assert said == [f"Creating a fresh demo database at {tmp_path / 'w' / 'demo.db'}."]
    assert url == f"sqlite:///{(tmp_path / 'w' / 'demo.db').resolve()}"
    (tmp_path / "w" / "demo.db").write_text("old")
    (tmp_path / "w" / "demo.db-wal").write_text("old")
    said.clear()
    _fresh_database(tmp_path / "w", said.append)
    assert said == [
        f"Creating a fresh demo database at {tmp_path / 'w' / 'demo.db'} (the previous demo's data there is replaced)."
    ]
    assert not (tmp_path / "w" / "demo.db").exists() and not (tmp_path / "w" / "demo.db-wal").exists()


def test_cli_hints_name_the_venv_screener_and_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = Path(sys.executable).with_name("screener")
    root = exe.parent.parent.parent  # <root>/.venv/bin/screener
    monkeypatch.chdir(root)
    shown = exe.relative_to(root)
    hints = cli_hints(Path("var/demo/demo.toml"), "holds list", "holds show H-1")
    assert hints[:2] == [
        f"{shown} --config var/demo/demo.toml holds list",
        f"{shown} --config var/demo/demo.toml holds show H-1",
    ]
    if exe.with_name("activate").exists():
        assert hints[2] == (
            f"(or run `source {shown.with_name('activate')}` once, then "
            "`screener --config var/demo/demo.toml holds list`)"
        )
