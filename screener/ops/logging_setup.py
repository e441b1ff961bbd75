"""Logging for the daemon: plain or JSON lines, with secrets in URLs redacted from every record.

RPC URLs often carry an API key in the path or query (``https://x.infura.io/v3/<key>``) and webhook URLs
carry a token (``https://hooks.slack.com/services/T/B/<token>``), so any URL in a log line is cut back
to its scheme, host and port (screener_base.redact). Structured fields go in ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from screener.settings import LoggingSettings
from screener_base.redact import redact_text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Renders the message once and redacts it (and the structured fields) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _redact_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the record's ``fields``, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, default=str, sort_keys=False)


class PlainFormatter(logging.Formatter):
    """``time level logger: msg key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> logging.Handler:
    """Install one redacting handler on the root logger (replacing the previous one from this function)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.json_format else PlainFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("screener")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "screener"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # These log every HTTP request or schema check at INFO; our own tick line says more.
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # A poll still catching up makes APScheduler skip the next run with a WARNING: that is the design
    # (max_instances=1), not a problem.
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
    return handler
