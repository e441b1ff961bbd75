"""data only: RPC endpoint labels stored before the one redactor (screener_base.redact) could hold API keys

Workers used to label an endpoint with only its long, key-like path segments masked, so a short key
(``https://rpc.example/short-key-123``, ``https://mainnet.example/v3/KEY``) was stored in rpc_endpoint_errors.
Each label is redacted again and rows that now share a label are summed. No schema change.

Revision ID: 0007_redact_endpoints
Revises: 0006_daemon
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from screener_base.redact import redact_text

revision = "0007_redact_endpoints"
down_revision = "0006_daemon"
branch_labels = None
depends_on = None

_TABLE = sa.table(
    "rpc_endpoint_errors",
    sa.column("chain", sa.String),
    sa.column("endpoint", sa.String),
    sa.column("errors_total", sa.BigInteger),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_TABLE)).all()
    totals: dict[tuple[str, str], int] = {}
    latest: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row.chain, redact_text(row.endpoint)[:255])
        totals[key] = totals.get(key, 0) + int(row.errors_total)
        latest[key] = max(latest.get(key, row.updated_at), row.updated_at)
    if {(row.chain, row.endpoint) for row in rows} == set(totals) and len(totals) == len(rows):
        return  # every label was already redacted
    bind.execute(sa.delete(_TABLE))
    values = [
        {"chain": c, "endpoint": e, "errors_total": n, "updated_at": latest[(c, e)]} for (c, e), n in totals.items()
    ]
    if values:
        bind.execute(sa.insert(_TABLE), values)


def downgrade() -> None:
    pass  # the keys are gone for good
