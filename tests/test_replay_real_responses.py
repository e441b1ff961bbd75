"""The product's real read code against recorded real node responses, served by tests/support/replay.py.

EVM (ethereum-etl's recorded mainnet responses, ../shared/data/peers/ethereum-etl, with ethereum-etl's own
expected token transfers as the oracle):
- block 483920: an eth_getFilterLogs reply (Parity shape: ``type``, ``transactionLogIndex``) of token
  0xf4eced2f..., neither USDT nor USDC: both of its ERC-20 transfers are compared.
- blocks 1755634-5: two eth_getTransactionReceipt replies; token 0xbb9bc244..., neither USDT nor USDC: its one
  ERC-20 transfer is compared, the other log (another event) is refused.
- blocks 17173049-50: ethereum-etl's export of the blocks' logs, turned back into JSON-RPC log objects (its
  integers as hex quantities); they carry 41 USDT (0xdac17f95...) and 9 USDC (0xa0b86991...) transfers, which
  go through the pipeline's whole read of a range (screener/pipeline/read.py scan_range); all 282 ERC-20
  transfers go through the decoder, and the 9 ERC-721 logs sharing the Transfer topic are refused.
The eth_getLogs replies are the recorded logs a node would select for the filter the product sends (block range,
addresses, topics); the block replies carry the real number, hash, parent hash and timestamp (what the product
reads of a block).

Tron (java-tron's documented responses, captured on Nile: ../shared/data/peers/tron_jsonrpc/*.md; each
exchange is the curl request and the JSON response of one page): eth_chainId, blocks, logs, receipts and the
transaction object (addresses as 20-byte hex without the 0x41 byte, a block hash that starts with its height,
``blockTimestamp`` in logs, ``stateRoot`` "0x"); the documented log and receipt ``data`` fields are cut
(``0x0000...05f``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chains.codec import from_hex20, to_hex20, topic_for
from chains.registry import ChainSpec, resolve_chain
from chains.rpc import RetryPolicy, RpcClient
from chains.rpc_errors import EndpointRefused, RpcRequestError
from chains.scanning import Header, TagSupport, get_headers, parse_header, read_heads
from chains.transfers import TRANSFER_TOPIC0, Reject, Transfer, decode_transfers
from screener.pipeline.read import RangeScan, _initiator, scan_range
from screener.pipeline.runtime import ChainRuntime
from screener_base.addresses import Family
from screener_base.errors import RpcError
from tests.support.replay import Recording, ReplayServer

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
STABLES = {USDT: "USDT", USDC: "USDC"}
NILE_CHAIN_ID = 0xCD8690DC
RETRY = RetryPolicy(max_attempts=2, max_total_s=2, backoff_initial_s=0.005, backoff_max_s=0.02, cooldown_s=0.5)
# The parent hashes of blocks 17173049-50, from ethereum-etl's tests/resources/test_stream/blocks_17173049_17173050/
# expected_blocks.json (the same test case as the logs; hashes and timestamps come from the logs themselves).
PARENT_HASHES = {
    17173049: "0x918a700a8e7a9f3fe0b3ccb176c810ded08729331ceef8d6375af5d1eeeaa6c0",
    17173050: "0xaa5ab9bb22d8020d438496a7edb4eff508b1c5128b0dc01fdecf57f96aac1bb3",
}
Key = tuple[str, str, str, int, str, int, int]  # token, from, to, value, tx hash, log index, block


# --- recordings from ../shared/data -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def etl(shared_data: Path) -> Path:
    return shared_data / "peers" / "ethereum-etl"


@pytest.fixture(scope="module")
def tron_docs(shared_data: Path) -> Path:
    return shared_data / "peers" / "tron_jsonrpc"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rpc_log(row: dict[str, Any]) -> dict[str, Any]:
    """An ethereum-etl log row back in JSON-RPC form (its integers were the node's hex quantities)."""
    return {
        "address": row["address"],
        "topics": row["topics"],
        "data": row["data"],
        "blockNumber": hex(row["block_number"]),
        "blockHash": row["block_hash"],
        "transactionHash": row["transaction_hash"],
        "transactionIndex": hex(row["transaction_index"]),
        "logIndex": hex(row["log_index"]),
    }


def _node_selects(logs: list[dict[str, Any]], flt: dict[str, Any]) -> list[dict[str, Any]]:
    """The logs an eth_getLogs node returns for ``flt``: block range, address list, topics (None = any, list = or)."""
    low, high = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
    address = flt.get("address")
    addresses = {a.lower() for a in ([address] if isinstance(address, str) else address or [])}
    wanted = [None if w is None else {t.lower() for t in ([w] if isinstance(w, str) else w)} for w in flt["topics"]]

    def selected(log: dict[str, Any]) -> bool:
        topics = [t.lower() for t in log["topics"]]
        if not low <= int(log["blockNumber"], 16) <= high or (addresses and log["address"] not in addresses):
            return False
        return all(w is None or (i < len(topics) and topics[i] in w) for i, w in enumerate(wanted))

    return [log for log in logs if selected(log)]


def _etl_key(row: dict[str, Any]) -> Key:
    return (
        row["token_address"],
        row["from_address"],
        row["to_address"],
        int(row["value"]),
        row["transaction_hash"],
        int(row["log_index"]),
        int(row["block_number"]),
    )


def _key(t: Transfer) -> Key:
    return (t.token, t.from_hex, t.to_hex, t.amount, t.tx_hash, t.log_index, t.block_number)


def _tron_exchange(docs: Path, method: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The documented request (the curl body) and the JSON-RPC responses shown on java-tron's page for ``method``."""
    text = (docs / f"{method}.md").read_text()
    body = re.search(r"-d '(.*?)'", text, re.DOTALL)
    assert body is not None, f"{method}.md: no curl request"
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    return json.loads(body.group(1)), [b for b in blocks if "jsonrpc" in b]


def _tron_recording(docs: Path, method: str) -> Recording:
    request, responses = _tron_exchange(docs, method)
    assert request["method"] == method and len(responses) == 1
    return Recording(method, request["params"], responses[0])


def _tronweb_form(hex20: str) -> str:
    """base58check of 0x41 + the 20 bytes, as tronweb's address.fromHex gives it (written here, not the product's)."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    payload = b"\x41" + bytes.fromhex(hex20[2:])
    number = int.from_bytes(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4], "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = alphabet[digit] + out
    return out  # no leading "1"s: the 0x41 byte is never zero


def _nile_spec(**overrides: Any) -> ChainSpec:
    """The Tron chain on Nile, watching the contract of java-tron's documented log (the docs name no TRC-20)."""
    tokens = {"USDT": "0x9ff8fc48fb114ccd5bbdc24a86f0c73082f08825"}
    return resolve_chain("tron", {"chain_id": NILE_CHAIN_ID, "tokens": tokens, **overrides})


def _answered(items: list[Any]) -> list[Any]:
    """Batch results that must all be answers: an RpcError among them means a broken recording."""
    errors = [item for item in items if isinstance(item, RpcError)]
    assert not errors, errors
    return items


@contextmanager
def _client(server: ReplayServer, chain_id: int) -> Iterator[RpcClient]:
    client = RpcClient([server.url], chain_id=chain_id, retry=RETRY, timeout_s=5.0)
    try:
        yield client
    finally:
        client.close()


# --- the replay server itself, on real recordings -------------------------------------------------------------
def test_replay_normalises_params_answers_batches_and_refuses_unrecorded(tron_docs: Path) -> None:
    """Params match in any hex spelling, singly and in batches; a recorded error is replayed as such; an
    unrecorded request is answered "not recorded" and, unless allowed, fails the test at the end of the block
    even when the product swallowed it; two different answers to one request are refused up front."""
    block = _tron_recording(tron_docs, "eth_getBlockByNumber")
    coinbase_request, coinbase = _tron_exchange(tron_docs, "eth_coinbase")
    recorded_error = Recording("eth_coinbase", coinbase_request["params"], next(r for r in coinbase if "error" in r))
    with ReplayServer([block, recorded_error], chain_id=NILE_CHAIN_ID, head=0x3FE1C00, allow_misses=True) as node:
        with _client(node, NILE_CHAIN_ID) as client:
            assert block.params[0] == "0x3fe1c00"
            assert client.call("eth_getBlockByNumber", ["0x03FE1C00", False]) == block.response["result"]
            assert client.call("eth_blockNumber", []) == hex(0x3FE1C00)
            items = client.batch(
                [("eth_getBlockByNumber", ["0x3fe1c00", False]), ("eth_getBlockByNumber", ["0x1", False])]
            )
            assert items[0] == block.response["result"]
            unrecorded = items[1]
            assert isinstance(unrecorded, RpcRequestError)
            assert 'not recorded: eth_getBlockByNumber ["0x1",false]' in str(unrecorded)
            with pytest.raises(RpcRequestError, match="etherbase must be explicitly specified"):
                client.call("eth_coinbase", [])
        assert node.misses == [("eth_getBlockByNumber", ["0x1", False])]
    with pytest.raises(AssertionError, match=r"1 request\(s\) had no recording: eth_getTransactionByHash"):
        with ReplayServer([], chain_id=1) as node, _client(node, 1) as client:
            client.batch([("eth_getTransactionByHash", ["0x" + "ab" * 32])])  # an optional item: no exception here
    with pytest.raises(ValueError, match="two different recorded responses"):
        ReplayServer([block, Recording(block.method, ["0x03fe1c00", False], {"result": None})])


# --- EVM: ethereum-etl's recorded mainnet responses -------------------------------------------------------------
def test_getlogs_reply_of_block_483920_decodes_to_etl_transfers(etl: Path) -> None:
    """Neither USDT nor USDC in this recording: both ERC-20 transfers of token 0xf4eced2f... are compared."""
    prefix = "test_export_token_transfers_job__block_with_transfers__"
    reply = json.loads((etl / (prefix + "web3_response.eth_getFilterLogs_0x0.json")).read_text())
    with (etl / (prefix + "expected_token_transfers.csv")).open() as f:
        expected = [_etl_key(row) for row in csv.DictReader(f)]
    token = "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd"
    flt = {"fromBlock": "0x76250", "toBlock": "0x76250", "address": [token], "topics": [TRANSFER_TOPIC0]}
    with ReplayServer([Recording("eth_getLogs", [flt], reply)], chain_id=1) as node, _client(node, 1) as client:
        # Same filter, other spelling: zero-padded block numbers and a checksummed address.
        logs = client.get_logs(
            {**flt, "fromBlock": "0x076250", "address": ["0xF4eCED2f682CE333f96f2D8966C613DeD8fC95DD"]}
        )
    outcome = decode_transfers(logs, {token}, None)
    # The second log's transactionLogIndex is 0: the block-wide logIndex (1) is the one ethereum-etl and we key on.
    assert [_key(t) for t in outcome.transfers] == expected and len(expected) == 2
    assert not outcome.rejected


def test_receipts_of_block_1755635_decode_to_etl_transfers(etl: Path) -> None:
    """Neither USDT nor USDC: the one ERC-20 transfer of token 0xbb9bc244... is compared; the other log is refused."""
    prefix = "test_stream__blocks_1755634_1755635__"
    recordings = [
        Recording(
            "eth_getTransactionReceipt", [path.name.split("_")[-1].removesuffix(".json")], json.loads(path.read_text())
        )
        for path in sorted(etl.glob(prefix + "web3_response.eth_getTransactionReceipt_0x*.json"))
    ]
    expected = [_etl_key(row) for row in _jsonl(etl / (prefix + "expected_token_transfers.json"))]
    token = "0xbb9bc244d798123fde783fcc1c72d3bb8c189413"
    with ReplayServer(recordings, chain_id=1) as node, _client(node, 1) as client:
        receipts = _answered(client.batch([(r.method, r.params) for r in recordings]))
    logs = [log for receipt in receipts for log in receipt["logs"]]
    assert [_rpc_log(row) | {"removed": False} for row in _jsonl(etl / (prefix + "expected_logs.json"))] == logs
    outcome = decode_transfers(logs, {token}, None)
    assert [_key(t) for t in outcome.transfers] == expected and len(expected) == 1
    assert outcome.rejected == {Reject.NOT_TRANSFER: 1}


def _blocks_17173049(etl: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """(JSON-RPC logs, ethereum-etl's expected token transfers, block replies) of blocks 17173049-50."""
    prefix = "test_stream__blocks_17173049_17173050__"
    rows = _jsonl(etl / (prefix + "expected_logs.json"))
    blocks = {
        row["block_number"]: {
            "number": hex(row["block_number"]),
            "hash": row["block_hash"],
            "parentHash": PARENT_HASHES[row["block_number"]],
            "timestamp": hex(row["block_timestamp"]),
        }
        for row in rows
    }
    assert blocks[17173050]["parentHash"] == blocks[17173049]["hash"]
    return [_rpc_log(row) for row in rows], _jsonl(etl / (prefix + "expected_token_transfers.json")), blocks


def _scan(
    etl: Path, spec: ChainSpec, recipients: set[str], flt_topics: list[Any]
) -> tuple[RangeScan, list[tuple[str, list[Any]]]]:
    """scan_range over blocks 17173049-50 through the replay; the product must send exactly the filter given."""
    logs, _, blocks = _blocks_17173049(etl)
    flt = {"fromBlock": hex(17173049), "toBlock": hex(17173050), "address": [USDC, USDT], "topics": flt_topics}
    recordings = [Recording("eth_getLogs", [flt], {"result": _node_selects(logs, flt)})]
    recordings += [Recording("eth_getBlockByNumber", [hex(n), False], {"result": b}) for n, b in blocks.items()]
    # No transaction objects were recorded for these blocks: the initiator lookups go unanswered (checked below).
    with ReplayServer(recordings, chain_id=1, allow_misses=True) as node, _client(node, 1) as client:
        rt = ChainRuntime(name="ethereum", spec=spec, client=client, start_block=None)
        rt.watch = {r: (r, f"acct-{r[-6:]}") for r in recipients}
        pre_end = parse_header(blocks[17173050])
        scan = scan_range(rt, client.endpoints[0], 17173049, 17173050, pre_end, anchor=None)
    return scan, node.misses


def test_usdt_usdc_transfers_of_blocks_17173049_50_through_scan_range(etl: Path) -> None:
    """All 41 USDT and 9 USDC transfers, with every recipient watched (the recipients go into the filter)."""
    _, transfers, _ = _blocks_17173049(etl)
    ours = [row for row in transfers if row["token_address"] in STABLES]
    assert [sum(row["token_address"] == t for row in ours) for t in (USDT, USDC)] == [41, 9]
    recipients = {row["to_address"] for row in ours}
    topics = [TRANSFER_TOPIC0, None, ["0x" + "0" * 24 + r[2:] for r in sorted(recipients)]]
    scan, misses = _scan(etl, resolve_chain("ethereum"), recipients, topics)
    assert scan.consistent, scan.detail
    assert (scan.from_block, scan.to_block, scan.logs) == (17173049, 17173050, 50)
    assert sorted(_key(t) for t in scan.matched) == sorted(_etl_key(row) for row in ours)
    assert not scan.rejected and scan.other_recipients == 0
    by_key = {(row["transaction_hash"], row["log_index"]): row for row in ours}
    for deposit in scan.deposits("ethereum", datetime.now(UTC)):
        row = by_key[(deposit["tx_hash"], deposit["log_index"])]
        assert deposit["token_symbol"] == STABLES[row["token_address"]] and deposit["decimals"] == 6
        assert (deposit["from_address"], deposit["to_address"]) == (row["from_address"], row["to_address"])
        assert deposit["block_time"] == datetime.fromtimestamp(row["block_timestamp"], UTC)
        assert deposit["initiator"] is None  # fails closed: the transaction lookup was not answered
    assert scan.initiator_missing == 50
    assert {m for m, _ in misses} == {"eth_getTransactionByHash"}
    assert sorted(p[0] for _, p in misses) == sorted({row["transaction_hash"] for row in ours})


def test_client_side_recipient_filter_on_blocks_17173049_50(etl: Path) -> None:
    """Recipients kept out of the filter (server_filter_max_addresses = 0): the product gets every USDT/USDC
    transfer and keeps those to the USDC recipients; the rest are counted as other recipients."""
    _, transfers, _ = _blocks_17173049(etl)
    ours = [row for row in transfers if row["token_address"] in STABLES]
    watched = {row["to_address"] for row in ours if row["token_address"] == USDC}
    spec = resolve_chain("ethereum", {"server_filter_max_addresses": 0})
    scan, _ = _scan(etl, spec, watched, [TRANSFER_TOPIC0])
    expected = sorted(_etl_key(row) for row in ours if row["to_address"] in watched)
    assert scan.consistent and scan.logs == 50
    assert sorted(_key(t) for t in scan.matched) == expected and len(expected) >= 9
    assert scan.other_recipients == 50 - len(expected) and not scan.rejected


def test_every_erc20_transfer_of_blocks_17173049_50_and_no_erc721(etl: Path) -> None:
    """All of the blocks' Transfer-topic logs through RpcClient.get_logs: the 282 ERC-20 transfers equal
    ethereum-etl's; the 9 ERC-721 ones (tokenId as a fourth topic) that ethereum-etl also lists are refused."""
    logs, transfers, _ = _blocks_17173049(etl)
    flt = {"fromBlock": hex(17173049), "toBlock": hex(17173050), "topics": [TRANSFER_TOPIC0]}
    with ReplayServer([Recording("eth_getLogs", [flt], {"result": _node_selects(logs, flt)})], chain_id=1) as node:
        with _client(node, 1) as client:
            got = client.get_logs(flt)
    outcome = decode_transfers(got, {log["address"] for log in got}, None)
    four_topics = {(log["transactionHash"], int(log["logIndex"], 16)) for log in got if len(log["topics"]) == 4}
    erc20 = [_etl_key(row) for row in transfers if (row["transaction_hash"], row["log_index"]) not in four_topics]
    assert [_key(t) for t in outcome.transfers] == erc20 and len(erc20) == 282
    assert outcome.rejected == {Reject.TOPIC_COUNT: 9} and len(four_topics) == 9


# --- Tron: java-tron's documented Nile responses ----------------------------------------------------------------
def test_tron_address_helper_agrees_with_published_pairs(shared_data: Path) -> None:
    """The test's own base58check (the T-form expected below) against tronpy/tronweb/ponder's published pairs."""
    pairs = json.loads((shared_data / "peers" / "tron_addresses.json").read_text())["pairs"]
    checked = 0
    for pair in pairs:
        hex20 = pair.get("hex20") or pair.get("also_hex20") or ("0x" + pair["hex41"][2:] if "hex41" in pair else None)
        if hex20 is not None:
            assert _tronweb_form("0x" + hex20.lower().removeprefix("0x")) == pair["base58"], pair["src"]
            checked += 1
    assert checked >= 5


def test_tron_chain_id_and_headers_from_nile(tron_docs: Path) -> None:
    """Nile's chain id passes the client's check (and refuses a mainnet client); real blocks parse into headers."""
    recordings = [_tron_recording(tron_docs, m) for m in ("eth_chainId", "eth_getBlockByNumber", "eth_getBlockByHash")]
    by_hash = recordings[2]
    with ReplayServer(recordings) as node:
        with _client(node, NILE_CHAIN_ID) as client:
            ep = client.endpoints[0]
            [header] = get_headers(client, ep, [0x3FE1C00])
            full = parse_header(client.call(by_hash.method, by_hash.params))
        with _client(node, 728126428) as mainnet, pytest.raises(EndpointRefused, match="serves chain id 3448148188"):
            mainnet.call("eth_getBlockByNumber", ["0x3fe1c00", False])
    assert header == Header(
        number=0x3FE1C00,  # 66984960: the page's "67025920" is not this hex (its hash starts with the height)
        hash="0x0000000003fe1c00462b498ddae67717e96c785078adb5ccb7279148916e6f97",
        parent_hash="0x0000000003fe1bff062fa008dcd68f6ab2a96a25bc175df22a04baa0cd391573",
        timestamp=0x69F18A5C,
    )
    assert full is not None and full.number == 0x3FE1CA0 and full.hash == by_hash.params[0]
    for h in (header, full):
        # A Tron block id starts with its height; the timestamp is in seconds (the proto's ms / 1000).
        assert int(h.hash[2:18], 16) == h.number and int(h.parent_hash[2:18], 16) == h.number - 1
        assert datetime.fromtimestamp(h.timestamp, UTC).year == 2026


def test_tron_logs_receipts_decode_and_addresses(tron_docs: Path) -> None:
    """One real log through eth_getLogs, the receipt and the block receipts: it is another event (not a
    Transfer), refused and counted, its cut data never read; its addresses convert to tronweb's T-form."""
    recordings = [
        _tron_recording(tron_docs, m) for m in ("eth_getLogs", "eth_getTransactionReceipt", "eth_getBlockReceipts")
    ]
    flt = recordings[0].params[0]
    with ReplayServer(recordings, chain_id=NILE_CHAIN_ID) as node, _client(node, NILE_CHAIN_ID) as client:
        logs = client.get_logs(flt)
        receipt, block_receipts = _answered(client.batch([(r.method, r.params) for r in recordings[1:]]))
    assert logs == receipt["logs"] == block_receipts[0]["logs"] and len(logs) == 1
    log = logs[0]
    assert log["data"] == "0x0000...05f" and "blockTimestamp" in log
    outcome = decode_transfers(logs, {log["address"]}, None)
    assert not outcome.transfers and outcome.rejected == {Reject.NOT_TRANSFER: 1}
    contract = from_hex20(Family.TRON, log["address"])
    assert contract == _tronweb_form(log["address"]) and contract.startswith("T")
    assert to_hex20(Family.TRON, contract) == log["address"] == flt["address"]
    # java-tron writes an indexed address as an EVM word (zero upper bytes, no 0x41): our `to` filter word matches it.
    assert topic_for(receipt["from"]) == log["topics"][1]


def test_tron_initiator_is_t_form_and_fails_closed(tron_docs: Path) -> None:
    """The pipeline's initiator from a real java-tron transaction object (the one eth_getBlockByHash lists,
    replayed as eth_getTransactionByHash: java-tron returns the same TransactionResult for both) and receipt."""
    _, [block_reply] = _tron_exchange(tron_docs, "eth_getBlockByHash")
    tx = block_reply["result"]["transactions"][0]
    receipt = _tron_recording(tron_docs, "eth_getTransactionReceipt")
    recordings = [Recording("eth_getTransactionByHash", [tx["hash"]], {"result": tx}), receipt]
    with ReplayServer(recordings, chain_id=NILE_CHAIN_ID, allow_misses=True) as node:
        with _client(node, NILE_CHAIN_ID) as client:
            rt = ChainRuntime(name="tron", spec=_nile_spec(), client=client, start_block=None)
            missing = "0x" + "ee" * 32
            *found, unknown = client.batch(
                [
                    ("eth_getTransactionByHash", [tx["hash"]]),
                    (receipt.method, receipt.params),
                    ("eth_getTransactionByHash", [missing]),
                ]
            )
    by_hash, receipt_reply = _answered(found)
    block_hash = tx["blockHash"]
    sender = _tronweb_form(tx["from"])
    assert _initiator(rt, by_hash, block_hash) == _initiator(rt, receipt_reply, block_hash) == sender
    # The account whose call emitted the log (its topic1) is the transaction's sender.
    assert from_hex20(Family.TRON, "0x" + receipt_reply["logs"][0]["topics"][1][26:]) == sender
    other_block = "0x" + "00" * 8 + block_hash[18:]
    assert _initiator(rt, by_hash, other_block) is None  # not from the log's block: unknown, never guessed
    assert isinstance(unknown, RpcError) and _initiator(rt, unknown, block_hash) is None
    assert node.misses == [("eth_getTransactionByHash", [missing])]


def test_tron_safe_tag_refusal_falls_back_to_the_solidified_head(tron_docs: Path) -> None:
    """java-tron refuses the ``safe`` tag with -32602 "TAG safe not supported" (its documented error text): the
    product takes that as a permanent "tag not served" and uses the solidity node's head instead.

    The one construction here: the recorded block 0x3fe1c00 answers ``latest`` (a node whose head it is)."""
    _, [block_reply] = _tron_exchange(tron_docs, "eth_getBlockByNumber")
    refused = {"error": {"code": -32602, "message": "TAG safe not supported"}}
    recordings = [
        _tron_recording(tron_docs, "eth_chainId"),
        Recording("eth_getBlockByNumber", ["latest", False], block_reply),
        Recording("eth_getBlockByNumber", ["safe", False], refused),
    ]
    spec = _nile_spec(finality_tag="safe")
    tags = TagSupport()
    with ReplayServer(recordings) as node, ReplayServer([], chain_id=NILE_CHAIN_ID, head=0x3FE1C00) as solidity:
        with _client(node, NILE_CHAIN_ID) as client, _client(solidity, NILE_CHAIN_ID) as solidified:
            heads = read_heads(client, client.endpoints[0], spec, tags, finality_client=solidified)
    assert tags.served is False
    assert heads.source == "solidified" and heads.head == 0x3FE1C00
    assert heads.safe == parse_header(block_reply["result"])
