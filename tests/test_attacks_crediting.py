"""Attacks on "nothing credited that should have been held": every way found so far to move an OFAC-listed
sender's deposit into a customer's balance, each replayed against the real list refresh, the real decider and
the real credit gate (screener.decide.credit), on SQLite and PostgreSQL.

The listed sender is LAZARUS GROUP's 0x0872...7243, in the bundled 2025-05-30 list and in OFAC's per-asset
lists of that date (../shared/data/ofac/2025-05-30). Each test ends on the ledger: the listed sender's amount
is never in the customer's posted balance. Cases 3, 5 and 6 (forged, undated and thinned lists) are
in the last section; case 7 (two tables for one chain) is a configuration check.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import make_engine, session_scope, upgrade
from screener.decide import credit
from screener.decide.decide import decide_deposits
from screener.decide.holds import rescreen_open_holds
from screener.decide.rescreen import make_list_hook
from screener.ledger import audit
from screener.ledger import store as ledger
from screener.ledger.audit import verify_chain
from screener.ledger.verify import verify_ledger
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.lists.refresh import RefreshResult
from screener.models.ledger import AuditEvent, Hold, ReviewFlag
from screener.models.lists import ListVersion
from screener.models.screening import IndexCursor
from screener.pipeline.runtime import check_chains
from screener.review import service as review
from screener.review.rules import HoldState
from screener.screening.verdicts import Decision
from screener.settings import ListSettings, Settings, load_settings
from screener_base.addresses import Family, infer_family
from screener_base.errors import ConfigError, ReviewError
from tests.support import cli_fork
from tests.support.advanced_writer import Party, load_per_asset_lists, parties_from_pairs, render, write_advanced_xml
from tests.support.reliability import SCREENER, clean_env
from tests.support.screening_env import cover_indexes, make_deposit

LAZARUS = "0x08723392ed15743cc38513c4925f5e6be5c17243"
CLEAN_SENDER = "0x" + "5a" * 20
CHAIN = "ethereum"  # a registry chain: a chain not configured cannot be fully screened (held, never cleared)
AMOUNT = 1_000 * 10**6  # 1000 USDT, below the four-eyes threshold: one person may release it
FRESH = Settings(lists={"max_list_age_h": 24 * 3650, "max_drop_fraction": 0.3})


@pytest.fixture(scope="module")
def lists_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real OFAC lists rendered as advanced XML, each published after the bundle (2025-05-30)."""
    out = {}
    d = tmp_path_factory.mktemp("lists")
    same = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    out["same"] = d / "same_entries.xml"  # the bundle's addresses, published later: "+0 -0"
    out["same"].write_bytes(render(same, published=date(2025, 6, 1)))
    out["delisted"] = d / "without_lazarus.xml"
    out["delisted"].write_bytes(render([(t, a) for t, a in same if a.lower() != LAZARUS], published=date(2025, 6, 2)))
    return out


def _covered(engine: Engine, chain: str = CHAIN) -> None:
    """The indexes are complete, so only the list decides (a test below leaves them behind on purpose)."""
    with session_scope(engine) as s:
        cover_indexes(s, datetime.now(UTC), chain)


def _decide(engine: Engine, settings: Settings, sender: str, *, initiator: str | None = "", n: int = 0) -> int:
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        dep = make_deposit(CHAIN, sender, initiator=initiator, block=5 + n, amount=AMOUNT, log_index=n)
        s.add(dep)
        s.flush()
        decide_deposits(s, [dep], settings, datetime.now(UTC))
        hold = review.hold_for_deposit(s, dep.id or 0)
        assert hold is not None and hold.id is not None, "the attack needs a held deposit"
        return hold.id


def _refresh(engine: Engine, settings: Settings, source: Path) -> None:
    """What `screener lists refresh` does: refresh with the re-screen hook, then screen the open holds again."""
    now = datetime.now(UTC)
    result = lists_refresh.refresh(engine, settings, str(source), now, on_activated=make_list_hook(settings))
    assert result.ok, result.summary_line()
    rescreen_open_holds(engine, settings, now)


def _posted(engine: Engine) -> int:
    with session_scope(engine) as s:
        return sum(a.credits_posted for a in ledger.list_accounts(s, "acct-1"))


def _hold(engine: Engine, hold_id: int) -> Hold:
    with session_scope(engine) as s:
        return review.get_hold(s, hold_id)


