"""chains.scanning on real anvil (behind the fault proxy where limits are needed): safe heads with and
without finality tags, adaptive eth_getLogs ranges (provider hints, bisection, one block, growing back),
the one-call query shape, and real Transfer logs decoded strictly."""

from __future__ import annotations

import pytest

from chains.registry import resolve_chain
from chains.rpc import RetryPolicy, RpcClient
from chains.rpc_errors import RpcRequestError
from chains.scanning import RangeSizer, TagSupport, fetch_logs, make_query, read_heads
from chains.transfers import TRANSFER_TOPIC0, decode_transfers
from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil
from tests.support.proxy import Fault, FaultProxy

FAST = RetryPolicy(max_attempts=2, backoff_initial_s=0.001, backoff_max_s=0.001)
TO = ["0x" + f"{0xAB00 + i:040x}" for i in range(40)]


@pytest.fixture(scope="module")
def chain(anvil_module: Anvil) -> tuple[Anvil, str, str]:
    """Two tokens; 40 transfers of the first token in 40 consecutive blocks (blocks ~10..49)."""
    node = anvil_module
    usdt, usdc = dv.deploy_tether_like(node), dv.deploy_fiat_token_like(node)
    sender = dv.accounts(node)[1]
    dv.mint(node, usdt, sender, 10**12)
    for i, to in enumerate(TO):
        dv.transfer(node, usdt, sender, to, i + 1)
    node.mine(5)
    return node, usdt, usdc


def spec(usdt: str, usdc: str, **kw: object):  # type: ignore[no-untyped-def]
    return resolve_chain("polygon", {"chain_id": 31337, "tokens": {"USDT": usdt, "USDC": usdc}, **kw})


def test_safe_head_from_tag_or_confirmations(chain: tuple[Anvil, str, str]) -> None:
    node = chain[0]
    c = RpcClient([node.url], chain_id=31337, retry=FAST)
    ep = c.endpoints[0]
    head = node.block_number()
    tagged = read_heads(c, ep, spec("0x" + "01" * 20, "0x" + "02" * 20, finality_tag="safe"), TagSupport())
    assert tagged.source == "safe" and tagged.head == head
    assert tagged.safe is not None and tagged.safe.number == max(head - 32, 0)  # anvil: safe = head - 32
    counted = read_heads(
        c, ep, spec("0x" + "01" * 20, "0x" + "02" * 20, finality_tag="latest", confirmations=3), TagSupport()
    )
    assert counted.source == "confirmations" and counted.safe is not None and counted.safe.number == head - 3


def test_unsupported_tag_falls_back_to_confirmations(chain: tuple[Anvil, str, str]) -> None:
    anvil_module = chain[0]
    no_tags = Fault(
        "rpc_error", methods=frozenset({"eth_getBlockByNumber"}), code=-32602, message="invalid block tag finalized"
    )
    # only the tag request fails: the proxy sees [latest, finalized] in one batch, so fail every 2nd item
    no_tags.every = 2
    with FaultProxy(anvil_module.url, [no_tags]) as proxy:
        c = RpcClient([proxy.url], chain_id=31337, retry=FAST)
        tags = TagSupport()
        heads = read_heads(c, c.endpoints[0], spec("0x" + "01" * 20, "0x" + "02" * 20, confirmations=7), tags)
    assert tags.served is False and heads.source == "confirmations"
    assert heads.safe is not None and heads.safe.number == heads.head - 7


@pytest.mark.parametrize("style", ["infura", "alchemy", "tron", "plain"])
def test_range_adapts_to_provider_limits(chain: tuple[Anvil, str, str], style: str) -> None:
    node, usdt, usdc = chain
    s = spec(usdt, usdc)
    query = make_query(s, [])
    with FaultProxy(node.url, [Fault("range_limit", max_span=7, style=style)]) as proxy:
        c = RpcClient([proxy.url], chain_id=31337, retry=FAST)
        sizer = RangeSizer(max_span=1000)
        got, start, ranges = [], 0, 0
        head = node.block_number()
        while start <= head:
            fetched = fetch_logs(c, c.endpoints[0], query, start, head, sizer)
            assert fetched.to_block - start + 1 <= 7
            got += fetched.logs
            start, ranges = fetched.to_block + 1, ranges + 1
        errors = proxy.injected["range_limit"]
    direct = node.rpc(
        "eth_getLogs",
        [{"fromBlock": "0x0", "toBlock": hex(head), "address": [usdt, usdc], "topics": [TRANSFER_TOPIC0]}],
    )
    assert got == direct and len(got) == 41  # the mint + 40 transfers
    if style == "plain":  # no hint: bisection, several refusals before the first success
        assert errors >= 3
    else:  # the hint gives the span at once; afterwards only the periodic attempt to grow is refused
        assert errors <= 1 + ranges // 4


def test_result_limit_bisects_down_to_one_block_then_fails(chain: tuple[Anvil, str, str]) -> None:
    node, usdt, usdc = chain
    with FaultProxy(node.url, [Fault("result_limit", max_results=0, style="plain")]) as proxy:
        c = RpcClient([proxy.url], chain_id=31337, retry=FAST)
        first = int(node.rpc("eth_getLogs", [{"fromBlock": "0x0", "address": usdt}])[0]["blockNumber"], 16)
        with pytest.raises(RpcRequestError, match="alone exceeds"):
            fetch_logs(c, c.endpoints[0], make_query(spec(usdt, usdc), []), first, first + 40, RangeSizer(64))


def test_sizer_grows_back_after_successes() -> None:
    from chains.rpc_errors import RangeTooLarge

    sizer = RangeSizer(max_span=100)
    sizer.shrink(100, RangeTooLarge("x"), 0)
    assert sizer.span == 50
    for _ in range(4):
        sizer.succeeded(10)  # short ranges at the tip say nothing
    assert sizer.span == 50
    for _ in range(4):
        sizer.succeeded(50)
    assert sizer.span == 100


def test_server_side_to_filter_equals_client_side(chain: tuple[Anvil, str, str]) -> None:
    node, usdt, usdc = chain
    wanted = TO[::7]
    s = spec(usdt, usdc, server_filter_max_addresses=10)
    c = RpcClient([node.url], chain_id=31337, retry=FAST)
    server = make_query(s, wanted)
    client_side = make_query(spec(usdt, usdc, server_filter_max_addresses=2), wanted)
    assert server.recipients_hex is not None and client_side.recipients_hex is None
    head = node.block_number()
    a = fetch_logs(c, c.endpoints[0], server, 0, head, RangeSizer(1000)).logs
    b = fetch_logs(c, c.endpoints[0], client_side, 0, head, RangeSizer(1000)).logs
    tokens = {usdt, usdc}
    got_a = decode_transfers(a, tokens, set(wanted)).transfers
    got_b = decode_transfers(b, tokens, set(wanted)).transfers
    assert got_a == got_b and len(got_a) == len(wanted) and len(a) == len(wanted) < len(b)
    assert sorted(t.amount for t in got_a) == [TO.index(w) + 1 for w in wanted]
