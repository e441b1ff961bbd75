"""The project's one exception root.

Every error raised on purpose derives from :class:`ScreenerError`; its message says what went wrong
(the cause) and what to do about it (the remedy), so the CLI can print it as one line and exit non-zero
(``exit_code``, 2). The whole tree, with the module defining each class (tests/test_errors_tree.py keeps
this drawing equal to the code)::

    ScreenerError                      screener_base.errors
    ├── ConfigError                    screener_base.errors
    ├── StorageError                   screener_base.errors
    ├── LedgerError                    screener_base.errors
    │   └── IdempotencyConflict        screener_base.errors
    ├── ReviewError                    screener_base.errors
    │   └── CreditRefused              screener.review.service    (a release the fresh screen refuses)
    ├── AuditError                     screener_base.errors
    ├── ListError                      screener_base.errors
    │   ├── _Refused                   sanctions_lists.ofac       (inside expat callbacks; re-raised as ListError)
    │   └── _Transient                 sanctions_lists.fetch      (the only kind of download failure retried)
    ├── AddressError                   screener_base.errors
    ├── AddressImportError             screener.pipeline.addresses
    ├── BlockRangeError                screener.pipeline.backfill
    ├── CursorMoved                    screener.pipeline.store    (another worker moved the scan cursor first)
    ├── ChainError                     screener_base.errors
    │   ├── RpcError                   screener_base.errors
    │   │   ├── TransientRpcError      chains.rpc_errors
    │   │   │   └── NodeBehindRpc      chains.rpc_errors
    │   │   ├── RpcUnavailable         chains.rpc_errors
    │   │   │   ├── EndpointRefused    chains.rpc_errors
    │   │   │   └── OverBudget         chains.rpc_errors
    │   │   ├── RpcRequestError        chains.rpc_errors
    │   │   └── RangeTooLarge          chains.rpc_errors
    │   ├── DecodeError                screener_base.errors
    │   ├── NodeBehind                 chains.scanning
    │   ├── ChainHalted                chains.scanning
    │   │   ├── NodeInconsistent       chains.scanning
    │   │   ├── ProviderRefused        chains.scanning
    │   │   └── DeepReorg              chains.scanning
    │   └── IndexRangeUnverified       screener.indexes.sources
    ├── ScreeningUnavailable           screener_base.errors       (callers hold, never credit)
    ├── LeaseLost                      screener.daemon.leases
    ├── WorkerConflict                 screener.daemon.leases
    └── DemoError                      screener.demo.run
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
