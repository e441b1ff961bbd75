"""Which blocks are safe to read, how to read their logs, and whether the chain we saw is still the chain.

- Safe head: the block of the chain's finality tag (``finalized``/``safe``) when the endpoint serves it,
  else head - confirmations (Tron: or the head of a solidity-node endpoint). Nothing above it is read.
- Logs: one eth_getLogs per range for all watched token contracts (address list + Transfer topic0), with
  the recipients as a topic2 list when they are few. Ranges adapt: a provider's hint in its error text,
  else bisection, down to a single block; after a run of successes they grow back to the chain's maximum.
- Reorgs: the caller keeps recent headers; :func:`classify_anchor_mismatch` separates a real reorg from a
  node that is behind or inconsistent (re-read, cross-check other endpoints), and :func:`find_fork` finds
  the newest kept header that is still canonical.
No database and no policy here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chains.codec import topic_for
from chains.registry import ChainSpec
from chains.rpc import Endpoint, RpcClient
from chains.rpc_errors import RangeTooLarge, RpcRequestError, count_unrecognized
from chains.transfers import TRANSFER_TOPIC0
from screener_base.errors import ChainError, DecodeError, RpcError

MAX_SHRINK_STEPS = 64
# Requests re-sent when a node answers null for a block it should have (see get_headers).
BEHIND_ATTEMPTS = 3
GROW_AFTER_SUCCESSES = 4


class ChainHalted(ChainError):
    """Scanning this chain stops until a person looks: alert on it."""


class NodeInconsistent(ChainHalted):
    """Endpoints disagree about blocks we already read, or one endpoint contradicts itself."""


class DeepReorg(ChainHalted):
    """A reorg deeper than allowed, below finality, or touching deposits that were already decided."""


class ProviderRefused(ChainHalted):
    """Every endpoint tried refused a request for good (a permanent error): nothing retries it into working."""


class NodeBehind(ChainError):
    """The endpoint has not yet reached blocks we already read (not a reorg)."""


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def parse_header(raw: Any) -> Header | None:
    """A block object from eth_getBlockByNumber -> Header; None for an unknown block (JSON null)."""
    if raw is None:
        return None
    try:
        return Header(
            number=int(raw["number"], 16),
            hash=str(raw["hash"]).lower(),
            parent_hash=str(raw["parentHash"]).lower(),
            timestamp=int(raw["timestamp"], 16),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"block header malformed: {exc!r}", "the endpoint answers wrongly; fail over") from None


def _block_param(number: int | str) -> str:
    return number if isinstance(number, str) else hex(number)


def get_headers(
    client: RpcClient, ep: Endpoint, numbers: Sequence[int | str], attempts: int = BEHIND_ATTEMPTS
) -> list[Header | None]:
    """Headers by number or tag, batched; a failed lookup raises (headers are not optional).

    A null block is asked for again (up to ``attempts`` requests): behind one URL a load balancer may have
    sent the request to a node that is behind, and the next request can reach another one.
    """
    out: list[Header | None] = []
    for _ in range(max(1, attempts)):
        results = client.batch([("eth_getBlockByNumber", [_block_param(n), False]) for n in numbers], endpoint=ep)
        out = []
        for item in results:
            if isinstance(item, RpcError):
                raise item
            out.append(parse_header(item))
        if all(h is not None for h in out):
            break
    return out


@dataclass
class TagSupport:
    """Whether the endpoints serve the chain's finality tag (learned once; None = not yet known)."""

    served: bool | None = None


@dataclass(frozen=True)
class Heads:
    head: int
    safe: Header | None  # None while the chain is shorter than the confirmations
    source: str  # "finalized" | "safe" | "confirmations" | "solidified"


def _confirmations_heads(client: RpcClient, ep: Endpoint, spec: ChainSpec, latest: Header, cap: int | None) -> Heads:
    if cap is not None:
        number, source = min(latest.number, cap), "solidified"
    else:
        number, source = latest.number - spec.confirmations, "confirmations"
    if number < 0:
        return Heads(latest.number, None, source)
    safe = latest if number == latest.number else get_headers(client, ep, [number])[0]
    if safe is None:
        raise NodeBehind(f"{ep.label} has head {latest.number} but not block {number}", "another endpoint is tried")
    return Heads(latest.number, safe, source)


