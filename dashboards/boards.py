"""The five dashboards: district overview, station detail, device health, alerts, utilities.

Queries read what the services write (SPEC §5): a measurement per device
kind, `device_status`, `event`, `alert`, `allocation`, `service_level` (the
monthly scorecard), and `station_info`
(the rules service's hourly copy of the registry's names and positions) and
`deadletter` (ingest's refused messages). Cumulative registers become rates
with `non_negative_difference`, so a counter reset shows as a gap, not a dip.

About 400 lines on purpose: five builder functions that share the panel and
query helpers above them, read best side by side (each is what one
dashboard shows, top to bottom).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.builders import (
    common,
    geomap,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import (
    dashboard as db,
)
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import geomap as geomap_model

from dashboards.basemaps import BASEMAPS, Basemap
from dashboards.influxql import DATASOURCE, AnnotationInfluxQL, InfluxQL

__all__ = ["DASHBOARDS", "BoardOptions"]

STATION = '"station" =~ /^$station$/'
# The station picker's values `id|name`: the id is what queries match, the name what is shown.
STATION_LABEL = "/^(?<value>[^|]+)\\|(?<text>.*)$/"
# Days, months and "today" begin at local midnight: every GROUP BY time() is in the zone.
TZ = " tz('$tz')"
DEVICE = '"device" =~ /^$device$/'
REGISTERS = "/^(door_counter|water_dispenser|charging_locker|meter|gateway)$/"


@dataclass(frozen=True)
class BoardOptions:
    """What a district sets: its time zone (the registry's) and the map's tiles."""

    timezone: str = "Asia/Shanghai"
    basemap: Basemap = BASEMAPS["gaode"]


def _datasource() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("InfluxDB").type("influxdb")


def _stations() -> db.QueryVariable:
    return (
        db.QueryVariable("station")
        .label("驿站 station")
        .datasource(DATASOURCE)
        # Shown by name, chosen by id: station_info's `label` is `id|name`.
        .query(
            'SELECT last("label") FROM "station_info" WHERE time > now() - 7d GROUP BY "station"'
        )
        .regex(STATION_LABEL)
        .multi(True)
        .include_all(True)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def _devices() -> db.QueryVariable:
    return (
        db.QueryVariable("device")
        .label("设备 device")
        .datasource(DATASOURCE)
        .query(f'SHOW TAG VALUES FROM {REGISTERS} WITH KEY = "device" WHERE {STATION}')
        .multi(True)
        .include_all(True)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def _alerts_annotation() -> AnnotationInfluxQL:
    return AnnotationInfluxQL(
        "告警 alerts",
        'SELECT "message", "state", "rule" FROM "alert" WHERE $timeFilter',
    )


def _board(
    uid: str, title: str, opts: BoardOptions, *, tags: list[str], time_from: str = "now-24h"
) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(["waystation", *tags])
        .timezone(opts.timezone)
        .time(time_from, "now")
        .refresh("1m")
        .editable()
        .with_variable(_datasource())
        .with_variable(db.ConstantVariable("tz").value(opts.timezone))
        .annotation(_alerts_annotation())
    )


def _legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(common_model.LegendDisplayMode.LIST)
        .placement(common_model.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def _timeseries() -> timeseries.Panel:
    return timeseries.Panel().legend(_legend())


def _table() -> table.Panel:
    return table.Panel().show_header(True)


def _series(title: str, query: str, unit: str, *, w: int = 12) -> timeseries.Panel:
    return (
        _timeseries()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query).alias("$tag_device"))
        .unit(unit)
        .height(8)
        .span(w)
    )


def _stat(title: str, query: str, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .title(title)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query))
        .unit(unit)
        .height(4)
        .span(4)
    )


def _spread_sum(field: str, measurement: str) -> str:
    """The total a cumulative register grew by in the time range, over the chosen stations."""
    return (
        f'SELECT sum("used") FROM (SELECT spread("{field}") AS "used" FROM "{measurement}" '
        f'WHERE $timeFilter AND {STATION} GROUP BY "device")'
    )


def _per_interval(field: str, measurement: str, where: str = STATION) -> str:
    return (
        f'SELECT non_negative_difference(last("{field}")) FROM "{measurement}" '
        f'WHERE $timeFilter AND {where} GROUP BY time($__interval), "device" fill(none){TZ}'
    )


def overview(opts: BoardOptions) -> db.Dashboard:
    # Stations where the tiles draw them: GCJ-02 positions on Gaode's, WGS-84 on the others.
    gcj = "_gcj02" if opts.basemap.crs == "gcj02" else ""
    board = _board("waystation-overview", "Waystation · 区域总览 district overview", opts,
                   tags=["overview"], time_from="now/d")  # fmt: skip
    board.with_variable(_stations())
    board.with_panel(
        geomap.Panel()
        .view(geomap.MapViewConfig().id("fit"))
        .basemap(
            common.MapLayerOptions()
            .type(opts.basemap.layer)
            .name("底图 basemap")
            .config(opts.basemap.config)
        )
        .tooltip(geomap.TooltipOptions().mode(geomap_model.TooltipMode.DETAILS))
        .layers(
            [
                common.MapLayerOptions()
                .type("markers")
                .name("stations")
                .location(
                    common.FrameGeometrySource()
                    .mode(common_model.FrameGeometrySourceMode.COORDS)
                    .latitude("lat")
                    .longitude("lon")
                )
                .tooltip(True)
            ]
        )
        .title("驿站地图 stations")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT last("lat{gcj}") AS "lat", last("lon{gcj}") AS "lon", '
                'last("name") AS "name" FROM "station_info" WHERE time > now() - 2h '
                'GROUP BY "station"'
            ).table()
        )
        .with_target(
            InfluxQL(
                'SELECT last("online") AS "online" FROM "device_status" '
                f'WHERE $timeFilter AND {STATION} GROUP BY "station"'
            )
            .ref_id("B")
            .table()
        )
        .transformations(
            [
                model.DataTransformerConfig(id_val="merge", options={}),
            ]
        )
        .height(12)
        .span(12)
    )
    board.with_panel(
        _stat(
            "在线设备 devices online",
            'SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "device_status" '
            f'WHERE $timeFilter AND {STATION} GROUP BY "device")',
        )
    )
    board.with_panel(_stat("今日到访 visits", _spread_sum("in_total", "door_counter")))
    board.with_panel(
        _stat("热水供应 hot water", _spread_sum("water_l_total", "water_dispenser"), "litre")
    )
    board.with_panel(
        _stat("充电 charging", _spread_sum("energy_kwh_total", "charging_locker"), "kwatth")
    )
    board.with_panel(
        _stat(
            "未解除告警 open alerts",
            'SELECT sum("active") FROM (SELECT last("active") AS "active" FROM "alert" '
            f'WHERE time > now() - 30d AND {STATION} GROUP BY "station", "device", "rule")',
        )
    )
    board.with_panel(_series("到访 visits", _per_interval("in_total", "door_counter"), "short"))
    board.with_panel(
        _series("热水 hot water", _per_interval("water_l_total", "water_dispenser"), "litre")
    )
    return board


def station(opts: BoardOptions) -> db.Dashboard:
    board = _board(
        "waystation-station", "Waystation · 驿站详情 station detail", opts, tags=["station"]
    )
    board.with_variable(_stations()).with_variable(_devices())
    board.with_panel(
        statetimeline.Panel()
        .merge_values(True)
        .title("设备状态 device status")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT last("online") FROM "device_status" WHERE $timeFilter AND '
                f'{STATION} GROUP BY time($__interval), "device" fill(previous){TZ}'
            ).alias("$tag_device")
        )
        .height(6)
        .span(24)
    )
    board.with_panel(
        _series(
            "饮水机水温 dispenser temperature",
            'SELECT mean("temp_c") FROM "water_dispenser" WHERE $timeFilter AND '
            f'{STATION} GROUP BY time($__interval), "device" fill(null){TZ}',
            "celsius",
        )
    )
    board.with_panel(_series("到访 visits", _per_interval("in_total", "door_counter"), "short"))
    board.with_panel(
        _series("热水 hot water", _per_interval("water_l_total", "water_dispenser"), "litre")
    )
    board.with_panel(
        _series(
            "充电柜占用 lockers in use",
            'SELECT last("slots_in_use") FROM "charging_locker" WHERE $timeFilter AND '
            f'{STATION} GROUP BY time($__interval), "device" fill(previous){TZ}',
            "short",
        )
    )
    board.with_panel(_series("用电 energy", _per_interval("energy_kwh_total", "meter"), "kwatth"))
    board.with_panel(
        _table()
        .title("最近读数 latest readings of $device")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f"SELECT * FROM {REGISTERS} WHERE $timeFilter AND {DEVICE} "
                "ORDER BY time DESC LIMIT 50"
            ).table()
        )
        .height(10)
        .span(24)
    )
    return board


def health(opts: BoardOptions) -> db.Dashboard:
    board = _board(
        "waystation-health", "Waystation · 设备健康 device health", opts, tags=["health"]
    )
    board.with_variable(_stations())
    board.with_panel(
        _table()
        .title("最后上报 last seen")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT last("seq") AS "seq" FROM {REGISTERS} WHERE $timeFilter AND {STATION} '
                'GROUP BY "station", "device"'
            ).table()
        )
        .height(10)
        .span(12)
    )
    board.with_panel(
        _series(
            "离线缓存 outbox depth",
            'SELECT max("outbox_depth") FROM "gateway" WHERE $timeFilter AND '
            f'{STATION} GROUP BY time($__interval), "device" fill(none){TZ}',
            "short",
        )
    )
    board.with_panel(
        _series(
            "缓存丢弃 outbox dropped",
            'SELECT max("outbox_dropped_total") FROM "gateway" WHERE $timeFilter AND '
            f'{STATION} GROUP BY time($__interval), "device" fill(none){TZ}',
            "short",
        )
    )
    board.with_panel(
        _timeseries()
        .title("死信 dead letters")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT sum("count") FROM "deadletter" WHERE $timeFilter '
                f'GROUP BY time($__interval), "code" fill(0){TZ}'
            ).alias("$tag_code")
        )
        .height(8)
        .span(12)
    )
    return board


def alerts(opts: BoardOptions) -> db.Dashboard:
    board = _board("waystation-alerts", "Waystation · 告警 alerts", opts, tags=["alerts"],
                   time_from="now-7d")  # fmt: skip
    board.with_variable(_stations())
    board.with_panel(
        _timeseries()
        .title("告警数 firing alerts")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT sum("active") FROM "alert" WHERE $timeFilter AND '
                f'{STATION} GROUP BY time($__interval), "rule" fill(none){TZ}'
            ).alias("$tag_rule")
        )
        .height(8)
        .span(24)
    )
    board.with_panel(
        _table()
        .title("告警历史 alert history")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT "state", "severity", "message" FROM "alert" WHERE $timeFilter AND '
                f'{STATION} GROUP BY "station", "device", "rule" ORDER BY time DESC LIMIT 500'
            ).table()
        )
        .height(12)
        .span(24)
    )
    return board


def utilities(opts: BoardOptions) -> db.Dashboard:
    board = _board("waystation-utilities", "Waystation · 水电与分摊 utilities & allocation", opts,
                   tags=["allocation"], time_from="now-90d")  # fmt: skip
    board.with_variable(_stations())
    board.with_panel(
        _series("用电 electricity", _per_interval("energy_kwh_total", "meter"), "kwatth")
    )
    board.with_panel(_series("用水 water", _per_interval("water_m3_total", "meter"), "m3"))
    for period, label in (("sharp", "尖峰"), ("peak", "峰"), ("flat", "平"), ("valley", "谷")):
        board.with_panel(
            _stat(
                f"{label} {period} kWh",
                f'SELECT sum("{period}_kwh") FROM "allocation" WHERE $timeFilter AND {STATION}',
                "kwatth",
            )
        )
    board.with_panel(
        _table()
        .title("月度分摊 monthly shares by party")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT "quantity", "cost", "share", "estimated_fraction" FROM "allocation" '
                f'WHERE $timeFilter AND {STATION} GROUP BY "station", "party", "utility"'
            ).table()
        )
        .height(12)
        .span(24)
    )
    board.with_panel(
        _timeseries()
        .title("各方费用 cost by party (CNY)")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT sum("cost") FROM "allocation" WHERE $timeFilter AND '
                f'{STATION} GROUP BY time(1d), "party" fill(none){TZ}'
            ).alias("$tag_party")
        )
        .unit("currencyCNY")
        .height(8)
        .span(24)
    )
    levels = (
        '"availability_pct", "outages", "down_minutes", "longest_minutes", "mttr_minutes", '
        '"usage", "usage_unit"'
    )
    board.with_panel(
        _table()
        .title("运营方服务水平 service levels by operator (monthly)")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT {levels}, "opening_minutes", "alerts" FROM "service_level" '
                'WHERE $timeFilter AND "station" = \'*\' GROUP BY "operator", "service"'
            ).table()
        )
        .height(10)
        .span(24)
    )
    board.with_panel(
        _table()
        .title("驿站服务水平 service levels by station (monthly)")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT {levels} FROM "service_level" WHERE $timeFilter AND {STATION} '
                'GROUP BY "station", "operator", "service"'
            ).table()
        )
        .height(12)
        .span(24)
    )
    return board


DASHBOARDS: dict[str, Callable[[BoardOptions], db.Dashboard]] = {
    "overview": overview,
    "station": station,
    "health": health,
    "alerts": alerts,
    "utilities": utilities,
}
