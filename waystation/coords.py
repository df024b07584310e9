"""Map coordinates in China: WGS-84 (GPS), GCJ-02 (Gaode/AutoNavi, Tencent) and BD-09 (Baidu).

A position copied from Gaode's map is GCJ-02 and from Baidu's is BD-09; put
on WGS-84 tiles (OpenStreetMap, Grafana's default) either lands hundreds of
metres off, and a GPS position on Gaode's tiles likewise. A station's
`location` says which system it is in (`crs`); `convert` turns it into what
the map's tiles expect.

GCJ-02 is the state-mandated offset of WGS-84 inside China (outside it, the
two are the same); its published forward formula has no closed inverse, so
GCJ-02 → WGS-84 is solved by iteration to well under a centimetre. BD-09 is
Baidu's further offset of GCJ-02, and its inverse is Baidu's own formula.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["CRS", "convert", "in_china"]

CRS = Literal["wgs84", "gcj02", "bd09"]

_A = 6378245.0  # Krasovsky 1940's semi-major axis, which GCJ-02 uses
_EE = 0.00669342162296594323  # and its first eccentricity squared
_BD = math.pi * 3000.0 / 180.0
_ITERATIONS = 30
_TOLERANCE_DEG = 1e-10  # about 0.01 mm


def in_china(lat: float, lon: float) -> bool:
    """The rough box in which GCJ-02 differs from WGS-84 (the formula's own bounds)."""
    return 0.8293 <= lat <= 55.8271 and 72.004 <= lon <= 137.8347


def _shift(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 minus WGS-84 at a WGS-84 point, in degrees (lat, lon)."""
    x, y = lon - 105.0, lat - 35.0
    waves = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += waves
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += waves
    d_lon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    d_lon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    d_lat = d_lat * 180.0 / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    d_lon = d_lon * 180.0 / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return d_lat, d_lon


def _wgs_to_gcj(lat: float, lon: float) -> tuple[float, float]:
    if not in_china(lat, lon):
        return lat, lon
    d_lat, d_lon = _shift(lat, lon)
    return lat + d_lat, lon + d_lon


def _gcj_to_wgs(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 is (lat, lon), by fixed-point iteration."""
    if not in_china(lat, lon):
        return lat, lon
    w_lat, w_lon = lat, lon
    for _ in range(_ITERATIONS):
        g_lat, g_lon = _wgs_to_gcj(w_lat, w_lon)
        e_lat, e_lon = g_lat - lat, g_lon - lon
        w_lat, w_lon = w_lat - e_lat, w_lon - e_lon
        if abs(e_lat) < _TOLERANCE_DEG and abs(e_lon) < _TOLERANCE_DEG:
            break
    return w_lat, w_lon


def _gcj_to_bd(lat: float, lon: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _bd_to_gcj(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD)
    return z * math.sin(theta), z * math.cos(theta)


def convert(lat: float, lon: float, source: CRS, target: CRS) -> tuple[float, float]:
    """(lat, lon) in `source` as (lat, lon) in `target`, through GCJ-02."""
    if source == target:
        return lat, lon
    if source == "wgs84":
        lat, lon = _wgs_to_gcj(lat, lon)
    elif source == "bd09":
        lat, lon = _bd_to_gcj(lat, lon)
    if target == "wgs84":
        return _gcj_to_wgs(lat, lon)
    if target == "bd09":
        return _gcj_to_bd(lat, lon)
    return lat, lon