def _refused(action: Callable[[], object], *words: str) -> str:
    with pytest.raises(ReviewError) as err:
        action()
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def _release(engine: Engine, settings: Settings, hold_id: int, who: str = "alice") -> Hold:
    return credit.release(engine, hold_id, "customer explained it", who, settings, datetime.now(UTC))


def _approve(engine: Engine, settings: Settings, hold_id: int, who: str = "bob") -> Hold:
    return credit.approve(engine, hold_id, who, datetime.now(UTC), settings, None)


def test_case1_unavailable_hold_is_screened_again_when_the_list_is_fresh(
    engine: Engine, lists_dir: dict[str, Path]
) -> None:
    """A fresh install: the bundled list is stale, so the listed sender's deposit is held as "unavailable".
    Before: `lists refresh` (+0 -0) left it a plain HOLD and one operator's release credited it."""
    _covered(engine)
    stale = Settings()  # max_list_age_h 72: the 2025-05-30 bundle is stale today
    hold_id = _decide(engine, stale, LAZARUS)
    assert _hold(engine, hold_id).verdict == "HOLD"
    _refused(lambda: _release(engine, stale, hold_id), "not credited", "sanctions list could not be checked")
    assert _hold(engine, hold_id).state == HoldState.OPEN  # a stale list changes nothing

    _refresh(engine, stale, lists_dir["same"])
    hold = _hold(engine, hold_id)
    assert hold.verdict == "BLOCK" and "ofac.sdn" in hold.reason
    _refused(lambda: _release(engine, stale, hold_id), LAZARUS, "never credited")
    assert _posted(engine) == 0


def test_case1b_clean_unavailable_hold_is_credited_after_the_refresh(
    engine: Engine, lists_dir: dict[str, Path]
) -> None:
    """The other side of case 1: an unavailable-only hold that screens clean once the list is fresh is credited
    by the system (review.credit_after_rescreen), with an audit event naming what cleared it."""
    _covered(engine)
    stale = Settings()
    hold_id = _decide(engine, stale, CLEAN_SENDER)
    _refresh(engine, stale, lists_dir["same"])
    assert _hold(engine, hold_id).state == HoldState.RELEASED
    assert _posted(engine) == AMOUNT
    with session_scope(engine) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.cleared")).one()
        cleared = event.payload["cleared_by"]
        assert cleared["list_version"] == lists_store.active_version(s).id  # type: ignore[union-attr]
        assert cleared["mixer_index_to_block"] == 10**9 - 1 and event.actor == "system"


def test_case1c_credit_after_rescreen_false_leaves_it_for_a_person(engine: Engine, lists_dir: dict[str, Path]) -> None:
    _covered(engine)
    stale = Settings(review={"credit_after_rescreen": False})
    hold_id = _decide(engine, stale, CLEAN_SENDER)
    _refresh(engine, stale, lists_dir["same"])
    _refresh(engine, stale, lists_dir["same"])  # verified again: noted once, not twice
    assert _hold(engine, hold_id).state == HoldState.OPEN and _posted(engine) == 0
    with session_scope(engine) as s:
        notes = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.annotation")).all()
        assert len(notes) == 1 and "a person decides" in notes[0].payload["text"]
    assert _release(engine, stale, hold_id).state == HoldState.RELEASED


def test_case2_escalation_voids_the_pending_release_request(engine: Engine, lists_dir: dict[str, Path]) -> None:
    """alice asks for the release of a large HOLD (four-eyes); the list then lists the sender. Before: the hold
    became BLOCK but kept alice's request, and bob's approval credited the sanctioned funds."""
    _covered(engine)
    settings = Settings(lists=FRESH.lists, review={"four_eyes_above_units": 100})  # 1000 USDT needs two people
    delisted = lists_dir["delisted"]
    # Start from a list without LAZARUS, so the deposit is held for something else: an unknown initiator.
    _refresh(engine, settings, delisted)
    hold_id = _decide(engine, settings, LAZARUS, initiator=None)
    assert _release(engine, settings, hold_id, "alice").state == HoldState.AWAITING_APPROVAL
    relisted = lists_dir["same"].with_name("relisted.xml")
    relisted.write_bytes(render(load_per_asset_lists(_ofac_2025_05_30()), published=date(2025, 6, 3)))
    _refresh(engine, settings, relisted)
    hold = _hold(engine, hold_id)
    assert (hold.verdict, hold.state, hold.release_requested_by) == ("BLOCK", HoldState.OPEN, None)
    _refused(lambda: _approve(engine, settings, hold_id, "bob"), "nothing to approve")
    _refused(lambda: _release(engine, settings, hold_id, "bob"), "never credited")
    assert _posted(engine) == 0


