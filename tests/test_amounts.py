"""screener.amounts.format_units: exact token units from integer base units."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screener.amounts import format_units


@pytest.mark.parametrize(
    ("raw", "decimals", "text"),
    [
        (5_000_000_000, 6, "5000.000000"),
        (2_500_000, 6, "2.500000"),
        (7, 6, "0.000007"),
        (0, 6, "0.000000"),
        (-1_500_000, 6, "-1.500000"),
        (-7, 6, "-0.000007"),
        (42, 0, "42"),
        (10**27, 18, "1000000000.000000000000000000"),
        (10**27 + 1, 18, "1000000000.000000000000000001"),
        (2**63 + 1, 6, "9223372036854.775809"),
        (2**64 - 1, 18, "18.446744073709551615"),
        (2**256 - 1, 18, "115792089237316195423570985008687907853269984665640564039457.584007913129639935"),
    ],
)
def test_format_units_is_exact(raw: int, decimals: int, text: str) -> None:
    assert format_units(raw, decimals) == text


@given(st.integers(min_value=-(2**300), max_value=2**300), st.integers(min_value=0, max_value=40))
def test_format_units_round_trips(raw: int, decimals: int) -> None:
    text = format_units(raw, decimals)
    assert int(text.replace(".", "")) == raw  # the digits are exactly the base units
    with localcontext() as ctx:
        ctx.prec = 200
        assert Decimal(text).scaleb(decimals) == raw
    assert len(text.partition(".")[2]) == decimals  # always every decimal place: columns line up


@pytest.mark.parametrize("bad", [1.5, 1e18, Decimal("1"), "100", True])
def test_format_units_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        format_units(bad, 6)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 1.0, True])
def test_format_units_refuses_bad_decimals(bad: object) -> None:
    with pytest.raises(ValueError):
        format_units(5, bad)  # type: ignore[arg-type]
