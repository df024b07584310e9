"""A month through the real pipeline, then `waystation report`: the files finance opens.

Two simulated stations backfill the previous month (plus a few days either side)
through Mosquitto and ingest into InfluxDB; the report is then made by the CLI,
read back with the csv module and openpyxl, and checked against the raw readings.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import yaml

from app.cli import main
from app.localservers import InfluxServer
from ingest.worker import IngestConfig, IngestWorker
from rules.allocation.capitals import yuan_capitals
from rules.allocation.report import month_window, previous_month
from tests.allocation_helpers import (
    PARTIES,
    backfill_month,
    days_of_history,
    own_tariff_dir,
    station_entry,
    two_station_district,
)
from tests.helpers import wait_for
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

D = Decimal


def interpolate(store: InfluxStore, device: str, at_ms: int) -> float:
    """The main meter's register at `at_ms`, from the raw readings either side."""
    q = 'SELECT {f}("energy_kwh_total") FROM "meter" WHERE "device" = \'{d}\' AND time {op} {t}ms'
    [before] = store.query(q.format(f="last", d=device, op="<", t=at_ms))
    [after] = store.query(q.format(f="first", d=device, op=">=", t=at_ms))
    (t0, v0), (t1, v1) = before.values[0], after.values[0]
    return float(v0 + (v1 - v0) * (at_ms - t0) / (t1 - t0))


def report(tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, *args: str) -> int:
    return main([
        "report", "--registry", str(tmp_path / "stations.yaml"), "--influx", influxdb.url,
        "--database", store.database, "--out", str(tmp_path / "out"), *args,
    ])  # fmt: skip


def check_workbook(
    path: Path, rows: list[dict[str, str]], csv_total: Decimal, stations: list[str]
) -> None:
    """The XLSX agrees with the CSV: summary by party, union saving, statements, lines."""
    book = openpyxl.load_workbook(path)
    # A clean simulated month: no reset, gap, spike or estimate to report.
    assert list(book["数据说明"].iter_rows(min_row=3, values_only=True)) == []
    statements = [f"对账单 {PARTIES[p]['name']}" for p in ("xiaoge", "dachuan-union", "cuiping")]
    assert sorted(book.sheetnames) == sorted(["汇总", *statements, "明细", "数据说明", "服务水平"])
    # The month's scorecard rides along: a row per station and service, then per operator.
    levels = list(book["服务水平"].iter_rows(min_row=3, values_only=True))
    assert {r[1] for r in levels} == {*stations, "*"}
    summary = {r[0]: r for r in book["汇总"].iter_rows(min_row=3, values_only=True) if r[0]}
    assert D(str(summary["合计"][5])) == csv_total
    union_cost = sum(D(r["cost_cny"]) for r in rows if r["party"] == "dachuan-union")
    assert D(str(summary["工会节省(元)"][5])) == csv_total - union_cost
    for party in ("xiaoge", "cuiping", "dachuan-union"):
        party_csv = sum((D(r["cost_cny"]) for r in rows if r["party"] == party), D(0))
        assert D(str(summary[party][5])).quantize(D("0.01")) == party_csv
        sheet = book[f"对账单 {PARTIES[party]['name']}"]
        cells = {r[0]: r for r in sheet.iter_rows(values_only=True) if r[0]}
        assert D(str(cells["合计金额(小写)"][6])).quantize(D("0.01")) == party_csv
        assert cells["合计金额(大写)"][1] == yuan_capitals(party_csv)
    lines = list(book["明细"].iter_rows(min_row=3, values_only=True))
    assert {r[0] for r in lines[:-1]} == set(stations)
    assert len(lines) - 1 == len(rows)


