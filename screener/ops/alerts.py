"""Alerts: a database outbox and its webhook delivery.

An alert is enqueued in the transaction that causes it, or by the job that detects it, under a dedup key
(``INSERT ... ON CONFLICT DO NOTHING``), so it exists once however often it is detected. A delivery job
claims due rows, posts them to every configured webhook (JSON, or Slack's ``{"text": ...}``) outside any
transaction, and records the outcome: URLs that accepted it are remembered so a retry never re-sends to
them; failures back off exponentially up to ``max_attempts``, after which the alert is marked dead (and
shown by `screener status` and the metrics). Delivery never blocks the pipeline: it is its own job.
Delivery is at least once: a receiver whose 2xx reply is lost sees the alert again, with the same
``Idempotency-Key`` header.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.db import insert_ignore, session_scope
from screener.models.daemon import AlertOutbox
from screener.ops.outbox_rules import AlertKind, AlertState, backoff_s, outbox_row
from screener.settings import AlertSettings
from screener_base.redact import redact_text, redact_url

log = logging.getLogger(__name__)

OUTBOX: sa.Table = AlertOutbox.__table__  # type: ignore[attr-defined]
BATCH_LIMIT = 50


def enqueue(
    session: Session,
    kind: AlertKind,
    key: str,
    text: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    ref_id: int | None = None,
) -> None:
    """Add an alert in the caller's transaction; a second call with the same ``kind``/``key`` does nothing."""
    insert_ignore(session, OUTBOX, outbox_row(kind, key, text, now, payload, ref_id), ["dedup_key"])


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    dedup_key: str
    text: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    delivered_to: tuple[str, ...]


def body_for(alert: AlertView, slack: bool) -> dict[str, Any]:
    """The JSON a webhook receives."""
    if slack:
        return {"text": f"[deposit-screener] {alert.kind}: {alert.text}"}
    return {
        "source": "deposit-screener",
        "kind": alert.kind,
        "key": alert.dedup_key,
        "text": alert.text,
        "created_at": alert.created_at.isoformat(),
        "details": alert.payload,
    }


def url_fingerprint(url: str) -> str:
    # Stored instead of the URL itself, which carries a secret token.
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass
class DeliveryReport:
    sent: int = 0  # alerts now delivered to every webhook
    retrying: int = 0
    dead: int = 0
    logged: int = 0  # no webhook configured: written to the log only
    errors: list[str] = field(default_factory=list)


def _claim(engine: Engine, now: datetime, hold_s: float, limit: int) -> list[AlertView]:
    """Take due alerts out of other deliverers' reach for ``hold_s`` seconds."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(OUTBOX)
            .where(OUTBOX.c.state == AlertState.PENDING, OUTBOX.c.next_attempt_at <= now)
            .order_by(OUTBOX.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            session.execute(
                sa.update(OUTBOX)
                .where(OUTBOX.c.id.in_([r.id for r in rows]))
                .values(next_attempt_at=now + timedelta(seconds=hold_s))
            )
        return [
            AlertView(r.id, r.kind, r.dedup_key, r.text, r.payload, r.created_at, r.attempts, tuple(r.delivered_to))
            for r in rows
        ]


def _post(client: httpx.Client, url: str, alert: AlertView, slack: bool) -> str | None:
    """None on a 2xx reply, else the (redacted) reason."""
    try:
        resp = client.post(url, json=body_for(alert, slack), headers={"Idempotency-Key": alert.dedup_key})
    except httpx.HTTPError as exc:
        return f"{redact_url(url)}: {type(exc).__name__}: {redact_text(str(exc))}"
    if 200 <= resp.status_code < 300:
        return None
    return f"{redact_url(url)}: HTTP {resp.status_code}"


def _record(
    engine: Engine, alert: AlertView, delivered: list[str], errors: list[str], settings: AlertSettings, now: datetime
) -> str:
    values: dict[str, Any] = {"delivered_to": delivered}
    if not errors:
        state = AlertState.DELIVERED
        values.update(state=state, delivered_at=now, attempts=alert.attempts + 1, last_error=None)
    else:
        attempts = alert.attempts + 1
        state = AlertState.DEAD if attempts >= settings.max_attempts else AlertState.PENDING
        values.update(
            state=state,
            attempts=attempts,
            last_error="; ".join(errors)[:2000],
            next_attempt_at=now + timedelta(seconds=backoff_s(attempts)),
        )
    with session_scope(engine) as session:
        session.execute(sa.update(OUTBOX).where(OUTBOX.c.id == alert.id).values(**values))
    return state


def deliver_due(
    engine: Engine,
    settings: AlertSettings,
    now_fn: Callable[[], datetime],
    client: httpx.Client | None = None,
    limit: int = BATCH_LIMIT,
) -> DeliveryReport:
    """Send up to ``limit`` due alerts to every webhook; never raises for a webhook's failure."""
    report = DeliveryReport()
    urls = list(settings.webhook_urls)
    hold_s = settings.timeout_s * max(1, len(urls)) * limit + 60
    alerts = _claim(engine, now_fn(), hold_s, limit)
    if not alerts:
        return report
    if not urls:
        return _log_only(engine, alerts, now_fn(), report)
    own_client = client is None
    http = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=False)
    try:
        for alert in alerts:
            delivered = list(alert.delivered_to)
            errors = []
            for url in urls:
                fp = url_fingerprint(url)
                if fp in delivered:
                    continue
                error = _post(http, url, alert, settings.slack_format)
                if error is None:
                    delivered.append(fp)
                else:
                    errors.append(error)
            state = _record(engine, alert, delivered, errors, settings, now_fn())
            _count(report, state, alert, errors)
    finally:
        if own_client:
            http.close()
    return report


def _count(report: DeliveryReport, state: str, alert: AlertView, errors: list[str]) -> None:
    if state == AlertState.DELIVERED:
        report.sent += 1
        log.info("alert delivered", extra={"fields": {"alert": alert.dedup_key}})
    elif state == AlertState.DEAD:
        report.dead += 1
        report.errors.extend(errors)
        log.error("alert %s undeliverable, giving up: %s", alert.dedup_key, "; ".join(errors))
    else:
        report.retrying += 1
        report.errors.extend(errors)
        log.warning("alert %s not delivered, will retry: %s", alert.dedup_key, "; ".join(errors))


def _log_only(engine: Engine, alerts: list[AlertView], now: datetime, report: DeliveryReport) -> DeliveryReport:
    with session_scope(engine) as session:
        for alert in alerts:
            log.warning("ALERT %s: %s (no alerts.webhook_urls configured)", alert.kind, alert.text)
            session.execute(
                sa.update(OUTBOX)
                .where(OUTBOX.c.id == alert.id)
                .values(state=AlertState.LOGGED, delivered_at=now, attempts=alert.attempts + 1)
            )
            report.logged += 1
    return report


def outbox_counts(session: Session) -> dict[str, int]:
    """Number of alerts in each state."""
    rows = session.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state)).all()
    return {str(state): int(n) for state, n in rows}
