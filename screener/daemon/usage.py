"""Cluster-wide request counts per endpoint and UTC day, so that every worker's budgets share one daily total.

A provider counts a key's requests per day, whichever worker sent them: each worker adds what it sent after each
tick and takes the day's total back into its budgets, so a worker that starts late in the day (or takes a chain
over from another) does not spend the day's budget a second time. Informational writes in their own short
transaction, like the RPC error totals (screener.daemon.state).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chains.rpc import RpcClient
from screener.db import insert_ignore, session_scope
from screener.models.daemon import RpcEndpointUsage

USAGE: sa.Table = RpcEndpointUsage.__table__  # type: ignore[attr-defined]
# endpoint label -> (UTC day, requests of that day already in the table or taken from it)
Flushed = dict[str, tuple[date, int]]


def day_totals(engine: Engine, chain: str, day: date) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(USAGE.c.endpoint, USAGE.c.requests).where(USAGE.c.chain == chain, USAGE.c.day == day.isoformat())
        )
        return {str(endpoint): int(requests) for endpoint, requests in rows}


def seed_budgets(engine: Engine, chain: str, client: RpcClient, day: date, flushed: Flushed) -> None:
    """Start ``client``'s budgets from the day's cluster-wide totals."""
    totals = day_totals(engine, chain, day)
    for label in client.budget_use():
        client.seed_budget(label[:255], day, totals.get(label[:255], 0))
    for label, use in client.budget_use().items():
        if use.day is not None:
            flushed[label] = (use.day, use.requests_today)


def flush_usage(engine: Engine, chain: str, client: RpcClient, flushed: Flushed, now: datetime) -> None:
    """Add the requests sent since the last flush to the day's totals, then take the totals back."""
    deltas: dict[str, tuple[date, int]] = {}
    for label, use in client.budget_use().items():
        if use.day is None:
            continue
        base_day, base = flushed.get(label, (use.day, 0))
        delta = use.requests_today - base if base_day == use.day else use.requests_today
        if delta > 0:
            deltas[label] = (use.day, delta)
    if not deltas:
        return
    with session_scope(engine) as session:
        for label, (day, delta) in deltas.items():
            key = {"chain": chain, "endpoint": label[:255], "day": day.isoformat()}
            insert_ignore(session, USAGE, {**key, "requests": 0, "updated_at": now}, ["chain", "endpoint", "day"])
            session.execute(
                sa.update(USAGE)
                .where(*(USAGE.c[name] == value for name, value in key.items()))
                .values(requests=USAGE.c.requests + delta, updated_at=now)
            )
        # The day's totals, other workers' requests included, read back in the same transaction.
        days = sorted({day.isoformat() for day, _ in deltas.values()})
        rows = session.execute(
            sa.select(USAGE.c.endpoint, USAGE.c.day, USAGE.c.requests).where(
                USAGE.c.chain == chain, USAGE.c.day.in_(days)
            )
        )
        totals = {(str(endpoint), str(day)): int(requests) for endpoint, day, requests in rows}
    for label, (day, _) in deltas.items():
        client.seed_budget(label, day, totals.get((label[:255], day.isoformat()), 0))
    for label, use in client.budget_use().items():
        if label in deltas and use.day is not None:
            flushed[label] = (use.day, use.requests_today)