def _ofac_2025_05_30() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ofac" / "2025-05-30"


def test_case2b_a_gate_match_voids_a_request_made_before_the_listing(engine: Engine) -> None:
    """The same race without the re-screen running in between (e.g. the cron is late): bob's approval itself
    finds the match, is refused, and the hold shows it and loses alice's request."""
    _covered(engine)
    settings = Settings(lists=FRESH.lists, review={"four_eyes_above_units": 100})
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        dep = make_deposit(CHAIN, LAZARUS, initiator=None, block=5, amount=AMOUNT)
        s.add(dep)
        s.flush()
        from screener.screening.verdicts import Finding, Severity, Verdict

        unknown = Finding("unavailable", Severity.REVIEW, "initiator", detail="initiator: unknown")
        hold = review.apply_verdict(s, dep, Verdict(Decision.HOLD, (unknown,), None), settings, datetime.now(UTC))
        assert hold is not None and hold.id is not None
        hold_id = hold.id
        # alice's request, recorded as if the gate had passed (it was asked before the list had this entry)
        hold.state, hold.release_requested_by = HoldState.AWAITING_APPROVAL, "alice"
        s.add(hold)
        s.flush()
        request = {"hold": f"H-{hold_id}", "state": hold.state, "verdict": hold.verdict, "reason": "ok"}
        audit.append(s, "hold.release_requested", f"hold:{hold_id}", request, "alice", datetime.now(UTC))
    _refused(lambda: _approve(engine, settings, hold_id, "bob"), LAZARUS, "never credited")
    hold = _hold(engine, hold_id)
    assert (hold.verdict, hold.state) == ("BLOCK", HoldState.OPEN)
    assert _posted(engine) == 0


def test_case4_a_long_flag_reason_cannot_refuse_the_list(engine: Engine, lists_dir: dict[str, Path]) -> None:
    """A newly listed sender with credited deposits, listed under many tags with a long name: the review-flag
    reason once had a 4000-character limit, the activation hook failed on it and the whole list was refused,
    so the sender kept being credited against the old list."""
    _covered(engine)
    _refresh(engine, FRESH, lists_dir["delisted"])
    with session_scope(engine) as s:
        deposits = [make_deposit(CHAIN, LAZARUS, block=10 + n, amount=AMOUNT, log_index=n) for n in range(3)]
        s.add_all(deposits)
        s.flush()
        decide_deposits(s, deposits, FRESH, datetime.now(UTC))
    assert _posted(engine) == 3 * AMOUNT  # credited while not listed: legitimate then
    others = [(t, a) for t, a in load_per_asset_lists(_ofac_2025_05_30()) if a.lower() != LAZARUS]
    aliases = "; ".join(f"ALIAS {n} OF THE LAZARUS GROUP (APPLEWORM, APT-C-26, GUARDIANS OF PEACE)" for n in range(12))
    lazarus = Party(
        99_001,
        tuple((tag, LAZARUS) for tag in ("ETH", "USDT", "USDC", "ARB", "BSC", "ETC")),
        ("DPRK3",),
        entity_name="LAZARUS GROUP a.k.a. " + aliases,
    )
    path = lists_dir["same"].with_name("long_names.xml")
    with path.open("w", encoding="utf-8") as out:
        write_advanced_xml(out, [*parties_from_pairs(others), lazarus], published=date(2025, 6, 4))
    result = lists_refresh.refresh(engine, FRESH, str(path), datetime.now(UTC), on_activated=make_list_hook(FRESH))
    assert result.status == "updated", result.summary_line()
    with session_scope(engine) as s:
        flags = s.exec(select(ReviewFlag).where(ReviewFlag.rule_id == "ofac.sdn")).all()
        assert len(flags) == 3
        assert all(len(f.reason) > 4000 and f.reason.endswith(f.reason.strip()) for f in flags)  # kept in full
        assert lists_store.screening_snapshot(s, FRESH, datetime.now(UTC))[1].match("evm", LAZARUS)
    # And a new deposit from the sender is blocked, not credited.
    _decide(engine, FRESH, LAZARUS, n=7)
    assert _posted(engine) == 3 * AMOUNT


