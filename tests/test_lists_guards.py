"""The list guards as pure decisions (sanctions_lists.guards): snapshots and dates in, ListError out.

The count-based drop guard that test_lists_snapshot.py tested is gone: a drop is now what the candidate removes
(its diff from the active version), per screened family and in total, with a floor of absolute counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sanctions_lists.entries import Entry, make_entry
from sanctions_lists.guards import TOTAL, Drop, check_drop, check_not_empty, check_publication, measure_drops
from sanctions_lists.snapshot import Snapshot, diff
from screener_base.addresses import hex_to_tron
from screener_base.errors import ListError

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ACTIVE_PUBLISHED = datetime(2025, 11, 27, tzinfo=UTC)


def _evm(n: int, tag: str = "ETH") -> Entry:
    return make_entry(f"0x{n:040x}", tag)


def _btc(n: int) -> Entry:
    return make_entry(f"1{n:033d}".replace("0", "A"), "XBT")  # bitcoin-like: base58 (no zero digit)


def _tron(n: int) -> Entry:
    return make_entry(hex_to_tron(f"0x{n:040x}"), "TRX")


def _active() -> Snapshot:
    """10 EVM addresses (each under ETH and USDT), 5 Tron, 100 bitcoin-like: 125 entries."""
    evm = [e for n in range(1, 11) for e in (_evm(n), _evm(n, "USDT"))]
    return Snapshot([*evm, *(_tron(n) for n in range(1, 6)), *(_btc(n) for n in range(1, 101))])


def _without(active: Snapshot, drop: set[str], extra: tuple[Entry, ...] = ()) -> Snapshot:
    return Snapshot([*(e for e in active.entries if e.canonical not in drop), *extra])


def _check(active: Snapshot, candidate: Snapshot, fraction: float = 0.2, floor: int = 2) -> None:
    check_drop(active, diff(active, candidate), fraction, floor, "src")


def test_fixture_families() -> None:
    active = _active()
    assert active.counts_by_family() == {"bitcoin-like": 100, "evm": 20, "tron": 5}


def test_measure_counts_removed_addresses_per_family_and_removed_entries_in_total() -> None:
    active = _active()
    evm = {_evm(n).canonical for n in range(1, 4)}
    candidate = _without(active, evm | {_tron(1).canonical})
    assert measure_drops(active, diff(active, candidate)) == (
        Drop("evm", "addresses", 3, 10),
        Drop("tron", "addresses", 1, 5),
        Drop(TOTAL, "entries", 7, 125),
    )


def test_an_address_moved_to_another_tag_is_not_a_removal() -> None:
    active = _active()
    only_eth = Snapshot([e for e in active.entries if e.tag != "USDT"])
    [evm, tron, total] = measure_drops(active, diff(active, only_eth))
    assert (evm.removed, tron.removed, total.removed) == (0, 0, 10)  # 10 entries, no address


def test_every_screened_family_removed_is_refused_though_the_total_is_small() -> None:
    active = _active()
    gone = {e.canonical for e in active.entries if e.family in ("evm", "tron")}
    with pytest.raises(ListError) as exc:
        _check(active, _without(active, gone), fraction=0.2)
    assert "evm: 10 of 10 addresses removed, a drop of 100%" in exc.value.cause
    assert "tron: 5 of 5 addresses removed, a drop of 100%" in exc.value.cause
    assert "total:" not in exc.value.cause  # 25 of 125 entries, 20 %: not more than the limit, so not named
    assert "lists.max_drop_fraction=20%" in exc.value.cause and "lists.drop_floor_entries=2" in exc.value.cause
    assert exc.value.remedy is not None and "raise lists.max_drop_fraction" in exc.value.remedy


def test_swapping_addresses_for_junk_is_a_drop() -> None:
    active = _active()
    evm = {_evm(n).canonical for n in range(1, 11)}
    junk = tuple(_evm(1000 + n) for n in range(20))
    candidate = _without(active, evm, junk)
    assert len(candidate) == len(active)
    with pytest.raises(ListError, match="evm: 10 of 10 addresses removed"):
        _check(active, candidate)


@pytest.mark.parametrize(
    ("removed_evm", "floor", "fraction", "ok"),
    [
        (2, 2, 0.05, True),  # within the floor: 20 % of the EVM addresses, yet never counts
        (3, 2, 0.05, False),
        (3, 3, 0.05, True),
        (2, 0, 0.2, True),  # 20 % is not more than 20 %
        (3, 0, 0.2, False),
        (10, 2, 1.0, True),  # everything allowed
    ],
)
def test_floor_and_fraction(removed_evm: int, floor: int, fraction: float, ok: bool) -> None:
    active = _active()
    candidate = _without(active, {_evm(n).canonical for n in range(1, removed_evm + 1)})
    if ok:
        _check(active, candidate, fraction, floor)
    else:
        with pytest.raises(ListError, match=f"evm: {removed_evm} of 10"):
            _check(active, candidate, fraction, floor)


def test_the_total_is_guarded_too() -> None:
    active = _active()
    candidate = _without(active, {_btc(n).canonical for n in range(1, 51)})  # half the bitcoin-like entries
    with pytest.raises(ListError, match="total: 50 of 125 entries removed, a drop of 40%"):
        _check(active, candidate)


def test_a_family_the_active_list_lacks_cannot_drop() -> None:
    active = Snapshot([_btc(n) for n in range(1, 11)])
    _check(active, Snapshot([*active.entries, _evm(1)]))
    assert measure_drops(active, diff(active, active))[0] == Drop("evm", "addresses", 0, 0)
    assert Drop("evm", "addresses", 0, 0).fraction == 0.0


def test_empty_candidate_is_refused() -> None:
    with pytest.raises(ListError, match="no digital-currency addresses"):
        check_not_empty(0, "src")
    check_not_empty(1, "src")


def _publication(
    published: datetime | None, active: datetime | None = ACTIVE_PUBLISHED, accept_undated: bool = False
) -> None:
    check_publication(published, active, active_version_id=7, now=NOW, accept_undated=accept_undated, source="src")


@pytest.mark.parametrize(
    "published",
    [ACTIVE_PUBLISHED, NOW, NOW + timedelta(days=1), datetime(2026, 1, 6, tzinfo=UTC)],
    ids=["same-day", "now", "a-day-ahead", "tomorrow"],
)
def test_dates_that_pass(published: datetime) -> None:
    _publication(published)


def test_more_than_a_day_ahead_is_refused() -> None:
    with pytest.raises(ListError, match=r"src is dated 2099-01-01, in the future \(now 2026-01-05 12:00 UTC"):
        _publication(datetime(2099, 1, 1, tzinfo=UTC))
    with pytest.raises(ListError, match="in the future"):
        _publication(NOW + timedelta(days=1, seconds=1), active=None)  # also with no date to compare


def test_older_than_the_active_version_is_refused() -> None:
    with pytest.raises(ListError, match="published 2025-11-26, before active list version 7"):
        _publication(datetime(2025, 11, 26, tzinfo=UTC))


def test_naive_dates_are_taken_as_utc() -> None:
    """SQLite reads timestamps back naive: the guard still compares them."""
    with pytest.raises(ListError, match="before active list version 7"):
        _publication(datetime(2025, 11, 26, tzinfo=UTC), active=datetime(2025, 11, 27))


def test_undated_is_refused_while_the_active_version_is_dated() -> None:
    with pytest.raises(ListError) as exc:
        _publication(None)
    assert exc.value.cause == (
        "src has no publication date, so it cannot be shown to be newer than active list version 7 "
        "(published 2025-11-27)"
    )
    assert exc.value.remedy is not None and "--accept-undated" in exc.value.remedy


def test_undated_passes_when_accepted_or_when_the_active_version_is_undated_too() -> None:
    _publication(None, accept_undated=True)
    _publication(None, active=None)
    _publication(datetime(2020, 1, 1, tzinfo=UTC), active=None)  # no date to compare with: order unknown
