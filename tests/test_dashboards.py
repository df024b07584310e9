"""The dashboards: committed JSON equals what the code generates, and every query returns rows.

Grafana cannot run here, so the dashboards are proven the way Grafana would
use them: each panel's, annotation's and variable's InfluxQL, with Grafana's
macros expanded ($timeFilter, $__interval, the template variables), is run
against the real InfluxDB after simulated stations went through the whole
pipeline (edge agents backfilling history, ingest, the rules service, the
monthly report).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.scorecard import registers_of
from dashboards.basemaps import BASEMAPS
from dashboards.boards import DASHBOARDS, BoardOptions
from dashboards.generate import JSON_DIR, render
from edge.agent import EdgeAgent
from edge.config import AgentConfig
from ingest.worker import IngestConfig, IngestWorker
from rules.allocation.report import month_window, previous_month, run_report, write_allocation
from rules.allocation.tariff import shipped_tariffs
from rules.outage.config import RulesConfig, Thresholds
from rules.outage.service import RulesService
from rules.servicelevel.command import ScorecardJob
from rules.servicelevel.definitions import Definitions
from tests.allocation_helpers import (
    backfill_month,
    days_of_history,
    two_station_district,
)
from tests.helpers import MqttSpy, wait_for
from waystation.lineprotocol import encode_line
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_committed_json_is_what_the_code_generates(name: str) -> None:
    committed = (JSON_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert committed == render(name), (
        f"dashboards/json/{name}.json is stale: run `./dev waystation dashboards build`"
    )


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, InfluxQL) of every panel target, annotation and query variable."""
    out = [
        (f"panel {p['title']!r}", t["query"])
        for p in board["panels"]
        for t in p.get("targets") or []
    ]
    out += [(f"annotation {a['name']!r}", a["query"]) for a in board["annotations"]["list"]]
    out += [
        (f"variable {v['name']!r}", v["query"])
        for v in board["templating"]["list"]
        if v["type"] == "query"
    ]
    return out


def time_range(board: dict[str, Any], now: datetime) -> tuple[int, int]:
    start = board["time"]["from"]
    if start == "now/d":
        begin = now.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        m = re.fullmatch(r"now-(\d+)([hd])", start)
        assert m, start
        begin = now - timedelta(**{"hours" if m[2] == "h" else "days": int(m[1])})
    return int(begin.timestamp() * 1000), int(now.timestamp() * 1000)


