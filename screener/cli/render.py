"""Rendering of hold records: CSV and JSON exports, and the plain-text table the terminal shows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from screener_base.errors import ReviewError
from screener_base.text import printable

EXPORT_FORMATS = ("csv", "json")
EXPORT_FIELDS = (
    "id",
    "state",
    "verdict",
    "overdue",
    "chain",
    "token",
    "amount",
    "amount_raw",
    "decimals",
    "account",
    "from_address",
    "initiator",
    "tx_hash",
    "log_index",
    "block_number",
    "reason",
    "opened_at",
    "due_at",
    "sla_breached_at",
    "release_requested_by",
    "release_requested_at",
    "release_reason",
    "resolved_by",
    "resolved_at",
    "resolution_reason",
    "rejected_to",
    "decided_identity",
)


def check_format(fmt: str) -> str:
    value = (fmt or "").strip().lower()
    if value not in EXPORT_FORMATS:
        raise ReviewError(f"--format must be csv or json, not {fmt!r}", "pass --format csv or --format json")
    return value


def render(records: list[dict[str, Any]], fmt: str) -> str:
    if check_format(fmt) == "json":
        return json.dumps(records, indent=2, sort_keys=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        # Neutralise spreadsheet formulas: reasons are free text typed by people.
        writer.writerow({k: _cell(record.get(k)) for k in EXPORT_FIELDS})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON export, not Python's True/False
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def table(headers: list[str], rows: list[list[str]], max_width: int = 48, right: tuple[int, ...] = ()) -> str:
    """A plain aligned table; long cells are cut with an ellipsis (full values are in --json).

    Columns whose index is in ``right`` are right-aligned (amounts: the decimal points line up).
    """
    shown = [[printable(c) for c in row] for row in rows]
    cut = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in shown]
    widths = [max([len(h)] + [len(r[i]) for r in cut]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cut)])
