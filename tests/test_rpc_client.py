"""chains.rpc against real anvil behind the fault-injecting proxy: retries only on transient errors, the
Retry-After cap, timeouts, failover, chain-id refusal, batching, and API keys never shown."""

from __future__ import annotations

import logging

import pytest

from chains.rpc import RetryPolicy, RpcClient
from chains.rpc_errors import (
    EndpointRefused,
    ErrorKind,
    RangeTooLarge,
    RpcRequestError,
    RpcUnavailable,
    classify_rpc_error,
    parse_range_hint,
)
from screener.demo.devnet.anvil import Anvil, free_port
from screener_base.redact import redact_text, redact_url
from tests.support.proxy import Fault, FaultProxy

FAST = RetryPolicy(max_attempts=3, max_total_s=5, backoff_initial_s=0.001, backoff_max_s=0.002, retry_after_cap_s=0.5)


@pytest.fixture
def anvil(anvil_module: Anvil) -> Anvil:
    """One node for the module: nothing here rewrites history."""
    return anvil_module


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(urls: list[str], chain_id: int | None = 31337, sleep: Sleeps | None = None, **kw: object) -> RpcClient:
    return RpcClient(
        urls,
        chain_id=chain_id,
        timeout_s=kw.pop("timeout_s", 2.0),
        retry=kw.pop("retry", FAST),  # type: ignore[arg-type]
        sleep=sleep if sleep is not None else Sleeps(),
        **kw,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["http500", "http429", "drop", "truncate", "rpc_error"])
def test_transient_errors_are_retried(anvil: Anvil, kind: str) -> None:
    fault = Fault(kind, times=2, code=-32603, message="internal error")
    with FaultProxy(anvil.url, [fault]) as proxy:
        c = client([proxy.url])
        assert c.call("eth_blockNumber", []) == hex(anvil.block_number())
        assert proxy.injected[kind] == 2 and c.endpoints[0].stats.retries == 2


def test_retry_after_is_waited_up_to_the_cap_and_a_longer_one_passes_the_endpoint_over(anvil: Anvil) -> None:
    """A Retry-After within the cap is slept; a longer one (60 s against a 0.5 s cap) is honoured by not asking the
    endpoint until then (asking sooner only gets another refusal), and the other endpoint answers."""
    sleeps = Sleeps()
    with FaultProxy(
        anvil.url, [Fault("http429", times=1, retry_after_s=0.2), Fault("http429", times=1, retry_after_s=60)]
    ) as proxy:
        c = client([proxy.url, anvil.url], sleep=sleeps)
        c.call("eth_chainId", [])
        assert proxy.injected["http429"] == 2
    assert sleeps == [0.2]
    first = c.endpoints[0]
    assert first.stats.rate_limited == 2 and first.stats.refused == 0 and first.suspension.until_s > 0
    assert c.candidates()[0].url == anvil.url


def test_permanent_errors_are_not_retried(anvil: Anvil) -> None:
    with FaultProxy(anvil.url, [Fault("rpc_error", code=-32602, message="invalid argument 0")]) as proxy:
        c = client([proxy.url], chain_id=None)
        with pytest.raises(RpcRequestError, match="invalid argument"):
            c.call("eth_getBalance", ["0x" + "11" * 20, "latest"])
        assert proxy.requests["eth_getBalance"] == 1


def test_timeouts_exhaust_then_fail_over(anvil: Anvil) -> None:
    with FaultProxy(anvil.url, [Fault("timeout", delay_s=1.0)]) as slow:
        c = client([slow.url, anvil.url], timeout_s=0.2)
        assert int(c.call("eth_blockNumber", []), 16) == anvil.block_number()
        first = c.endpoints[0].stats
        assert first.timeouts == FAST.max_attempts and first.failovers == 1
        assert c.candidates()[0].url == anvil.url  # the slow one is passed over for a while


def test_dead_endpoint_fails_over(anvil: Anvil) -> None:
    c = client([f"http://127.0.0.1:{free_port()}", anvil.url])
    assert c.call("eth_chainId", []) == hex(31337)
    with pytest.raises(RpcUnavailable):
        client([f"http://127.0.0.1:{free_port()}"]).call("eth_chainId", [])


def test_wrong_chain_id_refuses_the_endpoint(anvil: Anvil) -> None:
    with FaultProxy(anvil.url, [Fault("wrong_chain", chain_id=1)]) as mainnet_pretender:
        c = client([mainnet_pretender.url, anvil.url])
        assert c.call("eth_blockNumber", []) == hex(anvil.block_number())
        assert c.endpoints[0].refused_reason == "serves chain id 1, expected 31337"
        assert [ep.url for ep in c.candidates()] == [anvil.url]
        with pytest.raises(EndpointRefused):
            client([mainnet_pretender.url]).call("eth_blockNumber", [])


