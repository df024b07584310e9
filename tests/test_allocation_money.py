"""Rounding to the fen: the parts always sum exactly to the whole (largest remainder)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rules.allocation.money import round_fen, split_fen


def test_thirds_of_ten_yuan() -> None:
    third = Decimal(10) / 3
    # 3.333… each: floors 3.33 * 3 = 9.99; the one fen left goes to the first by id.
    assert split_fen(Decimal("10.00"), {"b": third, "a": third, "c": third}) == {
        "a": Decimal("3.34"),
        "b": Decimal("3.33"),
        "c": Decimal("3.33"),
    }


def test_largest_remainder_wins_the_fen() -> None:
    # 1.004 + 2.009 + 3.002 = 6.015 → 6.02; floors 1.00 + 2.00 + 3.00 = 6.00; two fen
    # go to the largest remainders: 0.009 (b) and 0.004 (a).
    parts = {"a": Decimal("1.004"), "b": Decimal("2.009"), "c": Decimal("3.002")}
    total = round_fen(sum(parts.values(), Decimal(0)))
    assert total == Decimal("6.02")
    assert split_fen(total, parts) == {
        "a": Decimal("1.01"),
        "b": Decimal("2.01"),
        "c": Decimal("3.00"),
    }


amounts = st.decimals(min_value=0, max_value=100000, places=6, allow_nan=False)


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), amounts, min_size=1, max_size=8))
def test_parts_sum_exactly_to_the_rounded_total(parts: dict[str, Decimal]) -> None:
    total = round_fen(sum(parts.values(), Decimal(0)))
    split = split_fen(total, parts)
    assert sum(split.values(), Decimal(0)) == total
    for key, exact in parts.items():
        assert abs(split[key] - exact) < Decimal("0.01")
