"""Properties of the whole allocation, on random months (hypothesis)."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.allocation.compute import StationResult
from rules.allocation.registers import HOUR_MS
from rules.allocation.report import month_window
from rules.allocation.source import Readings
from tests.allocation_helpers import RATES, allocate, district, station_entry
from waystation.registry import Registry

MONTH = date(2026, 8, 1)  # has critical-peak hours: four periods


def random_readings(registry: Registry, station: str, seed: int, scale: float = 1) -> Readings:
    """Registers growing by a random amount each hour, up to twice their usual rate."""
    rng = random.Random(seed)
    window = month_window(MONTH, registry.station_timezone(station))
    out: Readings = {}
    for (suffix, field), rate in RATES.items():
        value = rng.uniform(0, 5000)
        points = []
        for h in range(-1, window.slots + 2):
            points.append((window.start_ms + h * HOUR_MS, value * scale))
            value += rng.uniform(0, 2 * rate)
        out[(f"{station}-{suffix}", field)] = points
    return out


weights = st.dictionaries(
    st.sampled_from(["union", "operator", "dachuan-union", "cuiping"]),
    st.integers(1, 50),
    min_size=1,
)


def station(policy_weights: dict[str, int], loads: str) -> Registry:
    policy = {"loads": loads, "residual": {"shares": policy_weights}}
    return district(c=station_entry("c", "community_integrated", policy=policy))


def totals(result: StationResult) -> list[tuple[Decimal, Decimal]]:
    return [(u.quantity, u.cost) for u in result.utilities]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), shares=weights, loads=st.sampled_from(["union", "operator"]))
def test_parties_sum_exactly_to_the_station_and_periods_to_the_quantity(
    seed: int, shares: dict[str, int], loads: str
) -> None:
    reg = station(shares, loads)
    result = allocate(reg, "c", MONTH, random_readings(reg, "c", seed))
    for util in result.utilities:
        assert sum(line.cost for line in util.lines) == util.cost
        assert all(line.cost >= 0 for line in util.lines)
        if util.utility == "electricity":
            assert sum(util.tou.values()) == util.quantity
            assert set(util.tou) == {"sharp", "peak", "flat", "valley"}
            for line in util.lines:
                assert abs(sum(line.tou.values()) - line.quantity) <= Decimal("0.004")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), factor=st.integers(2, 9))
def test_scaling_the_readings_scales_the_bill(seed: int, factor: int) -> None:
    reg = station({"union": 1, "operator": 2}, "union")
    base = allocate(reg, "c", MONTH, random_readings(reg, "c", seed))
    scaled = allocate(reg, "c", MONTH, random_readings(reg, "c", seed, scale=factor))
    for one, many in zip(base.utilities, scaled.utilities, strict=True):
        # Quantities are kept to 0.0001 and money to the fen: equal up to that rounding.
        assert abs(many.quantity - factor * one.quantity) <= Decimal("0.001") * factor
        assert abs(many.cost - factor * one.cost) <= Decimal("0.01") * factor
        for a, b in zip(one.lines, many.lines, strict=True):
            assert abs(b.cost - factor * a.cost) <= Decimal("0.02") * factor


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_order_of_readings_does_not_matter(seed: int) -> None:
    reg = station({"union": 1, "operator": 1}, "union")
    data = random_readings(reg, "c", seed)
    shuffled = {
        key: random.Random(seed).sample(points, len(points)) for key, points in data.items()
    }
    assert allocate(reg, "c", MONTH, data) == allocate(reg, "c", MONTH, shuffled)