def _latest_and_tag(
    client: RpcClient, ep: Endpoint, spec: ChainSpec, tags: TagSupport, min_head: int
) -> tuple[Header, Any]:
    """The latest block (and the finality tag's block, while it may be served) in one request, re-asked
    (bounded) while the head is below ``min_head``: behind one URL, another node may answer next time."""
    ask_tag = spec.uses_tag and tags.served is not False
    calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", ["latest", False])]
    if ask_tag:
        calls.append(("eth_getBlockByNumber", [spec.finality_tag, False]))

    def ask() -> tuple[Header, Any]:
        items = client.batch(calls, endpoint=ep)
        if isinstance(items[0], RpcError):
            raise items[0]
        latest = parse_header(items[0])
        if latest is None:
            raise DecodeError(f"{ep.label} returned no latest block", "fail over")
        return latest, (items[1] if ask_tag else _NOT_ASKED)

    answer = ask()
    for _ in range(BEHIND_ATTEMPTS - 1):
        if answer[0].number >= min_head:
            break
        answer = ask()
    return answer


_NOT_ASKED = object()


def read_heads(
    client: RpcClient,
    ep: Endpoint,
    spec: ChainSpec,
    tags: TagSupport,
    finality_client: RpcClient | None = None,
    min_head: int = 0,
) -> Heads:
    """Head and safe head as seen by ``ep`` (the caller checks ``head >= min_head``; see _latest_and_tag)."""
    latest, tagged = _latest_and_tag(client, ep, spec, tags, min_head)
    if tagged is not _NOT_ASKED:
        if isinstance(tagged, RpcRequestError) or (tagged is None and tags.served is None):
            tags.served = False  # this provider does not know the tag: confirmations from now on
        elif isinstance(tagged, RpcError):
            raise tagged
        else:
            tags.served = True
            return Heads(latest.number, parse_header(tagged), str(spec.finality_tag))
    cap = None
    if finality_client is not None:  # e.g. a java-tron solidity node: its head is already final
        cap = int(finality_client.call("eth_blockNumber", []), 16)
    return _confirmations_heads(client, ep, spec, latest, cap)


def finalized_number(client: RpcClient, ep: Endpoint, spec: ChainSpec, tags: TagSupport) -> int | None:
    """The chain's own finalized block, when it has one we can ask for (the floor for any rewind)."""
    if not spec.uses_tag or tags.served is False:
        return None
    try:
        header = get_headers(client, ep, ["finalized"])[0]
    except RpcRequestError:
        return None
    return header.number if header else None


@dataclass
class RangeSizer:
    """Adaptive eth_getLogs span, shared by tip-following and catch-up."""

    max_span: int
    span: int = 0
    successes: int = 0
    shrinks: int = 0

    def __post_init__(self) -> None:
        self.span = self.span or self.max_span

    def shrink(self, tried: int, exc: RangeTooLarge, from_block: int) -> int:
        self.shrinks += 1
        self.successes = 0
        hinted = None
        if exc.hint_range is not None and exc.hint_range[0] == from_block:
            hinted = exc.hint_range[1] - from_block + 1
        elif exc.hint_span is not None:
            hinted = exc.hint_span
        new = hinted if hinted is not None and 0 < hinted < tried else tried // 2
        self.span = max(1, new)
        return self.span

    def succeeded(self, used: int) -> None:
        if used < self.span:
            return  # a short range at the tip says nothing about the limit
        self.successes += 1
        if self.successes >= GROW_AFTER_SUCCESSES and self.span < self.max_span:
            self.span = min(self.max_span, self.span * 2)
            self.successes = 0


@dataclass(frozen=True)
class LogQuery:
    tokens_hex: tuple[str, ...]
    recipients_hex: tuple[str, ...] | None  # server-side `to` filter; None = all recipients

    def filter(self, from_block: int, to_block: int) -> dict[str, Any]:
        topics: list[Any] = [TRANSFER_TOPIC0]
        if self.recipients_hex is not None:
            topics += [None, [topic_for(a) for a in self.recipients_hex]]
        return {
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "address": list(self.tokens_hex),
            "topics": topics,
        }


def make_query(spec: ChainSpec, recipients_hex: Sequence[str]) -> LogQuery:
    server_side = 0 < len(recipients_hex) <= spec.server_filter_max_addresses
    return LogQuery(
        tokens_hex=tuple(sorted(t.hex20 for t in spec.tokens)),
        recipients_hex=tuple(sorted(recipients_hex)) if server_side else None,
    )


@dataclass
class FetchedRange:
    logs: list[dict[str, Any]]
    to_block: int
    # The header of to_block from the same HTTP request as the logs: the node that answered them had it.
    end_header: Header
    shrinks: int = 0


