"""Wrong-network deposits (issue 14): a customer sends to their EVM deposit address on an EVM chain where that
address is not registered. On two real anvil nodes, configured as chains "polygon" and "base", an address
registered on polygon only receives a transfer on base: it is recorded as an ``unassigned`` deposit (sealed,
audited, alerted, in the tick's transaction), never credited, never held for a customer, and nothing that
decides or re-decides deposits picks it up. SQLite and PostgreSQL.

Each test registers its own deposit addresses (``World.address``, unique per test and database): the two nodes
are shared by the module, so a transfer made by one test is on the chain for the next, but not to its addresses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from screener.db import session_scope
from screener.decide.decide import decide_deposits, make_decider
from screener.decide.holds import rescreen_open_holds
from screener.decide.rescreen import make_list_hook
from screener.demo.devnet import deploy
from screener.ledger import store as ledger
from screener.ledger.audit import verify_chain
from screener.ledger.verify import verify_ledger
from screener.ledger.verify_rows import verify_rows
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.models.chain import ScanCursor
from screener.models.daemon import AlertOutbox
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, LedgerTransfer, ReviewFlag
from screener.ops.outbox_rules import AlertKind
from screener.pipeline.addresses import add_address
from screener.pipeline.backfill import backfill
from screener.pipeline.runtime import ChainRuntime, build_chain_runtime, spec_from_settings
from screener.pipeline.store import drop_undecided_orphans
from screener.pipeline.tick import tick
from screener.review import service as review
from screener.review.rules import UNASSIGNED_ACCOUNT, DepositStatus, wrong_network_finding
from screener.screening.verdicts import Decision, Verdict
from screener.settings import Settings, load_settings
from screener_base.errors import LedgerError, ReviewError
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.anvil import Anvil, run_anvil
from tests.support.chain_env import FAST_RETRY, deposit_address
from tests.support.reliability import Cli, assert_one_line_error
from tests.support.screening_env import cover_indexes

HOME, OTHER = "polygon", "base"  # registry names on devnet chain ids: only the configured tokens are watched
OTHER_CHAIN_ID = 31339
LAZARUS = "0x08723392ed15743cc38513c4925f5e6be5c17243"  # LAZARUS GROUP, in the bundled 2025-05-30 list
UNIT = 10**6
_worlds = itertools.count(1)


@dataclass
class Node:
    anvil: Anvil
    tokens: deploy.StableTokens

    def pay(self, sender: str, to: str, amount: int, token: str | None = None) -> str:
        """``sender`` (impersonated, minted first) sends USDT (or ``token``) to ``to``; the tx hash."""
        token = token or self.tokens.usdt
        self.anvil.rpc("anvil_impersonateAccount", [sender])
        self.anvil.rpc("anvil_setBalance", [sender, hex(10**18)])
        deploy.mint(self.anvil, token, sender, amount)
        tx = deploy.transfer(self.anvil, token, sender, to, amount).tx_hash
        self.anvil.mine(3)  # past the confirmations
        return tx


@dataclass
class World:
    engine: Engine
    settings: Settings
    cli: Cli
    nodes: dict[str, Node]
    runtimes: dict[str, ChainRuntime]
    salt: int

    def address(self, i: int) -> str:
        """A deposit address of this test's own (the nodes are shared by the module's tests)."""
        return deposit_address(self.salt * 0x10000 + i)

    def register(self, chain: str, address: str, account: str) -> None:
        family_of = lambda c: spec_from_settings(self.settings, c).family  # noqa: E731 (a one-line callback)
        with session_scope(self.engine) as s:
            add_address(s, family_of, chain, address, account, datetime.now(UTC))

    def run(self, *chains: str) -> None:
        """Tick each chain with the daemon's decider until it is caught up."""
        decide = make_decider(self.settings)
        for chain in chains or tuple(self.runtimes):
            for _ in range(50):
                if tick(self.engine, self.runtimes[chain], decide=decide).status == "idle":
                    break
            else:
                pytest.fail(f"{chain} never caught up")

    def deposit(self, tx_hash: str) -> Deposit:
        with session_scope(self.engine) as s:
            return s.exec(select(Deposit).where(Deposit.tx_hash == tx_hash)).one()

    def rows(self, model: Any, *where: Any) -> list[Any]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(model).where(*where)))

    def transfers_of(self, dep: Deposit) -> list[str]:
        return [t.id for t in self.rows(LedgerTransfer, col(LedgerTransfer.id).startswith(dep.event_label + ":"))]

    def verify(self) -> list[str]:
        with session_scope(self.engine) as s:
            return verify_rows(s, verify_ledger(s, verify_chain(s))).problems

    def cursor(self, chain: str) -> int:
        with session_scope(self.engine) as s:
            found = s.get(ScanCursor, chain)
            assert found is not None
            return found.next_block


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[str, Node]]:
    with run_anvil() as home, run_anvil(chain_id=OTHER_CHAIN_ID) as other:
        yield {
            HOME: Node(home, deploy.deploy_stable_tokens(home)),
            OTHER: Node(other, deploy.deploy_stable_tokens(other)),
        }


