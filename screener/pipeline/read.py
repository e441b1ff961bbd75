"""Reading one block range for the pipeline: logs, decode, recipient filter, headers and initiators.

Everything here is network reads on one endpoint; nothing touches the database. The result says whether
the reads were consistent (same last-block hash before and after eth_getLogs, every deposit's block hash
canonical, the previous range's last block unchanged); only consistent ranges are recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chains.codec import from_hex20
from chains.rpc import Endpoint, gc_paused
from chains.scanning import BEHIND_ATTEMPTS, ChainHalted, Header, NodeBehind, fetch_logs, make_query, parse_header
from chains.transfers import Transfer, decode_transfers
from screener.pipeline.runtime import ChainRuntime
from screener.review.rules import UNASSIGNED_ACCOUNT, DepositStatus, wrong_network_finding
from screener_base.errors import AddressError, RpcError

DECIMALS_SELECTOR = "0x313ce567"  # decimals()


@dataclass(kw_only=True)
class ScanCounts:
    """What reading and recording block ranges found: a tick's result and a backfill's total both count so."""

    logs: int = 0
    transfers: int = 0  # matched: to one of our deposit addresses (on this chain, or an EVM one on another)
    recorded: int = 0
    unassigned: int = 0  # of those recorded: to an address registered on another chain only (wrong network)
    duplicates: int = 0  # matched but already recorded (same chain, tx hash, log index)
    other_recipients: int = 0
    initiator_missing: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add_read(self, scan: RangeScan) -> None:
        self.logs += scan.logs
        self.transfers += len(scan.matched)
        self.other_recipients += scan.other_recipients
        self.initiator_missing += scan.initiator_missing
        self.rejected.update(scan.rejected)

    def add_recorded(self, scan: RangeScan, recorded: int, unassigned: int = 0) -> None:
        self.recorded += recorded
        self.unassigned += unassigned
        self.duplicates += len(scan.matched) - recorded


@dataclass
class RangeScan:
    rt: ChainRuntime
    from_block: int
    to_block: int
    logs: int = 0
    matched: list[Transfer] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    other_recipients: int = 0
    initiators: dict[str, str | None] = field(default_factory=dict)
    headers: dict[int, Header] = field(default_factory=dict)
    base_block: int | None = None  # also kept: the block below the first range ever scanned
    consistent: bool = True
    detail: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def initiator_missing(self) -> int:
        return sum(1 for t in self.matched if self.initiators.get(t.tx_hash) is None)

    @property
    def headers_to_keep(self) -> list[Header]:
        keep = {self.to_block} | {t.block_number for t in self.matched}
        if self.base_block is not None:
            keep.add(self.base_block)
        return [self.headers[n] for n in sorted(keep) if n in self.headers]

    def deposits(self, chain: str, now: datetime) -> list[dict[str, Any]]:
        """Deposit column values for the matched transfers (see screener.pipeline.store.insert_new): ``recorded``
        to our address on this chain; ``unassigned`` to one registered on other chains only (``rt.foreign``)."""
        family, spec = self.rt.spec.family, self.rt.spec
        rows = []
        for t in self.matched:
            token = spec.token_for(t.token)
            assert token is not None  # decode_transfers only keeps watched token contracts
            header = self.headers[t.block_number]
            row = {
                "chain": chain,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "block_number": t.block_number,
                "block_hash": t.block_hash,
                "block_time": datetime.fromtimestamp(header.timestamp, UTC),
                "token_symbol": token.symbol,
                "token_contract": token.contract,
                "decimals": self.rt.verified_tokens.get(t.token, token.decimals or 0),
                "amount_raw": t.amount,
                "from_address": from_hex20(family, t.from_hex),
                "initiator": self.initiators.get(t.tx_hash),
                "observed_at": now,
            }
            if t.to_hex in self.rt.watch:
                address, account = self.rt.watch[t.to_hex]
                row.update(to_address=address, account=account, status=DepositStatus.RECORDED, findings=[])
            else:
                address, registered = self.rt.foreign[t.to_hex]
                finding = wrong_network_finding(chain, address, registered)
                row.update(
                    to_address=address, account=UNASSIGNED_ACCOUNT, status=DepositStatus.UNASSIGNED, findings=[finding]
                )
            rows.append(row)
        return rows


def _initiator(rt: ChainRuntime, tx: Any, block_hash: str) -> str | None:
    """The transaction's sender, or None (fail closed) when the lookup failed or does not fit the log."""
    if not isinstance(tx, dict) or str(tx.get("blockHash", "")).lower() != block_hash:
        return None
    sender = tx.get("from")
    try:
        return from_hex20(rt.spec.family, str(sender)) if sender else None
    except AddressError:
        return None