def test_case7_two_tables_for_one_chain_id_are_a_config_error() -> None:
    """A copy-pasted mirror table recorded and credited each transfer once per table (1000 on chain, 2000 credited)."""
    mirror = {"rpc_urls": ["http://127.0.0.1:8545"], "chain_id": 1}
    settings = Settings(
        chains={
            "ethereum": {"rpc_urls": ["http://127.0.0.1:8545"]},
            "ethereum_mirror": {**mirror, "tokens": {"USDT": "0xdac17f958d2ee523a2206206994597c13d831ec7"}},
        }
    )
    with pytest.raises(ConfigError) as err:
        check_chains(settings)
    assert "[chains.ethereum]" in str(err.value) and "[chains.ethereum_mirror]" in str(err.value)
    assert "chain id 1" in str(err.value)
    disabled = settings.model_copy(deep=True)
    disabled.chains["ethereum_mirror"].enabled = False
    check_chains(disabled)  # a disabled mirror is fine


def test_initiator_listed_not_the_sender_is_never_credited(engine: Engine, lists_dir: dict[str, Path]) -> None:
    """The listed party signed the transaction; the `from` is a clean contract. Held as unknown-initiator
    before the list was fresh, then released by a person: the gate screens the initiator too."""
    _covered(engine)
    stale = Settings()
    hold_id = _decide(engine, stale, CLEAN_SENDER, initiator=LAZARUS)
    with session_scope(engine) as s:
        lists_store.active_version(s)  # the stale bundle
    fresh = FRESH
    _refused(lambda: _release(engine, fresh, hold_id), "initiator", "never credited")
    assert _hold(engine, hold_id).verdict == "BLOCK"
    assert _posted(engine) == 0


def test_delisting_leaves_a_block_hold_for_a_person(engine: Engine, lists_dir: dict[str, Path]) -> None:
    """A list that removes the sender while its BLOCK hold awaits approval: nothing is released by the list; the
    hold stays BLOCK and awaiting approval, annotated, until a person decides."""
    _covered(engine)
    settings = FRESH
    _refresh(engine, settings, lists_dir["same"])
    hold_id = _decide(engine, settings, LAZARUS)
    _refused(lambda: _release(engine, settings, hold_id), "never credited")  # listed: not even a request
    _refresh(engine, settings, lists_dir["delisted"])
    hold = _hold(engine, hold_id)
    assert (hold.verdict, hold.state) == ("BLOCK", HoldState.OPEN)
    with session_scope(engine) as s:
        notes = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.annotation")).all()
        assert any("not released automatically" in n.payload["text"] for n in notes)
    assert _posted(engine) == 0
    # Now a person may decide, with four-eyes (BLOCK): alice asks, bob approves.
    assert _release(engine, settings, hold_id, "alice").state == HoldState.AWAITING_APPROVAL
    assert _approve(engine, settings, hold_id, "bob").state == HoldState.RELEASED


def test_index_behind_the_deposit_block_at_release(engine: Engine, lists_dir: dict[str, Path]) -> None:
    """The mixer index lags behind the deposit's block (held "unavailable"); the list is fresh and lists the
    sender. The release does not wait for the index: the list check alone refuses it."""
    with session_scope(engine) as s:
        now = datetime.now(UTC)
        for kind in ("mixer", "blacklist"):
            s.add(IndexCursor(chain=CHAIN, kind=kind, next_block=3, first_block=0, sources="-", updated_at=now))
    hold_id = _decide(engine, Settings(), LAZARUS)  # stale list and lagging index
    _refused(lambda: _release(engine, FRESH, hold_id), "never credited")
    hold = _hold(engine, hold_id)
    assert hold.verdict == "BLOCK"
    assert _posted(engine) == 0
    # A clean sender held only for the lagging index is credited once the index catches up (the index-scan job).
    clean_id = _decide(engine, FRESH, CLEAN_SENDER, n=1)
    assert _hold(engine, clean_id).state == HoldState.OPEN
    with session_scope(engine) as s:
        for cursor in s.exec(select(IndexCursor)):
            cursor.next_block = 10**6
            s.add(cursor)
    rescreen_open_holds(engine, FRESH, datetime.now(UTC) + timedelta(seconds=1), only_unavailable=True)
    assert _hold(engine, clean_id).state == HoldState.RELEASED
    assert _hold(engine, hold_id).state == HoldState.OPEN
    assert _posted(engine) == AMOUNT