def _chain_toml(name: str, node: Node) -> str:
    return (
        f'[chains.{name}]\nrpc_urls = ["{node.anvil.url}"]\nchain_id = {node.anvil.chain_id}\nconfirmations = 2\n'
        f'finality_tag = "latest"\nstart_block = 0\nmax_block_range = 200\nrequest_timeout_s = 5.0\n'
        f'tokens = {{ USDT = "{node.tokens.usdt}", USDC = "{node.tokens.usdc}" }}\n'
    )


@pytest.fixture
def world(engine: Engine, db_url: str, nodes: dict[str, Node], tmp_path: Path) -> Iterator[World]:
    config = tmp_path / "screener.toml"
    url = db_url.replace("+psycopg", "")
    config.write_text(
        f'[database]\nurl = "{url}"\n[review]\nidentity = "declared"\n[lists]\nmax_list_age_h = 87600.0\n'
        + "".join(_chain_toml(name, node) for name, node in nodes.items())
    )
    settings = load_settings(config)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        lists_store.ensure_active(s, now)
        cover_indexes(s, now, HOME, OTHER)  # complete indexes: only the list decides the control deposits
    runtimes = {name: build_chain_runtime(settings, name, retry=FAST_RETRY) for name in nodes}
    try:
        yield World(engine, settings, Cli(config, tmp_path), nodes, runtimes, next(_worlds))
    finally:
        for rt in runtimes.values():
            rt.close()


def _sender(i: int) -> str:
    return "0x" + f"{0x5E4D0000 + i:040x}"


def _wrong_network(world: World, address: str, account: str = "acct-a", sender: str | None = None) -> Deposit:
    """``address`` registered on polygon only; a transfer to it on base, scanned: the recorded deposit."""
    world.register(HOME, address, account)
    tx = world.nodes[OTHER].pay(sender or _sender(1), address, 5 * UNIT)
    world.run(OTHER)
    return world.deposit(tx)


# --- recorded, sealed, audited, alerted -------------------------------------------------------------------


