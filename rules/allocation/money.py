"""Money in Decimal, rounded to the fen so that the parts sum exactly to the whole."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

__all__ = ["FEN", "round_fen", "split_by_weight", "split_fen"]

FEN = Decimal("0.01")


def round_fen(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def split_fen(total: Decimal, exact: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Round each party's exact amount to the fen so that they sum to `total` (largest remainder).

    `total` is already in fen. Every party first gets its amount rounded down;
    the fen left over go one each to the largest remainders (ties by party id,
    so a re-run gives the same split).
    """
    floors = {k: v.quantize(FEN, rounding=ROUND_DOWN) for k, v in exact.items()}
    left = int((total - sum(floors.values(), Decimal(0))) / FEN)
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - floors[k]), k))
    if left < 0 or (by_remainder and left > len(by_remainder)):
        raise ValueError(f"parts {sum(exact.values())} do not add up to the total {total}")
    for key in by_remainder[:left]:
        floors[key] += FEN
    return floors


def split_by_weight(total: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """`total` (in fen) shared in proportion to `weights`, each part in fen, summing exactly.

    For showing an amount already rounded once in its parts (a party's bill by
    period): the parts are the total's, not rounded again on their own. With
    no weight at all, the first key takes the whole.
    """
    if not weights:
        return {}
    whole = sum(weights.values(), Decimal(0))
    if whole <= 0:
        first = min(weights)
        return {k: total if k == first else Decimal(0) for k in weights}
    sign = Decimal(-1) if total < 0 else Decimal(1)
    exact = {k: abs(total) * w / whole for k, w in weights.items()}
    return {k: sign * v for k, v in split_fen(abs(total), exact).items()}