def expand(
    query: str, span: tuple[int, int], variables: dict[str, list[str]], zone: str = "Asia/Shanghai"
) -> str:
    """Grafana's macros as its InfluxDB data source expands them ($tz: a constant, as it is)."""
    start, end = span
    query = query.replace("$tz", zone)
    interval_s = max(60, (end - start) // 1000 // 1000)  # about 1,000 points, at least 1m
    query = query.replace("$timeFilter", f"time >= {start}ms and time <= {end}ms")
    query = query.replace("$__interval", f"{interval_s}s")
    for name, values in variables.items():
        # A multi-value variable in a regex becomes (a|b|c).
        query = query.replace(f"${name}", "(" + "|".join(re.escape(v) for v in values) + ")")
    return query


def _stored(store: InfluxStore, measurement: str, field: str, device: str | None = None) -> Any:
    """The last value of a field (of one device), None before it is written."""
    where = f""" WHERE "device" = '{device}'""" if device else ""
    series = store.query(f'SELECT last("{field}") FROM "{measurement}"{where}')
    return series[0].values[0][1] if series else None


@pytest.mark.integration
def test_every_query_returns_rows_after_the_pipeline(
    mqtt_settings: MqttSettings, store: InfluxStore, uid: str, tmp_path: Path
) -> None:
    ent, com = f"e{uid}", f"c{uid}"
    data = two_station_district(ent, com)
    registry = parse_registry(data)
    now = datetime.now(UTC)
    month = previous_month(now.date())
    window = month_window(month, registry.station_timezone(ent))
    days = days_of_history(window, now)

    rules_config = RulesConfig(thresholds=Thresholds(station_window=timedelta(seconds=1)))
    ingest = IngestConfig(client_id=f"ingest-{uid}", topic_filter="stations/+/+/+")
    rules = RulesService(
        mqtt_settings, registry, rules_config, tmp_path / "rules.db", store=store,
        client_id=f"rules-{uid}",
    )  # fmt: skip
    with IngestWorker(mqtt_settings, store, registry, ingest) as worker, rules:
        assert worker.wait_subscribed()
        published = sum(
            backfill_month(registry, s, mqtt_settings, tmp_path / f"{s}.db", days)
            for s in (ent, com)
        )
        # A live agent of one station, stopped: its status goes offline and the rules alert.
        config = AgentConfig.from_registry(
            registry, com, outbox=tmp_path / "live.db", interval=timedelta(seconds=0.5)
        )
        with EdgeAgent(config, mqtt_settings):
            wait_for(lambda: rules.obs.devices[f"{com}-gw"].last_seen_ms > rules.started_ms,
                     "the live agent seen by the rules")  # fmt: skip
        with MqttSpy(mqtt_settings, f"bad-{uid}", []) as spy:
            spy.publish(f"stations/{ent}/{ent}-door/telemetry", b"{not json")  # a dead letter
        wait_for(lambda: any(a.rule == "station_down" and a.state.value == "firing"
                             for a in rules.book.alerts.values()), "the station alert")  # fmt: skip
        wait_for(lambda: worker.stats.points_written >= published + 1, "ingest to catch up", 60)
        wait_for(
            lambda: (_stored(store, "deadletter", "count") or 0) > 0, "the dead letter's count"
        )
        wait_for(lambda: _stored(store, "device_status", "online", f"{com}-gw") == 0,
                 "the stopped agent's offline status")  # fmt: skip
    report = run_report(registry, shipped_tariffs(), store, month)
    assert write_allocation(store, report, registry) > 0
    scorecard = ScorecardJob(registry, store, tmp_path / "reports", Definitions())
    scorecard.run(month, usage=registers_of(report))  # the usage beside the levels too

    variables = {
        "station": [ent, com],
        "device": [f"{ent}-meter", f"{ent}-disp", f"{com}-door"],
    }
    empty = []
    now = datetime.now(UTC)
    for name in sorted(DASHBOARDS):
        board = json.loads(render(name))
        span = time_range(board, now)
        for where, query in queries(board):
            expanded = expand(query, span, variables)
            result = store.query(expanded)
            if not any(series.values for series in result):
                empty.append(f"{name}: {where}: {expanded}")
    assert empty == [], "queries without rows:\n" + "\n".join(empty)


def _cost_by_party(board: dict[str, Any]) -> str:
    [query] = [t["query"] for p in board["panels"] if p["title"].startswith("各方费用")
               for t in p["targets"]]  # fmt: skip
    return str(query)


def _local_ms(day: str, zone: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


@pytest.mark.integration
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Urumqi"])
def test_a_months_allocation_lands_in_its_month(store: InfluxStore, uid: str, zone: str) -> None:
    """October's allocation, stamped at its local start (09-30 16:00 UTC), is October's bar.

    Grouped by UTC days, as before `tz()`, it fell on 30 September: checked too.
    """
    station = f"s{uid}"
    months = ["2026-10-01", "2026-11-01"]
    lines = [
        encode_line("allocation", {"station": station, "party": party, "utility": "electricity"},
                    {"cost": cost}, _local_ms(month, zone))
        for month in months for party, cost in (("xiaoge", 120.5), ("cuiping", 30.25))
    ]  # fmt: skip
    store.write_lines(lines)
    board = json.loads(render("utilities", BoardOptions(timezone=zone)))
    assert board["timezone"] == zone
    span = (_local_ms("2026-09-20", zone), _local_ms("2026-11-20", zone))
    query = expand(_cost_by_party(board), span, {"station": [station]}, zone)
    assert query.endswith(f" tz('{zone}')")

    def bars(q: str) -> dict[str, list[int]]:
        return {
            str(s.tags.get("party")): [int(t) for t, v in s.values if v is not None]
            for s in store.query(q)
        }

    local = [_local_ms(m, zone) for m in months]
    assert bars(query) == {"xiaoge": local, "cuiping": local}
    utc_days = bars(query.removesuffix(f" tz('{zone}')"))
    assert utc_days["xiaoge"] != local  # the "October lands on 09-30", without tz()
    assert all(t < m for t, m in zip(utc_days["xiaoge"], local, strict=True))


@pytest.mark.integration
def test_station_picker_shows_names_and_the_map_uses_the_tiles_coordinates(
    store: InfluxStore, uid: str
) -> None:
    """The picker's `id|name` values split by its regex; the map reads GCJ-02 for Gaode's tiles."""
    station = f"s{uid}"
    fields: dict[str, str | float] = {"name": "达川·骑手家园 1 号", "label": f"{station}|达川·骑手家园 1 号",
              "lat": 31.2, "lon": 107.5, "lat_gcj02": 31.198, "lon_gcj02": 107.504}  # fmt: skip
    store.write_lines([encode_line("station_info", {"station": station}, fields,
                                   int(datetime.now(UTC).timestamp() * 1000))])  # fmt: skip
    gaode = json.loads(render("overview"))
    [picker] = [v for v in gaode["templating"]["list"] if v["name"] == "station"]
    labels = [v for s in store.query(picker["query"]) for _, v in s.values]
    assert f"{station}|达川·骑手家园 1 号" in labels
    # Grafana's regex with named groups: `value` is what queries match, `text` what is shown.
    regex = re.compile(picker["regex"].strip("/").replace("(?<", "(?P<"))
    m = regex.match(f"{station}|达川·骑手家园 1 号")
    assert m is not None
    assert (m["value"], m["text"]) == (station, "达川·骑手家园 1 号")
    for basemap, lat in ((BASEMAPS["gaode"], 31.198), (BASEMAPS["osm"], 31.2)):
        board = json.loads(render("overview", BoardOptions(basemap=basemap)))
        [panel] = [p for p in board["panels"] if p["type"] == "geomap"]
        assert panel["options"]["basemap"]["type"] == basemap.layer
        query = panel["targets"][0]["query"]
        got = [row for s in store.query(query) if s.tags.get("station") == station
               for row in s.values]  # fmt: skip
        assert got[0][1] == lat