def test_wrong_network_transfer_is_recorded_unassigned_and_alerted(world: World) -> None:
    a = world.address(0x1401)
    world.register(HOME, a, "acct-a")
    home_tx = world.nodes[HOME].pay(_sender(2), a, 7 * UNIT)  # the right network: credited as usual
    other_tx = world.nodes[OTHER].pay(_sender(1), a, 5 * UNIT, world.nodes[OTHER].tokens.usdc)
    world.run()

    home = world.deposit(home_tx)
    assert (home.status, home.account) == (DepositStatus.CREDITED, "acct-a")
    dep = world.deposit(other_tx)
    assert (dep.chain, dep.status, dep.account, dep.verdict) == (OTHER, "unassigned", UNASSIGNED_ACCOUNT, None)
    assert (dep.to_address, dep.token_symbol, dep.amount_raw, dep.from_address) == (a, "USDC", 5 * UNIT, _sender(1))
    (finding,) = dep.findings
    assert finding["rule_id"] == "wrong_network" and finding["matched_address"] == a
    assert (finding["registered_on"], finding["accounts"]) == ([HOME], ["acct-a"])
    assert f"not on {OTHER}" in finding["detail"] and HOME in finding["detail"]

    # never in the ledger, never a hold, never a flag
    assert world.transfers_of(dep) == [] and len(world.transfers_of(home)) == 1
    assert world.rows(Hold, Hold.deposit_id == dep.id) == []
    assert world.rows(ReviewFlag, ReviewFlag.deposit_id == dep.id) == []

    (alert,) = world.rows(AlertOutbox, AlertOutbox.kind == AlertKind.UNASSIGNED_DEPOSIT.value)
    assert alert.dedup_key == f"unassigned_deposit:{dep.event_label}" and alert.ref_id == dep.id
    assert "5.000000 USDC" in alert.text and a in alert.text and HOME in alert.text and "acct-a" in alert.text
    assert alert.payload["registered_on"] == [HOME] and alert.payload["tx_hash"] == other_tx
    (event,) = world.rows(AuditEvent, AuditEvent.kind == "deposit.unassigned")
    assert event.subject == f"deposit:{dep.id}" and event.actor == "system"
    assert event.payload["event"] == dep.event_label and f"deposits:{dep.id}" in event.payload["rows"]

    # idempotent: a second tick, the live cursor lost (a full rescan), and a backfill record nothing again
    world.run(OTHER)
    with session_scope(world.engine) as s:
        s.delete(s.get(ScanCursor, OTHER))
    world.run(OTHER)
    result = backfill(world.engine, world.runtimes[OTHER], 0, decide=make_decider(world.settings))
    assert (result.recorded, result.unassigned) == (0, 0) and result.duplicates >= 1
    assert len(world.rows(Deposit, Deposit.tx_hash == other_tx)) == 1
    assert len(world.rows(AlertOutbox, AlertOutbox.kind == AlertKind.UNASSIGNED_DEPOSIT.value)) == 1
    assert len(world.rows(AuditEvent, AuditEvent.kind == "deposit.unassigned")) == 1

    assert world.verify() == []
    assert "ok:" in world.cli.ok("audit", "verify")
    assert "1 unassigned" in world.cli.ok("status")


def test_backfill_records_a_wrong_network_transfer_too(world: World) -> None:
    """A transfer the live scan passed over (the address was not ours anywhere yet), found by `screener
    backfill` once the address is registered on polygon: recorded and alerted the same way."""
    a = world.address(0x1402)
    tx = world.nodes[OTHER].pay(_sender(3), a, 2 * UNIT)
    world.run(OTHER)
    assert world.rows(Deposit, Deposit.tx_hash == tx) == []
    world.register(HOME, a, "acct-b")
    cursor = world.cursor(OTHER)
    result = backfill(world.engine, world.runtimes[OTHER], 0, cursor - 1, decide=make_decider(world.settings))
    assert (result.recorded, result.unassigned) == (1, 1)
    dep = world.deposit(tx)
    assert (dep.status, dep.account, dep.findings[0]["accounts"]) == (DepositStatus.UNASSIGNED, "", ["acct-b"])
    assert world.cursor(OTHER) == cursor  # a backfill never moves the live cursor
    (alert,) = world.rows(AlertOutbox, AlertOutbox.kind == AlertKind.UNASSIGNED_DEPOSIT.value)
    assert alert.ref_id == dep.id
    assert world.verify() == []


def test_an_address_registered_on_both_chains_is_not_unassigned(world: World) -> None:
    a = world.address(0x1404)
    world.register(HOME, a, "acct-d")
    world.register(OTHER, a, "acct-d")
    tx = world.nodes[OTHER].pay(_sender(4), a, 1 * UNIT)
    world.run(OTHER)
    assert (world.deposit(tx).status, world.deposit(tx).account) == (DepositStatus.CREDITED, "acct-d")
    assert world.rows(AlertOutbox, AlertOutbox.kind == AlertKind.UNASSIGNED_DEPOSIT.value) == []


