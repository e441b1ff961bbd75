"""Token amounts for people: the exact decimal text of integer base units. Integer arithmetic only, no floats.

One helper for every screen that shows an amount (`holds list`, `holds show`, `holds export`, `flags list`,
`balances`, `screener demo`), so the same deposit reads the same everywhere.
"""

from __future__ import annotations


def format_units(amount_raw: int, decimals: int) -> str:
    """``amount_raw`` base units with exactly ``decimals`` places: (5_000_000_000, 6) -> "5000.000000".

    Exact at any size (10**27 on 18 decimals, amounts above 2**63); a negative amount keeps its sign;
    0 decimals gives the integer. The text parses back with ``decimal.Decimal`` to the same value.
    """
    if isinstance(amount_raw, bool) or not isinstance(amount_raw, int):
        raise TypeError(f"amounts are integer base units, not {type(amount_raw).__name__}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be a non-negative integer, not {decimals!r}")
    sign = "-" if amount_raw < 0 else ""
    whole, frac = divmod(abs(amount_raw), 10**decimals)
    if decimals == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{decimals}d}"
