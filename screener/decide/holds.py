"""Open holds screened again whenever what screening knows changes: a list activated, a list verified fresh
again, an index caught up past a held deposit's block (screener.daemon.jobs and `screener lists refresh` call
:func:`rescreen_open_holds`; the credit gate calls :func:`rescreen_holds` for the one hold it refused).

What follows is decided by the pure screener.review.evidence.judge_rescreen: new evidence is taken (and voids a
pending release request), a hold that was only "screening unavailable" and now screens clean is credited
(``review.credit_after_rescreen``, the decision the pipeline would have taken with the data) or noted for a
person, and anything else changes nothing. One hold that cannot be re-screened (e.g. a malformed row) is
skipped with a warning and rolls back alone; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from screener.db import session_scope
from screener.decide.gather import ListState, Scope, gather
from screener.indexes.rules import IndexKind
from screener.indexes.store import scanned_to
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold
from screener.review import service as review
from screener.review.evidence import Action, judge_rescreen, unavailable_check
from screener.review.rules import HoldState, hold_label
from screener.screening.policy import screen
from screener.screening.verdicts import Verdict
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ScreenerError

log = logging.getLogger(__name__)

# Holds read per query (by id), and the most one run screens: the loop is bounded, and a backlog beyond it is
# logged (the next trigger starts again from the oldest).
PAGE_HOLDS = 500
MAX_PROBLEMS = 20
MAX_HOLDS_PER_RUN = 50_000
CLEAN_NOTE = (
    "every check that was unavailable now screens clean; review.credit_after_rescreen is false, so a person decides"
)


@dataclass
class HoldRescreen:
    screened: int = 0
    cleared: int = 0
    revised: int = 0
    noted: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS "H-n: why" lines

    def summary(self) -> str:
        return (
            f"{self.screened} open hold(s) re-screened: {self.cleared} credited as clean, {self.revised} took new "
            f"evidence, {self.noted} noted clean for a person, {self.failed} could not be re-screened"
        )


def rescreen_open_holds(
    engine: Engine, settings: Settings, now: datetime, *, only_unavailable: bool = False
) -> HoldRescreen:
    """Every unresolved hold (``only_unavailable``: those with an ``unavailable`` finding), in one transaction."""
    with session_scope(engine) as session:
        return rescreen_holds(session, settings, now, only_unavailable=only_unavailable)


def rescreen_holds(
    session: Session,
    settings: Settings,
    now: datetime,
    hold_ids: Sequence[int] | None = None,
    *,
    only_unavailable: bool = False,
    limit: int = MAX_HOLDS_PER_RUN,
) -> HoldRescreen:
    now = ensure_utc(now)
    lists = ListState.active(session, settings, now)  # FOR SHARE, before any audit append (the lock order)
    counts = HoldRescreen()
    after_id = 0
    while counts.screened < limit:
        page = _unresolved(session, hold_ids, after_id)
        if not page:
            return counts
        after_id = page[-1][0].id or after_id
        for hold, deposit in page:
            if only_unavailable and not _has_unavailable(deposit.findings):
                continue
            counts.screened += 1
            try:
                with session.begin_nested():
                    _rescreen_one(session, hold.id or 0, lists, settings, now, counts)
            except ScreenerError as exc:
                counts.failed += 1
                if len(counts.problems) < MAX_PROBLEMS:
                    counts.problems.append(f"{hold_label(hold.id)}: {exc}")
                log.warning("hold %s was not re-screened: %s", hold_label(hold.id), exc)
    log.warning("re-screened %d open holds, the most one run does; the rest wait for the next trigger", limit)
    return counts


def _has_unavailable(findings: Any) -> bool:
    # A malformed findings column is screened too (it then fails alone, in its savepoint, with a clear error).
    if not isinstance(findings, list):
        return True
    return any(not isinstance(f, dict) or f.get("rule_id") == "unavailable" for f in findings)


def _unresolved(session: Session, hold_ids: Sequence[int] | None, after_id: int) -> list[tuple[Hold, Deposit]]:
    stmt = (
        select(Hold, Deposit)
        .join(Deposit, col(Deposit.id) == col(Hold.deposit_id))
        .where(col(Hold.state).in_(HoldState.UNRESOLVED), col(Hold.id) > after_id)
        .order_by(col(Hold.id))
        .limit(PAGE_HOLDS)
    )
    if hold_ids is not None:
        stmt = stmt.where(col(Hold.id).in_(list(hold_ids)))
    return [(h, d) for h, d in session.exec(stmt)]


def screen_held(session: Session, deposit: Deposit, lists: ListState, settings: Settings, now: datetime) -> Verdict:
    """A held deposit screened again: everything but two-hop (Scope.HOLD), against ``lists``. The credit gate
    (screener.decide.credit) and the re-screen below both judge a hold on this."""
    return screen(gather(session, deposit, lists, settings, None, Scope.HOLD), settings.screening, now)


def _rescreen_one(
    session: Session, hold_id: int, lists: ListState, settings: Settings, now: datetime, counts: HoldRescreen
) -> None:
    hold, deposit = review.lock_hold(session, hold_id)  # judge the rows as they are now, not as listed
    if hold.state not in HoldState.UNRESOLVED:
        return  # another worker or a person resolved it meanwhile
    fresh = screen_held(session, deposit, lists, settings, now)
    recorded = review.recorded_findings(deposit)
    judgement = judge_rescreen(recorded, hold.verdict, fresh, credit_when_clean=settings.review.credit_after_rescreen)
    if judgement.action is Action.CLEAR:
        review.clear_hold(session, hold_id, fresh, cleared_by(session, deposit, fresh), now)
        counts.cleared += 1
    elif judgement.action is Action.REVISE:
        review.revise_hold(
            session, hold_id, judgement.decision, judgement.findings, fresh.list_version_id, judgement.why, now
        )
        counts.revised += 1
    elif judgement.action is Action.NOTE_CLEAN and not _noted(session, hold_id):
        review.annotate_hold(session, hold_id, CLEAN_NOTE, review.SYSTEM_ACTOR, now)
        counts.noted += 1


def cleared_by(session: Session, deposit: Deposit, fresh: Verdict) -> dict[str, Any]:
    """What a clean re-screen read: the list version and how far each of the chain's indexes had scanned."""
    out: dict[str, Any] = {"list_version": fresh.list_version_id}
    for kind in (IndexKind.MIXER, IndexKind.BLACKLIST):
        out[f"{kind}_index_to_block"] = scanned_to(session, deposit.chain, kind)
    out["unavailable_left"] = sorted({c for f in fresh.findings if (c := unavailable_check(f))})
    return out


def _noted(session: Session, hold_id: int) -> bool:
    stmt = select(AuditEvent).where(AuditEvent.subject == f"hold:{hold_id}", AuditEvent.kind == "hold.annotation")
    return any(e.payload.get("text") == CLEAN_NOTE for e in session.exec(stmt))