def test_the_evidence_names_every_chain_the_address_is_registered_on() -> None:
    finding = wrong_network_finding("base", "0x" + "ab" * 20, [("polygon", "acct-1"), ("ethereum", "acct-1")])
    assert finding["rule_id"] == "wrong_network" and finding["party"] == "-"
    assert (finding["registered_on"], finding["accounts"]) == (["ethereum", "polygon"], ["acct-1"])
    assert "ethereum, polygon" in finding["detail"] and "not on base" in finding["detail"]


# --- attacks: nothing credits an unassigned deposit ------------------------------------------------------


def test_attack_registering_the_address_afterwards_never_credits_the_earlier_transfer(world: World) -> None:
    """Someone registers the address on base after the fact (to the customer, or to another account) and scans
    the range again: the earlier transfer stays unassigned; only later transfers are the new owner's."""
    a = world.address(0x1405)
    dep = _wrong_network(world, a)
    world.register(OTHER, a, "mallory")
    with session_scope(world.engine) as s:
        s.delete(s.get(ScanCursor, OTHER))  # a full rescan ...
    world.run(OTHER)
    backfill(world.engine, world.runtimes[OTHER], 0, decide=make_decider(world.settings))  # ... and a backfill
    again = world.deposit(dep.tx_hash)
    assert (again.status, again.account, again.verdict) == (DepositStatus.UNASSIGNED, UNASSIGNED_ACCOUNT, None)
    assert world.transfers_of(again) == [] and world.rows(Hold, Hold.deposit_id == dep.id) == []
    later = world.nodes[OTHER].pay(_sender(5), a, 1 * UNIT)
    world.run(OTHER)
    assert (world.deposit(later).status, world.deposit(later).account) == (DepositStatus.CREDITED, "mallory")
    assert world.verify() == []


def test_attack_the_decider_and_the_ledger_refuse_an_unassigned_deposit(world: World) -> None:
    dep = _wrong_network(world, world.address(0x1406))
    with pytest.raises(ReviewError) as err, session_scope(world.engine) as s:
        decide_deposits(s, [s.get(Deposit, dep.id)], world.settings, datetime.now(UTC))  # type: ignore[list-item]
    _one_line(err.value, "unassigned", "never credited")
    with pytest.raises(ReviewError) as err, session_scope(world.engine) as s:
        row = s.get(Deposit, dep.id)
        assert row is not None
        review.apply_verdict(s, row, Verdict(Decision.CREDIT), world.settings, datetime.now(UTC))
    _one_line(err.value, "unassigned")
    for move in (ledger.credit, ledger.hold):
        with pytest.raises(LedgerError) as lerr, session_scope(world.engine) as s:
            move(s, ledger.deposit_ref(dep), "system", datetime.now(UTC))
        _one_line(lerr.value, "no customer account")
    with pytest.raises(ReviewError) as err, session_scope(world.engine) as s:
        row = s.get(Deposit, dep.id)
        assert row is not None
        review.raise_review_flag(s, row, review.recorded_findings(row), "try to flag it", datetime.now(UTC))
    assert world.transfers_of(dep) == [] and world.deposit(dep.tx_hash).status == DepositStatus.UNASSIGNED
    assert world.verify() == []


def test_attack_a_hold_forged_for_an_unassigned_deposit_cannot_be_released(world: World) -> None:
    """A hold row inserted behind the CLI's back (SQL) for an unassigned deposit: release, reject --to return
    and the open-hold re-screen each refuse it in one line, and nothing moves."""
    dep = _wrong_network(world, world.address(0x1407))
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        forged = Hold(
            deposit_id=dep.id or 0,
            pending_transfer_id=f"{dep.event_label}:hold",
            verdict="HOLD",
            reason="forged",
            opened_at=now,
            due_at=now,
        )
        s.add(forged)
        s.flush()
        hold_id = forged.id
    release = world.cli.run("holds", "release", f"H-{hold_id}", "--reason", "customer picked the wrong network")
    assert release.returncode == 2
    assert_one_line_error(release, f"H-{hold_id}", "unassigned", "never credited")
    reject = world.cli.run("holds", "reject", f"H-{hold_id}", "--reason", "send it back", "--to", "return")
    assert_one_line_error(reject, "unassigned")
    rescreened = rescreen_open_holds(world.engine, world.settings, datetime.now(UTC))
    assert rescreened.failed == 1 and "unassigned" in rescreened.problems[0], rescreened
    assert world.rows(Hold, Hold.id == hold_id)[0].state == "open"
    assert world.transfers_of(dep) == [] and world.deposit(dep.tx_hash).status == DepositStatus.UNASSIGNED


