"""What raises an alert: each detector looks at the database and enqueues, deduplicated by key.

Detectors run inside one transaction of the caller (the daemon's alerts and SLA jobs), so an alert and
whatever it records (e.g. a hold's SLA breach) commit together. Each is bounded by ``limit`` rows per run;
what is left over is found on the next run, since the anti-join on the outbox only matches what is new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from screener.amounts import format_units
from screener.lists import store as lists_store
from screener.lists.rules import RefreshStatus
from screener.models.daemon import ChainStatus
from screener.models.deposits import Deposit
from screener.models.ledger import Hold, ReviewFlag
from screener.models.lists import ListRefresh
from screener.ops.alerts import OUTBOX, enqueue
from screener.ops.outbox_rules import AlertKind
from screener.review import service as review
from screener.review.rules import FlagState, HoldState, flag_label, hold_label
from screener.settings import Settings
from screener_base.clock import ensure_utc
from screener_base.redact import redact_text

DETECT_LIMIT = 200


def _alerted(kind: AlertKind) -> Any:
    return sa.select(OUTBOX.c.ref_id).where(OUTBOX.c.kind == kind.value, OUTBOX.c.ref_id.is_not(None))


def _deposit_text(deposit: Deposit) -> str:
    amount = format_units(deposit.amount_raw, deposit.decimals)
    return f"{amount} {deposit.token_symbol} on {deposit.chain} from {deposit.from_address} to {deposit.account}"


def _findings_text(findings: list[dict[str, Any]]) -> str:
    parts = []
    for f in findings:
        who = ", ".join(x for x in (f.get("entity"), " ".join(f.get("programs") or ())) if x)
        parts.append(f"{f.get('rule_id')} {f.get('matched_address') or ''}{f' ({who})' if who else ''}".strip())
    return "; ".join(parts)


def _deposit_payload(deposit: Deposit) -> dict[str, Any]:
    return {
        "deposit_id": deposit.id,
        "chain": deposit.chain,
        "tx_hash": deposit.tx_hash,
        "log_index": deposit.log_index,
        "token": deposit.token_symbol,
        "amount": format_units(deposit.amount_raw, deposit.decimals),
        "from_address": deposit.from_address,
        "account": deposit.account,
    }


def detect_opened_holds(session: Session, now: datetime, limit: int = DETECT_LIMIT) -> int:
    """One alert per unresolved hold, the first time it is seen."""
    stmt = (
        select(Hold, Deposit)
        .join(Deposit, col(Deposit.id) == col(Hold.deposit_id))
        .where(col(Hold.state).in_(HoldState.UNRESOLVED), col(Hold.id).not_in(_alerted(AlertKind.HOLD_OPENED)))
        .order_by(col(Hold.id))
        .limit(limit)
    )
    found = 0
    for hold, deposit in session.exec(stmt):
        label = hold_label(hold.id)
        why = _findings_text(deposit.findings) or hold.reason
        text = f"{label} opened ({hold.verdict}): {_deposit_text(deposit)}; {why}"
        payload = {"hold": label, "verdict": hold.verdict, "reason": hold.reason, **_deposit_payload(deposit)}
        payload["findings"] = deposit.findings
        payload["due_at"] = ensure_utc(hold.due_at).isoformat()
        enqueue(session, AlertKind.HOLD_OPENED, label, text, now, payload, ref_id=hold.id)
        found += 1
    return found


def escalate_overdue_holds(session: Session, now: datetime, limit: int = DETECT_LIMIT) -> int:
    """Record the SLA breach of each overdue hold (review.mark_sla_breached) and alert once per hold.

    Returns how many holds breached their SLA since the last check.
    """
    newly = 0
    for hold in review.overdue_holds(session, now)[:limit]:
        assert hold.id is not None
        newly += review.mark_sla_breached(session, hold.id, now)
        label = hold_label(hold.id)
        due = ensure_utc(hold.due_at)
        text = f"{label} is overdue: due {due.isoformat()}, still {hold.state} ({hold.verdict}: {hold.reason})"
        payload = {"hold": label, "verdict": hold.verdict, "due_at": due.isoformat(), "state": hold.state}
        enqueue(session, AlertKind.HOLD_OVERDUE, label, text, now, payload, ref_id=hold.id)
    return newly


def detect_review_flags(session: Session, now: datetime, limit: int = DETECT_LIMIT) -> int:
    """One alert per open review flag (a finding about an already-credited deposit)."""
    stmt = (
        select(ReviewFlag, Deposit)
        .join(Deposit, col(Deposit.id) == col(ReviewFlag.deposit_id))
        .where(ReviewFlag.state == FlagState.OPEN, col(ReviewFlag.id).not_in(_alerted(AlertKind.RETROACTIVE_FLAG)))
        .order_by(col(ReviewFlag.id))
        .limit(limit)
    )
    found = 0
    for flag, deposit in session.exec(stmt):
        label = flag_label(flag.id)
        text = f"{label} raised on {deposit.status} deposit: {_deposit_text(deposit)}; {flag.reason}"
        payload = {"flag": label, "rule_id": flag.rule_id, "matched_address": flag.matched_address}
        payload.update(_deposit_payload(deposit), deposit_status=deposit.status, reason=flag.reason)
        enqueue(session, AlertKind.RETROACTIVE_FLAG, label, text, now, payload, ref_id=flag.id)
        found += 1
    return found


def detect_halted_chains(session: Session, halt_after_s: float, now: datetime) -> int:
    """Alert once per (chain, safe head) when the safe head has not moved for ``halt_after_s``."""
    found = 0
    for status in session.exec(select(ChainStatus)):
        if status.last_progress_at is None or status.safe_head_block is None:
            continue
        stalled_s = (now - ensure_utc(status.last_progress_at)).total_seconds()
        if stalled_s < halt_after_s:
            continue
        text = (
            f"chain {status.chain} looks halted: safe head {status.safe_head_block} has not moved for "
            f"{int(stalled_s)} s (last error: {status.last_error or 'none'})"
        )
        payload = {"chain": status.chain, "safe_head_block": status.safe_head_block, "stalled_s": int(stalled_s)}
        key = f"{status.chain}:stalled:{status.safe_head_block}"
        enqueue(session, AlertKind.CHAIN_HALTED, key, text, now, payload)
        found += 1
    return found


def deep_reorg(
    session: Session, chain: str, depth_blocks: int | None, at_block: int | None, detail: str, now: datetime
) -> None:
    """A reorg reached blocks below the safe head, which the pipeline had already processed."""
    depth = f"{depth_blocks} block(s)" if depth_blocks is not None else "too many blocks to rewind"
    text = f"deep reorg on {chain} at block {at_block}: {depth} replaced; {detail}"
    payload = {"chain": chain, "depth_blocks": depth_blocks, "at_block": at_block, "detail": detail}
    enqueue(session, AlertKind.DEEP_REORG, f"{chain}:{at_block}:{depth_blocks}", text, now, payload)


def chain_halted(session: Session, chain: str, at_block: int | None, detail: str, now: datetime) -> None:
    """The pipeline stopped this chain for a person to look at (e.g. endpoints contradicting each other)."""
    text = f"chain {chain} halted after block {at_block}: {detail}"
    payload = {"chain": chain, "at_block": at_block, "detail": detail}
    enqueue(session, AlertKind.CHAIN_HALTED, f"{chain}:{at_block}", text, now, payload)


def list_refresh_failed(session: Session, reason: str, run_key: str, now: datetime) -> None:
    """A refresh run that raised before it could record itself (``run_key`` names the run)."""
    text = f"sanctions list refresh failed: {reason}"
    enqueue(session, AlertKind.LIST_REFRESH_FAILED, run_key, text, now, {"reason": reason})


def detect_failed_refreshes(session: Session, now: datetime, limit: int = DETECT_LIMIT) -> int:
    """One alert per rejected refresh recorded in the last day, whoever ran it (a worker or the CLI)."""
    stmt = (
        select(ListRefresh)
        .where(
            ListRefresh.status == RefreshStatus.REJECTED,
            col(ListRefresh.attempted_at) > now - timedelta(days=1),
            col(ListRefresh.id).not_in(_alerted(AlertKind.LIST_REFRESH_FAILED)),
        )
        .order_by(col(ListRefresh.id))
        .limit(limit)
    )
    found = 0
    for attempt in session.exec(stmt):
        source = redact_text(attempt.source)
        text = f"sanctions list refresh failed ({source}): {attempt.reason}; the active version stays in force"
        payload = {"refresh_id": attempt.id, "source": source, "reason": attempt.reason, "status": attempt.status}
        key = f"refresh:{attempt.id}"
        enqueue(session, AlertKind.LIST_REFRESH_FAILED, key, text, now, payload, ref_id=attempt.id)
        found += 1
    return found


def check_list_freshness(session: Session, settings: Settings, now: datetime) -> bool:
    """Alert (once per version) when the active list is stale or missing; True when it is fresh."""
    version = lists_store.active_version(session)
    max_age_h = settings.lists.max_list_age_h
    if version is not None and not lists_store.is_stale(version, settings, now):
        return True
    age_h = lists_store.list_age(version, now).total_seconds() / 3600 if version is not None else None
    list_stale(session, version.id if version is not None else None, age_h, max_age_h, now)
    return False


def list_stale(session: Session, version_id: int | None, age_h: float | None, max_age_h: float, now: datetime) -> None:
    """The active list is older than allowed (or missing): screening now holds every deposit."""
    if version_id is None:
        text = "no sanctions list version is active: every deposit is held as 'screening unavailable'"
    else:
        text = (
            f"sanctions list version {version_id} is {age_h:.1f} h old (limit {max_age_h:g} h): "
            "deposits are held until a refresh succeeds"
        )
    payload = {"version_id": version_id, "age_h": age_h, "max_age_h": max_age_h}
    # Once per version (and per day while none is active), not on every check.
    key = str(version_id) if version_id is not None else f"none:{now.date().isoformat()}"
    enqueue(session, AlertKind.LIST_STALE, key, text, now, payload)
