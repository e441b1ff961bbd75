"""Index facts are evidence (issue 13): sealed when found, rechecked against the chain by `screener audit index`.

Real anvil with the devnet Tornado-layout pool and a Tether-like token; SQLite (the sealing and its verification
run on PostgreSQL too, in tests/test_tamper_rows.py). Each attack is made in SQL behind the worker, as someone
with the database would: a cursor moved past a withdrawal is invisible to `audit verify` (the cursor is not
sealed) and found by the rescan; a deleted or edited fact is found by both.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.decide.decide import decide_deposits
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import deploy, mixer
from screener.indexes.sources import build_index_source
from screener.indexes.store import scan_blacklist_index, scan_mixer_index
from screener.lists import store as lists_store
from screener.settings import Settings, load_settings
from tests.support import cli_fork
from tests.support.anvil import Anvil, run_anvil
from tests.support.reliability import SCREENER, clean_env
from tests.support.screening_env import make_deposit
from tests.support.tamper import drop_append_only

RECIPIENT = "0x" + "5a" * 20
FROZEN = "0x" + "6b" * 20


@dataclass
class World:
    engine: Engine
    node: Anvil
    config: Path
    settings: Settings
    pool: mixer.MixerPoolHandle
    usdt: str

    def scan(self) -> None:
        source = build_index_source(self.settings, "ethereum")
        now = datetime.now(UTC)
        hook = make_index_hook(self.settings)
        scan_mixer_index(self.engine, source, self.settings, now, on_new_facts=hook)
        scan_blacklist_index(self.engine, source, self.settings, now, on_new_facts=hook)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli_fork.run(
            [str(SCREENER), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
            check=False,
        )

    def sql(self, statement: str) -> None:
        with self.engine.begin() as conn:
            drop_append_only(conn)
            conn.execute(sa.text(statement))


@pytest.fixture
def world(sqlite_engine: Engine, tmp_path: Path) -> Iterator[World]:
    with run_anvil() as node:
        owner = deploy.accounts(node)[0]
        pool = mixer.deploy_pool(node.rpc, owner)
        usdt = deploy.deploy_tether_like(node, "USDT", 6)
        config = tmp_path / "screener.toml"
        config.write_text(
            f"""
[database]
url = "{sqlite_engine.url}"
[chains.ethereum]
rpc_urls = ["{node.url}"]
chain_id = {node.chain_id}
confirmations = 0
finality_tag = "latest"
start_block = 0
mixer_pools = ["{pool.address}"]
tokens = {{ USDT = "{usdt}" }}
"""
        )
        yield World(sqlite_engine, node, config, load_settings(config), pool, usdt)


def _first_withdrawal(w: World) -> str:
    owner = deploy.accounts(w.node)[0]
    tx = mixer.deposit_and_withdraw(w.node.rpc, w.pool, owner, RECIPIENT, "one")
    deploy.add_black_list(w.node, w.usdt, FROZEN)
    w.scan()
    return tx


def test_facts_are_sealed_and_match_the_chain(world: World) -> None:
    _first_withdrawal(world)
    with world.engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT kind FROM audit_events ORDER BY seq"))]
    assert kinds.count("index.facts_found") == 2  # one withdrawal, one blacklisting, each sealed when found
    assert world.cli("audit", "verify").returncode == 0
    res = world.cli("audit", "index", "ethereum")
    assert res.returncode == 0, res.stderr
    assert "ethereum mixer: blocks 0.." in res.stdout and "1 on chain, 1 stored" in res.stdout


def test_a_cursor_moved_past_a_withdrawal_is_found_by_the_rescan(world: World) -> None:
    _first_withdrawal(world)
    owner = deploy.accounts(world.node)[0]
    skipped = mixer.deposit_and_withdraw(world.node.rpc, world.pool, owner, RECIPIENT, "two")
    head = world.node.block_number()
    # The attack: the mixer index is said to cover the new withdrawal's block without having scanned it.
    world.sql(f"UPDATE index_cursors SET next_block = {head + 1} WHERE chain = 'ethereum' AND kind = 'mixer'")
    assert world.cli("audit", "verify").returncode == 0  # the cursor is not sealed: this check cannot see it
    res = world.cli("audit", "index", "ethereum", "--kind", "mixer", "--json")
    assert res.returncode == 1
    assert "not stored, first " + skipped in res.stderr and "cursor skipped" in res.stderr
    (report,) = json.loads(res.stdout)
    assert report["counts"] == {"missing": 1, "extra": 0, "differing": 0}


@pytest.mark.parametrize(
    ("sql", "verify_names", "index_says"),
    [
        ("DELETE FROM mixer_withdrawals", "mixer_withdrawals id 1: sealed by event", "not stored"),
        (f"UPDATE mixer_withdrawals SET recipient = '{'0x' + '77' * 20}'", "column recipient", "differ from the chain"),
        ("DELETE FROM issuer_blacklist_events", "issuer_blacklist_events id 1: sealed by event", "not stored"),
        ("UPDATE issuer_blacklist_events SET action = 'removed'", "column action", "differ from the chain"),
    ],
    ids=["delete-withdrawal", "edit-recipient", "delete-blacklisting", "edit-action"],
)
def test_a_deleted_or_edited_fact_is_found_by_both(world: World, sql: str, verify_names: str, index_says: str) -> None:
    _first_withdrawal(world)
    world.sql(sql)
    verify = world.cli("audit", "verify", "--json")
    assert verify.returncode == 1
    assert any(verify_names in p for p in json.loads(verify.stdout)["problems"]), verify.stdout
    res = world.cli("audit", "index", "ethereum")
    assert res.returncode == 1 and index_says in res.stderr, res.stderr


def test_bad_arguments_change_nothing(world: World) -> None:
    res = world.cli("audit", "index", "ethereum", "--kind", "coins")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--kind 'coins'" in res.stderr
    res = world.cli("audit", "index", "ethereum", "--from-block", "9", "--to-block", "3")
    assert res.returncode == 2 and "is empty" in res.stderr and res.stderr.count("\n") == 1
    res = world.cli("audit", "index", "ethereum")  # nothing scanned yet
    assert res.returncode == 2 and "has no mixer index yet" in res.stderr


def test_a_decision_records_the_index_coverage_it_relied_on(world: World) -> None:
    _first_withdrawal(world)
    with session_scope(world.engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        dep = make_deposit("ethereum", "0x" + "12" * 20, block=world.node.block_number())
        s.add(dep)
        s.flush()
        decide_deposits(s, [dep], world.settings, datetime.now(UTC))
    with world.engine.connect() as conn:
        payload = conn.execute(
            sa.text("SELECT payload FROM audit_events WHERE kind IN ('deposit.credited', 'hold.opened')")
        ).scalar_one()
    indexes = json.loads(payload)["indexes"]
    head = world.node.block_number()
    assert indexes["mixer"][1] == head and indexes["blacklist"][1] == head, indexes
