"""The service-level scorecard on a hand-worked month, written to a real InfluxDB.

October 2026 in Asia/Shanghai (31 days). Station `hw` is open 07:00-22:00
(15 h a day: 31 x 900 = 27,900 opening minutes), station `hw2` around the
clock (44,640 minutes); both run by `ent`. Every device reports every 5
minutes (timeout 15 minutes) from 09-30 to 11-02, except what follows, each
worked out by hand below:

hw, station (its gateway):
- 10-01: last reading before the month 09-30 23:00, next 10-01 08:00: the
  part inside the month is 00:00-08:00, open 07:00-08:00: 60 min.
- 10-03 10:00 -> 11:00: 60 min, all open.
- 10-03 12:00 -> 12:10: a 10-minute gap, under the timeout: nothing.
- 10-10 21:30 -> 10-11 07:30: one outage through the closed night, open
  21:30-22:00 and 07:00-07:30: 60 min.
- 10-20 23:00 -> 10-21 05:00: wholly while closed: no outage.
  => 3 outages, 180 min, longest 60, mean 60; 100 x (1 - 180/27900) = 99.35.
hw, hot_water (one dispenser):
- cold 10-05 09:00 (first below 80 °C) to 09:10 (first at or above): 10 min,
  shorter than dispenser_cold_for (20 min): nothing.
- cold 10-06 14:00 to 14:30: 30 min, counted whole.
- fault 10-08 21:30 to 23:00 (first reading without): open part 30 min.
  => 2 outages, 60 min, longest 30, mean 30; 100 x (1 - 60/27900) = 99.78.
hw, charging (two lockers; down only while both are):
- L1 faulty 10-12 10:00-12:00, L2 11:00-13:00: both 11:00-12:00, 60 min.
- L1 silent 10-15 09:00 -> 10:00 while L2 works: nothing.
  => 1 outage, 60 min; 99.78.
hw, visits: the door counter's last reading was in September: unreachable
all month => 1 outage of 27,900 min; 0.00.
hw2, station: 10-06 23:00 -> 10-07 01:00 (across a 72-hour query window's
edge) 120 min; 10-31 23:00 -> 11-01 01:00, inside the month 60 min.
  => 2 outages, 180 min, longest 120, mean 90; 100 x (1 - 180/44640) = 99.60.
ent, station: 72,540 opening min, 360 down, 5 outages, longest 120, mean 72;
100 x (1 - 360/72540) = 99.50. Alerts at ent's stations: three fired,
resolved after 35, 590 and 100 min: median 100.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from rules.servicelevel.command import ScorecardJob
from rules.servicelevel.definitions import Definitions, Service
from rules.servicelevel.export import COLUMNS
from rules.servicelevel.monthly import service_report
from rules.servicelevel.scorecard import ServiceLevel
from waystation.lineprotocol import encode_line
from waystation.registry import Registry, parse_registry
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
MONTH = date(2026, 10, 1)
STEP = timedelta(minutes=5)


def at(day: int, hh: int, mm: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=TZ)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def registry() -> Registry:
    every = {"interval": "5m"}
    return parse_registry({
        "version": 1,
        "timezone": "Asia/Shanghai",
        "parties": {"union": {"name": "总工会", "type": "union"},
                    "ent": {"name": "甲公司", "type": "enterprise"}},
        "stations": {
            "hw": {"name": "手算站", "model": "enterprise_incubated", "operator": "ent",
                   "opening_hours": "07:00-22:00",
                   "devices": {"hw-gw": {"kind": "gateway"} | every,
                               "hw-disp": {"kind": "water_dispenser"} | every,
                               "hw-l1": {"kind": "charging_locker"} | every,
                               "hw-l2": {"kind": "charging_locker"} | every,
                               "hw-door": {"kind": "door_counter"} | every,
                               "hw-meter": {"kind": "meter", "utility": "electricity"}}},
            "hw2": {"name": "全天站", "model": "enterprise_incubated", "operator": "ent",
                    "devices": {"hw2-gw": {"kind": "gateway"} | every}},
        },
    })  # fmt: skip


def times(start: datetime, end: datetime, holes: list[tuple[datetime, datetime]]) -> list[datetime]:
    """Every 5 minutes from start to end, but none strictly inside a hole."""
    out, t = [], start
    while t <= end:
        if not any(a < t < b for a, b in holes):
            out.append(t)
        t += STEP
    return out


def inside(t: datetime, a: datetime, b: datetime) -> bool:
    return a <= t < b


def lines() -> list[str]:
    begin, end = at(29, 0, month=9), at(2, 0, month=11)
    out: list[str] = []

    def put(kind: str, station: str, device: str, ts: list[datetime], fields: object) -> None:
        for seq, t in enumerate(ts):
            data = fields(t) if callable(fields) else {}
            out.append(encode_line(kind, {"station": station, "device": device},
                                   {"seq": seq, **data}, ms(t)))  # fmt: skip

    put("gateway", "hw", "hw-gw", times(begin, end, [
        (at(30, 23, month=9), at(1, 8)), (at(3, 10), at(3, 11)), (at(3, 12), at(3, 12, 10)),
        (at(10, 21, 30), at(11, 7, 30)), (at(20, 23), at(21, 5)),
    ]), None)  # fmt: skip

    def dispenser(t: datetime) -> dict[str, object]:
        cold = inside(t, at(5, 9), at(5, 9, 10)) or inside(t, at(6, 14), at(6, 14, 30))
        data: dict[str, object] = {"temp_c": 60.5 if cold else 92.0, "heating": True,
                                   "water_l_total": 1.0, "energy_kwh_total": 1.0}  # fmt: skip
        if inside(t, at(8, 21, 30), at(8, 23)):
            data["fault"] = "E3"
        return data

    put("water_dispenser", "hw", "hw-disp", times(begin, end, []), dispenser)

    def locker(a: datetime, b: datetime) -> object:
        return lambda t: {"slots": 8, "slots_in_use": 1, "energy_kwh_total": 1.0,
                          "fault_slots": 2 if inside(t, a, b) else 0}  # fmt: skip

    put("charging_locker", "hw", "hw-l1", times(begin, end, [(at(15, 9), at(15, 10))]),
        locker(at(12, 10), at(12, 12)))  # fmt: skip
    put("charging_locker", "hw", "hw-l2", times(begin, end, []), locker(at(12, 11), at(12, 13)))
    put("door_counter", "hw", "hw-door", times(begin, at(30, 12, month=9), []),
        lambda _t: {"in_total": 5, "out_total": 5})  # fmt: skip
    put("gateway", "hw2", "hw2-gw", times(begin, end, [
        (at(6, 23), at(7, 1)), (at(31, 23), at(1, 1, month=11))]), None)  # fmt: skip
    # The rules service's alert history: fired, then resolved 35, 590 and 100 minutes later.
    for station, fired, resolved in [
        ("hw", at(3, 10, 15), at(3, 10, 50)),
        ("hw", at(10, 21, 50), at(11, 7, 40)),
        ("hw2", at(6, 23, 10), at(7, 0, 50)),
    ]:
        for t, active in ((fired, 1), (resolved, 0)):
            out.append(encode_line("alert", {"station": station, "device": "-",
                                             "rule": "agent_offline"},
                                   {"state": "firing" if active else "resolved",
                                    "active": active, "severity": "critical",
                                    "message": "m"}, ms(t)))  # fmt: skip
    return out


def figures(row: ServiceLevel) -> tuple[object, ...]:
    mttr = None if row.mttr_ms is None else (row.mttr_ms / 60_000).quantize(Decimal("0.01"))
    return (row.station, row.service.value, row.availability_pct, row.outages,
            row.down_ms / 60_000, row.longest_ms / 60_000, mttr, row.opening_ms / 60_000)  # fmt: skip


def test_every_figure_of_the_hand_worked_month(store: InfluxStore) -> None:
    for i in range(0, len(batch := lines()), 5000):
        store.write_lines(batch[i : i + 5000])
    report = service_report(store, registry(), Definitions(), MONTH,
                            now=datetime(2026, 11, 5, tzinfo=UTC))  # fmt: skip
    d = Decimal
    assert [figures(r) for r in report.stations] == [
        ("hw", "station", d("99.35"), 3, 180, 60, d("60.00"), 27900),
        ("hw", "hot_water", d("99.78"), 2, 60, 30, d("30.00"), 27900),
        ("hw", "charging", d("99.78"), 1, 60, 60, d("60.00"), 27900),
        ("hw", "visits", d("0.00"), 1, 27900, 27900, d("27900.00"), 27900),
        ("hw2", "station", d("99.60"), 2, 180, 120, d("90.00"), 44640),
    ]
    assert [figures(r) for r in report.operators] == [
        ("*", "station", d("99.50"), 5, 360, 120, d("72.00"), 72540),
        ("*", "hot_water", d("99.78"), 2, 60, 30, d("30.00"), 27900),
        ("*", "charging", d("99.78"), 1, 60, 60, d("60.00"), 27900),
        ("*", "visits", d("0.00"), 1, 27900, 27900, d("27900.00"), 27900),
    ]
    assert {r.operator for r in report.operators} == {"ent"}
    for row in report.operators:
        assert row.alerts is not None
        assert (row.alerts.fired, row.alerts.median_resolve_ms) == (3, 100 * 60_000)
    assert Service.STATION in {r.service for r in report.stations}


def test_the_exports_carry_the_same_figures(store: InfluxStore, tmp_path: Path) -> None:
    store.write_lines(lines())
    job = ScorecardJob(registry(), store, tmp_path, Definitions(),
                       clock=lambda: datetime(2026, 11, 5, tzinfo=UTC))  # fmt: skip
    add_sheet = job.run(MONTH)
    path = tmp_path / "service-2026-10.csv"
    assert job.last_path == path
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [key for _, key in COLUMNS]
    assert rows[1] == ["2026-10", "hw", "手算站", "ent", "station", "99.35", "3",
                       "180.00", "60.00", "60.00", "27900.00", "", ""]  # fmt: skip
    assert rows[-4] == ["2026-10", "*", "", "ent", "station", "99.50", "5", "360.00",
                        "120.00", "72.00", "72540.00", "3", "100.00"]  # fmt: skip
    assert len(rows) == 1 + 5 + 4
    again = path.read_bytes()
    job.run(MONTH)
    assert path.read_bytes() == again  # a re-run writes the same bytes
    wb = Workbook()
    add_sheet(wb)
    sheet = wb["服务水平"]  # the registry's language (zh), the workbook's table style
    assert sheet["A1"].value == "2026-10 服务水平"
    assert [c.value for c in sheet[2]][:3] == ["月份", "站点编号", "站点名称"]
    assert [c.value for c in sheet[3]][:6] == ["2026-10", "hw", "手算站", "ent", "驿站在线", 99.35]
    assert sheet.cell(3, 6).number_format == "0.00"
    [series] = store.query(
        'SELECT "availability_pct", "outages", "down_minutes" FROM "service_level" '
        "WHERE \"station\" = '*' AND \"service\" = 'station'"
    )
    assert series.values == [[ms(at(1, 0)), 99.5, 5, 360.0]]