def check_one_station(
    tmp_path: Path,
    influxdb: InfluxServer,
    store: InfluxStore,
    month: date,
    station: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--station`: its own files; the district's are left as they were."""
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    tariffs = str(tmp_path / "tariffs")
    assert report(tmp_path, influxdb, store, "--month", f"{month:%Y-%m}", "--tariffs", tariffs,
                  "--station", station, "--no-influx") == 0  # fmt: skip
    capsys.readouterr()
    one = out / f"allocation-{month:%Y-%m}-{station}.csv"
    rows = list(csv.DictReader(one.read_text("utf-8-sig").splitlines()))
    assert {r["station"] for r in rows} == {station}
    assert (out / f"allocation-{month:%Y-%m}-{station}.xlsx").exists()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before


def check_example_prices(
    tmp_path: Path,
    influxdb: InfluxServer,
    store: InfluxStore,
    month: date,
    rows: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipped tariff: the same month at example prices, loudly, and marked as such."""
    examples = tmp_path / "examples"
    assert main(["report", "--registry", str(tmp_path / "stations.yaml"), "--influx", influxdb.url,
                 "--database", store.database, "--out", str(examples),
                 "--month", f"{month:%Y-%m}"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.err.count("tariff sichuan-general-commercial holds EXAMPLE prices") == 2
    assert "警告 WARNING: 电价 sichuan-general-commercial 是示例价格" in captured.err
    assert "示例价格：不是正式账单" in captured.out
    text = (examples / f"allocation-{month:%Y-%m}.csv").read_text("utf-8-sig")
    marked = list(csv.DictReader(text.splitlines()))
    assert len(marked) == rows
    assert all(r["notes"].split(";")[0] == "example_prices" for r in marked)
    book = openpyxl.load_workbook(examples / f"allocation-{month:%Y-%m}.xlsx")
    assert book.properties.title == "示例价格：不是正式账单"
    summary = [str(r[0]) for r in book["汇总"].iter_rows(values_only=True) if r[0]]
    assert summary[-1] == "示例价格：不是正式账单"
    for name in book.sheetnames:  # each statement says it too, printed on its own
        if name.startswith("对账单"):
            assert "示例价格：不是正式账单" in [
                r[0] for r in book[name].iter_rows(values_only=True)
            ]
    # Kept out of InfluxDB, where Grafana would show them as the month's costs.
    [count] = store.query('SELECT count("cost") FROM "allocation"')
    assert count.values[0][1] == rows


def test_a_month_through_the_pipeline_to_csv_xlsx_and_influxdb(
    mqtt_settings: MqttSettings,
    store: InfluxStore,
    influxdb: InfluxServer,
    uid: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ent, com = f"e{uid}", f"c{uid}"
    data = two_station_district(ent, com)
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    registry = parse_registry(data)
    now = datetime.now(UTC)
    month = previous_month(now.date())
    tz = registry.station_timezone(ent)
    window = month_window(month, tz)
    days = days_of_history(window, now)

    ingest = IngestConfig(client_id=f"ingest-{uid}", topic_filter="stations/+/+/+")
    with IngestWorker(mqtt_settings, store, registry, ingest) as worker:
        assert worker.wait_subscribed()
        published = sum(
            backfill_month(registry, station, mqtt_settings, tmp_path / f"{station}.db", days)
            for station in (ent, com)
        )
        wait_for(lambda: worker.stats.points_written >= published, "ingest to catch up", 60)
    tariffs = str(own_tariff_dir(tmp_path / "tariffs"))
    assert report(tmp_path, influxdb, store, "--month", f"{month:%Y-%m}", "--tariffs", tariffs) == 0
    captured = capsys.readouterr()
    assert "工会节省" in captured.out
    assert "示例价格" not in captured.out + captured.err  # the operator's own prices

    csv_path = tmp_path / "out" / f"allocation-{month:%Y-%m}.csv"
    xlsx_path = tmp_path / "out" / f"allocation-{month:%Y-%m}.xlsx"
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0].keys() >= {"station", "party_name", "cost_cny", "share_percent"}
    by = {(r["station"], r["party"], r["utility"]): r for r in rows}
    # Enterprise-incubated: the enterprise pays both utilities; community: two parties each.
    assert set(by) == {
        (ent, "xiaoge", "electricity"),
        (ent, "xiaoge", "water"),
        (com, "dachuan-union", "electricity"),
        (com, "cuiping", "electricity"),
        (com, "dachuan-union", "water"),
        (com, "cuiping", "water"),
    }
    # The enterprise's electricity is its main meter between the interpolated boundaries.
    expected_kwh = interpolate(store, f"{ent}-meter", window.end_ms) - interpolate(
        store, f"{ent}-meter", window.start_ms
    )
    got_kwh = float(by[(ent, "xiaoge", "electricity")]["quantity"])
    # Exactly, to the export's 0.001 kWh: each reading is placed at its own time.
    assert got_kwh == pytest.approx(expected_kwh, abs=0.0006)
    assert expected_kwh > 100  # a month of a simulated station's use, not nothing
    # Time-of-use parts add up to the quantity.
    row = by[(ent, "xiaoge", "electricity")]
    tou = sum(D(row[k]) for k in row if k.endswith("_kwh") and row[k])
    assert abs(tou - D(row["quantity"])) <= D("0.004")

    csv_total = sum((D(r["cost_cny"]) for r in rows), D(0))
    check_workbook(xlsx_path, rows, csv_total, [com, ent])

    # What went to InfluxDB is the same.
    [series] = store.query('SELECT sum("cost") FROM "allocation"')
    assert D(str(series.values[0][1])).quantize(D("0.01")) == csv_total

    # A re-run writes identical files.
    before = csv_path.read_bytes(), xlsx_path.read_bytes()
    time.sleep(1.1)  # a later second: the files must not carry the time they were written
    assert report(tmp_path, influxdb, store, "--month", f"{month:%Y-%m}", "--tariffs", tariffs) == 0
    assert (csv_path.read_bytes(), xlsx_path.read_bytes()) == before
    [count] = store.query('SELECT count("cost") FROM "allocation"')
    assert count.values[0][1] == len(rows)  # overwritten, not doubled

    check_one_station(tmp_path, influxdb, store, month, ent, capsys)
    check_example_prices(tmp_path, influxdb, store, month, len(rows), capsys)
    [series] = store.query('SELECT sum("cost") FROM "allocation"')
    assert D(str(series.values[0][1])).quantize(D("0.01")) == csv_total


def test_report_refuses_clearly(
    tmp_path: Path,
    influxdb: InfluxServer,
    store: InfluxStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = station_entry("x", "industry_managed")
    del entry["operator"]
    data: dict[str, object] = {"version": 1, "stations": {"x": entry}}
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    assert report(tmp_path, influxdb, store, "--month", "2026-01") == 2
    assert "names no parties" in capsys.readouterr().err

    data["parties"] = PARTIES
    entry["operator"] = "sanitation-union"
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    assert report(tmp_path, influxdb, store, "--month", "2026-13") == 2
    assert "not a month like 2026-10" in capsys.readouterr().err
    assert report(tmp_path, influxdb, store, "--month", "2999-01") == 2
    assert "is not over yet" in capsys.readouterr().err
    assert report(tmp_path, influxdb, store, "--month", "2026-01", "--station", "nope") == 2
    assert "not in the registry: nope" in capsys.readouterr().err
    assert report(tmp_path, influxdb, store, "--month", "2023-01") == 2
    assert "no version for 2023-01" in capsys.readouterr().err

    # A month without a single reading (here: an empty database) is not a ¥0.00 bill.
    assert report(tmp_path, influxdb, store, "--month", "2026-01") == 1
    err = capsys.readouterr().err
    assert f"no readings at all for 2026-01 at 1 station(s) in database {store.database!r}" in err
    assert "nothing to bill, no file written" in err
    assert "没有 2026-01 的任何读数" in err
    assert not (tmp_path / "out").exists()

    # A tariff the registry names but nobody gave: refused at start, before any query.
    data["tariff"] = "dazhou-2026"
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    assert report(tmp_path, influxdb, store, "--month", "2026-01") == 2
    err = capsys.readouterr().err
    assert "stations.yaml:36:9 tariff\n    电价 'dazhou-2026' 没有加载" in err
    assert "tariff 'dazhou-2026' is not loaded: the shipped example tariffs" in err
    assert "give its file with --tariffs FILE|DIR (or WAYSTATION_TARIFFS)" in err
