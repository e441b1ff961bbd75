"""Append-only, hash-chained audit events, written in the caller's transaction.

Each event's ``hash = sha256(prev_hash + canonical JSON of {seq, kind, subject, actor, at, payload})``; the
single ``audit_head`` row names the last event. An append locks that row (``SELECT ... FOR UPDATE``), so
appends serialise on PostgreSQL and ``seq`` has no gaps; SQLite serialises writers with BEGIN IMMEDIATE.

Lock order: the head is the first row lock a writing transaction takes (``lock_head``); ledger and review
functions call it before locking holds or accounts, so two writers can never wait on each other in a cycle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from screener.ledger import seals, stored
from screener.ledger.rules import canonical_json
from screener.models.ledger import GENESIS_HASH, AuditEvent, AuditHead
from screener_base.clock import ensure_utc
from screener_base.errors import AuditError

HEAD_ID = 1
# Events are read in pages so verifying a long chain does not hold it all in memory.
VERIFY_PAGE = 2000
MAX_PROBLEMS = 50


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def normalise_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it will read back from the database (so the stored form is what gets hashed)."""
    try:
        text = json.dumps(payload, default=_json_default, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit payload cannot be stored: {exc}", "pass JSON-safe values (amounts as str)") from exc
    result: dict[str, Any] = json.loads(text)
    return result


def format_at(at: datetime) -> str:
    return ensure_utc(at).isoformat(timespec="microseconds")


def event_hash(prev_hash: str, seq: int, kind: str, subject: str, actor: str, at: datetime, payload: Any) -> str:
    body = {"seq": seq, "kind": kind, "subject": subject, "actor": actor, "at": format_at(at), "payload": payload}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


def lock_head(session: Session) -> AuditHead:
    """Lock and return the head row; the first lock of every writing transaction (see module doc)."""
    stmt = select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update().execution_options(populate_existing=True)
    head = session.exec(stmt).first()
    if head is None:
        raise AuditError(
            "the audit head row is missing (deleted, or the schema was never upgraded)",
            "run `screener db upgrade`; if the schema is current, treat it as tampering: `screener audit verify`",
        )
    return head


def append(
    session: Session,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    actor: str,
    now: datetime,
    *,
    rows: Sequence[tuple[str, int | None]] = (),
) -> AuditEvent:
    """Append one event in the caller's transaction (flushed, not committed).

    ``rows``: (table, id) of the sealed rows this event records a change to; their stored columns go into the
    payload (screener.ledger.seals), so `audit verify` can tell a later edit in SQL from the change recorded here.
    """
    for name, value in (("kind", kind), ("subject", subject), ("actor", actor)):
        if not isinstance(value, str) or not value.strip():
            raise AuditError(f"audit event {name} is empty", f"pass a non-empty {name}")
    if rows:
        payload = {**payload, seals.ROWS_KEY: seals.snapshot(session, rows)}
    body = normalise_payload(payload)
    head = lock_head(session)
    at = ensure_utc(now)
    seq = head.seq + 1
    digest = event_hash(head.hash, seq, kind, subject, actor, at, body)
    event = AuditEvent(
        seq=seq, kind=kind, subject=subject, actor=actor, at=at, payload=body, prev_hash=head.hash, hash=digest
    )
    session.add(event)
    head.seq, head.hash = seq, digest
    session.add(head)
    session.flush()
    return event


def events_for(session: Session, subjects: list[str]) -> list[AuditEvent]:
    if not subjects:
        return []
    stmt = select(AuditEvent).where(col(AuditEvent.subject).in_(subjects)).order_by(col(AuditEvent.seq))
    return list(session.exec(stmt))


def latest_payload(session: Session, subject: str, kind: str) -> dict[str, Any] | None:
    """The payload of the newest event of ``kind`` about ``subject``, if any."""
    event = latest_event(session, subject, kind)
    return dict(event.payload) if event is not None and isinstance(event.payload, dict) else None


def latest_event(session: Session, subject: str, kind: str) -> AuditEvent | None:
    """The newest event of ``kind`` about ``subject``, if any."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.subject == subject, AuditEvent.kind == kind)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def iter_events(session: Session, page: int = VERIFY_PAGE) -> Iterator[AuditEvent]:
    """All events in seq order, a page at a time (keyset pagination; bounded by the table's size).

    Read as stored, so one malformed row never stops a reader: its unreadable ``at`` or ``payload`` is replaced,
    and ``stored.MALFORMED_KEY`` in the payload says why (verify_chain reports it).
    """
    after = 0
    while True:
        rows = [AuditEvent(**row) for row in stored.raw_events(session, after, page)]
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq


@dataclass
class VerifyReport:
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def _check_event(event: AuditEvent, expected_seq: int, prev_hash: str, report: VerifyReport) -> None:
    label = f"event {event.seq} ({event.kind})"
    unreadable = event.payload.get(stored.MALFORMED_KEY) if isinstance(event.payload, dict) else None
    if unreadable is not None:
        report.add(f"{label} is malformed in the database ({unreadable}): it was altered")
        return
    if event.seq != expected_seq:
        report.add(f"event {expected_seq} is missing (the chain jumps from {expected_seq - 1} to {event.seq})")
    elif event.prev_hash != prev_hash:
        report.add(f"{label}: prev_hash does not match the hash of event {event.seq - 1}")
    recomputed = event_hash(event.prev_hash, event.seq, event.kind, event.subject, event.actor, event.at, event.payload)
    if recomputed != event.hash:
        report.add(f"{label} was altered: stored hash {event.hash[:12]}..., recomputed {recomputed[:12]}...")


def verify_chain(session: Session, report: VerifyReport | None = None) -> VerifyReport:
    """Recompute the whole chain; problems name the first broken event first."""
    report = report or VerifyReport()
    prev_hash, expected = GENESIS_HASH, 1
    for event in iter_events(session):
        _check_event(event, expected, prev_hash, report)
        prev_hash, expected = event.hash, event.seq + 1
        report.events += 1
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        report.add("the audit head row is missing")
        return report
    report.head_seq, report.head_hash = head.seq, head.hash
    last = expected - 1
    if head.seq != last:
        report.add(f"event {last + 1} is missing: the head says the chain ends at {head.seq}, the table at {last}")
    elif head.hash != prev_hash:
        report.add(f"the audit head hash does not match event {last}")
    return report


def record_seal_baseline(session: Session, now: datetime) -> dict[str, int] | None:
    """Before the first seal of each sealed table: its highest id, so rows written before sealing existed are told
    from rows inserted behind the CLI later (screener.ledger.verify_rows). Records only the tables no earlier
    baseline named (a table an upgrade added to sealing); None when there are none."""
    lock_head(session)
    named: set[str] = set()
    # Raw: a malformed payload (audit verify names it) must not stop an upgrade or the daemon's start.
    recorded = sa.text("SELECT payload FROM audit_events WHERE kind = :k ORDER BY seq LIMIT 100")
    for (raw,) in session.execute(recorded, {"k": seals.BASELINE_KIND}):
        try:
            payload = json.loads(raw) if isinstance(raw, str | bytes) else raw
        except ValueError:
            continue
        ids = payload.get("pre_sealing_max_ids") if isinstance(payload, dict) else None
        named.update(ids if isinstance(ids, dict) else ())
    rows = {t: n for t, n in seals.baseline_rows(session).items() if t not in named}
    if not rows:
        return None
    append(session, seals.BASELINE_KIND, "seals", {"pre_sealing_max_ids": rows}, "system", now)
    return rows