def test_case1_through_the_cli(tmp_path: Path, lists_dir: dict[str, Path]) -> None:
    """Case 1 as the operator meets it: `screener lists refresh` says what it did to the open holds, and
    `screener holds release` is one `error:` line with exit 2 and no credit."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    cfg = tmp_path / "c.toml"
    # defaults (the bundled list is stale today); one OS account plays the reviewer: names are declared
    cfg.write_text(f'[database]\nurl = "{url}"\n\n[review]\nidentity = "declared"\n')
    engine = make_engine(url)
    upgrade(engine)
    try:
        _covered(engine)
        hold_id = _decide(engine, Settings(database={"url": url}), LAZARUS)
        refresh = cli_fork.run(
            [str(SCREENER), "--config", str(cfg), "lists", "refresh", "--source", str(lists_dir["same"])],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
        )
        assert refresh.returncode == 0, refresh.stderr
        assert "+0 -0" in refresh.stdout and "1 took new evidence" in refresh.stdout, refresh.stdout
        release = cli_fork.run(
            [
                str(SCREENER),
                "--config",
                str(cfg),
                "--operator",
                "alice",
                "holds",
                "release",
                f"H-{hold_id}",
                "--reason",
                "known customer",
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
        )
        assert release.returncode == 2 and release.stdout == ""
        assert release.stderr.startswith("error: ") and len(release.stderr.strip().splitlines()) == 1
        assert LAZARUS in release.stderr and "never credited" in release.stderr
        assert _posted(engine) == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_approve_racing_a_refresh_that_lists_the_sender(pg_url: str, tmp_path: Path, shared_data: Path) -> None:
    """Two processes on PostgreSQL: bob's `holds approve` and a `lists refresh` that lists the sender, started
    together, several rounds. Either the approval committed first, screened against a version that did not list
    the sender (the refresh then flags the credit), or the refresh did and the approval is refused with the hold
    now BLOCK. Never a credit screened against a list that listed the sender."""
    engine = make_engine(pg_url)
    upgrade(engine)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[database]\nurl = "{pg_url}"\n\n[review]\nfour_eyes_above_units = 100\nidentity = "declared"\n'
        "\n[lists]\nmax_list_age_h = 87600\nmax_drop_fraction = 0.3\n"
    )
    settings = load_settings(cfg)
    pairs = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    without = [(t, a) for t, a in pairs if a.lower() != LAZARUS]
    _covered(engine)
    outcomes = []
    try:
        for n in range(4):
            day = date(2025, 7, 1) + timedelta(days=2 * n)
            _refresh(engine, settings, _written(tmp_path / f"without_{n}.xml", render(without, published=day)))
            hold_id = _decide(engine, settings, LAZARUS, initiator=None, n=n)  # held: unknown initiator
            assert _release(engine, settings, hold_id, "alice").state == HoldState.AWAITING_APPROVAL
            listing = _written(tmp_path / f"with_{n}.xml", render(pairs, published=day + timedelta(days=1)))
            approve = ["holds", "approve", f"H-{hold_id}"]
            procs = [_screener(cfg, "bob", approve), _screener(cfg, "carol", ["lists", "refresh", "--source", listing])]
            results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
            for p in procs:
                p.stdout.close()  # type: ignore[union-attr]
                p.stderr.close()  # type: ignore[union-attr]
            assert results[1][0] == 0, results[1]
            outcomes.append(_check_race(engine, hold_id, results[0]))
    finally:
        engine.dispose()
    assert set(outcomes) <= {
        "credited before the listing",
        "refused after the listing",
        "request voided by the listing",
    }


def _written(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def _screener(cfg: Path, operator: str, args: list[str]) -> subprocess.Popen[str]:
    cmd = [str(SCREENER), "--config", str(cfg), "--operator", operator, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())


def _check_race(engine: Engine, hold_id: int, approve: tuple[int, str, str]) -> str:
    code, _out, err = approve
    with session_scope(engine) as s:
        hold = review.get_hold(s, hold_id)
        events = s.exec(select(AuditEvent).where(AuditEvent.subject == f"hold:{hold_id}")).all()
        released = [e for e in events if e.kind == "hold.released"]
        if code == 0:
            assert hold.state == HoldState.RELEASED and len(released) == 1
            screened_with = released[0].payload["screened_with"]
            snapshot = lists_store.load_snapshot(s, lists_store.get_version(s, screened_with))
            assert not snapshot.match("evm", LAZARUS), "credited against a version that lists the sender"
            flags = s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == hold.deposit_id)).all()
            assert [f.rule_id for f in flags] == ["ofac.sdn"]  # the refresh that came second flagged it
            return "credited before the listing"
        assert len(err.strip().splitlines()) == 1, err
        assert (hold.state, hold.verdict, released) == (HoldState.OPEN, "BLOCK", [])
        if "nothing to approve" in err:  # the listing escalated the hold and voided alice's request first
            return "request voided by the listing"
        assert "never credited" in err, err  # the approval's own screen saw the new version
        return "refused after the listing"


# -- cases 3, 5, 6: lists that walked around the guards -----------------------------------------------------
# Attacks on the sanctions-list refresh: forged or careless lists that walked around the list guards (issue 11).
#
# Each goes through the real ``screener.lists.refresh.refresh`` with real OFAC data, on SQLite and PostgreSQL,
# and asserts the active version stays (and, where the attack would unlist someone, that a listed address still
# matches):
#
# - case 3, the drop guard counted families the worker never screens: a candidate without any EVM or Tron
#   address (110 of the bundle's 634 entries, 17 %) passed ``lists.max_drop_fraction = 0.2`` because the ~500
#   bitcoin-like entries hid the loss, and a listed EVM sender would then be credited. The same went for a
#   candidate that swaps every EVM address for junk ones (the count stays the same). The guard now measures what
#   the candidate removes, per screened family (EVM, Tron) and in total, with a floor of
#   ``lists.drop_floor_entries`` so a real delisting from a small family is not refused;
# - case 5, a list dated in the future (DateOfIssue 2099-01-01) was accepted, and every real list after it was
#   refused as "published before the active version": screening froze on a forged list. A candidate dated more
#   than one day after ``now`` is now refused;
# - case 6, an undated list (sdn.csv, or an advanced XML without DateOfIssue) replaced a dated newer one,
#   because the "older list must not replace a newer one" check was skipped when a date was missing. An undated
#   candidate is now refused while the active version is dated, unless the operator passes ``accept_undated``
#   (``screener lists refresh --accept-undated``), and that activation is audited under the OS account.

L_NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
L_LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"  # L_LAZARUS GROUP, ETH tag, in the bundled list
ON_LIST_NOT_IN_CSV = "0x1967d8af5bd86a497fb3dd7899a020e47560daaf"  # on the 2025-05-30 list, not in sdn_2024-05-03.csv
TRON_LISTED = "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre"  # TRX tag, in the bundled list
SDN_CSV = "ofac_raw/sdn_csv/sdn_2024-05-03.csv"  # real sdn.csv: no publication date
SCREENED = {Family.EVM.value, Family.TRON.value}


def _l_settings(**lists: Any) -> Settings:
    return Settings(lists=ListSettings(**{"max_list_age_h": 24 * 3650, **lists}))


def _l_pairs(shared_data: Path, day: str = "2025-05-30") -> list[tuple[str, str]]:
    return load_per_asset_lists(shared_data / "ofac" / day)


def _l_write(tmp_path: Path, name: str, body: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(body)
    return str(path)


def _l_refresh(engine: Engine, settings: Settings, source: str, *, accept_undated: bool = False) -> RefreshResult:
    hook = make_list_hook(settings, now_fn=lambda: L_NOW)
    return lists_refresh.refresh(engine, settings, source, L_NOW, on_activated=hook, accept_undated=accept_undated)


def _l_active(engine: Engine) -> ListVersion:
    with session_scope(engine) as session:
        version = lists_store.active_version(session)
        assert version is not None
        return version


def _l_listed(engine: Engine, settings: Settings, family: str, address: str) -> bool:
    with session_scope(engine) as session:
        _, snapshot = lists_store.screening_snapshot(session, settings, L_NOW)
        return bool(snapshot.match(family, address))


def _l_bundle_active(engine: Engine) -> int:
    with session_scope(engine) as session:
        version = lists_store.ensure_active(session, L_NOW)
        assert version.id is not None
        return version.id


# -- case 3: the drop guard -------------------------------------------------------------------------------------


def test_case3_a_list_without_evm_and_tron_addresses_is_refused(
    engine: Engine, shared_data: Path, tmp_path: Path
) -> None:
    settings = _l_settings(max_drop_fraction=0.2)
    active_id = _l_bundle_active(engine)
    kept = [(tag, address) for tag, address in _l_pairs(shared_data) if infer_family(address).value not in SCREENED]
    source = _l_write(tmp_path, "no_evm_no_tron.xml", render(kept, published=date(2025, 6, 1)))
    result = _l_refresh(engine, settings, source)
    assert (result.status, result.version_id) == ("rejected", active_id), result.summary_line()
    assert "evm" in result.reason and "68 of 68" in result.reason and "100%" in result.reason
    assert "tron" in result.reason and "33 of 33" in result.reason
    assert "lists.max_drop_fraction" in result.reason
    assert _l_active(engine).id == active_id
    assert _l_listed(engine, settings, "evm", L_LAZARUS) and _l_listed(engine, settings, "tron", TRON_LISTED)


def test_case3b_a_list_that_swaps_evm_addresses_for_junk_is_refused(
    engine: Engine, shared_data: Path, tmp_path: Path
) -> None:
    """Same number of entries, so comparing counts sees no drop; the removed addresses say otherwise."""
    settings = _l_settings(max_drop_fraction=0.2)
    active_id = _l_bundle_active(engine)
    swapped = [
        (tag, f"0x{n:040x}" if infer_family(address) == Family.EVM else address)
        for n, (tag, address) in enumerate(_l_pairs(shared_data), start=1)
    ]
    source = _l_write(tmp_path, "swapped.xml", render(swapped, published=date(2025, 6, 1)))
    result = _l_refresh(engine, settings, source)
    assert (result.status, result.version_id) == ("rejected", active_id), result.summary_line()
    assert "evm" in result.reason and "68 of 68" in result.reason
    assert _l_listed(engine, settings, "evm", L_LAZARUS)


def test_case3c_a_small_delisting_within_the_floor_is_accepted(
    engine: Engine, shared_data: Path, tmp_path: Path
) -> None:
    """Two of the 33 Tron addresses are 6 %, more than the 5 % allowed: only the floor lets them go."""
    settings = _l_settings(max_drop_fraction=0.05, drop_floor_entries=2)
    _l_bundle_active(engine)
    pairs = _l_pairs(shared_data)
    tron = list(dict.fromkeys(address for _, address in pairs if infer_family(address) == Family.TRON))[:2]
    kept = [(tag, address) for tag, address in pairs if address not in tron]
    source = _l_write(tmp_path, "two_delisted.xml", render(kept, published=date(2025, 6, 1)))
    result = _l_refresh(engine, settings, source)
    assert result.status == "updated", result.summary_line()
    assert not _l_listed(engine, settings, "tron", tron[0])
    # Three more (10 % of 31) are over the floor, so the fraction applies again.
    three = list(dict.fromkeys(address for _, address in pairs if infer_family(address) == Family.TRON))[2:5]
    fewer = [(tag, address) for tag, address in kept if address not in three]
    again = _l_refresh(
        engine, settings, _l_write(tmp_path, "three_more.xml", render(fewer, published=date(2025, 6, 2)))
    )
    assert (again.status, again.version_id) == ("rejected", result.version_id), again.summary_line()
    assert "tron" in again.reason and "3 of 31" in again.reason
    assert _l_listed(engine, settings, "tron", three[0])


# -- case 5: a list dated in the future -------------------------------------------------------------------------


def test_case5_a_future_dated_list_is_refused(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    settings = _l_settings()
    active_id = _l_bundle_active(engine)
    forged = _l_write(tmp_path, "future.xml", render(_l_pairs(shared_data), published=date(2099, 1, 1)))
    result = _l_refresh(engine, settings, forged)
    assert (result.status, result.version_id) == ("rejected", active_id), result.summary_line()
    assert "2099-01-01" in result.reason and "future" in result.reason
    # So the real lists that follow are still accepted.
    real = _l_write(tmp_path, "real.xml", render(_l_pairs(shared_data), published=date(2025, 12, 1)))
    assert _l_refresh(engine, settings, real).status == "updated"


def test_case5b_a_list_dated_tomorrow_is_accepted(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    """OFAC dates its file in US time; up to a day ahead of UTC ``now`` is not a forgery."""
    _l_bundle_active(engine)
    tomorrow = (L_NOW + timedelta(days=1)).date()
    source = _l_write(tmp_path, "tomorrow.xml", render(_l_pairs(shared_data), published=tomorrow))
    assert _l_refresh(engine, _l_settings(), source).status == "updated"


# -- case 6: an undated list replacing a dated one --------------------------------------------------------------


@pytest.fixture
def dated_active(engine: Engine, shared_data: Path, tmp_path: Path) -> int:
    """The current list as published 2025-11-27 (the 2025-05-30 contents: ../shared/data has no later
    per-asset lists), activated over the bundle."""
    _l_bundle_active(engine)
    source = _l_write(tmp_path, "sdn_2025-11-27.xml", render(_l_pairs(shared_data), published=date(2025, 11, 27)))
    result = _l_refresh(engine, _l_settings(), source)
    assert result.status == "updated" and result.version_id is not None, result.summary_line()
    return result.version_id


def _l_undated_xml(shared_data: Path, tmp_path: Path) -> str:
    pairs = [p for p in _l_pairs(shared_data) if p[1] != ON_LIST_NOT_IN_CSV]
    body = re.sub(rb"\s*<DateOfIssue .*?</DateOfIssue>", b"", render(pairs, published=date(2025, 12, 1)))
    assert b"DateOfIssue" not in body
    return _l_write(tmp_path, "undated.xml", body)


@pytest.mark.parametrize("kind", ["sdn_csv", "advanced_xml"])
def test_case6_an_undated_list_never_replaces_a_dated_one(
    engine: Engine, shared_data: Path, tmp_path: Path, dated_active: int, kind: str
) -> None:
    settings = _l_settings(max_drop_fraction=1.0)  # only the date check stands between the list and activation
    source = str(shared_data / SDN_CSV) if kind == "sdn_csv" else _l_undated_xml(shared_data, tmp_path)
    result = _l_refresh(engine, settings, source)
    assert (result.status, result.version_id) == ("rejected", dated_active), result.summary_line()
    assert "no publication date" in result.reason and "2025-11-27" in result.reason
    assert "--accept-undated" in result.reason
    assert _l_active(engine).id == dated_active
    assert _l_listed(engine, settings, "evm", ON_LIST_NOT_IN_CSV)


def test_case6b_accept_undated_activates_and_is_audited(engine: Engine, shared_data: Path, dated_active: int) -> None:
    settings = _l_settings(max_drop_fraction=1.0)
    result = _l_refresh(engine, settings, str(shared_data / SDN_CSV), accept_undated=True)
    assert result.status == "updated", result.summary_line()
    assert result.version_id is not None and _l_active(engine).id == result.version_id
    with session_scope(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.kind == "list.accepted_undated")).all()
        assert event.subject == f"list_version:{result.version_id}"
        assert event.actor == pwd.getpwuid(os.geteuid()).pw_name
        assert event.payload == {
            "version_id": result.version_id,
            "source": str(shared_data / SDN_CSV),
            "sha256": result.sha256,
            "replaced_version_id": dated_active,
            "replaced_published_at": "2025-11-27T00:00:00+00:00",
        }
        report = verify_ledger(session, verify_chain(session))
    assert report.ok, report.problems


def test_case6d_after_an_accepted_undated_list_an_old_mirror_is_still_refused(
    engine: Engine, shared_data: Path, tmp_path: Path, dated_active: int
) -> None:
    """The undated version has no date to compare with: the newest dated version ever active stands in."""
    _l_refresh(engine, _l_settings(max_drop_fraction=1.0), str(shared_data / SDN_CSV), accept_undated=True)
    undated_id = _l_active(engine).id
    old = _l_write(tmp_path, "old_mirror.xml", render(_l_pairs(shared_data), published=date(2025, 7, 1)))
    result = _l_refresh(engine, _l_settings(max_drop_fraction=1.0), old)
    assert (result.status, result.version_id) == ("rejected", undated_id), result.summary_line()
    assert "2025-11-27" in result.reason and "older list must not replace a newer one" in result.reason


def test_case6c_a_dated_list_needs_no_override(
    engine: Engine, shared_data: Path, tmp_path: Path, dated_active: int
) -> None:
    """accept_undated changes nothing for a dated list, and audits nothing."""
    source = _l_write(tmp_path, "next.xml", render(_l_pairs(shared_data), published=date(2025, 12, 1)))
    result = _l_refresh(engine, _l_settings(), source, accept_undated=True)
    assert result.status == "updated", result.summary_line()
    with session_scope(engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.kind == "list.accepted_undated")).all() == []