def test_attack_a_new_listing_of_the_sender_never_touches_an_unassigned_deposit(
    world: World, shared_data: Path, tmp_path: Path
) -> None:
    """LAZARUS sends on the wrong network and, as a control, on the right one while it is delisted; relisting it
    flags the credited control deposit and leaves the unassigned one as it was (no flag, no hold, no ledger)."""
    same = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    delisted, relisted = tmp_path / "delisted.xml", tmp_path / "relisted.xml"
    delisted.write_bytes(render([(t, a) for t, a in same if a.lower() != LAZARUS], published=date(2025, 6, 1)))
    relisted.write_bytes(render(same, published=date(2025, 6, 2)))
    dep = _wrong_network(world, world.address(0x1408), sender=LAZARUS)
    _refresh(world, delisted)
    control_tx = world.nodes[HOME].pay(LAZARUS, world.address(0x1408), 3 * UNIT)
    world.run(HOME)
    control = world.deposit(control_tx)
    assert control.status == DepositStatus.CREDITED
    _refresh(world, relisted)
    assert [f.rule_id for f in world.rows(ReviewFlag, ReviewFlag.deposit_id == control.id)] == ["ofac.sdn"]
    after = world.deposit(dep.tx_hash)
    assert (after.status, after.findings, after.verdict) == (DepositStatus.UNASSIGNED, dep.findings, None)
    assert world.rows(ReviewFlag, ReviewFlag.deposit_id == dep.id) == []
    assert world.rows(Hold, Hold.deposit_id == dep.id) == [] and world.transfers_of(dep) == []
    assert world.verify() == []


def test_a_reorg_forgets_an_unassigned_deposit_openly(world: World) -> None:
    """An unassigned deposit in a replaced block is deleted like an undecided one, and the deletion is sealed
    (it moved no money), instead of halting the chain as a decided deposit would."""
    dep = _wrong_network(world, world.address(0x1409))
    with session_scope(world.engine) as s:
        row = s.get(Deposit, dep.id)
        assert row is not None
        drop_undecided_orphans(s, [row], datetime.now(UTC))
    assert world.rows(Deposit, Deposit.id == dep.id) == []
    (event,) = world.rows(AuditEvent, AuditEvent.kind == "deposit.orphaned")
    assert event.payload["event"] == dep.event_label and event.payload["rows"] == {f"deposits:{dep.id}": None}
    assert world.verify() == []
    # SQLite hands the freed id to the next row: a new deposit there is not an edit of the deleted one.
    again = _wrong_network(world, world.address(0x140B))
    assert again.id == dep.id or world.engine.dialect.name != "sqlite"
    assert world.verify() == []


def _refresh(world: World, source: Path) -> None:
    now = datetime.now(UTC)
    hook = make_list_hook(world.settings)
    result = lists_refresh.refresh(world.engine, world.settings, str(source), now, on_activated=hook)
    assert result.ok, result.summary_line()
    rescreen_open_holds(world.engine, world.settings, now)


def _one_line(exc: Exception, *words: str) -> None:
    message = str(exc)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_an_unassigned_deposit_edited_to_recorded_is_found_by_audit_verify(world: World) -> None:
    """Its row is sealed: flipping it back to `recorded` in SQL (so that something might decide it) shows."""
    dep = _wrong_network(world, world.address(0x140A))
    with session_scope(world.engine) as s:
        s.execute(sa.update(Deposit).where(col(Deposit.id) == dep.id).values(status="recorded", account="acct-a"))
    problems = world.verify()
    assert any(f"deposits id {dep.id}" in p and "edited behind the CLI" in p for p in problems), problems
