"""Re-screening on list activation, through the real refresh, with OFAC's real Tornado Cash (de)listing.

Versions: the bundled 2025-05-30 list (Tornado Cash not listed), then the 2025-03-05 list (listed), then
2025-05-30 again (delisted). Past depositors from a Tornado address get flagged (credited) or blocked (held)
when it is listed, and the open hold is annotated, not released, when it is removed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.db import session_scope
from screener.decide.decide import decide_deposits
from screener.decide.rescreen import make_list_hook
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, ReviewFlag
from screener.screening.verdicts import Decision
from screener.settings import Settings
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.screening_env import cover_indexes, make_deposit

TORNADO_ROUTER = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"  # delisted 2025-03-21
TORNADO_OLD_PROXY = "0x722122df12d4e14e13ac3b6895a86e84145b6967"
TORNADO_POOL_01_ETH = "0x12d66f87a04a9e220743712ce6d9bb1b5616b8fc"
# 0.6: the real Tornado Cash delisting (2025-03-05 -> 2025-05-30) removes 90 of 157 EVM addresses (57 %), which
# the per-family drop guard refuses below that, as it should without an operator's say-so.
SETTINGS = Settings(lists={"max_list_age_h": 24 * 3650, "max_drop_fraction": 0.6})


@pytest.fixture(scope="module")
def list_files(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = {}
    # Each published after the bundle (2025-05-30): a refresh refuses a list published before the active one.
    for n, day in enumerate(("2025-03-05", "2025-05-30"), start=1):
        path = tmp_path_factory.mktemp("lists") / f"sdn_{day}.xml"
        path.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / day), published=date(2025, 6, n)))
        out[day] = str(path)
    return out


def _covered(engine: Engine, *chains: str) -> None:
    """Indexes are not what this test is about: mark them complete so only the list decides."""
    with session_scope(engine) as s:
        cover_indexes(s, datetime.now(UTC), *chains)


def _refresh(engine: Engine, source: str) -> int:
    result = lists_refresh.refresh(engine, SETTINGS, source, datetime.now(UTC), on_activated=make_list_hook(SETTINGS))
    assert result.status == "updated", result.summary_line()
    assert result.version_id is not None
    return result.version_id


def test_listing_flags_and_blocks_then_delisting_annotates(engine: Engine, list_files: dict[str, str]) -> None:
    _covered(engine, "arbitrum", "ethereum")
    with session_scope(engine) as s:
        v1 = lists_store.ensure_active(s, datetime.now(UTC)).id
        credited = make_deposit("arbitrum", TORNADO_ROUTER, block=5)
        held = make_deposit("arbitrum", TORNADO_OLD_PROXY, initiator=None, block=5, log_index=1)
        pool = make_deposit("ethereum", TORNADO_POOL_01_ETH, block=5)
        s.add_all([credited, held, pool])
        s.flush()
        verdicts = decide_deposits(s, [credited, held, pool], SETTINGS, datetime.now(UTC))
    assert [v.decision for v in verdicts] == [Decision.CREDIT, Decision.HOLD, Decision.HOLD]
    # Not on the 2025-05-30 list, still a mixer: the heuristics do not follow the delisting.
    assert [f.rule_id for f in verdicts[2].findings] == ["mixer.direct"]

    v2 = _refresh(engine, list_files["2025-03-05"])
    assert v2 != v1
    with session_scope(engine) as s:
        flags = s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == credited.id)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("ofac.sdn", TORNADO_ROUTER)]
        assert flags[0].findings[0]["list_version_id"] == v2
        hold = s.exec(select(Hold).where(Hold.deposit_id == held.id)).one()
        assert (hold.verdict, hold.state) == ("BLOCK", "open")
        row = s.get(Deposit, held.id)
        assert row is not None and row.list_version_id == v2
        assert {f["rule_id"] for f in row.findings} == {"unavailable", "ofac.sdn"}
        assert s.get(Deposit, credited.id).status == "credited"  # type: ignore[union-attr]

    v3 = _refresh(engine, list_files["2025-05-30"])
    with session_scope(engine) as s:
        hold = s.exec(select(Hold).where(Hold.deposit_id == held.id)).one()
        assert (hold.verdict, hold.state) == ("BLOCK", "open")  # never released by a list change
        notes = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.annotation")).all()
        texts = [n.payload["text"] for n in notes if n.subject == f"hold:{hold.id}"]
        assert len(texts) == 1
        assert TORNADO_OLD_PROXY in texts[0] and f"version {v3}" in texts[0]
        assert "no OFAC match remains" in texts[0] and "unavailable" in texts[0]
        # The credited deposit's flag stays; nothing new is raised by a removal.
        assert len(s.exec(select(ReviewFlag)).all()) == 1


def test_deposits_outside_the_lookback_are_not_rescreened(engine: Engine, list_files: dict[str, str]) -> None:
    _covered(engine, "arbitrum")
    old = datetime(2020, 1, 1, tzinfo=UTC)
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        deposit = make_deposit("arbitrum", TORNADO_ROUTER, block=5, when=old)
        s.add(deposit)
        s.flush()
        decide_deposits(s, [deposit], SETTINGS, datetime.now(UTC))
    _refresh(engine, list_files["2025-03-05"])
    with session_scope(engine) as s:
        assert s.exec(select(ReviewFlag)).all() == []


def test_a_bad_mixer_pool_setting_cannot_refuse_a_new_list(engine: Engine, list_files: dict[str, str]) -> None:
    """The list re-screen reads list facts only: a malformed chains.<x>.mixer_pools entry (which the mixer
    heuristics would trip over) must not fail the activation, or newly listed senders would keep being
    credited against the old list."""
    _covered(engine, "arbitrum")
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
        credited = make_deposit("arbitrum", TORNADO_ROUTER, block=5)
        s.add(credited)
        s.flush()
        (verdict,) = decide_deposits(s, [credited], SETTINGS, datetime.now(UTC))
    assert verdict.decision is Decision.CREDIT
    broken = Settings(lists=SETTINGS.lists.model_dump(), chains={"arbitrum": {"mixer_pools": ["0xnot-an-address"]}})
    source = list_files["2025-03-05"]
    result = lists_refresh.refresh(engine, broken, source, datetime.now(UTC), on_activated=make_list_hook(broken))
    assert result.status == "updated", result.summary_line()
    with session_scope(engine) as s:
        flags = s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == credited.id)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("ofac.sdn", TORNADO_ROUTER)]