def _lookup(rt: ChainRuntime, ep: Endpoint, scan: RangeScan, numbers: list[int]) -> None:
    """One batch: headers of ``numbers`` (required) and the matched transfers' transactions (optional).

    Re-sent (bounded) when a header is null: the request may have reached a node that is behind.
    """
    hashes = sorted({t.tx_hash for t in scan.matched})
    calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
    calls += [("eth_getTransactionByHash", [h]) for h in hashes]
    for attempt in range(BEHIND_ATTEMPTS):
        results = rt.client.batch(calls, endpoint=ep)
        missing = None
        for number, item in zip(numbers, results[: len(numbers)], strict=True):
            if isinstance(item, RpcError):
                raise item
            header = parse_header(item)
            if header is None:
                missing = number
                break
            scan.headers[number] = header
        if missing is None:
            break
        if attempt + 1 == BEHIND_ATTEMPTS:
            raise NodeBehind(f"{ep.label} does not serve block {missing}", "failing over")
    block_of = {t.tx_hash: t.block_hash for t in scan.matched}
    for tx_hash, item in zip(hashes, results[len(numbers) :], strict=True):
        scan.initiators[tx_hash] = None if isinstance(item, RpcError) else _initiator(rt, item, block_of[tx_hash])


def _check(scan: RangeScan, pre_end: Header, end: int, anchor: Header | None, logs_end: Header | None) -> None:
    problems = []
    if logs_end is not None and scan.headers[scan.to_block].hash != logs_end.hash:
        problems.append(f"the node that answered eth_getLogs had another block {scan.to_block}")
    if scan.headers[end].hash != pre_end.hash:
        problems.append(f"block {end} changed during the scan")
    if anchor is not None and scan.headers[anchor.number].hash != anchor.hash:
        problems.append(f"block {anchor.number} changed during the scan")
    for t in scan.matched:
        if scan.headers[t.block_number].hash != t.block_hash:
            problems.append(f"log {t.tx_hash}:{t.log_index} is from a block that is not canonical")
            break
    scan.consistent = not problems
    scan.detail = "; ".join(problems)


def scan_range(
    rt: ChainRuntime,
    ep: Endpoint,
    start: int,
    end: int,
    pre_end: Header | None,
    anchor: Header | None,
    keep_base: bool = False,
) -> RangeScan:
    """Read [start, end] (possibly less: the provider's range limit) on ``ep``; see the module docstring."""
    if pre_end is None:
        raise NodeBehind(f"{ep.label} does not serve block {end} below its own safe head", "failing over")
    started = time.perf_counter()
    scan = RangeScan(rt=rt, from_block=start, to_block=end)
    logs_end: Header | None = None
    # Bulk section: the reply's dicts are freed by refcount once decoded, so GC passes over them are waste.
    with gc_paused():
        logs: list[dict[str, Any]] = []
        recipients = rt.watch.keys() | rt.foreign.keys()
        if recipients:  # no deposit addresses: nothing to ask for, the range is simply passed
            fetched = fetch_logs(rt.client, ep, make_query(rt.spec, sorted(recipients)), start, end, rt.sizer)
            logs, scan.to_block, logs_end = fetched.logs, fetched.to_block, fetched.end_header
            del fetched
        fetched_at = time.perf_counter()
        outcome = decode_transfers(logs, {t.hex20 for t in rt.spec.tokens}, recipients)
        scan.logs, scan.matched = len(logs), outcome.transfers
        scan.rejected, scan.other_recipients = outcome.rejected, outcome.other_recipients
        del logs
    decoded_at = time.perf_counter()
    numbers = {end, scan.to_block} | {t.block_number for t in scan.matched}
    if anchor is not None:
        numbers.add(anchor.number)
    if keep_base:
        scan.base_block = max(start - 1, 0)
        numbers.add(scan.base_block)
    _lookup(rt, ep, scan, sorted(numbers))
    _check(scan, pre_end, end, anchor, logs_end)
    scan.timings_s = {
        "fetch": fetched_at - started,
        "decode": decoded_at - fetched_at,
        "lookup": time.perf_counter() - decoded_at,
    }
    return scan


def verify_tokens(rt: ChainRuntime, ep: Endpoint) -> None:
    """Once per runtime: every watched contract has code and its decimals() is what we will record."""
    if rt.verified_tokens:
        return
    calls: list[tuple[str, list[Any]]] = []
    for token in rt.spec.tokens:
        calls += [
            ("eth_getCode", [token.hex20, "latest"]),
            ("eth_call", [{"to": token.hex20, "data": DECIMALS_SELECTOR}, "latest"]),
        ]
    results = rt.client.batch(calls, endpoint=ep)
    found: dict[str, int] = {}
    for i, token in enumerate(rt.spec.tokens):
        code, word = results[2 * i], results[2 * i + 1]
        for item in (code, word):
            if isinstance(item, RpcError):
                raise item
        where = f"{rt.name} {token.symbol} at {token.contract}"
        if not isinstance(code, str) or code in ("0x", "0x0", ""):
            raise ChainHalted(f"{where}: no contract code", f"check chains.{rt.name}.tokens and the chain id")
        try:
            decimals = int(str(word), 16)
        except ValueError:
            raise ChainHalted(f"{where}: decimals() returned {word!r}", "check the contract address") from None
        if token.decimals is not None and decimals != token.decimals:
            raise ChainHalted(
                f"{where}: decimals() is {decimals}, the registry says {token.decimals}",
                f"check chains.{rt.name}.tokens; amounts would be mis-scaled",
            )
        found[token.hex20] = decimals
    rt.verified_tokens = found
