"""The one URL redactor (screener_base.redact) and every place an RPC endpoint is shown or stored."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.cli.runtime import _text
from screener.daemon.state import flush_rpc_errors
from screener.db import make_engine, session_scope, upgrade
from screener.demo.devnet.anvil import free_port
from screener.models.daemon import RpcEndpointErrors
from screener.ops.metrics import ProcessStats, exposition
from screener.ops.status import collect
from screener.pipeline.runtime import build_chain_runtime
from screener.settings import Settings
from screener_base.errors import ChainError
from screener_base.redact import endpoint_labels, redact_text, redact_url
from tests.support import cli_fork
from tests.support.chain_env import FAST_RETRY

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SCREENER = os.path.join(os.path.dirname(sys.executable), "screener")

# Secrets are short on purpose: the old chains redactor only masked path segments of 16+ characters.
PATH_KEY, USER_KEY, QUERY_KEY = "short-key-123", "usr-pw-77", "qk-4242"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://mainnet.example/v3/KEY", "https://mainnet.example/***"),
        ("https://rpc.example/short-key-123", "https://rpc.example/***"),
        ("https://user:usr-pw-77@host.example:8545", "https://host.example:8545"),
        ("https://rpc.example/?apikey=qk-4242", "https://rpc.example/***"),
        ("https://rpc.example#frag", "https://rpc.example/***"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
        ("HTTP://[::1]:8545/k", "http://[::1]:8545/***"),
        ("https://rpc.example/***", "https://rpc.example/***"),  # already redacted: unchanged
        ("not a url", "***"),
        ("http://[::1", "***"),
    ],
)
def test_redact_url_keeps_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_covers_urls_in_text_and_parts_of_configured_urls() -> None:
    text = "rpc https://x.example/key123 failed (see https://hooks.slack.com/services/T/B/sekrit)."
    assert redact_text(text) == "rpc https://x.example/*** failed (see https://hooks.slack.com/***)."
    url = f"https://u:{USER_KEY}@rpc.example/v3/{PATH_KEY}?apikey={QUERY_KEY}&x=1"
    leaked = f"POST /v3/{PATH_KEY} refused for {USER_KEY}; key {QUERY_KEY}; url {url}"
    out = redact_text(leaked, [url])
    assert PATH_KEY not in out and USER_KEY not in out and QUERY_KEY not in out
    assert "https://rpc.example/***" in out


def test_endpoint_labels_number_only_colliding_endpoints() -> None:
    urls = ["https://rpc.example/a-key-1", "https://other.example/k", "https://rpc.example/a-key-2"]
    assert endpoint_labels(urls) == [
        "https://rpc.example/*** #1",
        "https://other.example/***",
        "https://rpc.example/*** #3",
    ]


def test_short_keys_never_shown_in_errors_logs_rows_status_or_metrics(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    port, other = free_port(), free_port()  # nobody listens on either
    urls = [
        f"http://127.0.0.1:{port}/{PATH_KEY}",
        f"http://user:{USER_KEY}@127.0.0.1:{port}/",
        f"http://127.0.0.1:{other}/?apikey={QUERY_KEY}",
        f"http://127.0.0.1:{port}/v3/KEY",
    ]
    chain = {"rpc_urls": urls, "chain_id": 31337, "tokens": {"USDT": "0x" + "11" * 20}}
    settings = Settings(chains={"polygon": chain})
    caplog.set_level(logging.DEBUG)
    runtime = build_chain_runtime(settings, "polygon", retry=FAST_RETRY)
    try:
        with pytest.raises(ChainError) as info:
            runtime.client.call("eth_blockNumber", [])
        flush_rpc_errors(engine, runtime, {}, NOW)
        labels = list(runtime.client.stats())
    finally:
        runtime.close()
    # Two endpoints with a path on one host and port: numbered, so their counters stay apart.
    a, b = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{other}"
    assert labels == [f"{a}/*** #1", a, f"{b}/***", f"{a}/*** #4"]
    with session_scope(engine) as s:
        snap = collect(s, settings, NOW)
        stored = [(r.chain, r.endpoint) for r in s.exec(select(RpcEndpointErrors))]
    assert sorted(e for _c, e in stored) == sorted(labels)
    cli = cli_fork.run(
        [SCREENER, "status"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")},
            "SCREENER_DATABASE__URL": str(engine.url.render_as_string(hide_password=False)),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"rpc errors: polygon {a}/*** #4:" in cli.stdout
    shown = {
        "error": str(info.value),
        "logs": caplog.text,
        "rows": repr(stored),
        "status": _text(snap, 72) + cli.stdout + cli.stderr,
        "metrics": exposition(snap, ProcessStats()),
    }
    for where, text in shown.items():
        for secret in (PATH_KEY, USER_KEY, QUERY_KEY, "/v3/KEY"):
            assert secret not in text, f"{secret} shown in {where}: {text}"


def test_migration_redacts_endpoint_labels_stored_by_older_workers(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0006_daemon")
        table = RpcEndpointErrors.__table__  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table),
                [
                    {
                        "chain": "ethereum",
                        "endpoint": "https://mainnet.example/v3/KEY",
                        "errors_total": 8,
                        "updated_at": NOW,
                    },
                    {
                        "chain": "ethereum",
                        "endpoint": "https://mainnet.example/***",
                        "errors_total": 2,
                        "updated_at": NOW,
                    },
                    {
                        "chain": "bsc",
                        "endpoint": "https://rpc.example/short-key-123",
                        "errors_total": 1,
                        "updated_at": NOW,
                    },
                ],
            )
        upgrade(engine)
        with engine.connect() as conn:
            rows = sorted(
                tuple(r) for r in conn.execute(sa.select(table.c.chain, table.c.endpoint, table.c.errors_total))
            )
    finally:
        engine.dispose()
    assert rows == [("bsc", "https://rpc.example/***", 1), ("ethereum", "https://mainnet.example/***", 10)]
