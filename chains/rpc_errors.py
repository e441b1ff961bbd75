"""What an RPC failure means: retry, shrink the range, fail over, give up (URLs: screener_base.redact).

Pure functions; chains/rpc.py applies them. Provider error texts are matched loosely on purpose: the same
condition is worded differently by geth, Erigon, java-tron, Infura, Alchemy, QuickNode and public gateways.
"""

from __future__ import annotations

import re
from enum import StrEnum

from screener_base.errors import RpcError


class TransientRpcError(RpcError):
    """Worth retrying on the same endpoint (network, timeout, 429, 5xx, provider busy/limit codes)."""

    def __init__(self, cause: str, remedy: str | None = None, *, retry_after_s: float | None = None) -> None:
        super().__init__(cause, remedy)
        self.retry_after_s = retry_after_s


class RpcUnavailable(RpcError):
    """An endpoint kept failing after its bounded retries (or refused us): fail over to another one."""


class EndpointRefused(RpcUnavailable):
    """An endpoint must not be used: wrong chain id, or it rejects our credentials."""


class OverBudget(RpcUnavailable):
    """An endpoint is not asked now: its request budget is spent (requests_per_day until the next UTC day, or
    requests_per_s for longer than a retry may wait), or the provider suspended the key for a while
    (TronGrid's 403 "suspended for 30s", a long Retry-After). Nothing was sent; another endpoint is tried."""


class RpcRequestError(RpcError):
    """The node answered this request with an error that retrying will not change."""

    def __init__(self, cause: str, remedy: str | None = None, *, code: int | None = None) -> None:
        super().__init__(cause, remedy)
        self.code = code


class RangeTooLarge(RpcError):
    """eth_getLogs refused for its size: too many blocks, too many results, too large a response, or a wording
    nobody classified (``recognized`` False: shrunk a bounded number of times only). Carries the provider's hint."""

    def __init__(
        self,
        cause: str,
        *,
        hint_span: int | None = None,
        hint_range: tuple[int, int] | None = None,
        kind: str = "range",
        recognized: bool = True,
    ) -> None:
        super().__init__(cause, "the scanner shrinks the range and retries")
        self.hint_span = hint_span
        self.hint_range = hint_range
        self.kind = kind
        self.recognized = recognized


class NodeBehindRpc(TransientRpcError):
    """The node has not reached a block the request names (beyond its head, header or block not found):
    asked again, then another endpoint."""


class ErrorKind(StrEnum):
    RANGE = "range"  # too many blocks in one eth_getLogs
    RESULT_COUNT = "result_count"  # too many logs in the answer
    RESPONSE_SIZE = "response_size"  # the answer too large (bytes), or too heavy to compute in time
    TRANSIENT = "transient"  # rate limits, timeouts, busy or unhealthy backends: retry, then fail over
    NODE_BEHIND = "node_behind"  # the node lacks a block we ask about
    UNSHRINKABLE = "unshrinkable"  # the request's shape (topics, addresses, batch) is refused: no range helps
    PERMANENT = "permanent"  # a recognised refusal that retrying will not change
    UNKNOWN = "unknown"  # no pattern matched: on eth_getLogs, shrunk a bounded number of times, else permanent


SHRINKABLE = frozenset({ErrorKind.RANGE, ErrorKind.RESULT_COUNT, ErrorKind.RESPONSE_SIZE})
# Shrinks an eth_getLogs range gets for an error nobody recognised, before it counts as permanent.
MAX_UNRECOGNIZED_SHRINKS = 3


def count_unrecognized(exc: RangeTooLarge, seen: int, where: str) -> int:
    """``seen`` plus one when nobody recognised ``exc``'s wording; past MAX_UNRECOGNIZED_SHRINKS such refusals it
    is no longer taken for a size limit: RpcRequestError, so the caller tries another endpoint."""
    seen += 0 if exc.recognized else 1
    if seen > MAX_UNRECOGNIZED_SHRINKS:
        raise RpcRequestError(
            f"eth_getLogs on {where} was refused {seen} times, shrinking, with an error not known to be a size limit "
            f"({exc.cause})",
            "another endpoint is tried; if it is a limit, report its wording (chains/rpc_errors.py)",
        )
    return seen


