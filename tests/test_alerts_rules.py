"""Alert detectors on SQLite and PostgreSQL: each condition is enqueued once, however often it is seen."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.models.daemon import AlertOutbox, ChainStatus
from screener.models.ledger import Hold
from screener.models.lists import ListRefresh
from screener.ops import alert_rules
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from tests.support.ledger_model import NOW, make_deposit

SETTINGS = Settings(review={"sla_h": 24})
OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20, 7, "Garantex", ("CYBER2",))


def _keys(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return [r[0] for r in s.execute(sa.select(AlertOutbox.dedup_key).order_by(AlertOutbox.id))]  # type: ignore[arg-type]


def _run(engine: Engine, fn, *args) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return int(fn(s, *args))


def test_hold_opened_and_overdue_alert_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        review.apply_verdict(s, make_deposit(1), Verdict(Decision.BLOCK, (OFAC,), 7), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(2), Verdict(Decision.CREDIT, (), 7), SETTINGS, NOW)
    assert _run(engine, alert_rules.detect_opened_holds, NOW) == 1
    assert _run(engine, alert_rules.detect_opened_holds, NOW) == 0
    assert _run(engine, alert_rules.escalate_overdue_holds, NOW + timedelta(hours=23)) == 0
    later = NOW + timedelta(hours=25)
    assert _run(engine, alert_rules.escalate_overdue_holds, later) == 1
    # Still overdue on the next check: the SLA breach and the alert are not repeated.
    assert _run(engine, alert_rules.escalate_overdue_holds, later + timedelta(hours=1)) == 0
    assert _keys(engine) == ["hold_opened:H-1", "hold_overdue:H-1"]
    with session_scope(engine) as s:
        hold = s.get(Hold, 1)
        assert hold is not None and hold.sla_breached_at is not None
        text = s.execute(sa.select(AlertOutbox.text).where(AlertOutbox.id == 1)).scalar_one()  # type: ignore[arg-type]
    assert "H-1 opened (BLOCK): 1.000000 USDT on ethereum" in text and "Garantex" in text


def test_review_flag_alerts_once(engine: Engine) -> None:
    deposit = make_deposit(3)
    with session_scope(engine) as s:
        review.apply_verdict(s, deposit, Verdict(Decision.CREDIT, (), 7), SETTINGS, NOW)
    with session_scope(engine) as s:
        review.apply_verdict(s, deposit, Verdict(Decision.BLOCK, (OFAC,), 8), SETTINGS, NOW)
    assert _run(engine, alert_rules.detect_review_flags, NOW) == 1
    assert _run(engine, alert_rules.detect_review_flags, NOW) == 0
    assert _keys(engine) == ["retroactive_flag:F-1"]


def test_halted_chain_alerts_once_per_safe_head(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(ChainStatus(chain="x", safe_head_block=10, last_progress_at=NOW, ticks_ok=3, ticks_failed=0))
    assert _run(engine, alert_rules.detect_halted_chains, 600.0, NOW + timedelta(seconds=599)) == 0
    for _ in range(2):
        _run(engine, alert_rules.detect_halted_chains, 600.0, NOW + timedelta(seconds=601))
    assert _keys(engine) == ["chain_halted:x:stalled:10"]


def test_list_and_reorg_alerts_dedupe_by_key(engine: Engine) -> None:
    for _ in range(2):
        with session_scope(engine) as s:
            alert_rules.list_stale(s, 4, 80.0, 72.0, NOW)
            alert_rules.list_refresh_failed(s, "HTTP 503", "2025-06-01T12:17", NOW)
            alert_rules.deep_reorg(s, "x", 70, 1234, "cursor rewound", NOW)
            alert_rules.chain_halted(s, "y", 99, "endpoints disagree", NOW)
    assert sorted(_keys(engine)) == [
        "chain_halted:y:99",
        "deep_reorg:x:1234:70",
        "list_refresh_failed:2025-06-01T12:17",
        "list_stale:4",
    ]


def test_rejected_refreshes_alert_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(
            ListRefresh(
                attempted_at=NOW, source="https://x.example/list?key=s3cret", status="rejected", reason="HTTP 503"
            )
        )
        s.add(ListRefresh(attempted_at=NOW, source="bundled:x", status="unchanged", reason=""))
        s.add(ListRefresh(attempted_at=NOW - timedelta(days=2), source="old", status="rejected", reason="old"))
    for _ in range(2):
        _run(engine, alert_rules.detect_failed_refreshes, NOW + timedelta(minutes=1))
    assert _keys(engine) == ["list_refresh_failed:refresh:1"]
    with session_scope(engine) as s:
        text = s.execute(sa.select(AlertOutbox.text)).scalar_one()  # type: ignore[call-overload]
    assert "HTTP 503" in text and "s3cret" not in text
