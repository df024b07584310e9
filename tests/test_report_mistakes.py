"""`waystation report` against an operator's mistakes, on a real InfluxDB.

A main meter drawing 3/2/1 kWh in each peak/flat/valley hour, read hourly:
October by hand is peak 744, flat 496, valley 248 kWh, ¥1,103.60 at the
example prices (see test_allocation_intervals).
"""

from __future__ import annotations

import csv
import socket
import sys
import threading
from collections.abc import Iterator
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
from tests.helpers import interrupted
from waystation.store import InfluxStore

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


@pytest.mark.integration
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
    assert "1 个站点，合计 ¥1,103.60" in printed  # the registry speaks zh
    [csv_path] = out.glob("allocation-*.csv")
    rows = list(csv.DictReader(csv_path.read_text("utf-8-sig").splitlines()))
    assert [(r["station"], Decimal(r["cost_cny"])) for r in rows] == [(station, Decimal("1103.60"))]
    # The month's service levels beside it, named after the one station too.
    assert [p.name for p in out.glob("service-*.csv")] == [f"service-2026-10-{station}.csv"]
    # The bill alone when asked: the same bill, no scorecard.
    alone = tmp_path / "alone"
    assert report(tmp_path, influxdb, store, "--station", station, "--out", str(alone),
                  "--no-service-levels") == 0  # fmt: skip
    [bill] = alone.glob("allocation-*.csv")
    assert bill.read_bytes() == csv_path.read_bytes()
    assert list(alone.glob("service-*.csv")) == []


@pytest.mark.integration
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


@pytest.mark.integration
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


class HungServer:
    """Accepts connections and never answers, as a wedged InfluxDB does."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def hung() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


def test_ctrl_c_stops_a_report_waiting_on_a_hung_server(tmp_path: Path, hung: HungServer) -> None:
    """Each query waits up to 5 minutes; Ctrl-C used to wait for them all, then exit 0."""
    meter_district(tmp_path, "s-a")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "app.cli", "report", "--registry", str(tmp_path / "stations.yaml"),
            "--influx", f"http://127.0.0.1:{hung.port}", "--database", "db",
            "--tariffs", str(tmp_path / "tariffs"), "--month", "2026-10", "--out", str(out)]  # fmt: skip
    code, text = interrupted(argv, tmp_path / "stderr.txt", lambda: len(hung.accepted) >= 2,
                             "the report's queries in flight", exit_within_s=20)  # fmt: skip
    assert code == 130
    assert "interrupted, nothing written" in text
    assert "已中断，未写任何文件" in text
    assert "Traceback" not in text
    assert not out.exists()


SCORECARD_READ = """
import sys
from rules.servicelevel.definitions import Definitions
from rules.servicelevel.source import read_month
from tests.helpers import station_registry
from waystation.store import InfluxStore

read_month(InfluxStore(sys.argv[1], "db"), station_registry("s-a"), Definitions(),
           0, 30 * 86_400_000, now_ms=30 * 86_400_000)
"""


def test_ctrl_c_stops_the_scorecard_waiting_on_a_hung_server(
    tmp_path: Path, hung: HungServer
) -> None:
    """The scorecard's queries ran on an executor, which waits at exit for those in flight."""
    argv = [sys.executable, "-c", SCORECARD_READ, f"http://127.0.0.1:{hung.port}"]
    code, text = interrupted(argv, tmp_path / "stderr.txt", lambda: len(hung.accepted) >= 2,
                             "the scorecard's queries in flight", exit_within_s=20)  # fmt: skip
    assert code != 0
    assert "KeyboardInterrupt" in text