def fetch_logs(
    client: RpcClient, ep: Endpoint, query: LogQuery, from_block: int, to_block: int, sizer: RangeSizer
) -> FetchedRange:
    """Logs of the first sub-range of [from_block, to_block] the provider accepts (at least one block)."""
    if to_block < from_block:
        raise ValueError(f"empty block range {from_block}..{to_block}")
    span = min(sizer.span, to_block - from_block + 1)
    shrinks = behind = unrecognized = 0
    for _ in range(MAX_SHRINK_STEPS):
        end = from_block + span - 1
        try:
            logs, raw_header = client.get_logs_and_block(query.filter(from_block, end), end, endpoint=ep)
        except RangeTooLarge as exc:
            unrecognized = count_unrecognized(exc, unrecognized, ep.label)
            if not exc.recognized and span > 1:
                span, shrinks = span // 2, shrinks + 1  # not the shared sizer: it may not be a limit at all
                continue
            if span == 1:
                raise RpcRequestError(
                    f"block {from_block} alone exceeds the provider's eth_getLogs limit ({exc.cause})",
                    "use an endpoint without a result cap, or fewer deposit addresses per query",
                ) from None
            span = min(sizer.shrink(span, exc, from_block), span - 1)
            shrinks += 1
            continue
        header = parse_header(raw_header)
        if header is None:  # e.g. a load balancer sent the request to a node that is behind: logs may be cut
            behind += 1
            if behind >= BEHIND_ATTEMPTS:
                raise NodeBehind(f"{ep.label} answered eth_getLogs without having block {end}", "failing over")
            continue
        sizer.succeeded(span)
        return FetchedRange(logs=logs, to_block=end, end_header=header, shrinks=shrinks)
    raise RpcRequestError(f"eth_getLogs range did not converge from block {from_block}", "check the provider")


class AnchorState(StrEnum):
    SAME = "same"  # re-read agrees with what we stored: the first read was a glitch
    REORG = "reorg"
    BEHIND = "behind"


@dataclass
class AnchorCheck:
    state: AnchorState
    canonical: Header | None = None
    detail: str = ""
    disagreeing: list[str] = field(default_factory=list)


def classify_anchor_mismatch(client: RpcClient, ep: Endpoint, anchor: Header, max_peers: int = 2) -> AnchorCheck:
    """The header we stored at ``anchor.number`` differs from what ``ep`` served: why?

    Re-read on ``ep``; then ask up to ``max_peers`` other endpoints. Any peer that still has our header
    means the endpoints disagree: NodeInconsistent (never rewind on one node's word against another's).
    """
    again = get_headers(client, ep, [anchor.number])[0]
    if again is None:
        return AnchorCheck(AnchorState.BEHIND, detail=f"{ep.label} no longer has block {anchor.number}")
    if again.hash == anchor.hash:
        return AnchorCheck(AnchorState.SAME, again)
    for peer in [p for p in client.candidates() if p is not ep][:max_peers]:
        try:
            seen = get_headers(client, peer, [anchor.number])[0]
        except RpcError:
            continue  # an unreachable peer neither confirms nor contradicts
        if seen is not None and seen.hash == anchor.hash:
            raise NodeInconsistent(
                f"block {anchor.number}: {ep.label} serves {again.hash}, {peer.label} still serves {anchor.hash}",
                "one endpoint is on another fork or broken; nothing was rewound; check both",
            )
    return AnchorCheck(AnchorState.REORG, again)


@dataclass(frozen=True)
class Fork:
    """Where our kept headers leave the canonical chain."""

    base: Header | None  # newest kept header still canonical (None: none is)
    lowest_replaced: int  # lowest kept header number that is no longer canonical


def find_fork(client: RpcClient, ep: Endpoint, kept: Sequence[Header], replaced: Header) -> Fork:
    """Compare ``kept`` headers (below ``replaced``, known not canonical) with ``ep``'s chain.

    Headers are sparse (range ends, deposit blocks), so the true fork lies somewhere between ``base`` and
    ``lowest_replaced``: the reorg is at least ``replaced.number - lowest_replaced + 1`` deep.
    """
    ordered = sorted((h for h in kept if h.number < replaced.number), key=lambda h: h.number, reverse=True)
    current = get_headers(client, ep, [h.number for h in ordered])
    lowest = replaced.number
    for stored, now in zip(ordered, current, strict=True):
        if now is not None and now.hash == stored.hash:
            return Fork(stored, lowest)
        lowest = stored.number
    return Fork(None, lowest)
