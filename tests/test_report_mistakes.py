"""`waystation report` against an operator's mistakes, on a real InfluxDB.

A main meter drawing 3/2/1 kWh in each peak/flat/valley hour, read hourly:
October by hand is peak 744, flat 496, valley 248 kWh, ¥1,103.60 at the
example prices (see test_allocation_intervals).
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from app.cli import main
from app.localservers import InfluxServer
from rules.allocation.report import month_window
from tests.allocation_helpers import PARTIES, own_tariff_dir
from tests.allocation_intervals import SHANGHAI, Meter, by_period, months_span, write_readings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

OCT = date(2026, 10, 1)
HOURLY = timedelta(hours=1)


def meter_district(tmp_path: Path, *stations: str) -> Path:
    devices = {"kind": "meter", "utility": "electricity", "role": "main", "interval": "1h"}
    data = {
        "version": 1,
        "tariff": "sichuan-general-commercial",
        "parties": PARTIES,
        "stations": {
            s: {"name": f"驿站 {s}", "model": "enterprise_incubated", "operator": "xiaoge",
                "devices": {f"{s}-meter": devices}}
            for s in stations
        },
    }  # fmt: skip
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    own_tariff_dir(tmp_path / "tariffs")
    return path


def report(tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, *args: str) -> int:
    return main([
        "report", "--registry", str(tmp_path / "stations.yaml"), "--influx", influxdb.url,
        "--database", store.database, "--tariffs", str(tmp_path / "tariffs"), "--no-influx",
        "--month", "2026-10", *args,
    ])  # fmt: skip


def test_a_station_named_twice_is_billed_once(
    tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, uid: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    station = f"s{uid}"
    meter_district(tmp_path, station, f"o{uid}")
    meter = Meter(months_span(OCT, OCT), by_period)
    write_readings(store, meter.value, meter.span, f"{station}-meter", HOURLY)
    out = tmp_path / "out"
    assert report(tmp_path, influxdb, store, "--station", station, "--station", station,
                  "--out", str(out)) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "1 stations, total ¥1103.60" in printed
    [csv_path] = out.glob("*.csv")
    rows = list(csv.DictReader(csv_path.read_text("utf-8-sig").splitlines()))
    assert [(r["站点编号 station"], Decimal(r["费用(元) cost_cny"])) for r in rows] == [
        (station, Decimal("1103.60"))
    ]


def test_readings_only_after_the_month_are_no_bill(
    tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, uid: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Installed on Nov 1, October run: not a ¥0.00 bill with exit 0."""
    station = f"s{uid}"
    meter_district(tmp_path, station)
    meter = Meter(months_span(OCT, OCT), by_period)
    after = (month_window(OCT, SHANGHAI).end_ms, meter.span[1])
    write_readings(store, meter.value, after, f"{station}-meter", HOURLY)
    out = tmp_path / "out"
    assert report(tmp_path, influxdb, store, "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "no readings at all for 2026-10 at 1 station(s)" in err
    assert "nothing to bill, no file written" in err
    assert not out.exists()


def test_out_naming_a_file_is_refused_before_the_work(
    tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, uid: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    meter_district(tmp_path, f"s{uid}")
    afile = tmp_path / "afile"
    afile.write_text("keep me", "utf-8")
    with pytest.raises(SystemExit) as exited:
        report(tmp_path, influxdb, store, "--out", str(afile))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --out: {afile}: 不是目录" in err
    assert "is a file, not a directory" in err
    assert "不是目录" in err
    assert "Traceback" not in err
    assert afile.read_text("utf-8") == "keep me"
