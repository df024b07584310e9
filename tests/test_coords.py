"""Coordinate conversions against points others have published (and against themselves)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waystation.coords import CRS, convert
from waystation.registry import Location

# (source, (lat, lon), target, (lat, lon), tolerance in degrees; 1e-9° is 0.1 mm)
PUBLISHED = [
    # eviltransform's test points: Shanghai, Shenzhen, Beijing, WGS-84 → GCJ-02
    ("wgs84", (31.1774276, 121.5272106), "gcj02", (31.17530398364597, 121.531541859215), 1e-9),
    ("wgs84", (22.543847, 113.912316), "gcj02", (22.540796131694766, 113.9171764808363), 1e-9),
    ("wgs84", (39.911954, 116.377817), "gcj02", (39.91334545536069, 116.38404722455657), 1e-9),
    # coordtransform's: Tiananmen area, each way between the three
    ("wgs84", (39.915, 116.404), "gcj02", (39.91640428150164, 116.41024449916938), 1e-9),
    ("gcj02", (39.915, 116.404), "bd09", (39.92133699351021, 116.41036949371029), 1e-9),
    ("bd09", (39.915, 116.404), "gcj02", (39.90865673957631, 116.39762729119315), 1e-9),
    # gcoord's (to 8 decimals; its GCJ-02 → WGS-84 is the one-step approximation)
    ("gcj02", (45.0, 123.0), "bd09", (45.00636899, 123.00636499), 1e-8),
    ("gcj02", (45.0, 123.0), "wgs84", (44.99804071, 122.99395597), 3e-7),
    # Gaode's own API for a WGS-84 point in Beijing (as a test of the R package quotes it)
    ("wgs84", (39.90734, 116.39089), "gcj02", (39.90874539, 116.39713623), 1e-5),
]  # fmt: skip


@pytest.mark.parametrize(("source", "point", "target", "expected", "tol"), PUBLISHED)
def test_published_points(
    source: CRS,
    point: tuple[float, float],
    target: CRS,
    expected: tuple[float, float],
    tol: float,
) -> None:
    lat, lon = convert(*point, source, target)
    assert lat == pytest.approx(expected[0], abs=tol)
    assert lon == pytest.approx(expected[1], abs=tol)


def test_outside_china_gcj_is_wgs() -> None:
    assert convert(48.8566, 2.3522, "wgs84", "gcj02") == (48.8566, 2.3522)  # Paris


@given(st.floats(18.0, 53.0), st.floats(74.0, 134.0), st.sampled_from(["gcj02", "bd09"]))
def test_round_trips(lat: float, lon: float, crs: CRS) -> None:
    """GCJ-02 is inverted to 0.1 mm; Baidu's own inverse of BD-09 to some 20 cm."""
    back = convert(*convert(lat, lon, "wgs84", crs), crs, "wgs84")
    assert back == pytest.approx((lat, lon), abs=1e-9 if crs == "gcj02" else 2e-6)


def test_a_gaode_point_in_dachuan_lands_where_it_was_picked() -> None:
    """A point picked on Gaode's map is hundreds of metres off as WGS-84, and not once converted."""
    picked = Location(lat=31.2096, lon=107.4680, crs="gcj02")  # Dazhou, Dachuan district
    assert picked.to("gcj02") == (31.2096, 107.468)
    lat, lon = picked.to("wgs84")
    assert 0.002 < abs(lat - 31.2096) + abs(lon - 107.468) < 0.01
    assert Location(lat=lat, lon=lon).to("gcj02") == pytest.approx((31.2096, 107.468), abs=1e-9)