def test_batch_gives_per_item_results(anvil: Anvil) -> None:
    anvil.mine(3)
    with FaultProxy(
        anvil.url, [Fault("rpc_error", methods=frozenset({"eth_getTransactionByHash"}), message="not found")]
    ) as proxy:
        c = client([proxy.url], batch_size=2)
        out = c.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in range(4)]
            + [("eth_getTransactionByHash", ["0x" + "00" * 32])]
        )
    assert [int(b["number"], 16) for b in out[:4]] == [0, 1, 2, 3]
    assert isinstance(out[4], RpcRequestError)


def test_range_errors_surface_with_the_hint(anvil: Anvil) -> None:
    with FaultProxy(anvil.url, [Fault("range_limit", max_span=5, style="alchemy")]) as proxy:
        c = client([proxy.url])
        with pytest.raises(RangeTooLarge) as info:
            c.get_logs({"fromBlock": "0x10", "toBlock": "0x40"})
    assert info.value.hint_range == (16, 20) and proxy.requests["eth_getLogs"] == 1


def test_api_keys_never_shown(anvil: Anvil, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk3cr3tK3yABCDEFGHIJ0123456789"
    dead = f"http://user:pw-{key}@127.0.0.1:{free_port()}/v2/{key}?apikey={key}"
    caplog.set_level(logging.DEBUG)
    c = client([dead])
    with pytest.raises(RpcUnavailable) as info:
        c.call("eth_chainId", [])
    shown = str(info.value) + caplog.text + repr(c.stats())
    assert key not in shown and "pw-" not in shown
    assert "127.0.0.1" in str(info.value)


def test_redaction_of_common_provider_urls() -> None:
    assert (
        redact_url("https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyz")
        == "https://eth-mainnet.g.alchemy.com/***"
    )
    assert redact_url("https://mainnet.infura.io/v3/0123456789abcdef") == "https://mainnet.infura.io/***"
    assert redact_url("https://x.quiknode.pro/0123456789abcdef0123/") == "https://x.quiknode.pro/***"
    assert redact_url("https://rpc.ankr.com/eth?key=abc&x=1") == "https://rpc.ankr.com/***"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    url = "https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"
    assert "0123456789abcdef" not in redact_text(
        f"error for url '{url}' and key 0123456789abcdef0123456789abcdef", [url]
    )


def test_endpoints_on_one_host_get_distinct_labels_without_their_keys() -> None:
    urls = ["https://rpc.example/key-one-1", "https://rpc.example/key-two-2", "http://127.0.0.1:8545"]
    c = RpcClient(urls, chain_id=1)
    try:
        assert list(c.stats()) == ["https://rpc.example/*** #1", "https://rpc.example/*** #2", "http://127.0.0.1:8545"]
    finally:
        c.close()


@pytest.mark.parametrize(
    ("code", "message", "kind", "span", "window"),
    [
        (
            -32005,
            "query returned more than 10000 results. Try with this block range [0x1, 0x64].",
            ErrorKind.RESULT_COUNT,
            100,
            (1, 100),
        ),
        (
            -32602,
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
            ErrorKind.RESPONSE_SIZE,
            2000,
            None,
        ),
        (-32005, "exceed max block range: 5000", ErrorKind.RANGE, 5000, None),
        (-32000, "block range is too wide", ErrorKind.RANGE, None, None),
        (-32614, "eth_getLogs is limited to a 10,000 range", ErrorKind.RANGE, 10000, None),
        (-32005, "daily request count exceeded, request rate limited", ErrorKind.TRANSIENT, None, None),
        (-32000, "header not found", ErrorKind.NODE_BEHIND, None, None),
        (429, "Too Many Requests", ErrorKind.TRANSIENT, None, None),
        (-32601, "the method eth_foo does not exist/is not available", ErrorKind.PERMANENT, None, None),
        (-32602, "invalid argument 0: hex string without 0x prefix", ErrorKind.PERMANENT, None, None),
    ],
)
def test_provider_error_texts(
    code: int, message: str, kind: ErrorKind, span: int | None, window: tuple[int, int] | None
) -> None:
    """A few hand-picked forms; tests/test_provider_errors.py has the recorded real ones with their sources."""
    assert classify_rpc_error(code, message) is kind
    if kind in (ErrorKind.RANGE, ErrorKind.RESULT_COUNT, ErrorKind.RESPONSE_SIZE):
        assert parse_range_hint(message, kind) == (span, window)
