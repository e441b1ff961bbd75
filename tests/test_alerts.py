"""The alert outbox and webhook delivery against a real loopback receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.demo.devnet.anvil import free_port
from screener.models.daemon import AlertOutbox
from screener.ops.alerts import deliver_due, enqueue, outbox_counts
from screener.ops.logging_setup import configure_logging
from screener.ops.outbox_rules import AlertKind, AlertState, backoff_s
from screener.settings import AlertSettings, LoggingSettings
from screener_base.redact import redact_text, redact_url
from tests.support.webhook_receiver import run_webhook_receiver

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _enqueue(engine: Engine, key: str = "H-1", kind: AlertKind = AlertKind.HOLD_OPENED) -> None:
    with session_scope(engine) as s:
        enqueue(s, kind, key, f"hold {key} opened", T0, payload={"hold": key}, ref_id=1)


def _rows(engine: Engine) -> list[AlertOutbox]:
    with session_scope(engine) as s:
        return list(s.execute(sa.select(AlertOutbox).order_by(AlertOutbox.id)).scalars())  # type: ignore[arg-type]


def test_enqueue_is_idempotent_per_key(engine: Engine) -> None:
    _enqueue(engine)
    _enqueue(engine)
    _enqueue(engine, key="H-2")
    assert [r.dedup_key for r in _rows(engine)] == ["hold_opened:H-1", "hold_opened:H-2"]


def test_delivers_json_once_with_idempotency_key(engine: Engine) -> None:
    _enqueue(engine)
    with run_webhook_receiver() as hook:
        settings = AlertSettings(webhook_urls=[hook.url])
        report = deliver_due(engine, settings, Clock(T0))
        assert report.sent == 1
        # Nothing is due any more: a second run sends nothing.
        assert deliver_due(engine, settings, Clock(T0 + timedelta(hours=1))).sent == 0
        (got,) = hook.received
    assert got.headers["Idempotency-Key"] == "hold_opened:H-1"
    assert got.body["kind"] == "hold_opened" and got.body["text"] == "hold H-1 opened"
    assert got.body["details"] == {"hold": "H-1"}
    (row,) = _rows(engine)
    assert row.state == AlertState.DELIVERED and row.attempts == 1


def test_slack_format(engine: Engine) -> None:
    _enqueue(engine)
    with run_webhook_receiver() as hook:
        deliver_due(engine, AlertSettings(webhook_urls=[hook.url], slack_format=True), Clock(T0))
        assert hook.bodies() == [{"text": "[deposit-screener] hold_opened: hold H-1 opened"}]


def test_failed_webhook_is_retried_later_without_resending_to_the_others(engine: Engine) -> None:
    _enqueue(engine)
    clock = Clock(T0)
    with run_webhook_receiver("/good") as good, run_webhook_receiver("/flaky/tok3n") as flaky:
        flaky.fail_next = 1
        settings = AlertSettings(webhook_urls=[good.url, flaky.url])
        report = deliver_due(engine, settings, clock)
        assert (report.sent, report.retrying) == (0, 1)
        (row,) = _rows(engine)
        assert row.state == AlertState.PENDING and row.attempts == 1
        assert row.last_error is not None and "503" in row.last_error and "tok3n" not in row.last_error
        # Not due yet: the backoff holds it back.
        assert deliver_due(engine, settings, clock).retrying == 0 and len(flaky.received) == 0
        clock.now = T0 + timedelta(seconds=backoff_s(1) + 1)
        assert deliver_due(engine, settings, clock).sent == 1
        assert len(good.received) == 1 and len(flaky.received) == 1


def test_unreachable_webhook_gives_up_after_max_attempts(engine: Engine) -> None:
    _enqueue(engine)
    clock = Clock(T0)
    settings = AlertSettings(webhook_urls=[f"http://127.0.0.1:{free_port()}/x"], max_attempts=3, timeout_s=2)
    states = []
    for _ in range(3):
        report = deliver_due(engine, settings, clock)
        states.append((report.retrying, report.dead))
        clock.now += timedelta(seconds=backoff_s(10))
    assert states == [(1, 0), (1, 0), (0, 1)]
    with session_scope(engine) as s:
        assert outbox_counts(s) == {"dead": 1}


def test_without_webhooks_alerts_go_to_the_log(engine: Engine) -> None:
    _enqueue(engine)
    assert deliver_due(engine, AlertSettings(), Clock(T0)).logged == 1
    assert _rows(engine)[0].state == AlertState.LOGGED


def test_redaction() -> None:
    assert redact_url("https://mainnet.infura.io/v3/abcdef123") == "https://mainnet.infura.io/***"
    assert redact_url("https://user:pw@host.example:8545") == "https://host.example:8545"
    assert redact_url("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"
    assert redact_url("https://rpc.example/?apikey=k") == "https://rpc.example/***"
    text = "rpc https://x.example/key123 failed, then https://hooks.slack.com/services/T/B/sekrit"
    assert redact_text(text) == "rpc https://x.example/*** failed, then https://hooks.slack.com/***"


def test_json_log_lines_are_redacted() -> None:
    stream = io.StringIO()
    handler = configure_logging(LoggingSettings(json_format=True, level="INFO"), stream=stream)
    try:
        logging.getLogger("screener.test").info(
            "tick via %s", "https://a.example/v3/KEY", extra={"fields": {"chain": "x", "url": "http://h/t0k"}}
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = json.loads(stream.getvalue().strip())
    assert line["msg"] == "tick via https://a.example/***"
    assert line["chain"] == "x" and line["url"] == "http://h/***" and line["level"] == "INFO"