# Checked in this order: the first that matches decides (a "max topics" text also says "exceed max").
_PATTERNS: tuple[tuple[ErrorKind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        # geth without a finality tag: "finalized block not found"; the caller falls back to confirmations.
        (ErrorKind.PERMANENT, r"(finalized|safe|pending) block not found|unknown tag|tag not (supported|found)"),
        (ErrorKind.NODE_BEHIND, r"beyond current head|header not found|unknown block|block \d+ not found"
         r"|^\d+ could not be found|not yet (available|produced)|after last accepted block|block not found"),
        (ErrorKind.UNSHRINKABLE, r"max(imum)? (number of )?(topics|addresses)|exceed max (topics|addresses)"
         r"|addresses or topics|topics size|less number of addresses|contains \d+ filters|methods in the batch"
         r"|too many (topics|addresses)"),
        # A reversed or malformed range: its words would otherwise read as a range limit.
        (ErrorKind.PERMANENT, r"invalid block range params|fromblock <= toblock|cannot specify both"),
        # Rate limits that mention blocks or "exceeds the limit" are still rate limits.
        (ErrorKind.TRANSIENT, r"rate.?limit|per ?sec(ond)?\b|requests? per|request rate|too many requests"
         r"|credits limited|compute units"),
        (ErrorKind.RESULT_COUNT, r"more than [\d,.]+ results|max(imum)? results|too many (logs|results)"
         r"|matched by query exceeds|result set too large|returned more than"),
        (ErrorKind.RESPONSE_SIZE, r"response (size|is too big|too large)|log response|larger than \d+ ?[mkg]b"
         r"|query timeout|response size should"),
        (ErrorKind.RANGE, r"block range|blocks range|range (is )?too (large|wide|big|high)|blocks distance"
         r"|limited to (a |0 - )?[\d,.]+ ?k? ?(block|range)|max(imum)?( allowed)?( block)? range"
         r"|range limit|requested too many blocks"
         r"|requested blocks|at most [\d,.]+ blocks|ranges over|range [\d,.]+ (exceeds|is bigger)"
         r"|range allowed|smaller than size|more than [\d,.]+ blocks|exceeds? (the )?(max|limit)"),
        (ErrorKind.TRANSIENT, r"timeout|timed out|busy|try again|capacity|overload"
         r"|temporar|unavailable|request limit|limit exceeded|internal error|upstream|not synced|syncing"
         r"|no backend|healthy|per ?sec|request count exceeded|rate exceeded|context canceled"),
        (ErrorKind.PERMANENT, r"invalid (argument|params|address)"
         r"|method not found|not supported|unauthori[sz]ed|forbidden|api key|not allowed|does not exist"),
    )
)  # fmt: skip
# -32005 limit exceeded (EIP-1474), -32603 internal, 429 and -32029/-32090/-32098 (Alchemy, Ankr, Chainstack
# rate limits), -32011 (proxyd: no healthy backend), -32012 (QuickNode credits).
_TRANSIENT_CODES = {-32005, -32603, -32029, -32090, -32098, -32011, -32012, 429}


def classify_rpc_error(code: int | None, message: str) -> ErrorKind:
    """What an error answer means; see tests/data/provider_errors.json for the real texts behind each pattern."""
    for kind, pattern in _PATTERNS:
        if pattern.search(message):
            return kind
    if code in _TRANSIENT_CODES:
        return ErrorKind.TRANSIENT
    return ErrorKind.UNKNOWN


_NUMBER = r"(\d[\d,.]*)\s*(k\b)?"
_HINT_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_HINT_DECIMAL_RANGE = re.compile(r"retry with the range (\d+)\s*-\s*(\d+)", re.IGNORECASE)
# The block span a range-limit text states, as worded by the providers in tests/data/provider_errors.json.
_SPAN_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\(\d+ > " + _NUMBER + r"\)",
        r"up to (?:a )?" + _NUMBER + r" ?block",
        r"limited to (?:a |0 - )?" + _NUMBER + r" ?(?:block|range)",
        r"max(?:imum)?(?: allowed)?(?: block)? range(?: size)?(?: of| is|:| =)? ?" + _NUMBER,
        r"(?:maximum is set to|requested blocks is|ranges over|maximum allowed is|max is|at most|maximum"
        r"|narrow your filter:|distance:"
        r"|range limit|exceeds limit of|smaller than size|block range exceeds|greater than|more than) " + _NUMBER,
    )
)


def _number(digits: str, thousands: str | None) -> int | None:
    text = digits.rstrip(".,")
    # "10,000" and "10.000" group thousands; nothing here is fractional.
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", text):
        text = re.sub(r"[.,]", "", text)
    if not text.isdigit():
        return None
    value = int(text) * (1000 if thousands else 1)
    return value if value > 0 else None


def parse_range_hint(message: str, kind: ErrorKind = ErrorKind.RANGE) -> tuple[int | None, tuple[int, int] | None]:
    """(max span, explicit [from, to]) suggested by a provider's error text, when it gives one. A stated span is
    read from range-limit texts only (a result-count text's number counts logs, not blocks), except the
    "up to a N block range" that Alchemy's response-size text also states."""
    for pattern in (_HINT_RANGE, _HINT_DECIMAL_RANGE):
        match = pattern.search(message)
        if match:
            base = 16 if pattern is _HINT_RANGE else 10
            low, high = (int(g, base) for g in match.groups())
            if high >= low:
                return high - low + 1, (low, high)
    patterns = _SPAN_PATTERNS if kind is ErrorKind.RANGE else _SPAN_PATTERNS[1:2]
    for pattern in patterns:
        match = pattern.search(message)
        if match:
            span = _number(match.group(1), match.group(2))
            if span is not None:
                return span, None
    return None, None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; HTTP-date forms are not parsed (the caller's cap applies)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


_THROTTLE = re.compile(r"frequency limit|suspended for|rate limit|too many requests", re.IGNORECASE)
_SUSPENDED = re.compile(r"suspended for (\d+(?:\.\d+)?) ?s", re.IGNORECASE)


def throttle_text(body: object) -> str | None:
    """The throttling message of an HTTP error body (TronGrid's ``{"error": "The key exceeds the frequency
    limit(15), and the query server is suspended for 30s"}``, also as ``Error``); None if it is not one."""
    if not isinstance(body, dict):
        return None
    for key in ("error", "Error", "message"):
        text = body.get(key)
        if isinstance(text, str) and _THROTTLE.search(text):
            return text[:300]
    return None


def parse_suspension_s(text: str) -> float | None:
    """Seconds a provider says it suspends the key for ("suspended for 30s")."""
    match = _SUSPENDED.search(text)
    return float(match.group(1)) if match else None
