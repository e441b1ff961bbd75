"""A tick screening deposits and a list activation at the same moment, on PostgreSQL (deterministic).

The tick's transaction holds the active list version (FOR SHARE) from the snapshot read to its commit; an
activation (EXCLUSIVE table lock, FOR UPDATE) waits for it, so the re-screen hook sees the tick's deposit,
and a tick that starts during an activation waits and screens against the new version. Threads are paused
on events at the exact point of the race; "is waiting" is read from pg_stat_activity, with bounded waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from sanctions_lists.snapshot import Diff
from screener.db import make_engine, session_scope, upgrade
from screener.decide import decide as decide_module
from screener.decide.rescreen import make_list_hook
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.ledger import ReviewFlag
from screener.models.screening import IndexCursor
from screener.settings import Settings
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.screening_env import make_deposit

pytestmark = pytest.mark.postgres

SENDER = "0x" + "ab" * 20  # not on any real list; the candidate list adds it
WAIT_S = 30.0  # upper bound of every wait; a passing run never comes near it
SETTINGS = Settings.model_validate({"lists": {"max_list_age_h": 24 * 3650}})


@dataclass
class Race:
    engine: Engine
    source: str  # the 2025-05-30 list plus SENDER, published after the bundle
    v1: int


@pytest.fixture
def race(pg_url: str, shared_data: Path, tmp_path: Path) -> Iterator[Race]:
    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        v1 = lists_store.ensure_active(s, now).id
        # Indexes are not what this is about: mark them complete.
        for kind in ("mixer", "blacklist"):
            s.add(
                IndexCursor(chain="ethereum", kind=kind, next_block=10**9, first_block=0, sources="-", updated_at=now)
            )
    pairs = [*load_per_asset_lists(shared_data / "ofac" / "2025-05-30"), ("ETH", SENDER)]
    source = tmp_path / "sdn_adds_sender.xml"
    source.write_bytes(render(pairs, published=date(2025, 6, 2)))
    assert v1 is not None
    yield Race(engine, str(source), v1)
    engine.dispose()


class Worker(threading.Thread):
    """Runs ``fn`` once; keeps its result or exception for the test to check."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # reported by finish(); a thread must not swallow it
            self.error = exc
        finally:
            self.done.set()

    def finish(self) -> Any:
        assert self.done.wait(WAIT_S), "worker did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def _tick(engine: Engine, block: int = 100) -> Callable[[], str]:
    """A tick's transaction: record a deposit from SENDER and decide it (the pipeline's decide)."""

    def run() -> str:
        with session_scope(engine) as s:
            deposit = make_deposit("ethereum", SENDER, block=block)
            s.add(deposit)
            s.flush()
            decide_module.decide_deposits(s, [deposit], SETTINGS, datetime.now(UTC))
            return deposit.tx_hash

    return run


def _refresh(
    engine: Engine, source: str, hook: Callable[[Session, int | None, int, Diff], object]
) -> Callable[[], lists_refresh.RefreshResult]:
    on_activated = cast(lists_refresh.OnActivated, hook)  # make_list_hook's counts are only for the caller's log
    return lambda: lists_refresh.refresh(engine, SETTINGS, source, datetime.now(UTC), on_activated=on_activated)


