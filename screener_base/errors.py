"""The project's one exception root.

Every error raised on purpose derives from :class:`ScreenerError`; its message says what went wrong
(the cause) and what to do about it (the remedy), so the CLI can print it as one line and exit non-zero.
"""

from __future__ import annotations


class ScreenerError(Exception):
    """Root of all errors this project raises on purpose."""

    exit_code = 2

    def __init__(self, cause: str, remedy: str | None = None) -> None:
        self.cause = cause
        self.remedy = remedy
        super().__init__(f"{cause}; {remedy}" if remedy else cause)


class ConfigError(ScreenerError):
    """Configuration file or value is invalid."""


class StorageError(ScreenerError):
    """Database unreachable, schema missing or out of date."""


class LedgerError(ScreenerError):
    """A ledger rule was violated (unbalanced, negative balance, conflicting idempotent retry)."""


class IdempotencyConflict(LedgerError):
    """Same transfer id submitted again with different fields."""


class ReviewError(ScreenerError):
    """A reviewer action is not allowed (unknown hold, already resolved, self-approval...)."""


class AuditError(ScreenerError):
    """The audit chain is broken or cannot be written."""


class ListError(ScreenerError):
    """A sanctions list could not be fetched, parsed or activated."""


class AddressError(ScreenerError):
    """An address is malformed for its chain family."""


class ChainError(ScreenerError):
    """Talking to a chain failed or gave inconsistent data."""


class RpcError(ChainError):
    """A JSON-RPC call failed after its retries."""


class DecodeError(ChainError):
    """A log or response does not have the expected shape."""


class ScreeningUnavailable(ScreenerError):
    """Screening could not be done; callers must hold, never credit."""
