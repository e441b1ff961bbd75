"""The daemon's bookkeeping writes after each tick: chain status rows and cluster-wide RPC error totals.

Informational only (nothing here decides money), each in its own short transaction after the tick's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.db import insert_ignore, session_scope
from screener.models.chain import ScanCursor
from screener.models.daemon import ChainStatus, RpcEndpointErrors
from screener.pipeline.runtime import ChainRuntime
from screener.pipeline.tick import TickResult

STATUS: sa.Table = ChainStatus.__table__  # type: ignore[attr-defined]
RPC_ERRORS: sa.Table = RpcEndpointErrors.__table__  # type: ignore[attr-defined]
MAX_ERROR_CHARS = 2000


def _ensure_row(session: Session, chain: str) -> None:
    insert_ignore(session, STATUS, {"chain": chain, "ticks_ok": 0, "ticks_failed": 0}, ["chain"])


def record_tick_success(engine: Engine, result: TickResult, worker_id: str, now: datetime) -> None:
    """Store what the tick saw; ``last_progress_at`` moves only when the safe head moved."""
    with session_scope(engine) as session:
        _ensure_row(session, result.chain)
        row = session.execute(sa.select(STATUS).where(STATUS.c.chain == result.chain).with_for_update()).one()
        values: dict[str, Any] = {
            "worker_id": worker_id,
            "last_tick_at": now,
            "ticks_ok": row.ticks_ok + 1,
            "last_error": None,
        }
        if result.head_block is not None:
            values["head_block"] = result.head_block
        if result.safe_block is not None and result.safe_block != row.safe_head_block:
            values.update(safe_head_block=result.safe_block, last_progress_at=now)
        elif row.last_progress_at is None:
            values["last_progress_at"] = now
        session.execute(sa.update(STATUS).where(STATUS.c.chain == result.chain).values(**values))


def record_tick_failure(engine: Engine, chain: str, message: str, worker_id: str, now: datetime) -> int | None:
    """Count the failure; returns the chain's cursor (last scanned block) for the alert's key."""
    with session_scope(engine) as session:
        _ensure_row(session, chain)
        session.execute(
            sa.update(STATUS)
            .where(STATUS.c.chain == chain)
            .values(
                worker_id=worker_id,
                ticks_failed=STATUS.c.ticks_failed + 1,
                last_error=message[:MAX_ERROR_CHARS],
                last_error_at=now,
            )
        )
        cursor = session.get(ScanCursor, chain)
        return cursor.next_block - 1 if cursor is not None else None


def flush_rpc_errors(engine: Engine, runtime: ChainRuntime, flushed: dict[str, int], now: datetime) -> None:
    """Add ``runtime``'s new RPC errors per endpoint to the shared totals.

    ``flushed`` (endpoint label -> errors already added) belongs to the caller and lives as long as ``runtime``.
    """
    deltas: dict[str, int] = {}
    for label, stats in runtime.client.stats().items():
        delta = stats.errors - flushed.get(label, 0)
        if delta > 0:
            deltas[label] = delta
    if not deltas:
        return
    with session_scope(engine) as session:
        for label, delta in deltas.items():
            endpoint = label[:255]
            insert_ignore(
                session,
                RPC_ERRORS,
                {"chain": runtime.name, "endpoint": endpoint, "errors_total": 0, "updated_at": now},
                ["chain", "endpoint"],
            )
            session.execute(
                sa.update(RPC_ERRORS)
                .where(RPC_ERRORS.c.chain == runtime.name, RPC_ERRORS.c.endpoint == endpoint)
                .values(errors_total=RPC_ERRORS.c.errors_total + delta, updated_at=now)
            )
    for label, delta in deltas.items():
        flushed[label] = flushed.get(label, 0) + delta
