"""`screener backfill`: past ranges below the live cursor, recorded once; bad ranges refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from screener.demo.devnet.anvil import Anvil
from screener.models.deposits import Deposit
from screener.pipeline.backfill import BlockRangeError, backfill, plan_range
from tests.support import cli_fork
from tests.support.chain_env import (
    CHAIN,
    deposit_address,
    ground_truth,
    keys,
    make_env,
    mark_credited,
    recorded,
    register,
    runtime,
    tick_until_idle,
)

SCREENER = Path(sys.executable).with_name("screener")
A = deposit_address(1)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, None, 100, None), "negative"),
        ((50, 40, 100, None), "before --from-block"),
        ((10, 101, 100, None), "not final yet"),
        ((10, 60, 100, 50), "live scanner"),
        ((60, None, 100, 50), "before --from-block"),  # default end = cursor - 1 = 49
    ],
)
def test_bad_ranges(args: tuple[int, int | None, int, int | None], match: str) -> None:
    with pytest.raises(BlockRangeError, match=match):
        plan_range(*args)


def test_plan_defaults() -> None:
    assert plan_range(5, None, 100, None) == (5, 100)
    assert plan_range(5, None, 100, 50) == (5, 49)


def test_backfill_records_history_once(anvil: Anvil, engine: Engine, db_url: str) -> None:
    env = make_env(anvil)
    for i in range(6):
        env.pay(env.usdt, i % 5, A, 100 + i)
    anvil.mine(3)
    live_from = anvil.block_number() - 2
    env.pay(env.usdc, 0, A, 999)  # after the live scanner's start
    anvil.mine(3)
    settings = env.settings(db_url, start_block=live_from, max_block_range=7)
    register(engine, settings, CHAIN, {A: "acct"})
    tick_until_idle(engine, runtime(settings), settings)
    assert [d.amount_raw for d in recorded(engine)] == [999]  # history is not the live scanner's job
    decided: list[int] = []

    def decide(session: Session, deposits: list[Deposit], now: datetime) -> None:
        decided.extend(d.amount_raw for d in deposits)
        mark_credited(session, deposits, now)

    progress: list[tuple[int, int]] = []
    result = backfill(engine, runtime(settings), 0, decide=decide, progress=lambda d, t: progress.append((d, t)))
    end = anvil.block_number() - 2  # default: up to the block before the live cursor (at the safe head)
    assert (result.from_block, result.to_block, result.recorded, result.duplicates) == (0, end, 6, 1)
    assert sorted(decided) == [100 + i for i in range(6)]  # the live deposit (999) was not decided again
    assert progress[-1] == (end + 1, end + 1) and len(progress) == result.ranges > 1
    again = backfill(engine, runtime(settings), 0, decide=decide)
    assert again.recorded == 0 and again.duplicates == 7 and len(decided) == 6
    assert keys(recorded(engine)) == ground_truth(anvil, {env.usdt, env.usdc}, {A})
    anvil.mine(5)  # the safe head moves past the live cursor, which only the live scanner may cross
    with pytest.raises(BlockRangeError, match="live scanner"):
        backfill(engine, runtime(settings), 0, end + 1)


def test_backfill_cli(anvil: Anvil, tmp_path: Path) -> None:
    env = make_env(anvil)
    env.pay(env.usdt, 0, A, 123)
    anvil.mine(3)
    db = tmp_path / "s.db"
    (tmp_path / "c.toml").write_text(
        f"""[database]
url = "sqlite:///{db}"
[chains.{CHAIN}]
rpc_urls = ["{anvil.url}"]
chain_id = 31337
confirmations = 2
finality_tag = "latest"
tokens = {{ USDT = "{env.usdt}", USDC = "{env.usdc}" }}
"""
    )
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_fork.run(
            [str(SCREENER), "--config", str(tmp_path / "c.toml"), *args],
            capture_output=True,
            text=True,
            env=env_vars,
            cwd=tmp_path,
            timeout=120,
        )

    assert cli("db", "upgrade").returncode == 0
    assert cli("addresses", "add", CHAIN, A, "acct").returncode == 0
    bad = cli("backfill", CHAIN, "--from-block", "9", "--to-block", "3")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "before --from-block" in bad.stderr
    head = anvil.block_number()
    out = cli("backfill", CHAIN, "--from-block", "0", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["from_block"], summary["to_block"], summary["recorded"]) == (0, head - 2, 1)
    text = cli("backfill", CHAIN, "--from-block", "0")
    assert text.returncode == 0 and "0 deposit(s) recorded, 1 already known" in text.stdout
