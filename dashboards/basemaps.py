"""The district map's tile sources, and the coordinate system each one draws in.

Grafana's default basemap (CARTO) and OpenStreetMap's tiles are WGS-84 and
often slow or unreachable from mainland China. Gaode's (AutoNavi) road map
loads there, but it is drawn in GCJ-02, so the map places stations by their
GCJ-02 position (`lat_gcj02`/`lon_gcj02` of `station_info`); putting WGS-84
points on it would land them hundreds of metres off. A tile server of your
own is `xyz` with its URL and its coordinate system.
"""

from __future__ import annotations

from dataclasses import dataclass

from waystation.coords import CRS

__all__ = ["BASEMAPS", "Basemap", "custom"]


@dataclass(frozen=True)
class Basemap:
    name: str
    layer: str  # Grafana's geomap basemap layer type
    crs: CRS
    url: str | None = None
    attribution: str | None = None

    @property
    def config(self) -> dict[str, str]:
        if self.url is None:
            return {}
        return {"url": self.url, "attribution": self.attribution or ""}


BASEMAPS = {
    "gaode": Basemap(
        "gaode",
        "xyz",
        "gcj02",
        "https://webrd01.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}",
        "© 高德地图 AutoNavi",
    ),
    "osm": Basemap("osm", "osm-standard", "wgs84"),
    "default": Basemap("default", "default", "wgs84"),
}


def custom(url: str, crs: CRS) -> Basemap:
    """Tiles from a server of your own (`{x}`, `{y}`, `{z}` in the URL) drawn in `crs`."""
    return Basemap("xyz", "xyz", crs, url, "")
