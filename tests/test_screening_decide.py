"""The decider on both stores: real OFAC data (bundled list), a real mixer pool on anvil, the real ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import session_scope
from screener.decide.decide import decide_deposits, make_decider
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import mixer
from screener.indexes.store import IndexSource, catch_up, scan_mixer_index
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.ledger import ReviewFlag
from screener.review.rules import DepositStatus
from screener.screening.verdicts import Decision, Verdict
from screener.settings import Settings
from tests.support.anvil import Anvil
from tests.support.screening_env import CountingFetcher, anvil_source, make_deposit

LAZARUS_MIXED_CASE = "0x08723392Ed15743cc38513C4925f5e6be5c17243"  # ETH tag only, published checksummed
ETH_ONLY_LOWERCASE = "0x1967d8af5bd86a497fb3dd7899a020e47560daaf"  # ETH tag only, published lowercase
TRON_USDT = "TC4VsFHJdZ66BdwobZxkudVZBVmQZgCP65"  # USDT tag, Tron
CLEAN = "0x" + "c1" * 20
CLEAN_TRON = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"
FRESH_LISTS = {"max_list_age_h": 24 * 3650}  # the bundled snapshot is from 2025-05-30


@dataclass
class Env:
    engine: Engine
    node: Anvil
    pool: mixer.MixerPoolHandle
    settings: Settings
    version_id: int

    def lookup(self, fetcher: CountingFetcher | None = None) -> Callable[[str], IndexSource | None]:
        def get(chain: str) -> IndexSource | None:
            pools = [self.pool.address] if chain == "polygon" else []
            return anvil_source(self.node, chain, pools=pools, fetcher=fetcher)

        return get

    def decide(self, *deposits: Deposit, settings: Settings | None = None, **kw: object) -> list[Verdict]:
        with session_scope(self.engine) as s:
            s.add_all(deposits)
            s.flush()
            return decide_deposits(s, list(deposits), settings or self.settings, datetime.now(UTC), **kw)  # type: ignore[arg-type]

    def status(self, deposit: Deposit) -> str:
        with session_scope(self.engine) as s:
            row = s.get(Deposit, deposit.id)
            assert row is not None
            return row.status


@pytest.fixture
def env(engine: Engine, anvil_module: Anvil) -> Env:
    owner = anvil_module.rpc("eth_accounts")[0]
    pool = mixer.deploy_pool(anvil_module.rpc, owner)
    settings = Settings(lists=FRESH_LISTS, chains={"polygon": {"mixer_pools": [pool.address]}})
    with session_scope(engine) as s:
        version = lists_store.ensure_active(s, datetime.now(UTC))
    assert version.id is not None
    return Env(engine, anvil_module, pool, settings, version.id)


def _rules(verdict: Verdict) -> list[tuple[str, str]]:
    return [(f.rule_id, f.party) for f in verdict.findings]


def test_verdicts_and_evidence(env: Env) -> None:
    node = env.node
    owner = node.rpc("eth_accounts")[0]
    mixed_recipient = "0x" + "a7" * 20
    withdrawal_tx = mixer.deposit_and_withdraw(node.rpc, env.pool, owner, mixed_recipient, f"e{env.pool.address}")
    head = node.block_number()
    deposits = [
        make_deposit("polygon", LAZARUS_MIXED_CASE.lower(), block=head),
        make_deposit("polygon", ETH_ONLY_LOWERCASE, block=head, log_index=1),
        make_deposit("tron", TRON_USDT, block=head),
        make_deposit("polygon", CLEAN, block=head, log_index=2),
        make_deposit("polygon", CLEAN, initiator=LAZARUS_MIXED_CASE.lower(), block=head, log_index=3),
        make_deposit("polygon", mixed_recipient, block=head, log_index=4),
        make_deposit("polygon", env.pool.address, block=head, log_index=5),
        make_deposit("polygon", CLEAN, initiator=None, block=head, log_index=6),
        make_deposit("tron", CLEAN_TRON, block=head, log_index=1),
    ]
    verdicts = env.decide(*deposits, rpc_lookup=env.lookup())
    got = [(v.decision, _rules(v)) for v in verdicts]
    assert got == [
        (Decision.BLOCK, [("ofac.sdn", "from")]),
        (Decision.BLOCK, [("ofac.sdn", "from")]),
        (Decision.BLOCK, [("ofac.sdn", "from")]),
        (Decision.CREDIT, []),
        (Decision.BLOCK, [("ofac.sdn", "initiator")]),
        (Decision.HOLD, [("mixer.withdrawal_recipient", "from")]),
        (Decision.HOLD, [("mixer.direct", "from")]),
        (Decision.HOLD, [("unavailable", "initiator")]),
        (Decision.CREDIT, []),
    ]
    lazarus = verdicts[0].findings[0]
    assert (lazarus.entity, lazarus.programs, lazarus.list_version_id) == ("LAZARUS GROUP", ("DPRK3",), env.version_id)
    assert LAZARUS_MIXED_CASE in lazarus.detail and "ETH" in lazarus.detail
    assert verdicts[2].findings[0].matched_address == TRON_USDT and "USDT" in verdicts[2].findings[0].detail
    mixed = verdicts[5].findings[0]
    assert mixed.evidence_tx == withdrawal_tx and mixed.hop_path[0] == f"polygon:{env.pool.address}"
    assert [env.status(d) for d in deposits[:4]] == ["held", "held", "held", "credited"]
    with session_scope(env.engine) as s:
        stored = s.get(Deposit, deposits[5].id)
        assert stored is not None and stored.findings[0]["evidence_tx"] == withdrawal_tx


def test_index_behind_without_rpc_holds(env: Env) -> None:
    (verdict,) = env.decide(make_deposit("polygon", CLEAN, block=env.node.block_number()))
    assert verdict.decision is Decision.HOLD
    assert {f.detail.split(":")[0] for f in verdict.findings} == {"mixer_index", "blacklist_index"}


def test_rpc_failure_during_catch_up_holds_and_commits(env: Env) -> None:
    failing = CountingFetcher(env.node, fail=True)
    deposit = make_deposit("polygon", CLEAN, block=env.node.block_number())
    (verdict,) = env.decide(deposit, rpc_lookup=env.lookup(failing))
    assert failing.calls >= 1
    assert verdict.decision is Decision.HOLD and _rules(verdict) == [("unavailable", "-")]
    assert env.status(deposit) == DepositStatus.HELD


def test_stale_list_holds_even_a_listed_sender(env: Env) -> None:
    stale = Settings(chains=env.settings.chains)  # default max_list_age_h: the 2025 bundle is stale
    deposit = make_deposit("polygon", LAZARUS_MIXED_CASE.lower(), block=env.node.block_number())
    (verdict,) = env.decide(deposit, settings=stale, rpc_lookup=env.lookup())
    assert verdict.decision is Decision.HOLD
    assert [f.detail.split(":")[0] for f in verdict.findings] == ["lists"]


def test_allowlisted_recipient_is_credited_with_a_note(env: Env) -> None:
    owner = env.node.rpc("eth_accounts")[0]
    exchange = "0x" + "e8" * 20
    mixer.deposit_and_withdraw(env.node.rpc, env.pool, owner, exchange, f"x{env.pool.address}")
    settings = env.settings.model_copy(
        update={
            "screening": env.settings.screening.model_copy(update={"allowlist": [exchange.upper().replace("0X", "0x")]})
        }
    )
    deposit = make_deposit("polygon", exchange, block=env.node.block_number())
    (verdict,) = env.decide(deposit, settings=settings, rpc_lookup=env.lookup())
    assert verdict.decision is Decision.CREDIT and _rules(verdict) == [("allowlist.suppressed", "from")]


def test_make_decider_is_the_pipeline_hook(env: Env) -> None:
    decide = make_decider(env.settings, env.lookup())
    deposit = make_deposit("polygon", CLEAN, block=env.node.block_number())
    with session_scope(env.engine) as s:
        s.add(deposit)
        s.flush()
        decide(s, [deposit], datetime.now(UTC))
    assert env.status(deposit) == DepositStatus.CREDITED


def test_withdrawal_indexed_later_flags_a_credited_deposit(env: Env) -> None:
    """A withdrawal found by a later scan (here on another chain) before a credited deposit: review flag."""
    node = env.node
    owner = node.rpc("eth_accounts")[0]
    sender = "0x" + "f1" * 20
    deposit = make_deposit("base", sender, block=1, when=datetime.now(UTC) + timedelta(hours=1))
    mixer.deposit_and_withdraw(node.rpc, env.pool, owner, sender, f"late{env.pool.address}")
    with session_scope(env.engine) as s:  # decided while the pool's chain had not been indexed yet
        s.add(deposit)
        s.flush()
        verdict = decide_deposits(s, [deposit], env.settings, datetime.now(UTC), env.lookup())[0]
    assert verdict.decision is Decision.CREDIT
    source = anvil_source(node, "otherchain", pools=[env.pool.address])
    hook = make_index_hook(env.settings)
    assert scan_mixer_index(env.engine, source, env.settings, datetime.now(UTC), on_new_facts=hook) >= 1
    with session_scope(env.engine) as s:
        flags = s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == deposit.id)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("mixer.withdrawal_recipient", sender)]
    assert env.status(deposit) == DepositStatus.CREDITED  # a flag moves no money


def _two_hop_settings(env: Env, budget: int) -> Settings:
    screening = env.settings.screening.model_copy(
        update={"two_hop_enabled": True, "two_hop_min_units": 0, "two_hop_rpc_budget": budget}
    )
    return env.settings.model_copy(update={"screening": screening})


def test_two_hop_over_budget_holds(env: Env) -> None:
    env.node.mine(5)
    fetcher = CountingFetcher(env.node)

    def lookup(chain: str) -> IndexSource:
        return anvil_source(env.node, chain, tokens=["0x" + "7e" * 20], max_block_range=1, fetcher=fetcher)

    deposit = make_deposit("polygon", CLEAN, block=env.node.block_number())
    (verdict,) = env.decide(deposit, settings=_two_hop_settings(env, budget=3), rpc_lookup=lookup)
    assert verdict.decision is Decision.HOLD
    assert [f.detail.split(":")[0] for f in verdict.findings] == ["two_hop"]
    assert "budget of 3 calls" in verdict.findings[0].detail
    assert fetcher.calls == 2  # the budget less the call kept for block timestamps


def test_two_hop_without_rpc_holds(env: Env) -> None:
    settings = _two_hop_settings(env, budget=20)
    deposit = make_deposit("polygon", CLEAN, block=env.node.block_number())
    (verdict,) = env.decide(deposit, settings=settings)
    assert verdict.decision is Decision.HOLD
    assert "two_hop: no RPC access" in verdict.summary


def test_address_not_canonical_for_the_chain_holds_but_still_matches(env: Env) -> None:
    """A Tron deposit stored with the hex form (a recording bug) is matched as Tron and held as suspect."""
    from screener_base.addresses import tron_to_hex20

    deposit = make_deposit("tron", tron_to_hex20(TRON_USDT), block=env.node.block_number())
    (verdict,) = env.decide(deposit, rpc_lookup=env.lookup())
    assert verdict.decision is Decision.BLOCK
    assert _rules(verdict) == [("ofac.sdn", "from"), ("unavailable", "-")]
    assert "not a canonical tron address" in verdict.findings[1].detail


def test_deposit_older_than_the_index_extends_it_back(env: Env) -> None:
    """A backfilled deposit below the index's first block: the decider scans back over its window."""
    node = env.node
    owner = node.rpc("eth_accounts")[0]
    sender = "0x" + "b4" * 20
    node.mine(30)
    withdrawal = mixer.deposit_and_withdraw(node.rpc, env.pool, owner, sender, f"back{env.pool.address}")
    node.mine(5)
    deposit_block = node.block_number()
    node.mine(60)
    head = node.block_number()
    # 24 blocks a day and a one-day window: the index starts 27 blocks below start_block (the head).
    settings = Settings(
        lists=FRESH_LISTS,
        screening={"mixer_lookback_days": 1, "blacklist_lookback_days": 1},
        chains={"slowchain": {"chain_id": 31337, "block_time_s": 3600.0, "tokens": {"USDT": "0x" + "7e" * 20}}},
    )

    def lookup(chain: str) -> IndexSource:
        return anvil_source(node, chain, pools=[env.pool.address], block_time_s=3600.0, start_block=head)

    hook = make_index_hook(settings)
    with session_scope(env.engine) as s:  # the forward scan runs first, as the daemon would
        catch_up(s, lookup("slowchain"), "mixer", settings, datetime.now(UTC), head, on_new_facts=hook)
        catch_up(s, lookup("slowchain"), "blacklist", settings, datetime.now(UTC), head, on_new_facts=hook)
    (uncovered,) = env.decide(make_deposit("slowchain", sender, block=deposit_block), settings=settings)
    assert uncovered.decision is Decision.HOLD and "index starts at block" in uncovered.summary
    (verdict,) = env.decide(
        make_deposit("slowchain", sender, block=deposit_block, log_index=1), settings=settings, rpc_lookup=lookup
    )
    assert _rules(verdict) == [("mixer.withdrawal_recipient", "from")]
    assert verdict.findings[0].evidence_tx == withdrawal