def _lock_waiters(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def _wait_until_blocked(engine: Engine, worker: Worker, waiters: int = 1) -> bool:
    """True once ``worker`` waits for a lock (``waiters`` sessions do); False if it finished instead."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT_S, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if worker.done.is_set():
                return False
            if _lock_waiters(engine) >= waiters:
                return True
            worker.done.wait(0.02)  # poll interval only; the outcome is read from the database
    finally:
        timer.cancel()
    raise AssertionError(f"the worker neither waited for a lock nor finished within {WAIT_S} s")


def _deposit(engine: Engine, tx_hash: str) -> tuple[Deposit, list[ReviewFlag]]:
    with session_scope(engine) as s:
        deposit = s.exec(select(Deposit).where(Deposit.tx_hash == tx_hash)).one()
        flags = list(s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == deposit.id)).all())
        return deposit, flags


def test_activation_waits_for_a_tick_holding_the_list_and_its_hook_flags_the_credit(
    race: Race, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused, go = threading.Event(), threading.Event()
    real_catch_up = decide_module._catch_up

    def catch_up_paused(*args: Any, **kwargs: Any) -> None:  # where the index catch-up's RPC calls happen
        paused.set()
        if not go.wait(WAIT_S):
            raise AssertionError("the test never released the tick")
        real_catch_up(*args, **kwargs)

    monkeypatch.setattr(decide_module, "_catch_up", catch_up_paused)
    tick = Worker(_tick(race.engine))
    tick.start()
    assert paused.wait(WAIT_S)  # the tick holds its snapshot of version 1, its deposit not committed
    refresh = Worker(_refresh(race.engine, race.source, make_list_hook(SETTINGS)))
    refresh.start()
    try:
        blocked = _wait_until_blocked(race.engine, refresh)
    finally:
        go.set()
    tx_hash = tick.finish()
    result = refresh.finish()
    assert blocked, f"the refresh activated while a tick screened against the old list: {result.summary_line()}"
    assert result.status == "updated" and result.added == 1
    deposit, flags = _deposit(race.engine, tx_hash)
    # Decided against version 1 (SENDER not listed), then caught by the activation's re-screen.
    assert (deposit.verdict, deposit.list_version_id) == ("CREDIT", race.v1)
    assert [(f.rule_id, f.matched_address) for f in flags] == [("ofac.sdn", SENDER)]


def test_tick_during_an_activation_waits_and_screens_against_the_new_version(race: Race) -> None:
    activated, go = threading.Event(), threading.Event()
    real_hook = make_list_hook(SETTINGS)

    def hook_then_pause(session: Session, old_id: int | None, new_id: int, change: Diff) -> None:
        real_hook(session, old_id, new_id, change)  # has re-screened; the tick's deposit does not exist yet
        activated.set()
        if not go.wait(WAIT_S):
            raise AssertionError("the test never released the refresh")

    refresh = Worker(_refresh(race.engine, race.source, hook_then_pause))
    refresh.start()
    assert activated.wait(WAIT_S)  # version 2 inserted, not committed
    tick = Worker(_tick(race.engine))
    tick.start()
    try:
        blocked = _wait_until_blocked(race.engine, tick)
    finally:
        go.set()
    result = refresh.finish()
    tx_hash = tick.finish()
    assert blocked, "a tick read the list version while an activation was replacing it"
    assert result.status == "updated"
    deposit, flags = _deposit(race.engine, tx_hash)
    assert (deposit.verdict, deposit.status, deposit.list_version_id) == ("BLOCK", "held", result.version_id)
    assert flags == []


def test_ticks_queue_behind_a_waiting_activation(race: Race, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream of ticks cannot starve an activation: one that starts after it queues behind it."""
    paused, go = threading.Event(), threading.Event()
    real_catch_up = decide_module._catch_up

    def first_tick_paused(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first-tick":
            paused.set()
            if not go.wait(WAIT_S):
                raise AssertionError("the test never released the tick")
        real_catch_up(*args, **kwargs)

    monkeypatch.setattr(decide_module, "_catch_up", first_tick_paused)
    first = Worker(_tick(race.engine, block=100))
    first.name = "first-tick"
    first.start()
    assert paused.wait(WAIT_S)
    refresh = Worker(_refresh(race.engine, race.source, make_list_hook(SETTINGS)))
    refresh.start()
    second = Worker(_tick(race.engine, block=101))
    try:
        assert _wait_until_blocked(race.engine, refresh)
        second.start()
        queued = _wait_until_blocked(race.engine, second, waiters=2)
    finally:
        go.set()
    first_tx, result = first.finish(), refresh.finish()
    second_tx = second.finish()
    assert queued, "a tick that started after a waiting activation went ahead of it"
    first_deposit, first_flags = _deposit(race.engine, first_tx)
    assert (first_deposit.verdict, first_deposit.list_version_id) == ("CREDIT", race.v1)
    assert [(f.rule_id, f.matched_address) for f in first_flags] == [("ofac.sdn", SENDER)]
    second_deposit, _ = _deposit(race.engine, second_tx)
    assert (second_deposit.verdict, second_deposit.list_version_id) == ("BLOCK", result.version_id)
