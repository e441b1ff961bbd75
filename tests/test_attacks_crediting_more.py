"""More attacks on "no credit without a fresh screen", from an attacker's review of the first version of the
credit gate. Each test names its attack in its docstring; each failed on that version and passes now.
(Four-eyes by one OS account under two typed names is issue 12's: identities from authentication.)

The listed sender is the bundled list's LAZARUS GROUP 0x0872...7243.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.decide import credit
from screener.decide.decide import decide_deposits
from screener.decide.holds import rescreen_open_holds
from screener.decide.rescreen import make_list_hook
from screener.ledger import store as ledger
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.ledger import Hold
from screener.models.screening import IndexCursor, MixerWithdrawalRow
from screener.review import service as review
from screener.review.rules import HoldState
from screener.settings import Settings
from screener_base.addresses import evm_display
from screener_base.errors import ReviewError
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.screening_env import make_deposit
from tests.test_attacks_crediting import (
    AMOUNT,
    CLEAN_SENDER,
    FRESH,
    LAZARUS,
    _approve,
    _covered,
    _decide,
    _hold,
    _posted,
    _refresh,
    _refused,
    _release,
)

MIXER_FUNDED = "0x" + "ab" * 19 + "cd"  # received a mixer withdrawal (canonical, lowercase)
EVM_CHAIN = "mychain"  # a chain configured only in settings (not in the registry)
EVM_CFG = {"rpc_urls": ["http://127.0.0.1:1"], "chain_id": 424242, "tokens": {"USDT": "0x" + "de" * 20}}


def _with_chain(name: str, cfg: dict[str, object], **extra: object) -> Settings:
    return Settings(lists=FRESH.lists, chains={name: cfg}, **extra)


def _hold_on(engine: Engine, settings: Settings, chain: str, sender: str, *, block: int = 150) -> int:
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        dep = make_deposit(chain, sender, block=block, amount=AMOUNT)
        s.add(dep)
        s.flush()
        decide_deposits(s, [dep], settings, datetime.now(UTC))
        hold = review.hold_for_deposit(s, dep.id or 0)
        assert hold is not None and hold.id is not None, "the attack needs a held deposit"
        return hold.id


def _posted_on(engine: Engine, account: str = "acct-1") -> int:
    with session_scope(engine) as s:
        return sum(a.credits_posted for a in ledger.list_accounts(s, account))


def _findings(engine: Engine, hold_id: int) -> list[dict[str, object]]:
    with session_scope(engine) as s:
        hold = s.get(Hold, hold_id)
        assert hold is not None
        dep = s.get(Deposit, hold.deposit_id)
        assert dep is not None
        return list(dep.findings)


# -- a hold on a chain that is no longer configured ------------------------------------------------------------


def test_unconfigured_chain_settles_an_unchecked_lookback_window(engine: Engine) -> None:
    """The mixer/blacklist indexes of a settings-only chain start after the deposit's lookback window, so the
    deposit is held "unavailable: mixer_index/blacklist_index" (nobody looked for a mixer withdrawal in the 180
    days before it). The chain is then removed from the configuration. The next re-screen computes the window
    as 0 blocks for an unknown chain, so the gap "disappears" and the system credits the deposit without the
    window ever having been scanned."""
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        for kind in ("mixer", "blacklist"):
            s.add(
                IndexCursor(chain=EVM_CHAIN, kind=kind, next_block=10**9, first_block=100, sources="-", updated_at=now)
            )
    configured = _with_chain(EVM_CHAIN, EVM_CFG)
    hold_id = _hold_on(engine, configured, EVM_CHAIN, CLEAN_SENDER, block=150)
    assert any("index starts at block 100" in str(f.get("detail")) for f in _findings(engine, hold_id))

    rescreen_open_holds(engine, FRESH, datetime.now(UTC))  # the chain's table was removed from the config
    assert _hold(engine, hold_id).state == HoldState.OPEN, "credited with the lookback window never scanned"
    assert _posted_on(engine) == 0


def test_unconfigured_chain_clears_a_non_canonical_sender_funded_by_a_mixer(engine: Engine) -> None:
    """A deposit whose stored sender is checksummed (not canonical) is held "lists: not a canonical evm
    address"; no person may release it (the list check refuses). The sender received a Tornado withdrawal 10
    days earlier, indexed under its canonical (lowercase) form, which the raw-address index lookups never find.
    Once the chain is no longer configured, gather "trusts the stored form": no mismatch, so the "lists" gap
    counts as settled, the lookups still miss, and the system credits a mixer-funded deposit."""
    _covered(engine, EVM_CHAIN)
    sender = evm_display(MIXER_FUNDED)
    assert sender != MIXER_FUNDED
    when = datetime.now(UTC)
    with session_scope(engine) as s:
        s.add(
            MixerWithdrawalRow(
                chain=EVM_CHAIN,
                pool="0x" + "7c" * 20,
                recipient=MIXER_FUNDED,
                fee=0,
                nullifier_hash="0x" + "11" * 32,
                tx_hash="0x" + "22" * 32,
                log_index=0,
                block_number=100,
                block_hash="0x" + "33" * 32,
                block_time=when - timedelta(days=10),
                indexed_at=when,
            )
        )
    configured = _with_chain(EVM_CHAIN, EVM_CFG)
    hold_id = _hold_on(engine, configured, EVM_CHAIN, sender)
    assert any("not a canonical evm address" in str(f.get("detail")) for f in _findings(engine, hold_id))
    _refused(lambda: _release(engine, configured, hold_id), "not credited")  # a person cannot

    rescreen_open_holds(engine, FRESH, datetime.now(UTC))  # the system, after the chain left the config
    assert _hold(engine, hold_id).state == HoldState.OPEN, "a mixer-funded, never-matched sender was credited"
    assert _posted_on(engine) == 0


# -- reject --to return of a listed sender ----------------------------------------------------------------------


def test_reject_to_return_of_a_listed_sender_is_refused(engine: Engine) -> None:
    """A fresh install (bundle stale): LAZARUS's deposit is held as plain HOLD ("unavailable"). The operator
    rejects it `--to return` ("cannot screen it, send it back"). reject_hold checks only the hold's verdict,
    never the list, so sanctioned property is owed back to a listed sender; no later refresh flags it (the
    address was never newly added) and the re-screen skips resolved holds."""
    _covered(engine)
    stale = Settings()
    hold_id = _decide(engine, stale, LAZARUS)
    assert _hold(engine, hold_id).verdict == "HOLD"
    with pytest.raises(ReviewError):
        credit.reject(engine, hold_id, "could not screen, returning", "return", "alice", stale, datetime.now(UTC))
    # once the list is fresh the same reject is refused for the listing, and the hold shows it
    with pytest.raises(ReviewError, match="cannot be returned"):
        credit.reject(engine, hold_id, "returning", "return", "alice", FRESH, datetime.now(UTC))
    assert _hold(engine, hold_id).verdict == "BLOCK"
    blocked = credit.reject(engine, hold_id, "sanctioned", "blocked", "alice", FRESH, datetime.now(UTC))
    assert blocked.state == HoldState.REJECTED
    assert _posted_on(engine, "return_payable") == 0


# -- a pending request that survives a relisting ----------------------------------------------------------------


def test_relisting_voids_a_pending_request_on_a_block_hold(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    """LAZARUS's BLOCK hold; a list delists him and alice asks for the release (four-eyes). The next list
    lists him again: the activation hook skips deposits already BLOCK and the hold re-screen finds the same
    finding key (entity not in the key), so alice's request survives. A later list delists him again and bob
    approves a request made before a relisting neither of them was shown: credited."""
    _covered(engine)
    pairs = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    without = [(t, a) for t, a in pairs if a.lower() != LAZARUS]

    def publish(name: str, rows: list[tuple[str, str]], day: int) -> Path:
        path = tmp_path / name
        path.write_bytes(render(rows, published=date(2025, 6, day)))
        return path

    hold_id = _decide(engine, FRESH, LAZARUS)
    assert _hold(engine, hold_id).verdict == "BLOCK"
    _refresh(engine, FRESH, publish("v2.xml", without, 2))
    assert _release(engine, FRESH, hold_id, "alice").state == HoldState.AWAITING_APPROVAL
    _refresh(engine, FRESH, publish("v3.xml", pairs, 3))  # relisted
    _refresh(engine, FRESH, publish("v4.xml", without, 4))  # delisted again
    _refused(lambda: _approve(engine, FRESH, hold_id, "bob"), "nothing to approve")
    assert _posted(engine) == 0


# -- one malformed row refuses the list -------------------------------------------------------------------------


def test_a_malformed_finding_on_a_delisted_hold_cannot_refuse_the_list(
    engine: Engine, shared_data: Path, tmp_path: Path
) -> None:
    """An open hold from LAZARUS has one malformed finding in its stored JSON (no severity). A list that
    delists LAZARUS runs _annotate_removed in the activating transaction, which parses the findings with
    Finding.from_json outside any savepoint: the KeyError is not a ScreenerError, so refresh() raises and the
    whole list is refused. Until someone repairs the row, every listing in that version is missing and newly
    listed senders are credited against the old version (until it goes stale)."""
    _covered(engine)
    hold_id = _decide(engine, FRESH, LAZARUS)
    with session_scope(engine) as s:
        hold = s.get(Hold, hold_id)
        assert hold is not None
        dep = s.get(Deposit, hold.deposit_id)
        assert dep is not None
        dep.findings = [*dep.findings, {"rule_id": "ofac.sdn", "party": "from", "matched_address": LAZARUS}]
        s.add(dep)
    pairs = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    path = tmp_path / "delisted.xml"
    path.write_bytes(render([(t, a) for t, a in pairs if a.lower() != LAZARUS], published=date(2025, 6, 2)))
    try:
        result = lists_refresh.refresh(engine, FRESH, str(path), datetime.now(UTC), on_activated=make_list_hook(FRESH))
    except Exception as exc:  # the point: any exception here refuses the whole list
        pytest.fail(f"one malformed hold row refused the new list: {type(exc).__name__}: {exc}")
    assert result.status == "updated", result.summary_line()
