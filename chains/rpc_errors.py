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


class RpcRequestError(RpcError):
    """The node answered this request with an error that retrying will not change."""

    def __init__(self, cause: str, remedy: str | None = None, *, code: int | None = None) -> None:
        super().__init__(cause, remedy)
        self.code = code


class RangeTooLarge(RpcError):
    """eth_getLogs range or result count above the provider's limit; carries the provider's hint if any."""

    def __init__(self, cause: str, *, hint_span: int | None = None, hint_range: tuple[int, int] | None = None) -> None:
        super().__init__(cause, "the scanner shrinks the range and retries")
        self.hint_span = hint_span
        self.hint_range = hint_range


class ErrorKind(StrEnum):
    RANGE = "range"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


_RANGE_PATTERNS = re.compile(
    r"more than \d[\d,]* results|range (is )?too (large|wide|big)|block range|response size (exceeded|is larger)"
    r"|too many (logs|results|blocks)|log response size|limited to a? ?[\d,]+ ?(block|range)"
    r"|max(imum)? (block )?range|exceeds? (the )?(max|limit)|query timeout exceeded|result set too large",
    re.IGNORECASE,
)
_TRANSIENT_PATTERNS = re.compile(
    r"header not found|timeout|timed out|busy|try again|rate.?limit|too many requests|capacity|overload"
    r"|temporar|unavailable|request limit|limit exceeded|internal error|upstream|not synced|syncing",
    re.IGNORECASE,
)
# -32005 limit exceeded (EIP-1474), -32603 internal, -32000 server error (geth uses it for both), 429 and
# -32029/-32090/-32098 as used by Alchemy, Ankr, Chainstack for rate limits.
_TRANSIENT_CODES = {-32005, -32603, -32029, -32090, -32098, 429}


def classify_rpc_error(code: int | None, message: str) -> ErrorKind:
    if _RANGE_PATTERNS.search(message):
        return ErrorKind.RANGE
    if code in _TRANSIENT_CODES or _TRANSIENT_PATTERNS.search(message):
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


_HINT_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_HINT_SPAN = re.compile(
    r"(?:up to (?:a )?|limited to (?:a )?|max(?:imum)? (?:block )?range(?: is| of)?:? ?|exceed max block range:? ?"
    r"|range (?:should|must) be (?:less than|at most|<=?) ?)([\d,]+)(k?)",
    re.IGNORECASE,
)


def parse_range_hint(message: str) -> tuple[int | None, tuple[int, int] | None]:
    """(max span, explicit [from, to]) suggested by a provider's error text, when it gives one."""
    match = _HINT_RANGE.search(message)
    if match:
        low, high = int(match.group(1), 16), int(match.group(2), 16)
        if high >= low:
            return high - low + 1, (low, high)
    match = _HINT_SPAN.search(message)
    if match:
        span = int(match.group(1).replace(",", "")) * (1000 if match.group(2).lower() == "k" else 1)
        if span > 0:
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
